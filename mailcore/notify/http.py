"""The HTTP endpoint: POST each event to the operator's URL, signed, retried, recorded.

What a receiver gets (the message service's SIMPLIFIED push format, which is what a DirectMail
user's MNS HTTP endpoint receives: the body is the message itself, untouched):

    POST <url>
    Content-Type: text/plain;charset=utf-8
    x-mns-message-id: <delivery id>          same on every retry: deduplicate on it
    x-mns-request-id: <delivery id>-<attempt>
    X-Mailcore-Event: Deliver:SendFailed
    X-Mailcore-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>

    env_id=...&msg_id=...&...&failed_type=SmtpNxBox

The signature header is present when the endpoint has a `signing_secret`. Receivers check it with
`verify_signature(secret, header, body, now)`: it recomputes the HMAC over the timestamp and the
raw body bytes, compares in constant time, and refuses timestamps more than five minutes away
from `now` (a captured request cannot be replayed later). MNS signs with its own RSA certificate;
a shared secret from the operator's config is what this service can offer instead.

Any 2xx answer within the timeout counts as delivered (MNS expects 204 within 5 s). Anything else
(another status, a timeout, a refused connection) is retried with exponential backoff until
`max_attempts`; each attempt is one `notify_attempts` row, which keeps the status code and a short
error class (`HTTP 500`, `ConnectTimeout`, `PrivateTarget: ...`), never the receiver's answer.
Redirects are not followed.

Targets: before each attempt the URL's host is resolved and every address checked; loopback,
link-local (where cloud metadata services live), private, shared (100.64/10), multicast, reserved
and other non-global addresses are refused (`PrivateTarget`), and the request then goes to the
checked address itself (Host header and TLS name stay the URL's), so a DNS answer that changes
between the check and the connection (rebinding) cannot reach the service's own network.
`HttpSettings.allow_private_targets` (`service.notifications_allow_private_targets`) lifts the
refusal, for local testing.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Awaitable, Callable

import httpx

from mailcore.spec.webhooks import NON_PUBLIC, non_public  # noqa: F401  (NON_PUBLIC: the table it checks by)

SIGNATURE_HEADER = "X-Mailcore-Signature"
EVENT_HEADER = "X-Mailcore-Event"
CONTENT_TYPE = "text/plain;charset=utf-8"
TOLERANCE_SECONDS = 300


@dataclass
class HttpSettings:
    """Defaults: MNS's 5 s answer timeout; the first retry after 10 s, doubling up to an hour,
    twelve attempts in all (about 3.4 hours: a receiver down for a deploy or a short outage
    still gets every event, while a dead URL stops costing work the same afternoon)."""

    timeout_seconds: float = 5.0
    max_attempts: int = 12
    retry_min_seconds: int = 10
    retry_max_seconds: int = 3600
    concurrency: int = 16  # requests in flight per notifier
    lease_seconds: int = 60  # a crashed notifier's claimed deliveries are retried after this
    allow_private_targets: bool = False  # loopback/private/link-local receivers: local testing only


def backoff(attempts: int, settings: HttpSettings) -> timedelta:
    """Delay after the attempts-th failed attempt: min * 2**(attempts-1), capped at max."""
    return timedelta(seconds=min(settings.retry_max_seconds, settings.retry_min_seconds * 2 ** max(0, attempts - 1)))


def _bytes(body: str | bytes) -> bytes:
    return body.encode() if isinstance(body, str) else body


def _unix(now: datetime | float | int) -> int:
    return int(now.timestamp()) if isinstance(now, datetime) else int(now)


def sign(secret: str, body: str | bytes, now: datetime | float | int) -> str:
    """The X-Mailcore-Signature value for `body` at time `now`."""
    ts = _unix(now)
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + _bytes(body), hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def verify_signature(secret: str, header: str | None, body: str | bytes, now: datetime | float | int,
                     tolerance_seconds: int = TOLERANCE_SECONDS) -> bool:
    """For receivers: True when `header` (the X-Mailcore-Signature value) signs `body` (the raw
    request body) with `secret`, and its timestamp is within `tolerance_seconds` of `now`.
    Several `v1=` values are accepted (one per secret during a rotation)."""
    if not header:
        return False
    ts, macs = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            ts = value
        elif key == "v1":
            macs.append(value)
    if ts is None or not ts.isdigit() or not macs:
        return False
    if abs(_unix(now) - int(ts)) > tolerance_seconds:
        return False
    expected = hmac.new(secret.encode(), f"{ts}.".encode() + _bytes(body), hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, m) for m in macs)


def request_headers(delivery_id: int, attempt: int, event: str, body: str, secret: str | None,
                    now: datetime) -> dict[str, str]:
    headers = {"Content-Type": CONTENT_TYPE, "x-mns-message-id": str(delivery_id),
               "x-mns-request-id": f"{delivery_id}-{attempt}", EVENT_HEADER: event}
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, body, now)
    return headers


@dataclass
class AttemptResult:
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: int


Resolver = Callable[[str, int], Awaitable[list[str]]]


class TargetRefused(Exception):
    """The URL resolves to an address the notifier does not post to."""


async def system_resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


async def pin(url: str, *, allow_private: bool, resolve: Resolver | None = None) -> tuple[httpx.URL, dict, dict]:
    """(URL with the host replaced by its checked address, extra headers, request extensions).
    Raises TargetRefused when any address the host resolves to is not public."""
    u = httpx.URL(url)
    port = u.port or (443 if u.scheme == "https" else 80)
    try:
        addresses = await (resolve or system_resolve)(u.host, port)
    except OSError as exc:
        raise TargetRefused(f"ResolveError: {u.host} ({type(exc).__name__})") from None
    if not addresses:
        raise TargetRefused(f"ResolveError: {u.host} has no address")
    if not allow_private:
        for address in addresses:
            why = non_public(address)
            if why:
                raise TargetRefused(f"PrivateTarget: {u.host} resolves to {address}, {why}")
    extensions = {"sni_hostname": u.host} if u.scheme == "https" else {}
    return u.copy_with(host=addresses[0].split("%", 1)[0]), {"Host": u.netloc.decode("ascii")}, extensions


async def post(client: httpx.AsyncClient, url: str, body: str, headers: dict[str, str],
               timeout_seconds: float, *, allow_private: bool = False, resolve: Resolver | None = None) -> AttemptResult:
    """One POST to the checked address of `url`; never raises for what a receiver, DNS or the
    network can do. A failure keeps the status code or a short error class, not the answer."""
    started = time.monotonic()
    try:
        target, extra, extensions = await pin(url, allow_private=allow_private, resolve=resolve)
    except TargetRefused as exc:
        return AttemptResult(False, None, str(exc), _ms(started))
    try:
        response = await client.post(target, content=body.encode(), headers={**headers, **extra},
                                     extensions=extensions, timeout=timeout_seconds, follow_redirects=False)
    except httpx.TimeoutException as exc:
        return AttemptResult(False, None, f"{type(exc).__name__}: no answer within {timeout_seconds:g} s", _ms(started))
    except httpx.HTTPError as exc:
        return AttemptResult(False, None, type(exc).__name__, _ms(started))
    ok = 200 <= response.status_code < 300
    return AttemptResult(ok, response.status_code, None if ok else f"HTTP {response.status_code}", _ms(started))


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
