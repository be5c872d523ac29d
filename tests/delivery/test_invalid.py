"""The invalid-address base: range and keyword filters (R37), CSV export, through the tasks too."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from mailcore.delivery import invalid
from mailcore.store import tables as t

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


def test_range_rules():
    assert invalid.parse_range(None, None, NOW) == (NOW - timedelta(days=30), NOW)
    lo, hi = invalid.parse_range("2026-11-01", "2026-11-30", NOW)
    assert (lo.day, hi.day, hi.month) == (1, 1, 12)
    with pytest.raises(invalid.RangeError, match="at most 30 days"):
        invalid.parse_range("2026-10-01", "2026-11-30", NOW)
    with pytest.raises(invalid.RangeError, match="after the end"):
        invalid.parse_range("2026-11-10", "2026-11-01", NOW)
    with pytest.raises(invalid.RangeError, match="not a date"):
        invalid.parse_range("27/11/2026", None, NOW)


def test_query_and_export(ready_store):
    with ready_store.transaction() as conn:
        for i, (addr, days) in enumerate((("nx1@dest.example", 1), ("nx2@other.example", 3), ("old@dest.example", 40))):
            conn.execute(sa.insert(t.invalid_addresses).values(account_id=1, address=addr, reason="550 5.1.1 user unknown",
                                                               added_at=NOW - timedelta(days=days)))
    rows = invalid.query(ready_store, "example-shop", *invalid.parse_range(None, None, NOW))
    assert [r.address for r in rows] == ["nx1@dest.example", "nx2@other.example"]
    rows = invalid.query(ready_store, "example-shop", *invalid.parse_range(None, None, NOW), keyword="DEST")
    assert [r.address for r in rows] == ["nx1@dest.example"]
    assert invalid.query(ready_store, "other-account", *invalid.parse_range(None, None, NOW)) == []
    csv_text = invalid.to_csv(rows)
    assert csv_text.splitlines()[0] == "address,added_at,reason"
    assert csv_text.splitlines()[1].startswith("nx1@dest.example,2026-11-26 12:00:00,550 5.1.1")


def _add(store, address, account_id=1):
    with store.transaction() as conn:
        return conn.execute(sa.insert(t.invalid_addresses).values(account_id=account_id, address=address, reason="550",
                                                                   added_at=NOW).returning(t.invalid_addresses.c.id)).scalar()


def test_invalid_base_in_memory_follows_the_store_within_its_ttl(ready_store):
    import asyncio

    now = [100.0]
    base = invalid.InvalidBase(ready_store, ttl=1.0, reload_seconds=60, monotonic=lambda: now[0])
    _add(ready_store, "nx1@dest.example")
    assert base.is_invalid("example-shop", "NX1@dest.example")  # addresses compare without case
    assert not base.is_invalid("example-shop", "ok@dest.example")
    assert not base.is_invalid("other-account", "nx1@dest.example")
    _add(ready_store, "nx2@dest.example")
    now[0] += 0.5
    assert not asyncio.run(base.check("example-shop", "nx2@dest.example"))  # within the ttl: not read yet
    now[0] += 0.6
    assert asyncio.run(base.check("example-shop", "nx2@dest.example"))  # the refresh read only the new row
    with ready_store.transaction() as conn:  # removed by hand: gone at the next full reload
        conn.execute(sa.delete(t.invalid_addresses).where(t.invalid_addresses.c.address == "nx1@dest.example"))
    now[0] += 1.1
    assert base.is_invalid("example-shop", "nx1@dest.example")
    now[0] += 60
    assert not base.is_invalid("example-shop", "nx1@dest.example")
    assert base.is_invalid("example-shop", "nx2@dest.example")
