"""The durable queue: the only module that changes a recipient's state.

States follow Postfix: `incoming` (written by cleanup), `active` (claimed by a qmgr under a
lease), `deferred` (waiting for a retry), `hold` (parked by an operator), then the final
`sent`, `bounced` and `expired`. Every change is one statement inside the caller's
transaction, checked against TRANSITIONS.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from mailcore.store import tables as t

STATES = ("incoming", "active", "deferred", "hold", "sent", "bounced", "expired")
FINAL = ("sent", "bounced", "expired")

# (from, to) -> why the queue makes that move
TRANSITIONS: dict[tuple[str, str], str] = {
    ("incoming", "active"): "a qmgr claimed it",
    ("deferred", "active"): "its retry time came and a qmgr claimed it",
    ("active", "active"): "its lease expired (a worker died) and another qmgr claimed it",
    ("active", "sent"): "the recipient's server accepted it",
    ("active", "bounced"): "a permanent failure",
    ("active", "deferred"): "a temporary failure; retried later",
    ("active", "expired"): "temporary failures until the give-up time",
    ("deferred", "expired"): "the give-up time passed while it waited",
    ("incoming", "hold"): "an operator held it",
    ("deferred", "hold"): "an operator held it",
    ("hold", "deferred"): "an operator released it",
}


class TransitionError(Exception):
    """A state change the queue does not make."""


def check(old: str, new: str) -> None:
    if (old, new) not in TRANSITIONS:
        raise TransitionError(f"a recipient does not go from {old} to {new}")


def sources(new: str) -> list[str]:
    return [a for (a, b) in TRANSITIONS if b == new]


@dataclass
class QueueRow:
    id: int
    env_id: str
    sender: str
    rcpt: str
    state: str
    attempts: int
    next_attempt_at: datetime
    last_text: str | None
    created_at: datetime


def enqueue(conn, message: dict, recipients: list[dict], now: datetime, progress=None) -> int:
    """cleanup's write: one message row and its recipients, all `incoming`. Returns the message id."""
    message_id = conn.execute(sa.insert(t.queue_messages).values(**message, created_at=now)
                              .returning(t.queue_messages.c.id)).scalar()
    rows = [{"message_id": message_id, "rcpt": r["rcpt"], "rcpt_domain": r["rcpt"].rpartition("@")[2].lower(),
             "variables": r.get("variables"), "state": "incoming", "attempts": 0, "next_attempt_at": now,
             "created_at": now} for r in recipients]
    for start in range(0, len(rows), 2000):
        conn.execute(sa.insert(t.queue_recipients), rows[start:start + 2000])
        if progress:
            progress(min(start + 2000, len(rows)), len(rows))
    return message_id


def enqueue_many(conn, items: list[tuple[dict, list[dict]]], now: datetime) -> list[int]:
    """Several messages at once (cleanup's group commit): one multi-row insert per table."""
    m = t.queue_messages
    rows = [{**message, "created_at": now} for message, _ in items]
    if conn.dialect.name == "sqlite":
        # SQLite answers RETURNING in no promised order, so SQLAlchemy would insert row by row.
        # The ids SQLite itself would give (max + 1 on, the table has no AUTOINCREMENT) are
        # assigned here instead: the caller's BEGIN IMMEDIATE holds the write lock, and the
        # primary key refuses a clash rather than letting one through.
        first = (conn.execute(_LAST_MESSAGE_ID).scalar() or 0) + 1
        ids = list(range(first, first + len(rows)))
        for row, message_id in zip(rows, ids):
            row["id"] = message_id
        conn.execute(sa.insert(m), rows)
    else:
        ids = conn.execute(sa.insert(m).returning(m.c.id, sort_by_parameter_order=True), rows).scalars().all()
    rows = [{"message_id": mid, "rcpt": r["rcpt"], "rcpt_domain": r["rcpt"].rpartition("@")[2].lower(),
             "variables": r.get("variables"), "state": "incoming", "attempts": 0, "next_attempt_at": now, "created_at": now}
            for mid, (_, recipients) in zip(ids, items) for r in recipients]
    conn.execute(sa.insert(t.queue_recipients), rows)
    return list(ids)


_LAST_MESSAGE_ID = sa.select(sa.func.max(t.queue_messages.c.id))


def _move(conn, ids: list[int] | None, old: tuple[str, ...], new: str, **values) -> int:
    """Move recipients (all of them when ids is None) that are in one of `old` into `new`."""
    for state in old:
        check(state, new)
    q = sa.update(t.queue_recipients).where(t.queue_recipients.c.state.in_(old))
    if ids is not None:
        q = q.where(t.queue_recipients.c.id.in_(ids))
    return conn.execute(q.values(state=new, **values)).rowcount


def hold(conn, ids: list[int] | None, now: datetime) -> int:
    return _move(conn, ids, ("incoming", "deferred"), "hold", lease_owner=None, lease_until=None)


def release(conn, ids: list[int] | None, now: datetime) -> int:
    return _move(conn, ids, ("hold",), "deferred", next_attempt_at=now)


def flush(conn, ids: list[int] | None, now: datetime) -> int:
    """Make deferred recipients due now (Postfix `postqueue -f`)."""
    q = sa.update(t.queue_recipients).where(t.queue_recipients.c.state == "deferred")
    if ids is not None:
        q = q.where(t.queue_recipients.c.id.in_(ids))
    return conn.execute(q.values(next_attempt_at=now)).rowcount


def listing(conn, state: str | None = None, limit: int = 100, *, env_id: int | None = None, rcpt: str | None = None,
            since: datetime | None = None) -> tuple[list[QueueRow], dict[str, int]]:
    """The newest `limit` recipients (newest first) in one query, filtered by state, EnvId (the
    message id), a case-insensitive substring of the recipient address and a first creation time;
    and the count of every state in the whole queue. The order is the primary key's, so the
    query reads backwards from the newest row and stops at `limit`; state and EnvId use indexes."""
    r, m = t.queue_recipients, t.queue_messages
    q = (sa.select(r.c.id, m.c.id, m.c.sender, r.c.rcpt, r.c.state, r.c.attempts, r.c.next_attempt_at, r.c.last_text,
                   r.c.created_at).join(m, r.c.message_id == m.c.id).order_by(r.c.id.desc()).limit(limit))
    if state:
        q = q.where(r.c.state == state)
    if env_id is not None:
        q = q.where(r.c.message_id == env_id)
    if rcpt:
        q = q.where(r.c.rcpt.icontains(rcpt, autoescape=True))
    if since is not None:
        q = q.where(r.c.created_at >= since)
    rows = [QueueRow(a, str(b), c, d, e, f, g, h, i) for a, b, c, d, e, f, g, h, i in conn.execute(q)]
    counts = dict(conn.execute(sa.select(r.c.state, sa.func.count()).group_by(r.c.state)).all())
    return rows, counts
