"""The fake MX: an aiosmtpd server on loopback answering from a :class:`~.scenario.Scenario`.

It runs its own event loop in a daemon thread, so synchronous tests (smtplib), async tests
(aiosmtplib) and the mail core's delivery workers can all talk to it. Every reply it gives is
logged (:meth:`FakeMX.replies`), every accepted message recorded (:meth:`FakeMX.messages`), and
both are served as JSON over HTTP when ``http=True``.

Attempts are counted per key so sequences replay across retries that come on new connections:
RCPT per (envelope sender, recipient), the greylisting triplet without the IP (every client is
127.0.0.1 here); DATA per (recipient, Message-ID, or the envelope sender when there is none);
MAIL per envelope sender; connect per server.
"""
from __future__ import annotations

import asyncio
import collections
import email.parser
import email.policy
import itertools
import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Awaitable, Callable

from aiosmtpd.smtp import SMTP, Envelope, Session

from . import scenario as sc
from .httpapi import HttpApi
from .tlscert import generate

log = logging.getLogger("mailcore.harness")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class ManualClock:
    """An injectable clock for rate limits: starts at ``start`` and moves only when told."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


@dataclass(frozen=True)
class Message:
    """An accepted message as the fake MX saw it."""

    id: str
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message_id: str | None
    subject: str | None
    data: bytes
    tls: bool
    received_at: float
    peer: str

    def as_json(self) -> dict:
        d = asdict(self)
        d["rcpt_tos"] = list(self.rcpt_tos)
        d["data"] = self.data.decode("utf-8", "replace")
        return d


@dataclass(frozen=True)
class Reply:
    """One reply the fake MX gave (or the connection it dropped)."""

    phase: str
    rcpt: str | None
    mail_from: str | None
    reply: str
    scenario: str
    attempt: int
    at: float


@dataclass(frozen=True)
class Feedback:
    """What the SES simulator's ooto/complaint addresses produce: an auto-reply or a complaint."""

    kind: str
    rcpt: str
    mail_from: str
    message_id: str | None
    at: float


@dataclass
class _State:
    attempts: collections.Counter = field(default_factory=collections.Counter)
    windows: dict = field(default_factory=lambda: collections.defaultdict(collections.deque))
    messages: list = field(default_factory=list)
    replies: list = field(default_factory=list)
    feedback: list = field(default_factory=list)


class _FakeSMTP(SMTP):
    """aiosmtpd's SMTP with two additions: a scripted greeting, and a ``drop`` reply that closes
    the connection without answering (what a receiver cutting the connection looks like)."""

    def __init__(self, mx: "FakeMX", *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._mx = mx

    async def push(self, status):  # noqa: D102 - see class docstring
        if isinstance(status, str) and status == sc.DROP:
            if self.transport is not None:
                self.transport.close()
            return
        await super().push(status)

    async def _handle_client(self) -> None:
        greeting = self._mx._connect_reply(self.session.peer)
        if greeting != sc.PROCEED:
            await self.push(greeting)
            if self.transport is not None:
                self.transport.close()
            return
        await super()._handle_client()


class _Handler:
    def __init__(self, mx: "FakeMX") -> None:
        self.mx = mx

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str, options):
        reply = self.mx._mail_reply(address, session)
        if reply.startswith("2"):
            envelope.mail_from = address
            envelope.mail_options.extend(options)
        return reply

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str, options):
        script = self.mx.scenario.script_for(address)
        if script.delay_seconds:
            await self.mx.sleep(script.delay_seconds)
        reply = self.mx._rcpt_reply(address, envelope.mail_from or "", script, session)
        if reply.startswith("2"):
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(options)
        return reply

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope):
        return self.mx._data_reply(envelope, session)


class FakeMX:
    """A scripted MX on ``host``:``port`` (0 = a free port). Use as a context manager or start()/stop().

    The DNS side is someone else's: point the recipient test domains' MX records at a name that
    resolves to :attr:`host`, and the mail core's destination port at :attr:`port`.
    """

    _ids = itertools.count(1)

    def __init__(self, scenario: sc.Scenario | None = None, *, host: str = "127.0.0.1", port: int = 0,
                 clock: Clock | None = None, sleep: Sleep | None = None, http: bool = False,
                 http_port: int = 0) -> None:
        self.scenario = scenario or sc.Scenario()
        self.host = host
        self.port = port
        self.clock = clock or time.monotonic
        self.sleep: Sleep = sleep or asyncio.sleep
        self._want_http, self._http_port = http, http_port
        self.http: HttpApi | None = None
        self.tls = generate(self.scenario.hostname) if self.scenario.tls else None
        self._tls_context = self.tls.server_context() if self.tls else None
        self._state = _State()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "FakeMX":
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                self._server = loop.run_until_complete(
                    loop.create_server(self._protocol, self.host, self.port))
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as exc:  # reported to start()'s caller
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            # Sessions still running (a slow reply, a client that never said QUIT) are cancelled
            # and awaited, so stopping never leaves "Task was destroyed but it is pending" behind.
            self._server.close()
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, name=f"fake-mx-{self.port}", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise OSError(f"fake MX could not listen on {self.host}:{self.port}: {failure[0]}")
        if self._want_http:
            self.http = HttpApi(self, host=self.host, port=self._http_port).start()
        log.info("fake MX on %s:%d", self.host, self.port)
        return self

    def stop(self) -> None:
        if self.http is not None:
            self.http.stop()
            self.http = None
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop = self._thread = None

    def __enter__(self) -> "FakeMX":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _protocol(self) -> SMTP:
        return _FakeSMTP(self, _Handler(self), hostname=self.scenario.hostname, ident="fake-mx",
                         tls_context=self._tls_context,
                         enable_SMTPUTF8=self.scenario.smtputf8, decode_data=False, loop=self._loop)

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def dns_records(self, *domains: str, mx_name: str | None = None) -> list[tuple[str, str, str]]:
        """The hook for the DNS side: the records that route mail for ``domains`` here, as
        ``(owner, type, rdata)`` with absolute names: one MX per domain pointing at ``mx_name``
        (default ``mx-<host>.harness.test.``) and an A record for that name. The harness serves no
        DNS itself (``provision/dnsserver.py`` does); the mail core's destination port must be
        :attr:`port`. Several servers can share one port on different loopback addresses
        (127.0.0.2, ...), so each can be the MX of its own test domains."""
        target = (mx_name or f"mx-{self.host.replace('.', '-').replace(':', '-')}.harness.test").rstrip(".") + "."
        rtype = "AAAA" if ":" in self.host else "A"
        out = [(d.rstrip(".") + ".", "MX", f"10 {target}") for d in domains]
        out.append((target, rtype, self.host))
        return out

    @property
    def http_url(self) -> str | None:
        return self.http.url if self.http else None

    # ------------------------------------------------------------------ inspection
    def messages(self, rcpt: str | None = None) -> list[Message]:
        """Accepted messages, oldest first; ``rcpt`` keeps those addressed to it (case-insensitive)."""
        with self._lock:
            msgs = list(self._state.messages)
        if rcpt is None:
            return msgs
        r = rcpt.lower()
        return [m for m in msgs if r in (x.lower() for x in m.rcpt_tos)]

    def replies(self, rcpt: str | None = None, phase: str | None = None) -> list[Reply]:
        """Every reply given, oldest first, optionally for one recipient and/or phase."""
        with self._lock:
            out = list(self._state.replies)
        return [x for x in out if (rcpt is None or (x.rcpt or "").lower() == rcpt.lower())
                and (phase is None or x.phase == phase)]

    def feedback(self, rcpt: str | None = None) -> list[Feedback]:
        """Out-of-office replies and complaints the SES simulator addresses produced."""
        with self._lock:
            out = list(self._state.feedback)
        return [f for f in out if rcpt is None or f.rcpt.lower() == rcpt.lower()]

    def reset(self) -> None:
        """Forget attempts, rate windows, messages and replies (a fresh MX on the same port)."""
        with self._lock:
            self._state = _State()

    # ------------------------------------------------------------------ replies
    def _take(self, key: tuple, seq: tuple[str, ...]) -> tuple[str, int]:
        n = self._state.attempts[key]
        self._state.attempts[key] = n + 1
        return seq[min(n, len(seq) - 1)], n + 1

    def _log(self, phase, rcpt, mail_from, reply, name, attempt) -> None:
        self._state.replies.append(Reply(phase, rcpt, mail_from, reply, name, attempt, self.clock()))

    @staticmethod
    def _ip(session: Session) -> str:
        return session.peer[0] if session.peer else "127.0.0.1"

    def _connect_reply(self, peer) -> str:
        with self._lock:
            reply, n = self._take(("connect",), self.scenario.connect)
            self._log("connect", None, None, reply, "connect", n)
        if reply == sc.PROCEED:
            return reply
        return sc.fill(reply, email="", ip=peer[0] if peer else "127.0.0.1")

    def _mail_reply(self, address: str, session: Session) -> str:
        seq = self.scenario.mail
        name = "mail"
        if address.lower().split("@", 1)[0].split("+", 1)[0] == "mail-reject":
            seq, name = (sc.MAIL_REJECT_REPLY,), "mail-reject"
        with self._lock:
            reply, n = self._take(("mail", address.lower()), seq)
            reply = sc.fill(reply, email=address, ip=self._ip(session))
            self._log("mail", None, address, reply, name, n)
        return reply

    def _over_rate(self, key: tuple, limit: int | None) -> bool:
        if limit is None:
            return False
        window = self._state.windows[key]
        now = self.clock()
        while window and window[0] <= now - 60:
            window.popleft()
        return len(window) >= limit

    def _rcpt_reply(self, rcpt: str, mail_from: str, script: sc.Script, session: Session) -> str:
        ip = self._ip(session)
        with self._lock:
            if self._over_rate(("server",), self.scenario.rate_per_minute):
                reply, n = self.scenario.rate_reply, 0
            elif self._over_rate(("rcpt", rcpt.lower()), script.rate_per_minute):
                reply, n = script.rate_reply, 0
            else:
                reply, n = self._take(("rcpt", mail_from.lower(), rcpt.lower()), script.rcpt)
            reply = sc.fill(reply, email=rcpt, ip=ip)
            if reply.startswith("2"):
                now = self.clock()
                if self.scenario.rate_per_minute is not None:
                    self._state.windows[("server",)].append(now)
                if script.rate_per_minute is not None:
                    self._state.windows[("rcpt", rcpt.lower())].append(now)
            self._log("rcpt", rcpt, mail_from, reply, script.name, n)
        return reply

    def _data_reply(self, envelope: Envelope, session: Session) -> str:
        raw = envelope.original_content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
        message_id = headers.get("Message-ID")
        subject = headers.get("Subject")
        ip = self._ip(session)
        final = None
        scripts = []
        with self._lock:
            for rcpt in envelope.rcpt_tos:
                script = self.scenario.script_for(rcpt)
                scripts.append((rcpt, script))
                key = ("data", rcpt.lower(), (message_id or envelope.mail_from or "").strip().lower())
                reply, n = self._take(key, script.data)
                reply = sc.fill(reply, email=rcpt, ip=ip)
                self._log("data", rcpt, envelope.mail_from, reply, script.name, n)
                if final is None and not reply.startswith("2"):
                    final = reply  # SMTP has one DATA reply per transaction: the first refusal wins
            if final is not None:
                return final
            msg = Message(id=f"fake{next(self._ids):06d}", mail_from=envelope.mail_from or "",
                          rcpt_tos=tuple(envelope.rcpt_tos), message_id=message_id, subject=subject,
                          data=raw, tls=session.ssl is not None, received_at=self.clock(), peer=ip)
            self._state.messages.append(msg)
            for rcpt, script in scripts:
                if script.feedback:
                    self._state.feedback.append(Feedback(script.feedback, rcpt, msg.mail_from, message_id,
                                                         msg.received_at))
        return f"250 2.0.0 OK queued as {msg.id}"
