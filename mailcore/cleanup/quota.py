"""Sending quotas (R2): recipients counted per account against the day's and the month's cap,
in the account's time zone, atomically inside the caller's transaction.

A charge is one upsert per period that adds only while the sum stays within the cap
(`INSERT .. ON CONFLICT DO UPDATE .. WHERE used + n <= cap RETURNING used`, on SQLite and
PostgreSQL alike). When the month refuses after the day took the charge, the day's share is
given back in the same transaction, so a refused submission never uses up quota.
"""
from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from mailcore.store import tables as t
from mailcore.cleanup.submission import SubmitRefused

_c = t.quota_counters.c


def _tz(name: str):
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.utc


def periods(tz_name: str, now: datetime) -> tuple[str, str]:
    """The counter keys of the day and the month that `now` falls in, in the account's zone."""
    local = now.astimezone(_tz(tz_name))
    return f"d:{local:%Y-%m-%d}", f"m:{local:%Y-%m}"


@lru_cache(maxsize=4)
def _add_within_cap(dialect: str):
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    ins = insert(t.quota_counters).values(account_id=sa.bindparam("a"), period=sa.bindparam("p"),
                                          used=sa.bindparam("n"))
    return ins.on_conflict_do_update(
        index_elements=[_c.account_id, _c.period], set_={"used": _c.used + ins.excluded.used},
        where=_c.used + ins.excluded.used <= sa.bindparam("cap")).returning(_c.used)


_GIVE_BACK = (sa.update(t.quota_counters).where(_c.account_id == sa.bindparam("a"), _c.period == sa.bindparam("p"))
              .values(used=_c.used - sa.bindparam("n")))
_USED = sa.select(_c.used).where(_c.account_id == sa.bindparam("a"), _c.period == sa.bindparam("p"))


def charge(conn, account_id: int, tz_name: str, caps: tuple[int, int], n: int, now: datetime) -> None:
    """Count n recipients against the day's and the month's quota, or raise SubmitRefused
    (quota-daily, quota-monthly, or quota-insufficient when some is left but not n) and count nothing."""
    day, month = periods(tz_name, now)
    add = _add_within_cap(conn.dialect.name)
    charged: list[str] = []
    for period, cap, reason in ((day, caps[0], "quota-daily"), (month, caps[1], "quota-monthly")):
        ok = n <= cap and conn.execute(add, {"a": account_id, "p": period, "n": n, "cap": cap}).first() is not None
        if ok:
            charged.append(period)
            continue
        for done in charged:
            conn.execute(_GIVE_BACK, {"a": account_id, "p": done, "n": n})
        used = conn.execute(_USED, {"a": account_id, "p": period}).scalar() or 0
        if used < cap:
            raise SubmitRefused("quota-insufficient", f"{n} recipients, {cap - used} left in {period[2:]}")
        raise SubmitRefused(reason, f"{used} of {cap} used in {period[2:]}")
