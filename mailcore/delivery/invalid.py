"""The invalid-address base (R37): addresses that bounced as invalid; later sends to them are
refused (SMTP 559, API InvalidToAddress.Spam). Query by date range (at most 30 days) and keyword;
export as CSV."""
from __future__ import annotations

import asyncio
import csv
import io
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

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


class InvalidBase:
    """The invalid-address base in memory, for SMTP's RCPT check (559) without a store query
    and a thread hop per recipient. Rows are only ever added (by delivery), so a refresh reads
    just the rows past the highest id seen, at most every `ttl` seconds: a newly invalid address
    is refused within `ttl`. Every `reload_seconds` the copy is read afresh (rows removed by
    hand)."""

    def __init__(self, store: Store, ttl: float = 1.0, reload_seconds: float = 600,
                 monotonic: Callable[[], float] = time.monotonic):
        self.store, self.ttl, self.reload_seconds, self.monotonic = store, ttl, reload_seconds, monotonic
        self._addresses: dict[str, set[str]] = {}  # account name -> addresses
        self._last_id = 0
        self._fresh_at = self._loaded_at = None
        self._lock = threading.Lock()

    def _stale(self) -> bool:
        return self._fresh_at is None or self.monotonic() - self._fresh_at >= self.ttl

    def refresh(self) -> None:
        with self._lock:
            if not self._stale():
                return
            now = self.monotonic()
            if self._loaded_at is None or now - self._loaded_at >= self.reload_seconds:
                self._addresses, self._last_id, self._loaded_at = {}, 0, now
            i, a = t.invalid_addresses.c, t.accounts.c
            q = (sa.select(i.id, a.name, i.address).join(t.accounts, i.account_id == a.id)
                 .where(i.id > self._last_id).order_by(i.id))
            with self.store.engine.connect() as conn:
                for row_id, account, address in conn.execute(q):
                    self._addresses.setdefault(account, set()).add(address.lower())
                    self._last_id = row_id
            self._fresh_at = now

    def is_invalid(self, account: str, address: str) -> bool:
        if self._stale():
            self.refresh()
        return self._holds(account, address)

    async def check(self, account: str, address: str) -> bool:
        """The smtpd hook: in memory, unless a refresh is due (then in a worker thread)."""
        if self._stale():
            await asyncio.to_thread(self.refresh)
        return self._holds(account, address)

    def _holds(self, account: str, address: str) -> bool:
        return address.lower() in self._addresses.get(account, ())
