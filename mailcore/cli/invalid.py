"""`invoke invalid.*`: the invalid-address base (R37), listed or exported as CSV."""
from __future__ import annotations

from pathlib import Path

from rich.table import Table

from mailcore.cleanup.writer import utcnow
from mailcore.cli.common import EXIT_OK, CommandError, account_name, console, store_at


def invalid_list(config: str, store_url: str | None, start: str | None, end: str | None, keyword: str | None,
                 export: str | None = None) -> int:
    from mailcore.delivery import invalid
    account = account_name(config)
    try:
        lo, hi = invalid.parse_range(start, end, utcnow())
    except invalid.RangeError as exc:
        raise CommandError(str(exc)) from None
    rows = invalid.query(store_at(store_url), account, lo, hi, keyword)
    if export:
        Path(export).write_text(invalid.to_csv(rows), encoding="utf-8")
        console.print(f"exported {len(rows)} invalid address(es) to {export}")
        return EXIT_OK
    table = Table(title=f"Invalid addresses of {account}, {lo:%Y-%m-%d} to {hi:%Y-%m-%d %H:%M} ({len(rows)})",
                  title_justify="left")
    for col in ("address", "added", "reason"):
        table.add_column(col)
    for r in rows:
        table.add_row(r.address, f"{r.added_at:%Y-%m-%d %H:%M:%S}", r.reason or "")
    console.print(table)
    return EXIT_OK
