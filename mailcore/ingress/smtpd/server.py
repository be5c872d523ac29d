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

Every line the client sees comes from `replies.REPLIES` or `mailcore.cleanup.submission.REFUSALS`.

Store lookups (password check included: scrypt on a cache miss) run in worker threads, so one
slow lookup never stalls the other sessions on the event loop; within `lookup_cache_seconds` a
sender's AUTH and MAIL FROM are answered from memory. Where aiosmtpd is slow per message, this
module does the same work more cheaply and is tested against aiosmtpd's own answers: DATA is read
up to its terminator in one step, and MAIL/RCPT paths of the usual form skip the RFC 5322 parser.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import sys

from mailcore.account.catalog import Catalog
from mailcore.cleanup.submission import Submitter

from . import tls
from .handler import Clock, InvalidAddressHook, SubmissionHandler, utcnow
from .limits import AuthGuard, ConnectionLimits
from .protocol import SubmissionSMTP
from .settings import SmtpConfigError, SmtpSettings

log = logging.getLogger("mailcore.ingress.smtpd")


class SmtpServer:
    """One submission listener on the running event loop: `await start()`, `await stop()`."""

    def __init__(self, settings: SmtpSettings, *, catalog: Catalog, submitter: Submitter,
                 invalid_address: InvalidAddressHook | None = None, clock: Clock = utcnow,
                 tls_context: ssl.SSLContext | None = None, limits: ConnectionLimits | None = None,
                 auth_guard: AuthGuard | None = None):
        """`limits` and `auth_guard`: pass the same objects to every listener of a process so the
        connection caps and the AUTH backoff hold across them (default: this listener's own)."""
        settings.check()
        self.settings = settings
        self.handler = SubmissionHandler(settings, catalog, submitter, invalid_address=invalid_address, clock=clock,
                                         limits=limits, auth_guard=auth_guard)
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
