"""`invoke queue.*`: list the durable queue and move recipients (hold, release, flush)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from rich.table import Table

from mailcore.cleanup.writer import utcnow
from mailcore.cli.common import EXIT_OK, CommandError, console, parse_ids, store_at
from mailcore.queue import states as queue


def parse_time(value: str | None, option: str, *, end_of_day: bool = False) -> datetime | None:
    """`--since`/`--start`/`--end`: YYYY-MM-DD or an ISO 8601 time; UTC unless it carries an offset.
    A bare date means its first moment, or with `end_of_day` its last (so an end date is inclusive)."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise CommandError(f"{option} takes YYYY-MM-DD or an ISO time like 2026-12-04T16:30 or "
                           f"2026-12-04T16:30+08:00 (UTC unless an offset is given), not {value!r}") from None
    if end_of_day and len(value.strip()) == 10:  # a date alone
        when += timedelta(days=1, microseconds=-1)
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def parse_env_id(value: str | int | None) -> int | None:
    """`--env-id`: the EnvId a send returned (`###envid=N` over SMTP, EnvId from the API)."""
    if value is None or value == "":
        return None
    text = str(value).strip().removeprefix("###envid=")
    if not text.isdigit():
        raise CommandError(f"--env-id takes the number a send returned (EnvId, ###envid=N), not {value!r}")
    return int(text)


def positive_limit(limit) -> int:
    try:
        n = int(limit)
    except (TypeError, ValueError):
        n = 0
    if n < 1:
        raise CommandError(f"--limit takes a number of rows, 1 or more, not {limit!r}")
    return n


def queue_list(store_url: str | None, state: str | None, limit: int, env_id: str | int | None = None,
               rcpt: str | None = None, since: str | None = None) -> int:
    """The newest recipients first, filtered by state, EnvId, a recipient substring and a first time."""
    if state and state not in queue.STATES:
        raise CommandError(f"unknown state {state!r}; one of {', '.join(queue.STATES)}")
    limit, message_id, after = positive_limit(limit), parse_env_id(env_id), parse_time(since, "--since")
    store = store_at(store_url)
    with store.engine.connect() as conn:
        rows, counts = queue.listing(conn, state, limit, env_id=message_id, rcpt=rcpt, since=after)
    table = Table(title="Queue: " + ", ".join(f"{s} {counts.get(s, 0)}" for s in queue.STATES), title_justify="left",
                  caption=f"{len(rows)} recipient(s), newest first" + (f" (--limit {limit})" if len(rows) == limit else ""),
                  caption_justify="left")
    for col in ("id", "env_id", "queued (UTC)", "sender", "rcpt", "state", "attempts", "next attempt", "last reply"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r.id), r.env_id, _utc(r.created_at), r.sender, r.rcpt, r.state, str(r.attempts),
                      _utc(r.next_attempt_at), r.last_text or "")
    console.print(table)
    return EXIT_OK


def _utc(when: datetime | None) -> str:
    if when is None:
        return ""
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc)
    return f"{when:%Y-%m-%d %H:%M:%S}"


def queue_move(action: str, store_url: str | None, ids: str | None) -> int:
    store = store_at(store_url)
    fn = {"hold": queue.hold, "release": queue.release, "flush": queue.flush}[action]
    with store.transaction(immediate=True) as conn:
        n = fn(conn, parse_ids(ids), utcnow())
    console.print(f"queue.{action}: {n} recipient(s)")
    return EXIT_OK
