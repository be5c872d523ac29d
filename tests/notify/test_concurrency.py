"""Several notifiers on one PostgreSQL store: no event routed twice, no delivery made twice."""
from __future__ import annotations

import threading
from collections import Counter

import pytest
import sqlalchemy as sa

from mailcore.notify.router import route_pending
from mailcore.notify.worker import Notifier
from mailcore.store import open_store
from mailcore.store import tables as t
from tests.support.notify import START, event_body, local_settings, point_webhook_at, run
from tests.support.store import make_ready

SENDERS = ["orders@mail.example.com", "alerts@notice.example.net", "newsletter@news.example.com"]
EVENTS = ["Deliver:SendSuccessfully", "Deliver:SendFailed", "Deliver:Open"]
# deliveries per (sender, event) in the example config: http + queue for account-level deliveries,
# the topic for opens, and alerts@'s sender-level region takes only its failures
EXPECTED = {("alerts@notice.example.net", "Deliver:SendFailed"): 1, ("alerts@notice.example.net", "Deliver:SendSuccessfully"): 0,
            ("alerts@notice.example.net", "Deliver:Open"): 0}


def expected(sender, event):
    return EXPECTED.get((sender, event), 1 if event == "Deliver:Open" else 2)


@pytest.fixture
def pg_stores(pg_server, example_env, example_config, receiver):
    url = pg_server.new_database()
    a, b = open_store(url), open_store(url)
    (example_config / "events.yaml").unlink()  # queues and subscriptions come from the Python API here
    point_webhook_at(example_config, receiver.url)
    make_ready(a, example_config)
    yield a, b
    a.dispose()
    b.dispose()


def insert_many(store, n) -> dict[int, tuple[str, str]]:
    rows = []
    for i in range(n):
        sender, event = SENDERS[i % 3], EVENTS[(i // 3) % 3]
        rows.append({"event": event, "sender": sender, "region": "cn-hangzhou", "created_at": START,
                     "body": event_body(sender, f"r{i}@example.org", 0 if event.endswith("Successfully") else 4, n=i)})
    with store.transaction() as conn:
        aid = conn.execute(sa.select(t.accounts.c.id)).scalar_one()
        conn.execute(sa.insert(t.events), [{**r, "account_id": aid} for r in rows])
        return {i: (s, e) for i, s, e in conn.execute(sa.select(t.events.c.id, t.events.c.sender, t.events.c.event))}


def in_parallel(*fns) -> list:
    barrier = threading.Barrier(len(fns))
    results: list = [None] * len(fns)

    def go(i, fn):
        barrier.wait()
        results[i] = fn()

    threads = [threading.Thread(target=go, args=(i, fn)) for i, fn in enumerate(fns)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    return results


def test_two_notifiers_never_route_one_event_twice(pg_stores):
    a, b = pg_stores
    events = insert_many(a, 600)

    def router(store):
        def loop():
            routed = 0
            while True:
                n, _ = route_pending(store, START, limit=10)
                if n == 0:
                    return routed
                routed += n
        return loop

    split = in_parallel(router(a), router(b))
    assert sum(split) == 600 and all(split), split  # both did part of the work, together all of it, once
    with a.transaction() as conn:
        per_event = Counter(conn.execute(sa.select(t.notify_deliveries.c.event_id)).scalars())
        unrouted = conn.execute(sa.select(sa.func.count()).where(t.events.c.routed_at.is_(None))).scalar()
    assert unrouted == 0
    for eid, (sender, event) in events.items():
        assert per_event.get(eid, 0) == expected(sender, event), (eid, sender, event)


def test_two_notifiers_deliver_each_delivery_once(pg_stores, receiver, clock):
    a, b = pg_stores
    events = insert_many(a, 150)
    want_queue = sum(1 for s, e in events.values() if e != "Deliver:Open" and expected(s, e))

    def notifier(store):
        n = Notifier(store, clock, settings=local_settings())

        def loop():
            while run(n.run_once()).busy:
                pass
        return loop

    in_parallel(notifier(a), notifier(b))
    d = t.notify_deliveries
    with a.transaction() as conn:
        http_ids = conn.execute(sa.select(d.c.id).where(d.c.kind == "http")).scalars().all()
        queue_count = conn.execute(sa.select(sa.func.count()).where(d.c.kind == "queue")).scalar()
        messages = conn.execute(sa.select(sa.func.count()).select_from(t.notify_queue_messages)).scalar()
        states = Counter(conn.execute(sa.select(d.c.state)).scalars())
    posted = Counter(r.headers["x-mns-message-id"] for r in receiver.requests)
    assert sorted(posted) == sorted(str(i) for i in http_ids) and set(posted.values()) == {1}
    assert messages == queue_count == want_queue == 85
    assert set(states) == {"delivered"}
