"""Request signatures the DirectMail SDKs send: ACS3-HMAC-SHA256 (V3, the current SDK's default)
and the legacy RPC HMAC-SHA1 (`signature_algorithm='v2'`, dm20151123 1.0.0, aliyun-python-sdk-core).

Both are verified exactly as DIRECTMAIL-API.md §3 describes, over the bytes as received: the
raw body is hashed, never re-encoded, and the canonical query is rebuilt from the decoded
pairs. Freshness: the request time must be within `window` seconds of the injected clock, and a
nonce is accepted once per access key; the nonce memory only has to outlive the window, since an
older request is refused by its timestamp anyway.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Mapping, NoReturn, Sequence
from urllib.parse import parse_qsl, quote

from .errors import ApiError

V3_ALGORITHM = "ACS3-HMAC-SHA256"
V3_ALGORITHMS = ("ACS3-HMAC-SHA256", "ACS3-HMAC-SM3", "ACS3-RSA-SHA256")  # only the first is supported
WINDOW_SECONDS = 15 * 60
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# headers that must be covered by the signature. Not content-type: the SDK's async client (aiohttp)
# adds `Content-Type: application/octet-stream` to bodiless requests after signing; the body itself
# is covered by x-acs-content-sha256, so an unsigned content-type cannot smuggle parameters in.
V3_REQUIRED_SIGNED = ("host", "x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce",
                      "x-acs-content-sha256")
_AUTH = re.compile(r"(?P<alg>[A-Z0-9-]+) Credential=(?P<ak>[^,\s]+),\s*SignedHeaders=(?P<sh>[^,\s]+),"
                   r"\s*Signature=(?P<sig>[0-9a-fA-F]+)\s*")
_TIME_FORMATS = ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ")


def pct(s: str) -> str:
    """RFC 3986 percent-encoding of everything but unreserved characters (space -> %20, * -> %2A)."""
    return quote(s, safe="~")


@dataclass(frozen=True)
class Credential:
    """What the key store knows about an AccessKey."""

    access_key_id: str
    account: str
    secret: str
    enabled: bool


@dataclass(frozen=True)
class SignedRequest:
    """One HTTP request as received: nothing decoded that the signature covers."""

    method: str
    path: str
    raw_query: str  # without the '?'
    headers: Sequence[tuple[str, str]]  # lower-case names, every value (repeated headers repeat)
    body: bytes
    form: Sequence[tuple[str, str]]  # decoded form-body pairs (empty unless x-www-form-urlencoded)

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k == name]
        return ",".join(sorted(v.strip() for v in values)) if values else None

    def query_pairs(self) -> list[tuple[str, str]]:
        return parse_qsl(self.raw_query, keep_blank_values=True)

    def access_key_id(self) -> str:
        """The AccessKeyId the request claims (V3 Credential= or RPC AccessKeyId), '' if none."""
        auth = self.header("authorization") or ""
        m = _AUTH.fullmatch(auth)
        if m:
            return m["ak"]
        return dict([*self.query_pairs(), *self.form]).get("AccessKeyId", "")


@dataclass(frozen=True)
class Verified:
    """A request whose signature checked out: who sent it and which action it asks for."""

    credential: Credential
    action: str | None
    version: str | None
    style: str  # "v3" | "rpc"
    nonce: str = ""  # x-acs-signature-nonce / SignatureNonce, for the caller's claim (verify(claim=False))
    expires: float = 0.0  # epoch second after which this request is refused by its timestamp


class NonceCache:
    """Nonces seen in the last `ttl` seconds, per access key. Bounded by the window: entries
    expire once a request carrying them would be refused as expired anyway."""

    def __init__(self, ttl: float, clock: Callable[[], float]):
        self.ttl, self.clock = ttl, clock
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def claim(self, access_key_id: str, nonce: str) -> bool:
        """True the first time (key, nonce) is presented within the ttl; False on a replay."""
        now = self.clock()
        with self._lock:
            if now >= self._next_sweep:
                self._seen = {k: exp for k, exp in self._seen.items() if exp > now}
                self._next_sweep = now + self.ttl / 10
            exp = self._seen.get((access_key_id, nonce))
            if exp is not None and exp > now:
                return False
            self._seen[(access_key_id, nonce)] = now + self.ttl
            return True

    def __len__(self) -> int:
        return len(self._seen)


def parse_time(value: str | None, name: str) -> float:
    if not value:
        raise ApiError.missing(name)
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            pass
    raise ApiError("InvalidTimeStamp.Format")


# --- V3 -----------------------------------------------------------------------------------------

def v3_canonical_query(raw_query: str) -> str:
    pairs = sorted(parse_qsl(raw_query, keep_blank_values=True))
    return "&".join(f"{pct(k)}={pct(v)}" for k, v in pairs)


def v3_string_to_sign(req: SignedRequest, signed_headers: list[str], hashed_payload: str) -> str:
    canonical_headers = "".join(f"{name}:{req.header(name) or ''}\n" for name in signed_headers)
    canonical = "\n".join([req.method.upper(), req.path or "/", v3_canonical_query(req.raw_query), canonical_headers,
                           ";".join(signed_headers), hashed_payload])
    return f"{V3_ALGORITHM}\n{hashlib.sha256(canonical.encode()).hexdigest()}"


def v3_signature(secret: str, string_to_sign: str) -> str:
    return hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


# --- RPC (HMAC-SHA1) ----------------------------------------------------------------------------

def rpc_string_to_sign(method: str, params: Sequence[tuple[str, str]]) -> str:
    canonical = "&".join(f"{pct(k)}={pct(v)}" for k, v in sorted(p for p in params if p[0] != "Signature"))
    return f"{method.upper()}&{pct('/')}&{pct(canonical)}"


def rpc_signature(secret: str, string_to_sign: str) -> str:
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


# --- the verifier -------------------------------------------------------------------------------

class SignatureVerifier:
    """Checks a `SignedRequest` and says who sent it; raises `ApiError` with the documented code.

    `credentials` looks an AccessKeyId up (None when unknown); `clock` returns epoch seconds."""

    def __init__(self, credentials: Callable[[str], Credential | None], clock: Callable[[], float] = time.time,
                 window: float = WINDOW_SECONDS):
        self.credentials, self.clock, self.window = credentials, clock, window
        # a nonce is accepted with a timestamp up to `window` in the future, so remember it twice as long
        self.nonces = NonceCache(2 * window, clock)

    def verify(self, req: SignedRequest, *, claim: bool = True) -> Verified:
        """Who signed `req`. With `claim` (the default) its nonce is also claimed in this process's
        memory; without, the caller claims `Verified.nonce` itself (the API: in the store)."""
        auth = req.header("authorization")
        if auth and auth.startswith("ACS3-"):
            verified = self._verify_v3(req, auth)
        elif any(k == "Signature" for k, _ in [*req.query_pairs(), *req.form]):
            verified = self._verify_rpc(req, [*req.query_pairs(), *req.form])
        else:
            self._unsigned(req, auth)
        if claim:
            self._claim(verified.credential.access_key_id, verified.nonce)
        return verified

    def _unsigned(self, req: SignedRequest, auth: str | None) -> NoReturn:
        """Why a request without a signature is refused (always raises)."""
        params = [*req.query_pairs(), *req.form]
        if req.header("x-acs-bearer-token") or dict(params).get("SignatureType") == "BEARERTOKEN":
            raise ApiError("InvalidSignatureMethod", "Bearer tokens are not accepted here; sign with an AccessKey.")
        if not dict(params).get("AccessKeyId") and not auth:
            raise ApiError("IncompleteSignature", "The request carries no signature.")
        raise ApiError.missing("Signature")

    def _credential(self, access_key_id: str) -> Credential:
        cred = self.credentials(access_key_id)
        if cred is None:
            raise ApiError("InvalidAccessKeyId.NotFound")
        if not cred.enabled:
            raise ApiError("InvalidAccessKeyId.Inactive")
        return cred

    def _fresh(self, when: str | None, name: str) -> float:
        """The request's time, refused outside the window; returns when it expires."""
        ts = parse_time(when, name)
        if abs(self.clock() - ts) > self.window:
            raise ApiError("InvalidTimeStamp.Expired")
        return ts + self.window

    def _claim(self, access_key_id: str, nonce: str) -> None:
        if not self.nonces.claim(access_key_id, nonce):
            raise ApiError("SignatureNonceUsed")

    def _verify_v3(self, req: SignedRequest, auth: str) -> Verified:
        m = _AUTH.fullmatch(auth)
        if not m:
            raise ApiError("IncompleteSignature", "The Authorization header is malformed.")
        if m["alg"] != V3_ALGORITHM:
            if m["alg"] in V3_ALGORITHMS:
                raise ApiError("InvalidSignatureMethod", f"{m['alg']} is not supported; use {V3_ALGORITHM}.")
            raise ApiError("IncompleteSignature", f"Unknown signature algorithm {m['alg']}.")
        signed = m["sh"].split(";")
        if signed != sorted(signed) or any(h != h.lower() for h in signed):
            raise ApiError("IncompleteSignature", "SignedHeaders must be lower-case and sorted.")
        unsigned = [h for h in V3_REQUIRED_SIGNED if h not in signed]
        if unsigned:
            raise ApiError("IncompleteSignature", f"Headers not signed: {';'.join(unsigned)}.")
        absent = [h for h in signed if req.header(h) is None]
        if absent:
            raise ApiError("IncompleteSignature", f"Signed headers missing from the request: {';'.join(absent)}.")
        cred = self._credential(m["ak"])
        expires = self._fresh(req.header("x-acs-date"), "x-acs-date")
        hashed = hashlib.sha256(req.body).hexdigest()
        if hashed != (req.header("x-acs-content-sha256") or "").lower():
            raise ApiError("SignatureDoesNotMatch", "x-acs-content-sha256 is not the SHA-256 of the body.")
        sts = v3_string_to_sign(req, signed, hashed)
        if not hmac.compare_digest(v3_signature(cred.secret, sts), m["sig"].lower()):
            raise ApiError("SignatureDoesNotMatch", "server string to sign is:" + sts.replace("\n", "\\n"))
        return Verified(cred, req.header("x-acs-action"), req.header("x-acs-version"), "v3",
                        req.header("x-acs-signature-nonce") or "", expires)

    def _verify_rpc(self, req: SignedRequest, params: list[tuple[str, str]]) -> Verified:
        p = dict(params)
        for name in ("AccessKeyId", "SignatureNonce", "Timestamp"):
            if not p.get(name):
                raise ApiError.missing(name)
        if p.get("SignatureMethod", "HMAC-SHA1") != "HMAC-SHA1":
            raise ApiError("InvalidSignatureMethod")
        if p.get("SignatureVersion", "1.0") != "1.0":
            raise ApiError.invalid("SignatureVersion")
        cred = self._credential(p["AccessKeyId"])
        expires = self._fresh(p["Timestamp"], "Timestamp")
        sts = rpc_string_to_sign(req.method, params)
        # bytes: compare_digest refuses a str with non-ASCII characters (a TypeError, not a mismatch)
        if not hmac.compare_digest(rpc_signature(cred.secret, sts).encode(), p["Signature"].encode("utf-8", "replace")):
            raise ApiError("SignatureDoesNotMatch", "server string to sign is:" + sts)
        return Verified(cred, p.get("Action"), p.get("Version"), "rpc", p["SignatureNonce"], expires)


def headers_of(items: Mapping[str, str] | Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    pairs = items.items() if isinstance(items, Mapping) else items
    return [(k.lower(), v) for k, v in pairs]
