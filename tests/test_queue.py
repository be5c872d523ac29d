"""The queue's state table and the operator moves (hold, release, flush)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from mailcore import queue
from mailcore.store import tables as t

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("old, new", sorted(queue.TRANSITIONS))
def test_every_transition_row_is_allowed(old, new):
    queue.check(old, new)
    assert old in queue.STATES and new in queue.STATES


def test_everything_else_is_refused():
    refused = [(a, b) for a in queue.STATES for b in queue.STATES if (a, b) not in queue.TRANSITIONS]
    assert ("sent", "active") in refused and ("bounced", "deferred") in refused
    for a, b in refused:
        with pytest.raises(queue.TransitionError):
            queue.check(a, b)
    assert not any(a in queue.FINAL for a, _ in queue.TRANSITIONS)  # final states are final


@pytest.fixture
def queued(ready_store):
    with ready_store.transaction() as conn:
        mid = queue.enqueue(conn, {"account_id": 1, "sender": "orders@mail.example.com", "envelope_from": "orders@mail.example.com",
                                   "region": "cn-hangzhou", "source": "api", "tag": None, "tracking": False,
                                   "message_id": "<x@y>", "subject": "s", "content": b"x"},
                            [{"rcpt": f"r{i}@example.com"} for i in range(3)], NOW)
    return ready_store, mid


def states(store):
    with store.engine.connect() as conn:
        return [s for s in conn.execute(sa.select(t.queue_recipients.c.state).order_by(t.queue_recipients.c.id)).scalars()]


def test_hold_release_flush(queued):
    store, _ = queued
    with store.transaction() as conn:
        ids = [r.id for r in queue.listing(conn)[0]]
        assert queue.hold(conn, ids[:2], NOW) == 2
    assert states(store) == ["hold", "hold", "incoming"]
    with store.transaction() as conn:
        assert queue.release(conn, [ids[0]], NOW) == 1
        assert queue.hold(conn, [ids[0]], NOW) == 1  # deferred -> hold again
        assert queue.release(conn, None, NOW + timedelta(minutes=1)) == 2
    assert states(store) == ["deferred", "deferred", "incoming"]
    with store.transaction() as conn:
        conn.execute(sa.update(t.queue_recipients).values(next_attempt_at=NOW + timedelta(hours=3)))
        assert queue.flush(conn, None, NOW) == 2
        rows, counts = queue.listing(conn)
    assert counts == {"deferred": 2, "incoming": 1}
    assert [r.state for r in rows] == ["deferred", "deferred", "incoming"]
