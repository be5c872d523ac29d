"""cleanup -> queue -> qmgr -> delivery -> fake MX in the test's own process, on an injected clock:
the `flow` fixture (a Cleanup and a Qmgr over a ready store and the recipient `world`) and the
helpers that send through it and read back recipients and events."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from mailcore.cleanup.submission import Recipient, Submission
from mailcore.cleanup.writer import Cleanup
from mailcore.queue.qmgr import Qmgr, QmgrSettings
from mailcore.store import tables as t
from mailcore.store.crypto import SecretBox


class Clock:
    def __init__(self):
        self.now = datetime.now(timezone.utc)

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def flow(ready_store, world, clock):
    box = SecretBox.from_env()
    cleanup = Cleanup(ready_store, box=box, clock=clock)
    qmgr = Qmgr(ready_store, world.transport, cleanup.signer, clock=clock,
                settings=QmgrSettings(retry_min_seconds=60, retry_max_seconds=600, give_up_seconds=3600))
    yield cleanup, qmgr
    cleanup.close()


def send(cleanup, *rcpts):
    return cleanup.submit_sync(Submission("example-shop", "orders@mail.example.com", [Recipient(r) for r in rcpts], "api",
                                          subject="Order 17", html_body="<p>ok</p>"))


def recipients(store):
    with store.engine.connect() as conn:
        return {r["rcpt"]: r for r in conn.execute(sa.select(t.queue_recipients)).mappings()}


def events(store):
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(t.events).order_by(t.events.c.id)).mappings().all()
    return [(e["event"], dict(kv.split("=", 1) for kv in e["body"].split("&"))) for e in rows]
