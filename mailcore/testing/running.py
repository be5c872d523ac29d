"""A whole mail core in the test's process: `MailcoreRunner(config_dir, state_dir).start()`.

The config is applied to a SQLite store under `state_dir` (what `mailcore apply --no-dns` does, plus
what DNS verification and template review would do: DKIM keys generated, domains verified,
templates approved). The service then runs in development mode on an event loop in a thread of its
own: one SMTP and one API listener per region on 127.0.0.1, free ports; delivery goes to a
RecipientWorld (fake MX + DNS for the .test recipient domains). qmgr and the notifier run on a
`VirtualClock`: real time plus an offset that only `advance()` moves, so a 4xx-then-accept path or a
webhook retry completes without waiting.
"""
from __future__ import annotations

import asyncio
import ipaddress
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import unquote

import sqlalchemy as sa

from mailcore.harness.world import DEV_DOMAINS, RecipientWorld
from mailcore.queue.states import FINAL
from mailcore.spec.model import ListenerSpec
from mailcore.store import open_store
from mailcore.store import tables as t

POLL_SECONDS = 0.05  # qmgr and notifier passes when idle; the waits below poll the store as often
WAIT_SECONDS = 15.0  # default deadline of every wait_* / expect_* helper


class MailcoreConfigError(Exception):
    """The config directory does not validate or apply; the message lists every finding."""


class VirtualClock:
    """Real time plus an offset that only `advance` moves (the clock qmgr and the notifier read).
    Mail accepted now is due now; mail deferred for 300 s is due after `advance(300)`."""

    def __init__(self) -> None:
        self.offset = timedelta()
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        with self._lock:
            self.offset += timedelta(seconds=seconds)


@dataclass
class Endpoint:
    kind: str  # smtp | api
    region: str
    host: str
    port: int


async def loopback_only(host: str, port: int) -> list[str]:
    """The notifier's resolver here: webhooks reach receivers on this machine (localhost, 127.0.0.1,
    ::1) only; a URL of the real world (the production config's) fails its attempts instead."""
    if host.lower() == "localhost":
        return ["127.0.0.1"]
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        raise OSError(f"{host}: the test runner posts webhooks to loopback addresses only") from None
    if not ip.is_loopback:
        raise OSError(f"{host}: the test runner posts webhooks to loopback addresses only")
    return [str(ip)]


@contextmanager
def _environ(values: dict):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update({k: str(v) for k, v in values.items()})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class MailcoreRunner:
    """See the module docstring. `env`: values for the config's `{env: NAME}` secrets (and
    MAILCORE_MASTER_KEY; one is generated when neither `env` nor the environment has one)."""

    def __init__(self, config_dir: str | Path, state_dir: str | Path, *, env: dict | None = None,
                 recipient_domains: tuple[str, ...] = DEV_DOMAINS, scenario=None, approve_templates: bool = True,
                 smtp_tls: str = "none", clock: VirtualClock | None = None) -> None:
        if smtp_tls not in ("none", "starttls"):
            raise ValueError(f"smtp_tls is none or starttls, not {smtp_tls!r}")
        self.config_dir, self.state_dir = Path(config_dir), Path(state_dir)
        self.env = dict(env or {})
        self.clock = clock or VirtualClock()
        self.approve_templates, self.smtp_tls = approve_templates, smtp_tls
        self.world = RecipientWorld(recipient_domains, scenario=scenario)
        self.store_url = f"sqlite:///{self.state_dir / 'mailcore.db'}"
        self.store = None
        self.passwords: dict[str, str] = {}  # sender address -> SMTP password
        self.access_key_id = self.access_key_secret = None
        self.endpoints: list[Endpoint] = []
        self._loop = self._thread = self._service = self._stop = None
        self._tasks: list = []

    # --- start and stop --------------------------------------------------------------------

    def start(self) -> "MailcoreRunner":
        try:
            spec, box = self._apply()
            self.world.start()
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, name="mailcore-runner", daemon=True)
            self._thread.start()
            self._call(self._start(spec, box))
        except BaseException:
            self.stop()
            raise
        return self

    def _apply(self):
        from mailcore.account.domains import save_keys
        from mailcore.plan import ApplyRefused, apply_config, foreign_domains, secret_box
        from mailcore.spec import load_account
        from mailcore.store.crypto import generate_master_key
        from provision.account import new_keys

        self.state_dir.mkdir(parents=True, exist_ok=True)
        env = dict(self.env)
        if not env.get("MAILCORE_MASTER_KEY") and not os.environ.get("MAILCORE_MASTER_KEY"):
            env["MAILCORE_MASTER_KEY"] = generate_master_key()
        self.store = open_store(self.store_url)
        with _environ(env):
            loaded = load_account(self.config_dir, foreign_domains=lambda n: foreign_domains(self.store, n))
            if not loaded.report.ok:
                raise MailcoreConfigError(f"{self.config_dir} does not validate:\n" + "\n".join(loaded.report.lines()))
            box = secret_box(loaded)
            spec = loaded.spec
            keys = new_keys([d.name for d in spec.domains])

            def also(conn, now):
                return save_keys(conn, box, {d: (k.token, k.selector, k.dkim_private_pem, k.dkim_public)
                                             for d, k in keys.items()}, now)
            try:
                apply_config(self.store, loaded, box, also=also)
            except ApplyRefused as exc:
                raise MailcoreConfigError(f"{self.config_dir}: apply refused: {exc}") from None
            for s in spec.senders:
                if s.smtp_password is not None:
                    password, problem = s.smtp_password.resolve()
                    if problem:
                        raise MailcoreConfigError(f"{s.address}'s smtp_password: {problem} (pass it in env=...)")
                    self.passwords[s.address] = password
            key = next((k for k in spec.api_keys if k.enabled and k.secret is not None), None)
            if key is not None:
                secret, problem = key.secret.resolve()
                if problem:
                    raise MailcoreConfigError(f"API key {key.id}'s secret: {problem} (pass it in env=...)")
                self.access_key_id, self.access_key_secret = key.id, secret
        with self.store.transaction() as conn:  # what `verify` and template review would do
            conn.execute(sa.update(t.domains).values(status="verified"))
            if self.approve_templates:
                conn.execute(sa.update(t.templates).values(status="approved",
                                                           approved_digest=t.templates.c.content_digest))
        return spec, box

    async def _start(self, spec, box) -> None:
        from mailcore.delivery.transport import Transport, TransportSettings
        from mailcore.notify.http import HttpSettings
        from mailcore.notify.worker import Notifier, NotifierSettings
        from mailcore.queue.qmgr import Qmgr, QmgrSettings
        from mailcore.service import Service

        svc = spec.service
        svc.listeners = [ListenerSpec(r.id, kind, "127.0.0.1", 0, self.smtp_tls if kind == "smtp" else "none",
                                      True, ("service", "listeners"))
                         for r in spec.regions for kind in ("smtp", "api")]
        svc.cleanup = {**svc.cleanup, "process": False}
        self._service = Service(spec, self.store, box, stages=("smtpd", "api"), state_dir=self.state_dir, dev=True)
        await self._service.start()
        self.endpoints = [Endpoint(li.kind, li.region, li.host, li.port) for li in self._service.listening]
        d = self.world.delivery_settings()
        transport = Transport(TransportSettings(nameservers=d["nameservers"], dns_port=d["dns_port"],
                                                smtp_port=d["smtp_port"], helo=svc.hostname, connect_timeout=5,
                                                command_timeout=30, dns_timeout=3, mx_cache_seconds=0))
        queue = {k: v for k, v in svc.queue.items() if k in QmgrSettings.__dataclass_fields__}
        qmgr = Qmgr(self.store, transport, self._service.cleanup.signer, clock=self.clock,
                    settings=QmgrSettings(**{**queue, "poll_seconds": POLL_SECONDS}))
        notifier = Notifier(self.store, clock=self.clock, box=box, resolve=loopback_only, settings=NotifierSettings(
            poll_seconds=POLL_SECONDS, http=HttpSettings(allow_private_targets=True)))
        self._stop = asyncio.Event()
        self._tasks = [asyncio.create_task(qmgr.run(self._stop), name="qmgr"),
                       asyncio.create_task(notifier.run(self._stop), name="notify")]

    async def _shutdown(self) -> None:
        if self._stop is not None:
            self._stop.set()
        for task in self._tasks:
            await task
        if self._service is not None:
            await self._service.stop()

    def stop(self) -> None:
        if self._loop is not None:
            try:
                self._call(self._shutdown())
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(10)
                self._loop.close()
                self._loop = None
        self.world.stop()
        if self.store is not None:
            self.store.dispose()
            self.store = None

    def _call(self, coro, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def __enter__(self) -> "MailcoreRunner":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- where to send ---------------------------------------------------------------------

    def endpoint(self, kind: str, region: str | None = None) -> Endpoint:
        found = [e for e in self.endpoints if e.kind == kind and region in (None, e.region)]
        if not found:
            raise LookupError(f"no {kind} listener{' in ' + region if region else ''}; regions: "
                              f"{', '.join(sorted({e.region for e in self.endpoints}))}")
        return found[0]

    @property
    def smtp_host(self) -> str:
        return self.endpoint("smtp").host

    @property
    def smtp_port(self) -> int:
        return self.endpoint("smtp").port

    @property
    def api_endpoint(self) -> str:
        """host:port of the first region's API listener (plain HTTP), as the SDK's `endpoint`."""
        e = self.endpoint("api")
        return f"{e.host}:{e.port}"

    @property
    def fake_mx(self):
        return self.world.mx

    def sdk_client(self, region: str | None = None, access_key_id: str | None = None,
                   access_key_secret: str | None = None):
        """An official alibabacloud_dm20151123 Client for an API listener (the SDK must be installed)."""
        from alibabacloud_dm20151123.client import Client
        from alibabacloud_tea_openapi.utils_models import Config
        e = self.endpoint("api", region)
        return Client(Config(access_key_id=access_key_id or self.access_key_id,
                             access_key_secret=access_key_secret or self.access_key_secret,
                             endpoint=f"{e.host}:{e.port}", protocol="http", read_timeout=30000, connect_timeout=5000))

    # --- what happened ---------------------------------------------------------------------

    def recipients(self, env_id: int | str | None = None, rcpt: str | None = None) -> list[dict]:
        """Queue recipients (oldest first): env_id, rcpt, state, attempts, status, failed_type, last_code, last_text."""
        r, m = t.queue_recipients, t.queue_messages
        q = (sa.select(m.c.id.label("env_id"), m.c.sender, r.c.rcpt, r.c.state, r.c.attempts, r.c.status,
                       r.c.failed_type, r.c.last_code, r.c.last_text, r.c.next_attempt_at)
             .join(m, r.c.message_id == m.c.id).order_by(r.c.id))
        if env_id is not None:
            q = q.where(m.c.id == int(env_id))
        if rcpt is not None:
            q = q.where(sa.func.lower(r.c.rcpt) == rcpt.lower())
        with self.store.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(q)]

    def wait_for(self, env_id=None, rcpt=None, *, states=FINAL, timeout: float = WAIT_SECONDS) -> list[dict]:
        """The recipients once every one is in `states` (default: final: sent, bounced, expired)."""
        if env_id is None and rcpt is None:
            raise ValueError("wait for an env_id or a rcpt")
        states = (states,) if isinstance(states, str) else tuple(states)
        deadline = time.monotonic() + timeout
        while True:
            rows = self.recipients(env_id, rcpt)
            if rows and all(row["state"] in states for row in rows):
                return rows
            if time.monotonic() > deadline:
                seen = ", ".join(f"{row['rcpt']}: {row['state']} ({row['last_text'] or 'no reply yet'})"
                                 for row in rows) or "nothing queued"
                hint = " (a deferred recipient waits for its retry: advance the clock)" if any(
                    row["state"] == "deferred" for row in rows) else ""
                raise AssertionError(f"after {timeout:g} s, not {'/'.join(states)}: {seen}{hint}")
            time.sleep(POLL_SECONDS)

    def wait_for_delivery(self, env_id=None, rcpt=None, *, timeout: float = WAIT_SECONDS) -> list[dict]:
        """Wait until the recipients are delivered or have failed for good; return their rows."""
        return self.wait_for(env_id, rcpt, timeout=timeout)

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def advance_to_next_retry(self) -> float:
        """Move the clock to the earliest deferred recipient's retry time; the seconds moved (0: none due later)."""
        with self.store.engine.connect() as conn:
            due = conn.scalar(sa.select(sa.func.min(t.queue_recipients.c.next_attempt_at))
                              .where(t.queue_recipients.c.state == "deferred"))
        if due is None:
            return 0.0
        due = due if due.tzinfo else due.replace(tzinfo=timezone.utc)
        seconds = max(0.0, (due - self.clock()).total_seconds())
        self.clock.advance(seconds)
        return seconds

    def expect_outcome(self, rcpt: str, failed_type: str | None = None, *, state: str | None = None,
                       timeout: float = WAIT_SECONDS) -> dict:
        """Assert `rcpt`'s latest message ended with `failed_type` (e.g. "SmtpNxBox"; None: delivered,
        state sent) and, when given, in `state` (sent, bounced, expired); return its row."""
        [row] = self.wait_for(rcpt=rcpt, timeout=timeout)[-1:]
        want_state = state or ("sent" if failed_type is None else None)
        if (want_state and row["state"] != want_state) or (failed_type is not None and row["failed_type"] != failed_type):
            raise AssertionError(f"{rcpt} ended {row['state']} with failed_type {row['failed_type']!r} "
                                 f"({row['last_code']} {row['last_text']}), expected "
                                 f"{failed_type!r}{' / ' + want_state if want_state else ''}")
        return row

    def events(self, event: str | None = None, rcpt: str | None = None) -> list[dict]:
        """Delivery events (oldest first): the guide's body fields plus `event_id`, and `endpoints`:
        {"queue:NAME" | "topic:NAME" | URL: state of that notification (pending, delivered, failed)}."""
        e, n = t.events, t.notify_deliveries
        with self.store.engine.connect() as conn:
            rows = conn.execute(sa.select(e.c.id, e.c.event, e.c.body).order_by(e.c.id)).all()
            routed: dict[int, dict] = {}
            for event_id, kind, target, st in conn.execute(sa.select(n.c.event_id, n.c.kind, n.c.target, n.c.state)):
                routed.setdefault(event_id, {})[target if kind == "http" else f"{kind}:{target}"] = st
        out = []
        for event_id, name, body in rows:
            fields = dict(part.split("=", 1) for part in body.split("&") if "=" in part)
            fields = {k: unquote(v) for k, v in fields.items()}
            fields.update(event_id=event_id, event=name, endpoints=routed.get(event_id, {}))
            if (event is None or name == event) and (rcpt is None or fields.get("rcpt", "").lower() == rcpt.lower()):
                out.append(fields)
        return out

    def assert_event(self, event: str, rcpt: str | None = None, *, endpoint: str | None = None,
                     timeout: float = WAIT_SECONDS) -> dict:
        """Wait until an `event` (e.g. "Deliver:SendFailed") for `rcpt` exists and, with `endpoint`
        ("queue:NAME", "topic:NAME" or a webhook URL), reached it (delivered there); return it."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.events(event, rcpt)
            hit = [f for f in found if endpoint is None or f["endpoints"].get(endpoint) == "delivered"]
            if hit:
                return hit[-1]
            if time.monotonic() > deadline:
                what = "; ".join(f"{f['event']} {f.get('rcpt')} -> {f['endpoints'] or 'no endpoint'}" for f in found)
                if found and not any(f["endpoints"] for f in found):
                    what += (" (no notification rule routed it: does the config have `notifications: account: "
                             "{region: ...}` and a rule of that region for this event?)")
                raise AssertionError(f"after {timeout:g} s no {event}{' for ' + rcpt if rcpt else ''}"
                                     f"{' delivered to ' + endpoint if endpoint else ''}; seen: {what or 'none'}")
            time.sleep(POLL_SECONDS)
