"""Quotas (R2): the day's and the month's caps, counted atomically, nothing counted for a refusal."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from mailcore.cleanup import quota
from mailcore.cleanup.submission import SubmitRefused
from mailcore.store import tables as t

NOW = datetime(2026, 11, 30, 20, 0, tzinfo=timezone.utc)  # already 1 December in Shanghai


@pytest.fixture
def account(store):
    with store.transaction() as conn:
        return conn.execute(sa.insert(t.accounts).values(name="q", status="active", timezone="Asia/Shanghai",
                                                         quota_daily=10, quota_monthly=25,
                                                         quota_free_daily=0, allowlist_enabled=False,
                                                         created_at=NOW, updated_at=NOW).returning(t.accounts.c.id)).scalar()


def used(store, account):
    with store.engine.connect() as conn:
        return dict(conn.execute(sa.select(t.quota_counters.c.period, t.quota_counters.c.used)
                                 .where(t.quota_counters.c.account_id == account)).all())


def charge(store, account, n, caps=(10, 25), now=NOW):
    with store.transaction(immediate=True) as conn:
        quota.charge(conn, account, "Asia/Shanghai", caps, n, now)


def test_periods_are_in_the_accounts_time_zone():
    assert quota.periods("Asia/Shanghai", NOW) == ("d:2026-12-01", "m:2026-12")
    assert quota.periods("UTC", NOW) == ("d:2026-11-30", "m:2026-11")
    assert quota.periods("No/Such_Zone", NOW) == ("d:2026-11-30", "m:2026-11")  # unknown zone: UTC


def test_charges_add_up_to_the_daily_cap_then_refuse(store, account):
    charge(store, account, 4)
    charge(store, account, 6)
    assert used(store, account) == {"d:2026-12-01": 10, "m:2026-12": 10}
    with pytest.raises(SubmitRefused) as err:
        charge(store, account, 1)
    assert err.value.reason == "quota-daily"
    assert used(store, account) == {"d:2026-12-01": 10, "m:2026-12": 10}


def test_partly_left_is_quota_insufficient(store, account):
    charge(store, account, 7)
    with pytest.raises(SubmitRefused) as err:
        charge(store, account, 5)
    assert err.value.reason == "quota-insufficient" and "3 left" in str(err.value)


def test_more_than_the_cap_at_once_counts_nothing(store, account):
    with pytest.raises(SubmitRefused) as err:
        charge(store, account, 11)
    assert err.value.reason == "quota-insufficient"
    assert set(used(store, account).values()) <= {0}


def test_month_refusal_gives_the_days_share_back(store, account):
    charge(store, account, 10, caps=(100, 25), now=datetime(2026, 12, 1, 2, tzinfo=timezone.utc))
    charge(store, account, 10, caps=(100, 25), now=datetime(2026, 12, 2, 2, tzinfo=timezone.utc))
    with pytest.raises(SubmitRefused) as err:
        charge(store, account, 8, caps=(100, 25))  # the day has room, the month has 5 left
    assert err.value.reason == "quota-insufficient"
    counts = used(store, account)
    assert counts["m:2026-12"] == 20 and counts["d:2026-12-01"] == 10  # the day was not charged the 8
    charge(store, account, 5, caps=(100, 25))
    with pytest.raises(SubmitRefused) as err:
        charge(store, account, 1, caps=(100, 25))
    assert err.value.reason == "quota-monthly"
    assert used(store, account) == {"d:2026-12-01": 15, "d:2026-12-02": 10, "m:2026-12": 25}
