"""Fixtures for the notification tests: an injected clock, event rows inserted as qmgr writes
them, a real HTTP receiver on loopback (http.server in a thread) and the queue API served by
uvicorn on a random loopback port."""
from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sqlalchemy as sa

from mailcore.notify.http import HttpSettings
from mailcore.notify.worker import NotifierSettings
from mailcore.store import tables as t
from tests.support.helpers import edit_yaml
from tests.support.store import make_ready

ACCOUNT = "example-shop"
START = datetime(2026, 11, 27, 8, 0, 0, tzinfo=timezone.utc)


class Clock:
    """Injected time: stands still until a test moves it."""

    def __init__(self, now: datetime = START):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def event_body(sender: str, rcpt: str, status: int = 0, region: str = "cn-hangzhou", n: int = 1) -> str:
    """A body in the guide's sample order (R25), as qmgr writes it."""
    ok = status == 0
    return (f"env_id=1000{n}&msg_id=m{n}@mail.example.com&account={sender}&from={sender}&rcpt={rcpt}"
            f"&recv_time=2026-11-27 16:00:00&end_time=2026-11-27 16:00:02&status={status}&event=deliver&region={region}"
            f"&err_code={250 if ok else 550}&err_msg={'250 Send Mail OK' if ok else '550 5.1.1 User unknown'}"
            f"&failed_type={'SendOk' if ok else 'SmtpNxBox'}")


def insert_event(store, sender: str, event: str = "Deliver:SendSuccessfully", *, body: str | None = None,
                 created_at: datetime = START, account: str = ACCOUNT) -> int:
    """One event row, exactly as qmgr writes it (routed_at NULL). Immediate, as every
    read-then-write transaction on SQLite must be beside other writers."""
    with store.transaction(immediate=True) as conn:
        aid = conn.execute(sa.select(t.accounts.c.id).where(t.accounts.c.name == account)).scalar_one()
        status = 0 if event == "Deliver:SendSuccessfully" else 4
        return conn.execute(sa.insert(t.events).values(
            account_id=aid, event=event, sender=sender, region="cn-hangzhou",
            body=body or event_body(sender, "someone@example.org", status), created_at=created_at,
        ).returning(t.events.c.id)).scalar_one()


def deliveries(store, event_id: int | None = None) -> list[dict]:
    d = t.notify_deliveries
    q = sa.select(d).order_by(d.c.id)
    if event_id is not None:
        q = q.where(d.c.event_id == event_id)
    with store.transaction() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


def attempts(store, delivery_id: int) -> list[dict]:
    a = t.notify_attempts
    with store.transaction() as conn:
        return [dict(r) for r in conn.execute(sa.select(a).where(a.c.delivery_id == delivery_id).order_by(a.c.id)).mappings()]


def run(coro):
    return asyncio.run(coro)


def local_settings(**http) -> NotifierSettings:
    """Notifier settings for receivers on loopback: the tests opt in to private targets."""
    poll = http.pop("poll_seconds", None)
    settings = NotifierSettings(http=HttpSettings(allow_private_targets=True, **http))
    if poll is not None:
        settings.poll_seconds = poll
    return settings


# --- an HTTP receiver on loopback -------------------------------------------------------------

@dataclass
class Received:
    path: str
    headers: dict
    body: bytes


@dataclass
class Receiver:
    """Records every POST; answers from `script` (one status per request, then `default`)."""

    server: ThreadingHTTPServer
    thread: threading.Thread
    requests: list[Received] = field(default_factory=list)
    script: list[int] = field(default_factory=list)
    default: int = 204
    delay_seconds: float = 0.0

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/directmail/deliveries"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def start_receiver() -> Receiver:
    holder: dict = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            rec: Receiver = holder["r"]
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            rec.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            if rec.delay_seconds:
                time.sleep(rec.delay_seconds)
            status = rec.script.pop(0) if rec.script else rec.default
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 128  # several notifiers post concurrently; the default backlog of 5 refuses some

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="notify-receiver", daemon=True)
    rec = holder["r"] = Receiver(server, thread)
    thread.start()
    return rec


@pytest.fixture
def receiver():
    rec = start_receiver()
    yield rec
    rec.stop()


def point_webhook_at(config: Path, url: str) -> None:
    """The example's deliveries rule posts to hooks.example.com; send it to the loopback receiver
    (which the service allows only with notifications_allow_private_targets)."""
    def edit(d):
        for rule in d["notification_rules"]:
            for e in rule["endpoints"]:
                if e["kind"] == "http":
                    e["url"] = url
    edit_yaml(config / "notifications.yaml", edit)
    edit_yaml(config / "service.yaml", lambda d: d["service"].__setitem__("notifications_allow_private_targets", True))


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def notify_store(store, example_env, example_config, receiver):
    """The example account applied, its webhook pointing at `receiver`; without its `queues:` and
    `topics:` file, since these tests set queue settings and subscriptions through the Python API."""
    (example_config / "events.yaml").unlink()
    point_webhook_at(example_config, receiver.url)
    make_ready(store, example_config)
    return store




