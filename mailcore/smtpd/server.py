"""SMTP submission (R31, R32): applications send as a sender address, with its SMTP password.

aiosmtpd runs the protocol; this module decides. A session must authenticate (AUTH PLAIN or
LOGIN, R31) over TLS (STARTTLS or implicit TLS; plain-text AUTH only from loopback and only when
`allow_plain_auth_on_loopback` is set). At MAIL FROM the authenticated user must be the envelope
sender, and the sender must be able to send here, checked in this order:

    sender-mismatch, sender-unknown, account-unavailable (R3), ip-not-allowed (R28),
    wrong-region (R1), domain-unverified (R9), sender-not-active (R15)

At RCPT TO: at most `max_rcpts` recipients (the 31st gets 556, and the DATA of that transaction
is refused with 556 too: the guide allows no message over the limit, so none is sent to a
silently shortened list), and none in the invalid-address base (559, an injected hook). DATA
over `max_message_bytes` gets 557. The message then goes to cleanup through the Submitter
protocol; only its success is acknowledged with the guide's `250 Data Ok: queued as freedom
###envid=N`. A refusal from cleanup gets its REFUSALS line; any other failure gets 451, so the
client keeps the message and retries: nothing acknowledged is lost. The submission runs shielded
from the connection, so a client that hangs up mid-commit cannot cut a commit in half.

Every line the client sees comes from `replies.REPLIES` or `mailcore.submit.REFUSALS`.

Store lookups (password check included: scrypt on a cache miss) run in worker threads, so one
slow lookup never stalls the other sessions on the event loop; within `lookup_cache_seconds` a
sender's AUTH and MAIL FROM are answered from memory. Where aiosmtpd is slow per message, this
module does the same work more cheaply and is tested against aiosmtpd's own answers: DATA is read
up to its terminator in one step, and MAIL/RCPT paths of the usual form skip the RFC 5322 parser.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import inspect
import ipaddress
import json
import logging
import re
import ssl
import sys
import time
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path
from typing import Any, Awaitable, Callable

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, Session, TLSSetupException, syntax

from mailcore.catalog import SENDABLE_DOMAIN_STATUSES, Catalog, SenderView
from mailcore.submit import Recipient, Submission, SubmitRefused, Submitter

from . import tls
from .replies import refusal, reply, translate

log = logging.getLogger("mailcore.smtpd")

TLS_MODES = ("starttls", "implicit", "none")
TRACE_HEADER = "X-AliDM-Trace"

InvalidAddressHook = Callable[[str, str], "bool | Awaitable[bool]"]
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class SmtpConfigError(Exception):
    """The listener settings cannot work; the message says which setting and why."""


@dataclass(frozen=True)
class SmtpSettings:
    """One listener. A listener is bound to one region (R1)."""

    region: str
    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port (see SmtpServer.port)
    tls_mode: str = "starttls"  # starttls | implicit | none
    hostname: str = "localhost"  # greeting/EHLO name, and the self-signed certificate's name
    cert_file: Path | None = None  # with key_file: a real certificate; else a self-signed one
    key_file: Path | None = None
    self_signed_dir: Path | None = None  # where the self-signed pair is kept (default: state dir /tls)
    max_rcpts: int = 30  # R32: 556 beyond this
    max_message_bytes: int = 15 * 1024 * 1024  # R32: 557 beyond this; advertised as SIZE
    activation_delay_seconds: int = 600  # R15: a new sender may send 10 minutes after creation
    allow_plain_auth_on_loopback: bool = False  # AUTH without TLS, from 127.0.0.0/8 and ::1 only
    timeout_seconds: float = 300
    max_auth_attempts: int = 5  # AUTH commands per connection before 421
    shutdown_grace_seconds: float = 30  # stop() waits this long for submissions in flight
    lookup_cache_seconds: float = 1.0  # reuse a sender's store lookups this long (0: look up every time)

    @classmethod
    def from_mapping(cls, data: dict, *, base_dir: Path | None = None) -> "SmtpSettings":
        """Settings from a config mapping (snake_case keys as the fields; paths relative to base_dir)."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise SmtpConfigError(f"smtp: unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                                  f"known: {', '.join(known)}")
        if "region" not in data:
            raise SmtpConfigError("smtp: 'region' is required (a listener serves one region, R1)")
        values = dict(data)
        for key in ("cert_file", "key_file", "self_signed_dir"):
            if values.get(key) is not None:
                path = Path(values[key])
                values[key] = path if path.is_absolute() or base_dir is None else base_dir / path
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        if self.tls_mode not in TLS_MODES:
            raise SmtpConfigError(f"smtp tls_mode {self.tls_mode!r}: expected one of {', '.join(TLS_MODES)}")
        if (self.cert_file is None) != (self.key_file is None):
            raise SmtpConfigError("smtp cert_file and key_file go together: set both or neither")
        if not 1 <= self.max_rcpts:
            raise SmtpConfigError(f"smtp max_rcpts {self.max_rcpts}: must be at least 1")
        if self.lookup_cache_seconds < 0:
            raise SmtpConfigError(f"smtp lookup_cache_seconds {self.lookup_cache_seconds}: must not be negative")
        if self.max_message_bytes < 1024:
            raise SmtpConfigError(f"smtp max_message_bytes {self.max_message_bytes}: must be at least 1024")
        if self.tls_mode == "none" and not self.allow_plain_auth_on_loopback:
            raise SmtpConfigError("smtp tls_mode 'none' needs allow_plain_auth_on_loopback: "
                                  "without TLS no client could ever authenticate")


# --- X-AliDM-Trace (R21) -------------------------------------------------------------------

class TraceHeaderError(ValueError):
    """The X-AliDM-Trace header is not base64-encoded JSON object."""


@dataclass(frozen=True)
class Trace:
    tag: str | None = None
    open_tracking: bool = False


_TRACE_NEEDLE = TRACE_HEADER.lower().encode()


def parse_trace(raw_message: bytes) -> Trace:
    """Tag and open tracking from the message's X-AliDM-Trace header, as DirectMail's SMTP
    examples build it: base64 of a JSON object such as {"OpenTrace": "1", "TagName": "x"}.
    "LinkTrace" (click tracking) is accepted and ignored: the guide says SMTP does not support it."""
    end = raw_message.find(b"\r\n\r\n")
    head = raw_message if end < 0 else raw_message[:end + 2]
    if _TRACE_NEEDLE not in head.lower():  # the common case, without parsing headers
        return Trace()
    value = BytesHeaderParser(policy=compat32).parsebytes(head + b"\r\n").get(TRACE_HEADER)
    if value is None:
        return Trace()
    try:
        data = json.loads(base64.b64decode(re.sub(r"\s+", "", str(value)), validate=True))
    except (binascii.Error, ValueError) as exc:
        raise TraceHeaderError(f"{TRACE_HEADER}: {exc}") from None
    if not isinstance(data, dict):
        raise TraceHeaderError(f"{TRACE_HEADER}: expected a JSON object")
    tag = data.get("TagName")
    if tag is not None and not isinstance(tag, str):
        raise TraceHeaderError(f"{TRACE_HEADER}: TagName must be a string")
    return Trace(tag=tag or None, open_tracking=str(data.get("OpenTrace", "0")).strip().lower() in ("1", "true"))


# --- DSN parameters (RFC 3461) -------------------------------------------------------------

_XTEXT = re.compile(r"(?:[!-*,-<>-~]|\+[0-9A-F]{2})+")
_DSN_CHECKS: dict[str, Callable[[str], bool]] = {
    "RET": lambda v: v.upper() in ("FULL", "HDRS"),
    "ENVID": lambda v: len(v) <= 100 and bool(_XTEXT.fullmatch(v)),
    "NOTIFY": lambda v: v.upper() == "NEVER" or (
        bool(v) and set(v.upper().split(",")) <= {"SUCCESS", "FAILURE", "DELAY"}),
    "ORCPT": lambda v: ";" in v and bool(_XTEXT.fullmatch(v.split(";", 1)[1])),
}
MAIL_DSN, RCPT_DSN = ("RET", "ENVID"), ("NOTIFY", "ORCPT")


def take_dsn_params(arg: str, names: tuple[str, ...]) -> tuple[str, dict[str, str], str | None]:
    """(arg without the DSN parameters, those parameters, the first invalid one or None).
    aiosmtpd refuses parameters it does not know, and upper-cases the rest (ENVID and ORCPT are
    case-sensitive), so the DSN ones are taken out before aiosmtpd parses the command."""
    head, sep, tail = arg.rpartition(">")
    if not sep:
        head, _, tail = arg.strip().partition(" ")
    kept, found = [], {}
    for token in tail.split():
        key, eq, value = token.partition("=")
        if key.upper() in names:
            if not eq or key.upper() in found or not _DSN_CHECKS[key.upper()](value):
                return arg, {}, key.upper()
            found[key.upper()] = value
        else:
            kept.append(token)
    return " ".join([head + sep] + kept), found, None


# --- the protocol --------------------------------------------------------------------------

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
# <dot-atom@domain> and what follows: the paths nearly every client sends. Anything else (quoted
# local parts, source routes, address literals, comments, <>) goes to aiosmtpd's full RFC 5322
# parser, which costs some 50 microseconds per address.
_SIMPLE_PATH = re.compile(rf"[ \t]*<((?:{_ATOM}\.)*{_ATOM}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>[ \t]*([^(]*)", re.S)

class SubmissionSession(Session):
    """aiosmtpd's Session without the deprecation warning it logs on every successful AUTH."""

    @property
    def login_data(self) -> Any:
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


class SubmissionEnvelope(Envelope):
    def __init__(self) -> None:
        super().__init__()
        self.sender: SenderView | None = None  # checked at MAIL FROM
        self.dsn: dict[str, str] = {}  # RET, ENVID
        self.rcpt_dsn: list[dict[str, str]] = []  # NOTIFY, ORCPT per accepted recipient
        self.over_rcpt_limit = False


class SubmissionSMTP(SMTP):
    """aiosmtpd's SMTP with our replies, our AUTH mechanisms and TLS rules, and DSN parameters."""

    # the guide's LOGIN prompts; challenge_auth base64-encodes them
    AuthLoginUsernameChallenge = "username:"
    AuthLoginPasswordChallenge = "Password:"

    def __init__(self, handler: "SubmissionHandler", *, implicit_tls: bool, **kwargs):
        # set before SMTP.__init__, which inspects the instance's members
        self.handler = handler
        self.implicit_tls = implicit_tls
        self.greeted = False
        self._continued: list[str] = []  # lines of a multi-line reply, written with its last line
        self.idle = asyncio.Event()
        self.idle.set()
        self._pending_dsn: dict[str, str] = {}
        super().__init__(handler, auth_require_tls=True, **kwargs)
        # aiosmtpd's own TLS rule for AUTH knows only STARTTLS; smtp_AUTH below applies ours
        # (implicit TLS, loopback). Passing False above would make aiosmtpd warn on every connection.
        self._auth_require_tls = False

    def __dir__(self) -> list[str]:
        """What aiosmtpd's __init__ looks for on every connection: the smtp_* commands and the
        auth_* mechanisms. It runs inspect.getmembers() over dir(self), which would otherwise
        evaluate every attribute and property of the protocol object for each new client."""
        cls = type(self)
        if "_command_names" not in cls.__dict__:
            cls._command_names = [n for n in dir(cls) if n.startswith(("smtp_", "auth_"))]
        return cls._command_names

    # -- state
    def _create_session(self) -> Session:
        return SubmissionSession(self.loop)

    def _create_envelope(self) -> Envelope:
        return SubmissionEnvelope()

    @property
    def encrypted(self) -> bool:
        return self.implicit_tls or self._tls_protocol is not None

    @property
    def client_ip(self) -> str:
        peer = self.session.peer if self.session else None
        return peer[0] if isinstance(peer, tuple) else str(peer or "")

    @property
    def auth_allowed(self) -> bool:
        if self.encrypted:
            return True
        if not self.handler.settings.allow_plain_auth_on_loopback:
            return False
        try:
            return ipaddress.ip_address(self.client_ip).is_loopback
        except ValueError:
            return False

    # -- connection bookkeeping (for a clean stop)
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None
        super().connection_made(transport)
        if first:
            self.handler.server_sessions.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        self.handler.server_sessions.discard(self)
        self.idle.set()
        super().connection_lost(error)

    def eof_received(self) -> bool | None:
        result = super().eof_received()
        return False if self.implicit_tls else result  # True has no effect on a TLS transport

    # -- every line goes out through the tables
    async def push(self, status: str | bytes) -> None:
        if isinstance(status, str):
            if not self.greeted:  # aiosmtpd's first line is its greeting
                self.greeted = True
                status = reply("greeting", hostname=self.hostname)
            else:
                status = translate(status) or status
            if status[3:4] == "-":  # a multi-line reply (EHLO) goes out in one write, with its last line
                self._continued.append(status)
                return
            if self._continued:
                self._continued.append(status)
                status = "\r\n".join(self._continued)
                self._continued.clear()
        await super().push(status)
        if not self.idle.is_set():  # the reply to a DATA in flight went out
            self.idle.set()

    def write_shutdown(self) -> None:
        """421 and close: the server is stopping (called only between transactions' replies)."""
        self._say_421_and_close("shutdown")

    def _timeout_cb(self) -> None:
        """The idle timeout: say so (RFC 5321 4.5.3.2) before aiosmtpd closes the connection."""
        self._say_421_and_close("timeout")

    def _say_421_and_close(self, name: str) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self._writer.write(reply(name).encode() + b"\r\n")
            self.transport.close()

    # -- AUTH (R31)
    async def smtp_AUTH(self, arg: str) -> None:
        s = self.session
        if s.host_name and s.extended_smtp and not s.authenticated and not self.auth_allowed:
            await self.push(reply("encryption-required"))
            return
        await super().smtp_AUTH(arg)

    async def auth_PLAIN(self, _, args: list[str]) -> AuthResult:
        blob = await self._auth_response(args, "")
        if blob is None:
            return AuthResult(success=False, handled=True)
        parts = blob.split(b"\x00")
        if len(parts) != 3:
            await self.push(reply("auth-plain-malformed"))
            return AuthResult(success=False, handled=True)
        return await self._verify(parts[1], parts[2])

    async def auth_LOGIN(self, _, args: list[str]) -> AuthResult:
        login = await self._auth_response(args, self.AuthLoginUsernameChallenge)
        if login is None:
            return AuthResult(success=False, handled=True)
        password = await self.challenge_auth(self.AuthLoginPasswordChallenge)
        if password is MISSING:
            return AuthResult(success=False, handled=True)
        return await self._verify(login, password)

    async def _auth_response(self, args: list[str], challenge: str) -> bytes | None:
        """The initial response, or the answer to `challenge`; None when a 501 has been sent."""
        if len(args) == 1:
            blob = await self.challenge_auth(challenge)
            return None if blob is MISSING else blob
        if args[1] == "=":  # RFC 4954: an empty initial response
            return b""
        try:
            return base64.b64decode(args[1].encode(), validate=True)
        except binascii.Error:
            await self.push(reply("auth-base64"))
            return None

    async def _verify(self, login: bytes, password: bytes) -> AuthResult:
        try:
            user, secret = login.decode("utf-8"), password.decode("utf-8")
        except UnicodeDecodeError:
            view = None
        else:
            view = self.handler.lookups.cached_sender(user)
            if view is None or not self.handler.catalog.remembered_password(view, secret):
                # not looked up within the cache's ttl, or a password not verified yet: the store (and scrypt)
                view = await asyncio.to_thread(self.handler.catalog.verify_smtp, user, secret)
                if view is not None:
                    self.handler.lookups.remember_sender(view)  # a fresh read seeds MAIL FROM's cache
        if view is None:
            log.warning("client=%s sasl_method=AUTH sasl_username=%s: authentication failed",
                        self.client_ip, login.decode("utf-8", "replace")[:254])
            return AuthResult(success=False, handled=False, message=refusal("auth-failed"))
        log.info("client=%s sasl_username=%s: authenticated", self.client_ip, view.address)
        return AuthResult(success=True, auth_data=view, message=reply("auth-ok"))

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """(address, rest of the line) of a MAIL FROM or RCPT TO argument, as aiosmtpd's own."""
        m = _SIMPLE_PATH.fullmatch(arg) if arg else None
        if m is None or (self.local_part_limit and len(m.group(1).rpartition("@")[0]) > self.local_part_limit):
            return super()._getaddr(arg)
        return m.group(1), m.group(2)

    # -- DATA, read in whole chunks
    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA, with the same checks and replies, reading the message up to the
        terminating <CRLF>.<CRLF> in one step instead of one await per line (some 40 for 2 KB).
        Like aiosmtpd: a line over line_length_limit gets 500, data over data_size_limit 552
        (answered once the whole message has been read), dot-stuffing is undone."""
        reader = self._reader
        if not all(hasattr(reader, a) for a in ("_limit", "_buffer", "_wait_for_data")):  # aiosmtpd's way
            return await super().smtp_DATA(arg)
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        if not self.envelope.rcpt_tos:
            return await self.push("503 Error: need RCPT command")
        if arg:
            return await self.push("501 Syntax: DATA")
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            data, problem = await self._read_data(reader)
        except asyncio.CancelledError:
            log.info("Connection lost during DATA")
            self._writer.close()
            raise
        if problem:
            self._set_post_data_state()
            return await self.push(problem)
        content = data[1:] if data[:1] == b"." else data  # undo dot-stuffing (RFC 5321 4.5.2)
        if b"\r\n." in content:
            content = content.replace(b"\r\n.", b"\r\n")
        self.envelope.content = self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)

    async def _read_data(self, reader: asyncio.StreamReader) -> tuple[bytes, str | None]:
        """(the message through its last CRLF, None) or (b"", aiosmtpd's reply to a line over
        line_length_limit or data over data_size_limit). Either way the whole message is read,
        so the session stays in step with the client."""
        while len(reader._buffer) < 3 and not reader.at_eof():  # an empty message is ".\r\n" alone
            await reader._wait_for_data("smtp_DATA")
        if reader._buffer[:3] == b".\r\n":
            await reader.readexactly(3)
            return b"", None
        saved = reader._limit
        reader._limit = (self.data_size_limit or (1 << 30)) + 3  # how far readuntil may look for the end
        try:
            chunk = await reader.readuntil(b"\r\n.\r\n")
        except asyncio.LimitOverrunError:
            chunk = None
        finally:
            reader._limit = saved
        if chunk is None:
            return await self._drop_data(reader, "552 Error: Too much mail data")
        data = chunk[:-3]
        limit = self.line_length_limit
        if len(data) > limit - 2 and any(len(line) + 2 > limit for line in data.split(b"\r\n")):
            return b"", "500 Line too long (see RFC5321 4.5.3.1.6)"
        if self.data_size_limit and len(data) > self.data_size_limit:
            return b"", "552 Error: Too much mail data"
        return data, None

    @staticmethod
    async def _drop_data(reader: asyncio.StreamReader, problem: str) -> tuple[bytes, str]:
        """Read and drop the rest of the message, lines over the stream limit included."""
        partial = False  # inside a line too long for the stream: its tail is not a terminator
        while True:
            try:
                line = await reader.readuntil(b"\r\n")
            except asyncio.LimitOverrunError as exc:
                await reader.read(exc.consumed)
                partial = True
                continue
            if line == b".\r\n" and not partial:
                return b"", problem
            partial = False

    # -- DSN parameters (advertised, so accepted)
    async def smtp_MAIL(self, arg: str | None) -> None:
        if arg:
            arg, self._pending_dsn, bad = take_dsn_params(arg, MAIL_DSN)
            if bad:
                await self.push(reply("dsn-param", param=bad))
                return
        await super().smtp_MAIL(arg)

    async def smtp_RCPT(self, arg: str | None) -> None:
        if arg:
            arg, self._pending_dsn, bad = take_dsn_params(arg, RCPT_DSN)
            if bad:
                await self.push(reply("dsn-param", param=bad))
                return
        await super().smtp_RCPT(arg)

    def take_pending_dsn(self) -> dict[str, str]:
        found, self._pending_dsn = self._pending_dsn, {}
        return found


# --- store lookups --------------------------------------------------------------------------

class SenderLookups:
    """The catalog's answers for MAIL FROM, fetched in one worker-thread hop and kept for
    `ttl` seconds: a client sending many messages costs one lookup per second rather than two
    queries per message, and a change in the store (account restricted, allow-list edited)
    takes effect within `ttl`. The AUTH that just read the sender seeds the cache."""

    def __init__(self, catalog: Catalog, ttl: float, monotonic: Callable[[], float] = time.monotonic):
        self.catalog, self.ttl, self.monotonic = catalog, ttl, monotonic
        self._senders: dict[str, tuple[float, SenderView | None]] = {}
        self._ips: dict[tuple[str, str], tuple[float, bool]] = {}

    def _fresh(self, entry):
        return entry is not None and self.monotonic() - entry[0] < self.ttl

    def cached_sender(self, address: str) -> SenderView | None:
        """The sender's view when it was looked up less than `ttl` seconds ago, else None."""
        cached = self._senders.get(address.lower())
        return cached[1] if self._fresh(cached) else None

    def remember_sender(self, view: SenderView) -> None:
        if self.ttl:
            self._senders[view.address] = (self.monotonic(), view)

    async def sender_and_ip(self, address: str, client_ip: str) -> tuple[SenderView | None, bool]:
        cached = self._senders.get(address)
        if self._fresh(cached):
            view = cached[1]
            if view is None:
                return None, False
            ip = self._ips.get((view.account, client_ip))
            if self._fresh(ip):
                return view, ip[1]
        view, allowed = await asyncio.to_thread(self._fetch, address, client_ip)
        if self.ttl:
            now = self.monotonic()
            if len(self._senders) > 10_000 or len(self._ips) > 10_000:  # bounded: stale entries go
                self._senders.clear()
                self._ips.clear()
            self._senders[address] = (now, view)
            if view is not None:
                self._ips[(view.account, client_ip)] = (now, allowed)
        return view, allowed

    def _fetch(self, address: str, client_ip: str) -> tuple[SenderView | None, bool]:
        view = self.catalog.sender(address)
        return view, view is not None and self.catalog.ip_allowed(view.account, client_ip)


# --- the policy (aiosmtpd handler hooks) ---------------------------------------------------

class SubmissionHandler:
    """What submission allows: aiosmtpd calls these hooks; each returns the reply line."""

    def __init__(self, settings: SmtpSettings, catalog: Catalog, submitter: Submitter, *,
                 invalid_address: InvalidAddressHook | None = None, clock: Clock = utcnow):
        self.settings = settings
        self.catalog = catalog
        self.submitter = submitter
        self.invalid_address = invalid_address
        self.clock = clock
        self.lookups = SenderLookups(catalog, settings.lookup_cache_seconds)
        self.server_sessions: set[SubmissionSMTP] = set()
        self.inflight: set[asyncio.Task] = set()

    async def handle_EHLO(self, server: SubmissionSMTP, session, envelope, hostname: str, responses) -> list[str]:
        session.host_name = hostname
        caps = ["PIPELINING", f"SIZE {self.settings.max_message_bytes}", "8BITMIME", "DSN", "ENHANCEDSTATUSCODES"]
        if server.tls_context and not server.encrypted:
            caps.append("STARTTLS")
        if server.auth_allowed:
            caps += ["AUTH PLAIN LOGIN", "AUTH=PLAIN LOGIN"]  # the second for old Outlook, as in the guide
        first = reply("helo", hostname=server.hostname)
        return ["250-" + first[4:]] + [f"250-{c}" for c in caps[:-1]] + [f"250 {caps[-1]}"]

    async def handle_HELO(self, server: SubmissionSMTP, session, envelope, hostname: str) -> str:
        session.host_name = hostname
        return reply("helo", hostname=server.hostname)

    async def handle_MAIL(self, server: SubmissionSMTP, session, envelope: SubmissionEnvelope,
                          address: str, mail_options: list[str]) -> str:
        dsn = server.take_pending_dsn()
        authenticated: SenderView = session.auth_data
        if address.lower() != authenticated.address:
            return self._refuse(server, "sender-mismatch", f"from=<{address}> sasl_username={authenticated.address}")
        view, ip_allowed = await self.lookups.sender_and_ip(authenticated.address, server.client_ip)
        reason = self.sender_refusal(view, ip_allowed)
        if reason:
            return self._refuse(server, reason, f"from=<{address}>")
        envelope.mail_from, envelope.sender, envelope.dsn = address, view, dsn
        envelope.mail_options.extend(mail_options)
        return reply("mail-ok")

    def sender_refusal(self, view: SenderView | None, ip_allowed: bool) -> str | None:
        """Why this sender may not send through this listener now, or None."""
        if view is None:
            return "sender-unknown"
        if view.account_status != "active":
            return "account-unavailable"
        if not ip_allowed:
            return "ip-not-allowed"
        if view.region != self.settings.region:
            return "wrong-region"
        if view.domain_status not in SENDABLE_DOMAIN_STATUSES:
            return "domain-unverified"
        if self.clock() < view.created_at + timedelta(seconds=self.settings.activation_delay_seconds):
            return "sender-not-active"
        return None

    async def handle_RCPT(self, server: SubmissionSMTP, session, envelope: SubmissionEnvelope,
                          address: str, rcpt_options: list[str]) -> str:
        dsn = server.take_pending_dsn()
        if len(envelope.rcpt_tos) >= self.settings.max_rcpts:
            envelope.over_rcpt_limit = True
            return self._refuse(server, "too-many-rcpts", f"rcpt=<{address}>")
        if self.invalid_address is not None and await self._is_invalid(envelope.sender.account, address):
            return self._refuse(server, "invalid-rcpt", f"rcpt=<{address}>")
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        envelope.rcpt_dsn.append(dsn)
        return reply("rcpt-ok")

    async def _is_invalid(self, account: str, address: str) -> bool:
        if inspect.iscoroutinefunction(self.invalid_address):
            return bool(await self.invalid_address(account, address))
        return bool(await asyncio.to_thread(self.invalid_address, account, address))

    async def handle_DATA(self, server: SubmissionSMTP, session, envelope: SubmissionEnvelope) -> str:
        if envelope.over_rcpt_limit:
            return self._refuse(server, "too-many-rcpts", f"nrcpt>{self.settings.max_rcpts}")
        raw = envelope.original_content
        try:
            trace = parse_trace(raw)
        except TraceHeaderError as exc:
            log.info("client=%s from=<%s>: refused: %s", server.client_ip, envelope.mail_from, exc)
            return reply("trace-header")
        view = envelope.sender
        submission = Submission(
            account=view.account, sender=view.address, source="smtp", region=self.settings.region,
            client_ip=server.client_ip, raw_message=raw, tag=trace.tag, tracking=trace.open_tracking,
            recipients=[Recipient(address) for address in envelope.rcpt_tos])
        task = asyncio.ensure_future(self.submitter.submit(submission))
        self.inflight.add(task)
        task.add_done_callback(self.inflight.discard)
        server.idle.clear()  # set again when the reply below has been written
        try:
            result = await asyncio.shield(task)
        except SubmitRefused as exc:
            log.info("client=%s from=<%s> nrcpt=%d: refused by cleanup: %s", server.client_ip, view.address,
                     len(envelope.rcpt_tos), exc)
            return exc.refusal.smtp
        except asyncio.CancelledError:
            raise  # the connection went away; the shielded submission still completes
        except Exception:
            log.exception("client=%s from=<%s>: submission failed, answered 451", server.client_ip, view.address)
            return reply("temp-failure")
        log.info("%s: client=%s sasl_username=%s from=<%s> nrcpt=%d size=%d tag=%s tracking=%s", result.env_id,
                 server.client_ip, view.address, view.address, len(envelope.rcpt_tos), len(raw), trace.tag or "",
                 int(trace.open_tracking))
        return reply("queued", env_id=result.env_id)

    async def handle_exception(self, error: Exception) -> str:
        if isinstance(error, TLSSetupException):  # the client gave up on the handshake: expected, no traceback
            log.info("smtpd STARTTLS handshake failed: %s", error.__cause__ or error)
        else:
            log.error("smtpd session error: %s: %s", type(error).__name__, error, exc_info=error)
        return reply("temp-failure")

    def _refuse(self, server: SubmissionSMTP, reason: str, detail: str) -> str:
        log.info("client=%s %s: refused: %s", server.client_ip, detail, reason)
        return refusal(reason)


# --- the server ----------------------------------------------------------------------------

class SmtpServer:
    """One submission listener on the running event loop: `await start()`, `await stop()`."""

    def __init__(self, settings: SmtpSettings, *, catalog: Catalog, submitter: Submitter,
                 invalid_address: InvalidAddressHook | None = None, clock: Clock = utcnow,
                 tls_context: ssl.SSLContext | None = None):
        settings.check()
        self.settings = settings
        self.handler = SubmissionHandler(settings, catalog, submitter, invalid_address=invalid_address, clock=clock)
        self.tls_context = tls_context
        self._server: asyncio.Server | None = None

    def _context(self) -> ssl.SSLContext | None:
        if self.settings.tls_mode == "none":
            return None
        if self.tls_context is None:
            s = self.settings
            if s.cert_file is not None:
                cert, key = s.cert_file, s.key_file
            else:
                from mailcore.store.db import state_dir
                cert, key = tls.ensure_self_signed(s.self_signed_dir or state_dir() / "tls", s.hostname)
            self.tls_context = tls.server_context(cert, key)
        return self.tls_context

    def _protocol(self) -> SubmissionSMTP:
        s, ctx = self.settings, self.tls_context
        return SubmissionSMTP(
            self.handler, implicit_tls=s.tls_mode == "implicit",
            tls_context=ctx if s.tls_mode == "starttls" else None,
            hostname=s.hostname, data_size_limit=s.max_message_bytes, auth_required=True,
            timeout=s.timeout_seconds, command_call_limit={"AUTH": s.max_auth_attempts, "*": sys.maxsize},
            loop=asyncio.get_running_loop())

    async def start(self) -> None:
        ctx = self._context()
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                self._protocol, self.settings.host, self.settings.port,
                ssl=ctx if self.settings.tls_mode == "implicit" else None, reuse_address=True)
        except OSError as exc:
            raise SmtpConfigError(f"smtp listener {self.settings.host}:{self.settings.port}: {exc.strerror or exc}") from None
        log.info("smtpd listening on %s:%d region=%s tls=%s", self.settings.host, self.port, self.settings.region,
                 self.settings.tls_mode)

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            raise RuntimeError("SmtpServer is not started")
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop accepting; let submissions in flight finish and their replies go out; then 421 and close."""
        if self._server is None:
            return
        self._server.close()
        sessions = list(self.handler.server_sessions)
        pending = [asyncio.ensure_future(p.idle.wait()) for p in sessions]
        if pending:
            _, late = await asyncio.wait(pending, timeout=self.settings.shutdown_grace_seconds)
            for fut in late:
                fut.cancel()
        for p in sessions:
            p.write_shutdown()
        if self.handler.inflight:  # commits whose client went away: finish them anyway
            await asyncio.wait(list(self.handler.inflight), timeout=self.settings.shutdown_grace_seconds)
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> "SmtpServer":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()
