"""Template review (R20): every row of the transition table, and every refused pair."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from mailcore.account.review import ACTIONS, STATUSES, TRANSITIONS, ReviewError, review
from mailcore.store import tables as t
from tests.support.helpers import apply

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=timezone.utc)
pytestmark = pytest.mark.usefixtures("example_env")


def _force(store, status):
    with store.transaction() as conn:
        conn.execute(sa.update(t.templates).where(t.templates.c.name == "vip-offer").values(status=status))


def _row(store):
    with store.engine.connect() as conn:
        return conn.execute(sa.select(t.templates).where(t.templates.c.name == "vip-offer")).mappings().one()


@pytest.mark.parametrize("status, action", sorted(TRANSITIONS))
def test_allowed_transition(store, example_config, status, action):
    apply(store, example_config)
    _force(store, status)
    with store.transaction() as conn:
        result = review(conn, "example-shop", "vip-offer", action, "reviewer", NOW, comment="needs a footer")
    row = _row(store)
    assert (result.old, result.new, row["status"]) == (status, TRANSITIONS[(status, action)], TRANSITIONS[(status, action)])
    who = row["submitted_by"] if action == "submit" else row["reviewed_by"]
    assert who == "reviewer"
    assert (row["approved_digest"] == row["content_digest"]) is (action == "approve")


def test_every_other_pair_is_refused(store, example_config):
    apply(store, example_config)
    refused = [(s, a) for s in STATUSES for a in ACTIONS if (s, a) not in TRANSITIONS]
    assert refused  # approving a draft, submitting an approved template, ...
    for status, action in refused:
        _force(store, status)
        with pytest.raises(ReviewError, match=f"is {status} and cannot be"):
            with store.transaction() as conn:
                review(conn, "example-shop", "vip-offer", action, "x", NOW, comment="c")
        assert _row(store)["status"] == status


def test_reject_needs_a_reason_and_unknown_template(store, example_config):
    apply(store, example_config)
    _force(store, "submitted")
    with pytest.raises(ReviewError, match="needs a reason"):
        with store.transaction() as conn:
            review(conn, "example-shop", "vip-offer", "reject", "x", NOW)
    with pytest.raises(ReviewError, match="no template 'nope'"):
        with store.transaction() as conn:
            review(conn, "example-shop", "nope", "submit", "x", NOW)
