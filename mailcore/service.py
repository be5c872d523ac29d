"""`invoke serve`: the mail core as one asyncio process.

Stages: smtpd and api (ingress, through cleanup into the queue), qmgr (delivery), notify (event
notifications). Cleanup runs in a child process of its own (mailcore.cleanup.process) unless
`service.cleanup.process` is false. Because the queue is the store, each stage can also run as its own process over
one store (`--stages qmgr` on one machine, `--stages smtpd,api` on another); nothing else is shared.
"""
from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass, field
from pathlib import Path

from mailcore.account.catalog import Catalog
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

    def __post_init__(self):
        unknown = set(self.stages) - set(STAGES)
        if unknown:
            raise ValueError(f"unknown stage(s) {', '.join(sorted(unknown))}; stages are {', '.join(STAGES)}")
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._smtp: list = []
        self._api: list = []
        self.cleanup: Cleanup | CleanupProcess | None = None
        self._invalid: InvalidBase | None = None

    async def start(self) -> None:
        svc = self.spec.service
        limits = svc.limits
        catalog = Catalog(self.store, self.box)
        if "smtpd" in self.stages:
            self._invalid = InvalidBase(self.store)  # one copy for every SMTP listener
        if {"smtpd", "api"} & set(self.stages):
            settings = CleanupSettings(activation_delay_seconds=limits.get("activation_delay_seconds", 600))
            self.cleanup = cleanup_submitter(self.store, self.box, settings, process=svc.cleanup.get("process", True))
            if isinstance(self.cleanup, CleanupProcess):
                await self.cleanup.start()  # a child that cannot open the store fails `serve` here
        for li in svc.listeners:
            if li.kind == "smtp" and "smtpd" in self.stages:
                await self._start_smtp(li, catalog)
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
            self._tasks.append(asyncio.create_task(qmgr.run(self._stop), name="qmgr"))
        if "notify" in self.stages:
            notifier = _notifier(self.store, self.box)
            self._tasks.append(asyncio.create_task(notifier.run(self._stop), name="notify"))

    async def _start_smtp(self, li, catalog) -> None:
        from mailcore.ingress.smtpd.server import SmtpServer
        from mailcore.ingress.smtpd.settings import SmtpSettings
        svc, limits = self.spec.service, self.spec.service.limits
        settings = SmtpSettings(region=li.region, host=li.host, port=li.port, tls_mode=li.tls, hostname=svc.hostname,
                                cert_file=svc.cert_file, key_file=svc.key_file,
                                self_signed_dir=(self.state_dir / "tls") if self.state_dir else None,
                                max_rcpts=limits.get("max_rcpts", 30),
                                max_message_bytes=limits.get("max_message_bytes", 15 * 1024 * 1024),
                                activation_delay_seconds=limits.get("activation_delay_seconds", 600),
                                allow_plain_auth_on_loopback=li.allow_plain_auth_on_loopback)
        server = SmtpServer(settings, catalog=catalog, submitter=self.cleanup, invalid_address=self._invalid.check)
        await server.start()
        self._smtp.append(server)
        self.listening.append(Listening("smtp", li.region, li.host, server.port, li.tls))

    async def _start_api(self, li, catalog) -> None:
        from mailcore.ingress.api.app import _uvicorn, create_app, listen_socket
        sock = listen_socket(li.host, li.port)
        server = _uvicorn(create_app(self.store, self.cleanup, region=li.region, catalog=catalog))
        await self._serve_asgi(server, sock, f"api-{li.region}")
        self.listening.append(Listening("api", li.region, li.host, sock.getsockname()[1]))

    async def _start_queues(self, li) -> None:
        import os

        from mailcore.ingress.api.app import _uvicorn, listen_socket
        from mailcore.notify.mq import create_queue_app
        sock = listen_socket(li.host, li.port)
        server = _uvicorn(create_queue_app(self.store, token=os.environ.get("MAILCORE_QUEUE_TOKEN") or None))
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


def _signer(store, box):
    from mailcore.message.dkim import Signer
    return Signer(store, box)


def _notifier(store, box):
    from mailcore.notify.worker import Notifier
    return Notifier(store, box=box)
