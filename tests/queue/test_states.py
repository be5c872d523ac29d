"""The queue's state table and the operator moves (hold, release, flush)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from mailcore.queue import states as queue
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
        ids = sorted(r.id for r in queue.listing(conn)[0])
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
    assert [r.state for r in rows] == ["incoming", "deferred", "deferred"]  # newest first


def test_listing_is_newest_first_and_filters(queued):
    """Issue 14: state, EnvId, a case-insensitive recipient substring (LIKE's wildcards taken
    literally), a first creation time and a limit, together in one query."""
    store, first = queued
    later = NOW + timedelta(days=2)
    with store.transaction(immediate=True) as conn:
        second = queue.enqueue(conn, _message(1), [{"rcpt": "Ann.Lee@Example.org"}, {"rcpt": "a_b@example.org"},
                                                   {"rcpt": "axb@example.org"}], later)
        held = [r.id for r in queue.listing(conn, env_id=second, rcpt="axb")[0]]
        queue.hold(conn, held, later)

    def rcpts(**kw):
        with store.engine.connect() as conn:
            return [r.rcpt for r in queue.listing(conn, **kw)[0]]

    everyone = ["axb@example.org", "a_b@example.org", "Ann.Lee@Example.org", "r2@example.com", "r1@example.com",
                "r0@example.com"]
    assert rcpts() == everyone
    assert rcpts(limit=2) == everyone[:2]
    assert rcpts(state="hold") == ["axb@example.org"]
    assert rcpts(state="incoming", env_id=second) == ["a_b@example.org", "Ann.Lee@Example.org"]
    assert rcpts(env_id=first) == everyone[3:]
    assert rcpts(env_id=10_000) == []
    assert rcpts(rcpt="ann.LEE@example") == ["Ann.Lee@Example.org"]
    assert rcpts(rcpt="a_b") == ["a_b@example.org"]  # _ is not a wildcard
    assert rcpts(rcpt="%") == []
    assert rcpts(since=later) == everyone[:3]
    assert rcpts(since=later + timedelta(seconds=1)) == []
    assert rcpts(since=NOW, rcpt="R1@") == ["r1@example.com"]
    with store.engine.connect() as conn:
        assert queue.listing(conn, state="hold")[1] == {"incoming": 5, "hold": 1}  # counts: the whole queue


def _message(n: int) -> dict:
    return {"account_id": 1, "sender": "orders@mail.example.com", "envelope_from": "orders@mail.example.com",
            "region": "cn-hangzhou", "source": "smtp", "tag": None, "tracking": False,
            "message_id": f"<m{n}@y>", "subject": f"s{n}", "content": f"message {n}".encode()}


def test_a_group_gets_the_ids_that_follow_and_its_recipients_point_at_them(queued):
    """enqueue_many assigns a group's ids itself on SQLite (and takes them from RETURNING
    elsewhere); single inserts before and after continue the same sequence."""
    store, first = queued
    with store.transaction(immediate=True) as conn:
        ids = queue.enqueue_many(conn, [(_message(n), [{"rcpt": f"g{n}-{k}@example.com"} for k in range(n + 1)])
                                        for n in range(4)], NOW)
        last = queue.enqueue(conn, _message(9), [{"rcpt": "last@example.com"}], NOW)
    assert ids == sorted(ids) and len(set(ids)) == 4 and first < ids[0] and ids[-1] < last
    with store.engine.connect() as conn:
        got = conn.execute(sa.select(t.queue_messages.c.id, t.queue_messages.c.subject, t.queue_recipients.c.rcpt)
                           .join(t.queue_recipients, t.queue_recipients.c.message_id == t.queue_messages.c.id)
                           .where(t.queue_messages.c.id.in_(ids))).all()
    assert sorted((mid, rcpt) for mid, _, rcpt in got) == sorted(
        (mid, f"g{n}-{k}@example.com") for n, mid in enumerate(ids) for k in range(n + 1))
    assert {mid: subject for mid, subject, _ in got} == {mid: f"s{n}" for n, mid in enumerate(ids)}
