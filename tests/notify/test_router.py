"""Routing (R22, R23): notification region by sender-level then account-level, rules by event
type and sender scope, one delivery per endpoint, each event routed exactly once."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from mailcore.notify.router import route_pending
from mailcore.store import tables as t
from tests.support.helpers import edit_yaml
from tests.support.notify import START, deliveries, insert_event, point_webhook_at
from tests.support.store import make_ready

ORDERS, SECURITY, ALERTS = "orders@mail.example.com", "security@mail.example.com", "alerts@notice.example.net"
HOOK = "http://127.0.0.1:9/hook"


@pytest.fixture
def routing_store(store, example_env, example_config):
    """The example account plus a sender-scoped rule: security@ gets a sender-level notification
    in ap-southeast-1, where a rule for Deliver:Open is scoped to security@ only."""
    point_webhook_at(example_config, HOOK)

    def edit(d):
        d["notification_rules"].append({"name": "security-opens", "region": "ap-southeast-1", "events": ["Deliver:Open"],
                                        "senders": [SECURITY], "endpoints": [{"kind": "queue", "name": "security-opens"}]})
        d["notifications"]["senders"].append({"sender": SECURITY, "region": "ap-southeast-1"})
    edit_yaml(example_config / "notifications.yaml", edit)
    make_ready(store, example_config)
    return store


# sender, event type -> the endpoints it reaches (kind, target); the example config plus the
# security-opens rule above.
ROUTES = [
    # account-level notification (cn-hangzhou) serves senders without their own
    (ORDERS, "Deliver:SendSuccessfully", {("http", HOOK), ("queue", "dm-deliveries")}),
    (ORDERS, "Deliver:SendFailed", {("http", HOOK), ("queue", "dm-deliveries")}),
    (ORDERS, "Deliver:Open", {("topic", "dm-engagement")}),
    (ORDERS, "Deliver:Click", {("topic", "dm-engagement")}),
    ("newsletter@news.example.com", "Deliver:SendFailed", {("http", HOOK), ("queue", "dm-deliveries")}),
    # sender-level (ap-southeast-1) wins for alerts@: only its region's rules apply
    (ALERTS, "Deliver:SendFailed", {("queue", "dm-alert-failures")}),
    (ALERTS, "Deliver:SendSuccessfully", set()),  # no rule of ap-southeast-1 takes it; account-level does not step in
    (ALERTS, "Deliver:Open", set()),  # security-opens is scoped to security@
    # security@: sender-level too, and inside the scope of security-opens
    (SECURITY, "Deliver:Open", {("queue", "security-opens")}),
    (SECURITY, "Deliver:SendFailed", {("queue", "dm-alert-failures")}),
    (SECURITY, "Deliver:Click", set()),
    # sender addresses compare without case, as the config stores them
    ("Orders@Mail.Example.com", "Deliver:SendFailed", {("http", HOOK), ("queue", "dm-deliveries")}),
]


@pytest.mark.parametrize("sender, event, expected", ROUTES, ids=[f"{s}-{e}" for s, e, _ in ROUTES])
def test_every_route(routing_store, sender, event, expected):
    eid = insert_event(routing_store, sender, event)
    assert route_pending(routing_store, START) == (1, len(expected))
    got = deliveries(routing_store, eid)
    assert {(d["kind"], d["target"]) for d in got} == expected
    assert all(d["state"] == "pending" and d["attempts"] == 0 for d in got)


def test_http_delivery_carries_the_encrypted_secret(routing_store):
    eid = insert_event(routing_store, ORDERS, "Deliver:SendFailed")
    route_pending(routing_store, START)
    (hook,) = [d for d in deliveries(routing_store, eid) if d["kind"] == "http"]
    assert hook["rule"] == "deliveries" and hook["signing_secret_enc"] and "webhook-secret" not in hook["signing_secret_enc"]


def test_each_event_is_routed_once_and_marked(routing_store):
    ids = [insert_event(routing_store, ORDERS, "Deliver:SendFailed") for _ in range(5)]
    assert route_pending(routing_store, START, limit=3) == (3, 6)
    assert route_pending(routing_store, START, limit=3) == (2, 4)
    assert route_pending(routing_store, START) == (0, 0)
    with routing_store.transaction() as conn:
        routed = conn.execute(sa.select(t.events.c.routed_at).where(t.events.c.id.in_(ids))).scalars().all()
    assert len(routed) == 5 and all(r is not None for r in routed)
    assert len(deliveries(routing_store)) == 10


def test_without_any_notification_events_are_marked_and_go_nowhere(store, example_env, example_config):
    edit_yaml(example_config / "notifications.yaml", lambda d: d.pop("notifications"))
    make_ready(store, example_config)
    insert_event(store, ORDERS, "Deliver:SendFailed")
    assert route_pending(store, START) == (1, 0)
    assert route_pending(store, START) == (0, 0)


def test_account_level_only_serves_every_sender(store, example_env, example_config):
    edit_yaml(example_config / "notifications.yaml", lambda d: d["notifications"].pop("senders"))
    make_ready(store, example_config)
    eid = insert_event(store, ALERTS, "Deliver:SendFailed")
    route_pending(store, START)
    assert {d["target"] for d in deliveries(store, eid)} == {"https://hooks.example.com/directmail/deliveries", "dm-deliveries"}
