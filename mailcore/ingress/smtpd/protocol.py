"""The SMTP protocol as aiosmtpd runs it, with the submission service's changes: sessions that remember the login, DATA read up to its terminator in one step, MAIL/RCPT paths of the usual form parsed cheaply, DSN parameters kept, and the 421 on timeouts."""
from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import logging
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, Session, syntax

from mailcore.account.catalog import SenderView

from .parsing import _SIMPLE_PATH, MAIL_DSN, RCPT_DSN, take_dsn_params
from .replies import refusal, reply, translate

log = logging.getLogger("mailcore.smtpd")


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
