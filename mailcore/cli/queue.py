"""`invoke queue.*`: list the durable queue and move recipients (hold, release, flush)."""
from __future__ import annotations

from rich.table import Table

from mailcore.cleanup.writer import utcnow
from mailcore.cli.common import EXIT_OK, CommandError, console, parse_ids, store_at
from mailcore.queue import states as queue


def queue_list(store_url: str | None, state: str | None, limit: int) -> int:
    if state and state not in queue.STATES:
        raise CommandError(f"unknown state {state!r}; one of {', '.join(queue.STATES)}")
    store = store_at(store_url)
    with store.engine.connect() as conn:
        rows, counts = queue.listing(conn, state, limit)
    table = Table(title="Queue: " + ", ".join(f"{s} {counts.get(s, 0)}" for s in queue.STATES), title_justify="left")
    for col in ("id", "env_id", "sender", "rcpt", "state", "attempts", "next attempt", "last reply"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r.id), r.env_id, r.sender, r.rcpt, r.state, str(r.attempts), f"{r.next_attempt_at:%Y-%m-%d %H:%M:%S}",
                      r.last_text or "")
    console.print(table)
    return EXIT_OK


def queue_move(action: str, store_url: str | None, ids: str | None) -> int:
    store = store_at(store_url)
    fn = {"hold": queue.hold, "release": queue.release, "flush": queue.flush}[action]
    with store.transaction(immediate=True) as conn:
        n = fn(conn, parse_ids(ids), utcnow())
    console.print(f"queue.{action}: {n} recipient(s)")
    return EXIT_OK
