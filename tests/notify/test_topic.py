"""Topic endpoints: one event fanned out to every subscribed HTTP endpoint and queue."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from mailcore.notify import mq
from mailcore.notify.http import verify_signature
from mailcore.notify.topic import (
    HttpEndpoint,
    QueueEndpoint,
    TopicError,
    subscribe,
    unsubscribe,
)
from mailcore.notify.worker import Notifier
from mailcore.store import tables as t
from tests.support.notify import ACCOUNT, deliveries, insert_event, local_settings, run, start_receiver

ORDERS = "orders@mail.example.com"
TOPIC = "dm-engagement"  # the example's engagement rule (Deliver:Open, Deliver:Click)


def queue_bodies(store, name):
    with store.transaction() as conn:
        q = mq.get_queue(conn, conn.execute(sa.select(t.accounts.c.id)).scalar(), name)
        if q is None:
            return []
        return conn.execute(sa.select(t.notify_queue_messages.c.body).where(
            t.notify_queue_messages.c.queue_id == q.id)).scalars().all()


def test_fan_out_to_http_endpoints_and_queues(notify_store, receiver, clock):
    second = start_receiver()
    try:
        subscribe(notify_store, ACCOUNT, TOPIC, HttpEndpoint(receiver.url, signing_secret="topic-secret"))
        subscribe(notify_store, ACCOUNT, TOPIC, HttpEndpoint(second.url))
        subscribe(notify_store, ACCOUNT, TOPIC, QueueEndpoint("opens"))
        subscribe(notify_store, ACCOUNT, TOPIC, QueueEndpoint("opens"))  # idempotent
        body = "event=Open&region=cn-hangzhou&env_id=1&from=orders@mail.example.com&rcpt=r@x.example&operate_time=2026-11-27 16:00:00"
        eid = insert_event(notify_store, ORDERS, "Deliver:Open", body=body)
        run(Notifier(notify_store, clock, settings=local_settings()).run_once())
        (req,) = receiver.requests
        assert req.body.decode() == body and verify_signature("topic-secret", req.headers["x-mailcore-signature"], req.body, clock())
        (req2,) = second.requests
        assert req2.body.decode() == body and "x-mailcore-signature" not in req2.headers
        assert queue_bodies(notify_store, "opens") == [body]
        rows = deliveries(notify_store, eid)
        (top,) = [d for d in rows if d["kind"] == "topic"]
        children = [d for d in rows if d["parent_id"] == top["id"]]
        assert top["state"] == "delivered" and top["last_error"] is None
        assert sorted((c["kind"], c["state"]) for c in children) == [("http", "delivered"), ("http", "delivered"),
                                                                     ("queue", "delivered")]
    finally:
        second.stop()


def test_a_failing_subscriber_is_retried_alone(notify_store, receiver, clock):
    receiver.script = [500]
    subscribe(notify_store, ACCOUNT, TOPIC, HttpEndpoint(receiver.url))
    subscribe(notify_store, ACCOUNT, TOPIC, QueueEndpoint("opens"))
    eid = insert_event(notify_store, ORDERS, "Deliver:Click")
    n = Notifier(notify_store, clock, settings=local_settings())
    run(n.run_once())
    assert len(queue_bodies(notify_store, "opens")) == 1
    clock.advance(10)
    run(n.run_once())
    states = {(d["kind"], d["state"], d["attempts"]) for d in deliveries(notify_store, eid)}
    assert states == {("topic", "delivered", 1), ("http", "delivered", 2), ("queue", "delivered", 1)}
    assert len(queue_bodies(notify_store, "opens")) == 1


def test_a_topic_without_subscriptions_drops_the_event_and_says_so(notify_store, clock):
    eid = insert_event(notify_store, ORDERS, "Deliver:Open")
    run(Notifier(notify_store, clock, settings=local_settings()).run_once())
    (top,) = deliveries(notify_store, eid)
    assert top["state"] == "delivered" and "no subscriptions" in top["last_error"]


def test_unsubscribe_and_bad_subscriptions(notify_store):
    subscribe(notify_store, ACCOUNT, TOPIC, QueueEndpoint("opens"))
    assert unsubscribe(notify_store, ACCOUNT, TOPIC, QueueEndpoint("opens"))
    assert not unsubscribe(notify_store, ACCOUNT, TOPIC, QueueEndpoint("opens"))
    with pytest.raises(TopicError, match="must start with http"):
        subscribe(notify_store, ACCOUNT, TOPIC, HttpEndpoint("ftp://x"))
    with pytest.raises(TopicError, match="no account 'nobody'"):
        subscribe(notify_store, "nobody", TOPIC, QueueEndpoint("q"))
