"""Who may use the queue API: the account's own AccessKey, signed the way the message service
(MNS) signs its queue requests, so a queue is readable only with a key of the account that owns it.

    Date: Fri, 27 Nov 2026 08:00:00 GMT          within 15 minutes of the server's clock
    Authorization: MNS <AccessKeyId>:<Signature>
    Signature = base64(HMAC-SHA1(AccessKeySecret, StringToSign))
    StringToSign = VERB "\\n" Content-MD5 "\\n" Content-Type "\\n" Date "\\n"
                   CanonicalizedMNSHeaders CanonicalizedResource

CanonicalizedMNSHeaders: every `x-mns-*` header, name lower-cased, sorted, `name:value\\n` each.
CanonicalizedResource: the path and query exactly as sent (`/queues/q/messages?wait=10&max=1`).

The AccessKeys are the account's `api_keys` (the ones the DirectMail API verifies); a disabled
key is refused. The key decides the account: a queue of another account is `QueueNotExist`
(404), and `?account=` naming another account is `AccessDenied` (403). Refusals are the table
`AUTH_ERRORS`; `MnsAuth` signs for httpx clients (QueueClient uses it).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime, parsedate_to_datetime
from typing import Callable, Mapping

import httpx
import sqlalchemy as sa

from mailcore.store import Store
from mailcore.store import tables as t
from mailcore.store.crypto import MasterKeyError, SecretBox

SCHEME = "MNS"
WINDOW_SECONDS = 15 * 60

# code -> (HTTP status, what the caller reads)
AUTH_ERRORS: dict[str, tuple[int, str]] = {
    "MissingAuthorization": (401, "the queue API needs 'Authorization: MNS <AccessKeyId>:<Signature>' and a Date header, "
                                  "signed with an AccessKey of the account that owns the queue"),
    "InvalidAuthorization": (401, "the Authorization header must be 'MNS <AccessKeyId>:<Signature>'"),
    "RequestTimeTooSkewed": (403, "the Date header is missing, unreadable or more than 15 minutes from the server's clock"),
    "InvalidAccessKeyId": (403, "no enabled AccessKey has this id"),
    "SignatureDoesNotMatch": (403, "the signature does not match; sign VERB, Content-MD5, Content-Type, Date, the x-mns-* "
                                   "headers and the path with query, with the AccessKey's secret"),
    "AccessDenied": (403, "this AccessKey belongs to another account than the one the request names"),
    "KeysUnavailable": (503, "the service cannot read its AccessKeys (MAILCORE_MASTER_KEY is missing or wrong)"),
}


class AuthError(Exception):
    def __init__(self, code: str):
        self.code = code
        self.status, message = AUTH_ERRORS[code]
        super().__init__(message)


@dataclass(frozen=True)
class Caller:
    access_key_id: str
    account: str


def http_date(now: datetime) -> str:
    return format_datetime(now.astimezone(timezone.utc), usegmt=True)


def string_to_sign(method: str, headers: Mapping[str, str], resource: str) -> str:
    lower = {k.lower(): v for k, v in headers.items()}
    mns = "".join(f"{k}:{lower[k].strip()}\n" for k in sorted(lower) if k.startswith("x-mns-"))
    return "\n".join((method.upper(), lower.get("content-md5", ""), lower.get("content-type", ""),
                      lower.get("date", ""))) + "\n" + mns + resource


def signature(secret: str, method: str, headers: Mapping[str, str], resource: str) -> str:
    mac = hmac.new(secret.encode(), string_to_sign(method, headers, resource).encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


class MnsAuth(httpx.Auth):
    """Signs each request with an AccessKey (Date set from `clock`)."""

    def __init__(self, access_key_id: str, access_key_secret: str, clock: Callable[[], datetime] | None = None):
        self.access_key_id, self.secret = access_key_id, access_key_secret
        self.clock = clock or (lambda: datetime.now(timezone.utc))

    def auth_flow(self, request: httpx.Request):
        request.headers["Date"] = http_date(self.clock())
        sig = signature(self.secret, request.method, request.headers, request.url.raw_path.decode("ascii"))
        request.headers["Authorization"] = f"{SCHEME} {self.access_key_id}:{sig}"
        yield request


def lookup_key(store: Store, box: SecretBox | None, access_key_id: str) -> tuple[str, str] | None:
    """(account name, secret) of an enabled AccessKey, or None."""
    k = t.api_keys
    q = (sa.select(t.accounts.c.name, k.c.secret_enc).join(t.accounts, k.c.account_id == t.accounts.c.id)
         .where(k.c.access_key_id == access_key_id, k.c.enabled.is_(True)))
    with store.engine.connect() as conn:
        row = conn.execute(q).first()
    if row is None:
        return None
    try:
        return row[0], (box or SecretBox.from_env()).decrypt(row[1])
    except MasterKeyError:
        raise AuthError("KeysUnavailable") from None


def authenticate(store: Store, box: SecretBox | None, method: str, headers: Mapping[str, str], resource: str,
                 now: datetime, account: str | None = None) -> Caller:
    """The caller a signed request comes from; raises AuthError. `account` is the one the
    request names (`?account=`), which must be the key's own."""
    auth = headers.get("authorization")
    if not auth:
        raise AuthError("MissingAuthorization")
    scheme, _, cred = auth.partition(" ")
    key_id, _, sig = cred.strip().rpartition(":")
    if scheme != SCHEME or not key_id or not sig:
        raise AuthError("InvalidAuthorization")
    try:
        sent = parsedate_to_datetime(headers.get("date", ""))
    except (TypeError, ValueError, IndexError):
        raise AuthError("RequestTimeTooSkewed") from None
    if sent.tzinfo is None or abs((now - sent).total_seconds()) > WINDOW_SECONDS:
        raise AuthError("RequestTimeTooSkewed")
    found = lookup_key(store, box, key_id)
    if found is None:
        raise AuthError("InvalidAccessKeyId")
    owner, secret = found
    if not hmac.compare_digest(signature(secret, method, headers, resource).encode(), sig.encode()):
        raise AuthError("SignatureDoesNotMatch")
    if account is not None and account != owner:
        raise AuthError("AccessDenied")
    return Caller(key_id, owner)


def resource_of(scope: dict) -> str:
    """The path and query as the client sent them (what the signature covers)."""
    raw = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string") or b""
    return raw.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
