"""The submission policy (R31, R32, R1, R3, R9, R15, R28): who may send what, answered at AUTH, MAIL, RCPT and DATA; the message handed to cleanup through the Submitter protocol."""
from __future__ import annotations

import asyncio
import inspect
import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Awaitable, Callable

from aiosmtpd.smtp import TLSSetupException

from mailcore.account.catalog import SENDABLE_DOMAIN_STATUSES, Catalog, SenderView
from mailcore.cleanup.submission import (Recipient, Submission, SubmitRefused, Submitter, ip_not_allowed,
                                        sender_not_active)
from mailcore.spec.emails import address_error

from .limits import AuthGuard, ConnectionLimits
from .parsing import TraceHeaderError, parse_trace
from .protocol import SubmissionEnvelope, SubmissionSMTP
from .replies import refusal, reply
from .settings import SmtpSettings

log = logging.getLogger("mailcore.smtpd")


InvalidAddressHook = Callable[[str, str], "bool | Awaitable[bool]"]


Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


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


class SubmissionHandler:
    """What submission allows: aiosmtpd calls these hooks; each returns the reply line."""

    def __init__(self, settings: SmtpSettings, catalog: Catalog, submitter: Submitter, *,
                 invalid_address: InvalidAddressHook | None = None, clock: Clock = utcnow,
                 limits: ConnectionLimits | None = None, auth_guard: AuthGuard | None = None):
        self.settings = settings
        self.limits = limits or ConnectionLimits(settings.max_connections, settings.max_connections_per_ip)
        self.auth_guard = auth_guard or AuthGuard()
        self.catalog = catalog
        self.submitter = submitter
        self.invalid_address = invalid_address
        self.clock = clock
        self.lookups = SenderLookups(catalog, settings.lookup_cache_seconds)
        self.server_sessions: set[SubmissionSMTP] = set()
        self.inflight: set[asyncio.Task] = set()

    async def handle_EHLO(self, server: SubmissionSMTP, session, envelope, hostname: str, responses) -> list[str]:
        session.host_name = hostname
        caps = ["PIPELINING", f"SIZE {self.settings.max_message_bytes}", "8BITMIME", "SMTPUTF8", "DSN",
                "ENHANCEDSTATUSCODES"]
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
        bad = self._bad_address(server, envelope, "mail", address)
        if bad:
            return bad
        if address.lower() != authenticated.address:
            return self._refuse(server, "sender-mismatch", f"from=<{address}>")
        view, ip_allowed = await self.lookups.sender_and_ip(authenticated.address, server.client_ip)
        reason = self.sender_refusal(view, ip_allowed)
        if reason:
            return self._refuse(server, reason, f"from=<{address}>", self._explained(reason, view, server.client_ip))
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

    def _explained(self, reason: str, view: SenderView | None, client_ip: str) -> SubmitRefused | None:
        """The refusals that say what to change (the allow-list, the activation delay), with their facts."""
        if reason == "ip-not-allowed":
            return ip_not_allowed(client_ip)
        if reason == "sender-not-active":
            return sender_not_active(view.created_at, self.settings.activation_delay_seconds, self.clock(),
                                     view.account_timezone)
        return None

    async def handle_RCPT(self, server: SubmissionSMTP, session, envelope: SubmissionEnvelope,
                          address: str, rcpt_options: list[str]) -> str:
        dsn = server.take_pending_dsn()
        bad = self._bad_address(server, envelope, "rcpt", address)
        if bad:
            return bad
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
            return exc.smtp
        except asyncio.CancelledError:
            raise  # the connection went away; the shielded submission still completes
        except Exception:
            log.exception("client=%s from=<%s>: submission failed, answered 451", server.client_ip, view.address)
            return reply("temp-failure")
        log.info("%s: client=%s from=<%s> nrcpt=%d size=%d tag=%s tracking=%s", result.env_id,
                 server.client_ip, view.address, len(envelope.rcpt_tos), len(raw), trace.tag or "",
                 int(trace.open_tracking))
        return reply("queued", env_id=result.env_id)

    async def handle_exception(self, error: Exception) -> str:
        if isinstance(error, TLSSetupException):  # the client gave up on the handshake: expected, no traceback
            log.info("smtpd STARTTLS handshake failed: %s", error.__cause__ or error)
        else:
            log.error("smtpd session error: %s: %s", type(error).__name__, error, exc_info=error)
        return reply("temp-failure")

    def _bad_address(self, server: SubmissionSMTP, envelope, kind: str, address: str) -> str | None:
        """The reply refusing a malformed MAIL/RCPT address (a DNS label over 63 octets, an
        over-long address, a malformed domain), or a non-ASCII one without SMTPUTF8 (RFC 6531);
        None when it may be used."""
        smtputf8 = bool(getattr(envelope, "smtp_utf8", False))
        why = address_error(address, smtputf8=smtputf8)
        if why is None:
            return None
        log.info("client=%s %s=%s: refused: %s", server.client_ip, "from" if kind == "mail" else "rcpt",
                 ascii(address)[:300], why)
        if not address.isascii() and not smtputf8:
            return reply("smtputf8-required")
        return reply("bad-sender-address" if kind == "mail" else "bad-rcpt-address",
                     why=" ".join(why.encode("ascii", "backslashreplace").decode().split())[:200])

    def _refuse(self, server: SubmissionSMTP, reason: str, detail: str, explained: SubmitRefused | None = None) -> str:
        log.info("client=%s %s: refused: %s%s", server.client_ip, detail, reason,
                 f" ({explained.detail})" if explained else "")
        return explained.smtp if explained else refusal(reason)
