"""The SMTP protocol as aiosmtpd runs it, with the submission service's changes: sessions that remember the login, DATA read up to its terminator in one step, MAIL/RCPT paths of the usual form parsed cheaply, DSN parameters kept, and the 421 on timeouts."""
from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import logging
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, Session, syntax

from mailcore.account.catalog import SenderView, normalize_ip

from .parsing import _SIMPLE_PATH, MAIL_DSN, RCPT_DSN, take_dsn_params
from .replies import refusal, reply, translate

log = logging.getLogger("mailcore.smtpd")

# an idle TLS connection keeps a read buffer of this size; asyncio's default (256 KiB per
# connection, sslproto.SSLProtocol.max_size) made 3,000 idle clients cost some 800 MB.
# 16 KiB is one TLS record's plaintext.
TLS_READ_BUFFER = 16 * 1024 + 256

# aiosmtpd ("mail.log") logs every command, the envelope and the connection at INFO, and AUTH
# exchanges at DEBUG. Its records go out only when mailcore.smtpd logs at DEBUG, as DEBUG, and
# never with the AUTH data (the base64 user name and password, the AuthResult).
_AIOSMTPD_SECRET_FUNCS = {"challenge_auth", "_auth_interact", "smtp_AUTH", "auth_PLAIN", "auth_LOGIN"}


class _AiosmtpdLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            record.args = _redact(record) if record.funcName in _AIOSMTPD_SECRET_FUNCS else record.args
            return True
        if not log.isEnabledFor(logging.DEBUG):
            return False
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        if record.funcName in _AIOSMTPD_SECRET_FUNCS:
            record.args = _redact(record)
        return True


def _redact(record: logging.LogRecord):
    """The peer stays (the first argument); the rest is AUTH data."""
    args = record.args if isinstance(record.args, tuple) else ()
    return tuple(a if i == 0 and isinstance(a, tuple) else "********" for i, a in enumerate(args))


_aiosmtpd_log = logging.getLogger("mail.log")
if not any(isinstance(f, _AiosmtpdLogFilter) for f in _aiosmtpd_log.filters):
    _aiosmtpd_log.addFilter(_AiosmtpdLogFilter())


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

    def __init__(self, handler, *,  # handler: a SubmissionHandler (handler.py)
                 implicit_tls: bool, **kwargs):
        # set before SMTP.__init__, which inspects the instance's members
        self.handler = handler
        self.implicit_tls = implicit_tls
        self.greeted = False
        self._client_ip = ""
        self._admitted = False  # counted in the handler's ConnectionLimits
        self._in_data = False
        self._continued: list[str] = []  # lines of a multi-line reply, written with its last line
        self.idle = asyncio.Event()
        self.idle.set()
        self._pending_dsn: dict[str, str] = {}
        kwargs.setdefault("enable_SMTPUTF8", True)  # advertised by handle_EHLO; RFC 6531 checks in handler
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
        """The client's address, IPv4-mapped IPv6 (::ffff:a.b.c.d) given as IPv4."""
        return self._client_ip

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
        _shrink_tls_buffer(transport)
        if first:
            peer = transport.get_extra_info("peername")
            self._client_ip = normalize_ip(peer[0] if isinstance(peer, tuple) else str(peer or ""))
            refused = self.handler.limits.admit(self._client_ip)
            if refused:  # over a cap: one 421 line, and no session at all
                log.warning("client=%s: refused: %s (%d open)", self._client_ip, refused, self.handler.limits.total)
                transport.write(reply(refused).encode() + b"\r\n")
                transport.close()
                return
            self._admitted = True
        super().connection_made(transport)
        if first:
            self.handler.server_sessions.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        if not self._admitted:
            return  # refused in connection_made: aiosmtpd never saw this connection
        self._admitted = False
        self.handler.limits.release(self._client_ip)
        self.handler.server_sessions.discard(self)
        self.idle.set()
        super().connection_lost(error)

    def data_received(self, data: bytes) -> None:
        if self._in_data:  # inside DATA the idle timer restarts with every chunk
            self._reset_timeout(self.handler.settings.data_timeout_seconds)
        super().data_received(data)

    def eof_received(self) -> bool | None:
        if not self._admitted:
            return False
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
        guard = self.handler.auth_guard
        name = login.decode("utf-8", "replace")
        if guard.locked(self.client_ip, name):  # no password check at all: 454 until the score decays
            log.warning("client=%s: AUTH refused: too many failed attempts", self.client_ip)
            log.debug("client=%s sasl_username=%r: AUTH refused: too many failed attempts", self.client_ip, name[:254])
            return AuthResult(success=False, handled=False, message=reply("auth-throttled"))
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
            delay = guard.failed(self.client_ip, name)
            # the user name only at DEBUG: a password typed into the user field must not reach INFO logs
            log.warning("client=%s: authentication failed (next answer in %.1fs)", self.client_ip, delay)
            log.debug("client=%s sasl_username=%r: authentication failed", self.client_ip, name[:254])
            if delay:
                await guard.sleep(delay)
            return AuthResult(success=False, handled=False, message=refusal("auth-failed"))
        guard.succeeded(self.client_ip, name)
        log.info("client=%s: authenticated", self.client_ip)
        log.debug("client=%s sasl_username=%s: authenticated", self.client_ip, view.address)
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
        self._in_data = True
        self._reset_timeout(self.handler.settings.data_timeout_seconds)
        try:
            data, problem = await self._read_data(reader)
        except asyncio.CancelledError:
            log.info("client=%s: connection lost during DATA", self.client_ip)
            self._writer.close()
            raise
        finally:
            self._in_data = False
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


def _shrink_tls_buffer(transport: asyncio.BaseTransport) -> None:
    """Give a TLS transport's protocol a read buffer of TLS_READ_BUFFER instead of asyncio's 256 KiB.
    Called once the handshake is done (connection_made), between reads, so no read is using it."""
    ssl_protocol = getattr(transport, "_ssl_protocol", None)
    if ssl_protocol is None or getattr(ssl_protocol, "max_size", 0) <= TLS_READ_BUFFER:
        return
    ssl_protocol.max_size = TLS_READ_BUFFER  # an instance attribute: get_buffer() and read() honour it
    ssl_protocol._ssl_buffer = bytearray(TLS_READ_BUFFER)
    ssl_protocol._ssl_buffer_view = memoryview(ssl_protocol._ssl_buffer)
