"""`invoke notify.*`: notification deliveries and their retries (R22..R25)."""
from __future__ import annotations

from rich.table import Table

from mailcore.cleanup.writer import utcnow
from mailcore.cli.common import EXIT_OK, console, parse_ids, store_at


def notify_list(store_url: str | None, state: str | None, limit: int) -> int:
    from mailcore.notify.worker import listing
    store = store_at(store_url)
    with store.transaction() as conn:
        rows = listing(conn, state, limit)
    table = Table(title=f"Notification deliveries ({len(rows)})", title_justify="left")
    for col in ("id", "state", "kind", "target", "event", "sender", "attempts", "last error"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["id"]), r["state"], r["kind"], r["target"], r["event"], r["sender"], str(r["attempts"]),
                      r["last_error"] or "")
    console.print(table)
    return EXIT_OK


def notify_retry(store_url: str | None, ids: str | None) -> int:
    from mailcore.notify.worker import retry
    store = store_at(store_url)
    n = retry(store, parse_ids(ids), utcnow())
    console.print(f"notify.retry: {n} deliveries pending again")
    return EXIT_OK
