"""`invoke serve`: the mail core as one asyncio process.

Stages: smtpd and api (ingress, through cleanup into the queue), qmgr (delivery), notify (event
notifications). Cleanup runs in a child process of its own (mailcore.cleanup.process) unless
`service.cleanup.process` is false. Because the queue is the store, each stage can also run as its own process over
one store (`--stages qmgr` on one machine, `--stages smtpd,api` on another); nothing else is shared.

The qmgr and notify loops are supervised (`supervise`): each already survives a failing pass,
and should the loop itself end with an exception, that is logged at once with its traceback and
the loop is started again after a backoff (1 s doubling to 60 s, back to 1 s once it has run a
minute), so no error ever leaves a stage silently dead while the listeners keep accepting mail.

Development mode (`dev=True`, `serve --dev`): every listener must be on a loopback address, and
for loopback clients the IP allow-list (R28) and the sender activation delay (R15) do not apply.
Where delivery goes is the command's business (mailcore.cli.serve points it at a local world).
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable

from mailcore.account.catalog import Catalog, normalize_ip
from mailcore.cleanup.writer import Cleanup, CleanupSettings
from mailcore.cleanup.process import CleanupProcess, cleanup_submitter
from mailcore.delivery.transport import Transport, TransportSettings
from mailcore.delivery.invalid import InvalidBase
from mailcore.queue.qmgr import Qmgr, QmgrSettings
from mailcore.spec.model import AccountSpec
from mailcore.store import Store
from mailcore.store.crypto import SecretBox

log = logging.getLogger("mailcore.service")
STAGES = ("smtpd", "api", "qmgr", "notify")


@dataclass
class Listening:
    kind: str
    region: str
    host: str
    port: int
    tls: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.region} {self.host}:{self.port}" + (f" tls={self.tls}" if self.tls else "")


@dataclass
class Service:
    spec: AccountSpec
    store: Store
    box: SecretBox | None
    stages: tuple[str, ...] = STAGES
    state_dir: Path | None = None
    listening: list[Listening] = field(default_factory=list)
    dev: bool = False  # development mode (module docstring): loopback listeners and clients only

    def __post_init__(self):
        unknown = set(self.stages) - set(STAGES)
        if unknown:
            raise ValueError(f"unknown stage(s) {', '.join(sorted(unknown))}; stages are {', '.join(STAGES)}")
        if self.dev:
            public = [f"{li.kind} {li.region} {li.host}:{li.port}" for li in self.spec.service.listeners
                      if not is_loopback(li.host)]
            if public:
                raise ValueError("development mode listens on loopback addresses only (it skips the IP allow-list "
                                 f"and the activation delay); change service.listeners: {'; '.join(public)}")
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._smtp: list = []
        self._api: list = []
        self.cleanup: Cleanup | CleanupProcess | None = None
        self._invalid: InvalidBase | None = None
        self._smtp_limits = self._auth_guard = None  # shared by the SMTP listeners (ingress.smtpd.limits)

    async def start(self) -> None:
        svc = self.spec.service
        limits = svc.limits
        catalog = (LoopbackTrustedCatalog if self.dev else Catalog)(self.store, self.box)
        delay = 0 if self.dev else limits.get("activation_delay_seconds", 600)  # dev: every client is loopback
        if "smtpd" in self.stages:
            self._invalid = InvalidBase(self.store)  # one copy for every SMTP listener
        if {"smtpd", "api"} & set(self.stages):
            settings = CleanupSettings(activation_delay_seconds=delay)
            self.cleanup = cleanup_submitter(self.store, self.box, settings, process=svc.cleanup.get("process", True))
            if isinstance(self.cleanup, CleanupProcess):
                await self.cleanup.start()  # a child that cannot open the store fails `serve` here
        for li in svc.listeners:
            if li.kind == "smtp" and "smtpd" in self.stages:
                await self._start_smtp(li, catalog, delay)
            elif li.kind == "api" and "api" in self.stages:
                await self._start_api(li, catalog)
            elif li.kind == "queues" and "notify" in self.stages:
                await self._start_queues(li)
        if "qmgr" in self.stages:
            d = svc.delivery
            transport = Transport(TransportSettings(
                nameservers=d.get("nameservers"), dns_port=d.get("dns_port", 53), smtp_port=d.get("smtp_port", 25),
                helo=d.get("helo") or svc.hostname, starttls=d.get("starttls", True)))
            signer = self.cleanup.signer if isinstance(self.cleanup, Cleanup) else _signer(self.store, self.box)
            qmgr = Qmgr(self.store, transport, signer, settings=QmgrSettings(**svc.queue))
            self._tasks.append(asyncio.create_task(supervise("qmgr", qmgr.run, self._stop), name="qmgr"))
        if "notify" in self.stages:
            notifier = _notifier(self.store, self.box, svc.allow_private_targets)
            self._tasks.append(asyncio.create_task(supervise("notify", notifier.run, self._stop), name="notify"))

    async def _start_smtp(self, li, catalog, delay: int) -> None:
        from mailcore.ingress.smtpd.server import SmtpServer
        from mailcore.ingress.smtpd.settings import SmtpSettings
        from mailcore.ingress.smtpd.limits import AuthGuard, ConnectionLimits
        svc, limits = self.spec.service, self.spec.service.limits
        if self._smtp_limits is None:  # one of each for every SMTP listener of this process
            self._smtp_limits = ConnectionLimits(limits.get("max_connections", 1000),
                                                 limits.get("max_connections_per_ip", 50))
            self._auth_guard = AuthGuard(ip_lockout=limits.get("auth_ip_lockout", 10),
                                         user_lockout=limits.get("auth_user_lockout", 20))
        settings = SmtpSettings(region=li.region, host=li.host, port=li.port, tls_mode=li.tls, hostname=svc.hostname,
                                cert_file=svc.cert_file, key_file=svc.key_file,
                                self_signed_dir=(self.state_dir / "tls") if self.state_dir else None,
                                max_rcpts=limits.get("max_rcpts", 30),
                                max_message_bytes=limits.get("max_message_bytes", 15 * 1024 * 1024),
                                activation_delay_seconds=delay,
                                allow_plain_auth_on_loopback=li.allow_plain_auth_on_loopback,
                                timeout_seconds=limits.get("command_timeout_seconds", 300),
                                data_timeout_seconds=limits.get("data_timeout_seconds", 180),
                                max_connections=limits.get("max_connections", 1000),
                                max_connections_per_ip=limits.get("max_connections_per_ip", 50))
        server = SmtpServer(settings, catalog=catalog, submitter=self.cleanup, invalid_address=self._invalid.check,
                            limits=self._smtp_limits, auth_guard=self._auth_guard)
        await server.start()
        self._smtp.append(server)
        self.listening.append(Listening("smtp", li.region, li.host, server.port, li.tls))

    async def _start_api(self, li, catalog) -> None:
        from mailcore.ingress.api.app import MAX_BODY_BYTES, _uvicorn, create_app, listen_socket
        svc = self.spec.service
        sock = listen_socket(li.host, li.port)
        app = create_app(self.store, self.cleanup, region=li.region, catalog=catalog, base_url=li.base_url or svc.base_url,
                         max_body_bytes=svc.limits.get("api_max_body_bytes", MAX_BODY_BYTES))
        server = _uvicorn(app, tls=self._https(li))
        await self._serve_asgi(server, sock, f"api-{li.region}")
        self.listening.append(Listening("api", li.region, li.host, sock.getsockname()[1],
                                        "https" if li.tls == "implicit" else ""))

    def _https(self, li) -> tuple | None:
        """(cert file, key file) for an HTTP listener with `tls: implicit`, else None (plain HTTP)."""
        if li.tls != "implicit":
            return None
        svc = self.spec.service
        if svc.cert_file is not None:
            return svc.cert_file, svc.key_file
        from mailcore.ingress.smtpd.tls import ensure_self_signed
        from mailcore.store.db import state_dir
        return ensure_self_signed((self.state_dir or state_dir()) / "tls", svc.hostname)

    async def _start_queues(self, li) -> None:
        from mailcore.ingress.api.app import _uvicorn, listen_socket
        from mailcore.notify.mq import create_queue_app
        sock = listen_socket(li.host, li.port)
        server = _uvicorn(create_queue_app(self.store, box=self.box), tls=self._https(li))  # signed with the AccessKey
        await self._serve_asgi(server, sock, f"queues-{li.region}")
        self.listening.append(Listening("queues", li.region, li.host, sock.getsockname()[1]))

    async def _serve_asgi(self, server, sock, name: str) -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]), name=name)
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        self._api.append((server, task, sock))

    async def stop(self) -> None:
        self._stop.set()
        for server in self._smtp:
            await server.stop()
        for server, task, sock in self._api:
            server.should_exit = True
            await task
            sock.close()
        for task in self._tasks:
            await task
        if isinstance(self.cleanup, CleanupProcess):
            await self.cleanup.aclose()
        elif self.cleanup:
            await asyncio.to_thread(self.cleanup.close)

    async def run_until_signalled(self, ready=print) -> None:
        await self.start()
        for li in self.listening:
            ready(f"mailcore: listening {li}")
        ready(f"mailcore: ready (stages {','.join(self.stages)})")
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        ready("mailcore: stopping")
        await self.stop()


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 (also IPv4-mapped) or `localhost`."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(normalize_ip(host.strip("[]"))).is_loopback
    except ValueError:
        return False


class LoopbackTrustedCatalog(Catalog):
    """Development mode's catalog: a loopback client passes the IP allow-list (R28)."""

    def ip_allowed(self, account: str, ip: str) -> bool:
        return is_loopback(ip) or super().ip_allowed(account, ip)


async def supervise(name: str, run: Callable[[asyncio.Event], Awaitable[None]], stop: asyncio.Event, *,
                    backoff: float = 1.0, backoff_max: float = 60.0, healthy_after: float = 60.0,
                    monotonic: Callable[[], float] = time.monotonic, pause=None) -> None:
    """Run `run(stop)` until `stop` is set. When it raises (or returns early), log it at once with
    its traceback and start it again after `backoff` seconds, doubling up to `backoff_max`; a run
    that lasted `healthy_after` seconds starts the backoff over."""
    async def wait(seconds: float) -> None:
        try:
            await asyncio.wait_for(stop.wait(), seconds)
        except asyncio.TimeoutError:
            pass
    pause = pause or wait
    delay = backoff
    while not stop.is_set():
        started = monotonic()
        try:
            await run(stop)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s stage crashed; restarting it in %.3gs", name, delay)
        else:
            if stop.is_set():
                return
            log.error("%s stage returned while the service runs; restarting it in %.3gs", name, delay)
        if monotonic() - started >= healthy_after:
            delay = backoff
        await pause(delay)
        delay = min(backoff_max, delay * 2)


def _signer(store, box):
    from mailcore.message.dkim import Signer
    return Signer(store, box)


def _notifier(store, box, allow_private_targets: bool = False):
    from mailcore.notify.http import HttpSettings
    from mailcore.notify.worker import Notifier, NotifierSettings
    settings = NotifierSettings(http=HttpSettings(allow_private_targets=allow_private_targets))
    return Notifier(store, box=box, settings=settings)
