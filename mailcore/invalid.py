"""The invalid-address base (R37): addresses that bounced as invalid; later sends to them are
refused (SMTP 559, API InvalidToAddress.Spam). Query by date range (at most 30 days) and keyword;
export as CSV."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from mailcore.store import Store
from mailcore.store import tables as t

MAX_RANGE = timedelta(days=30)


class RangeError(ValueError):
    """A date range the guide does not allow."""


@dataclass
class InvalidRow:
    address: str
    reason: str | None
    added_at: datetime


def parse_range(start: str | None, end: str | None, now: datetime) -> tuple[datetime, datetime]:
    """YYYY-MM-DD dates (inclusive); default the last 30 days; more than 30 days is refused (R37)."""
    def day(s):
        try:
            return datetime.strptime(s, "%Y-%m-%d").replace(tzinfo=timezone.utc)
        except ValueError:
            raise RangeError(f"{s!r} is not a date like 2026-11-27") from None
    hi = day(end) + timedelta(days=1) if end else now
    lo = day(start) if start else hi - MAX_RANGE
    if lo >= hi:
        raise RangeError("the start date is after the end date")
    if hi - lo > MAX_RANGE + timedelta(days=1):
        raise RangeError(f"at most 30 days at a time (R37); {start} to {end} is {(hi - lo).days} days")
    return lo, hi


def query(store: Store, account: str, lo: datetime, hi: datetime, keyword: str | None = None,
          limit: int | None = None) -> list[InvalidRow]:
    i = t.invalid_addresses.c
    q = (sa.select(i.address, i.reason, i.added_at).join(t.accounts, t.invalid_addresses.c.account_id == t.accounts.c.id)
         .where(t.accounts.c.name == account, i.added_at >= lo, i.added_at < hi).order_by(i.added_at.desc(), i.address))
    if keyword:
        q = q.where(i.address.contains(keyword.lower(), autoescape=True))
    if limit:
        q = q.limit(limit)
    with store.engine.connect() as conn:
        return [InvalidRow(a, r, d) for a, r, d in conn.execute(q)]


def to_csv(rows: list[InvalidRow]) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["address", "added_at", "reason"])
    for r in rows:
        w.writerow([r.address, f"{r.added_at:%Y-%m-%d %H:%M:%S}", r.reason or ""])
    return out.getvalue()
