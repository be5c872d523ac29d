"""Issue 5's acceptance: kill -9 of the mail core while 10,000 queued recipients are being
delivered to a fake MX, then restart: every recipient delivered, duplicates at most 0.1%, and
every final status has its event."""
from __future__ import annotations

import asyncio

import sqlalchemy as sa

from mailcore.cleanup.submission import Recipient, Submission
from mailcore.cleanup.writer import Cleanup
from mailcore.store import open_store
from mailcore.store import tables as t
from mailcore.store.crypto import SecretBox
from tests.service.test_serve import wait_for

N = 10_000


def _count(store, *states):
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(t.queue_recipients)
                            .where(t.queue_recipients.c.state.in_(states))).scalar()


def test_kill_9_during_delivery_of_10000(mailcore_service, world):
    store = open_store(mailcore_service.store_url)
    cleanup = Cleanup(store, box=SecretBox.from_env())
    try:
        with store.transaction() as conn:
            conn.execute(sa.update(t.accounts).values(quota_daily=N, quota_monthly=N))
        async def queue_all():  # 10,000 messages of one recipient each, through cleanup's group commit
            await asyncio.gather(*(cleanup.submit(Submission(
                "example-shop", "orders@mail.example.com", [Recipient(f"r{i}@dest.example")], "api",
                subject=f"load {i}", text_body="hello")) for i in range(N)))
        asyncio.run(queue_all())
    finally:
        cleanup.close()
    mailcore_service.start(stages="qmgr")
    wait_for(lambda: _count(store, "sent") >= N // 4, timeout=240)
    mailcore_service.kill9()
    assert _count(store, "sent") < N  # killed mid-way
    mailcore_service.start(stages="qmgr")
    wait_for(lambda: _count(store, "sent") == N, timeout=600)
    delivered = [r for m in world.mx.messages() for r in m.rcpt_tos]
    assert set(delivered) == {f"r{i}@dest.example" for i in range(N)}
    duplicates = len(delivered) - len(set(delivered))
    print(f"duplicates after kill -9: {duplicates} of {N}")
    assert duplicates <= N // 1000, f"{duplicates} duplicate deliveries"
    with store.engine.connect() as conn:
        events = conn.execute(sa.select(sa.func.count(sa.distinct(t.events.c.recipient_id)))
                              .where(t.events.c.event == "Deliver:SendSuccessfully")).scalar()
        total_events = conn.execute(sa.select(sa.func.count()).select_from(t.events)).scalar()
    assert events == N and total_events == N  # one event per final status, none twice
