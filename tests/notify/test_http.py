"""HTTP endpoints: a real receiver on loopback gets the body and a valid signature; failures
are retried with exponential backoff under an injected clock, every attempt recorded, then
given up."""
from __future__ import annotations

import socket
from datetime import timedelta

import pytest
import sqlalchemy as sa

from mailcore.notify import parse_event_body
from mailcore.notify.http import (
    CONTENT_TYPE,
    HttpSettings,
    backoff,
    sign,
    verify_signature,
)
from mailcore.notify.router import route_pending
from mailcore.notify.worker import Notifier, NotifierSettings
from mailcore.store import tables as t
from tests.support.notify import attempts, deliveries, insert_event, run

ORDERS = "orders@mail.example.com"
SECRET = "webhook-secret-value"  # DM_WEBHOOK_SECRET in storefixtures.EXAMPLE_ENV


def notifier(store, clock, **http) -> Notifier:
    return Notifier(store, clock, settings=NotifierSettings(http=HttpSettings(**http)))


def http_delivery(store, event_id):
    (d,) = [d for d in deliveries(store, event_id) if d["kind"] == "http"]
    return d


def test_receiver_gets_the_body_and_a_valid_signature(notify_store, receiver, clock):
    eid = insert_event(notify_store, ORDERS, "Deliver:SendFailed")
    result = run(notifier(notify_store, clock).run_once())
    assert result.routed == 1 and result.http_attempts == 1
    (req,) = receiver.requests
    body = req.body.decode()
    assert req.path == "/directmail/deliveries"
    assert parse_event_body(body)["failed_type"] == "SmtpNxBox" and parse_event_body(body)["rcpt"] == "someone@example.org"
    assert req.headers["content-type"] == CONTENT_TYPE
    assert req.headers["x-mailcore-event"] == "Deliver:SendFailed"
    d = http_delivery(notify_store, eid)
    assert req.headers["x-mns-message-id"] == str(d["id"])
    assert verify_signature(SECRET, req.headers["x-mailcore-signature"], req.body, clock())
    assert not verify_signature("another-secret", req.headers["x-mailcore-signature"], req.body, clock())
    assert not verify_signature(SECRET, req.headers["x-mailcore-signature"], req.body + b"&x=1", clock())
    assert d["state"] == "delivered" and d["attempts"] == 1
    (a,) = attempts(notify_store, d["id"])
    assert a["outcome"] == "delivered" and a["status_code"] == 204 and a["error"] is None


def test_failures_back_off_exponentially_then_give_up(notify_store, receiver, clock):
    receiver.default = 500
    eid = insert_event(notify_store, ORDERS)
    n = notifier(notify_store, clock, max_attempts=5, retry_min_seconds=10, retry_max_seconds=40)
    run(n.run_once())
    waits = []
    for attempt in range(1, 5):
        d = http_delivery(notify_store, eid)
        assert d["state"] == "pending" and d["attempts"] == attempt
        wait = (d["next_attempt_at"].replace(tzinfo=None) - clock().replace(tzinfo=None)).total_seconds()
        waits.append(wait)
        clock.advance(wait - 1)
        assert run(n.run_once()).http_attempts == 0  # not due yet
        clock.advance(1)
        assert run(n.run_once()).http_attempts == 1
    assert waits == [10, 20, 40, 40]  # doubling, capped at retry_max_seconds
    d = http_delivery(notify_store, eid)
    assert d["state"] == "failed" and d["attempts"] == 5 and "HTTP 500" in d["last_error"]
    rows = attempts(notify_store, d["id"])
    assert [a["outcome"] for a in rows] == ["retry"] * 4 + ["failed"]
    assert all(a["status_code"] == 500 for a in rows)
    assert len(receiver.requests) == 5
    assert {r.headers["x-mns-message-id"] for r in receiver.requests} == {str(d["id"])}  # one id to deduplicate on
    clock.advance(86400)
    assert run(n.run_once()).http_attempts == 0  # given up: no more attempts


def test_a_receiver_that_recovers_gets_the_event(notify_store, receiver, clock):
    receiver.script = [503, 500]
    eid = insert_event(notify_store, ORDERS)
    n = notifier(notify_store, clock)
    for _ in range(3):
        run(n.run_once())
        clock.advance(3600)
    d = http_delivery(notify_store, eid)
    assert d["state"] == "delivered" and d["attempts"] == 3
    assert [a["status_code"] for a in attempts(notify_store, d["id"])] == [503, 500, 204]
    assert len({r.body for r in receiver.requests}) == 1


def test_a_slow_receiver_times_out_and_is_retried(notify_store, receiver, clock):
    receiver.delay_seconds = 1.0
    eid = insert_event(notify_store, ORDERS)
    run(notifier(notify_store, clock, timeout_seconds=0.2).run_once())
    d = http_delivery(notify_store, eid)
    (a,) = attempts(notify_store, d["id"])
    assert d["state"] == "pending" and a["outcome"] == "retry" and a["status_code"] is None
    assert "no answer within 0.2 s" in a["error"]


def test_a_refused_connection_is_recorded(notify_store, clock):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/hook"  # nothing listens here once closed
    eid = insert_event(notify_store, ORDERS)
    route_pending(notify_store, clock())
    with notify_store.transaction() as conn:
        conn.execute(sa.update(t.notify_deliveries).where(t.notify_deliveries.c.kind == "http").values(target=closed))
    run(notifier(notify_store, clock).run_once())
    (a,) = attempts(notify_store, http_delivery(notify_store, eid)["id"])
    assert a["outcome"] == "retry" and a["status_code"] is None and "ConnectError" in a["error"]


def test_backoff_schedule_defaults():
    s = HttpSettings()
    assert [backoff(n, s).total_seconds() for n in range(1, 12)] == [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]
    assert sum(backoff(n, s).total_seconds() for n in range(1, s.max_attempts)) == 12310  # about 3.4 hours


@pytest.mark.parametrize("header, body, now_offset, ok", [
    ("good", b"a=1&b=2", 0, True),
    ("good", b"a=1&b=2", 300, True),  # at the edge of the tolerance
    ("good", b"a=1&b=2", 301, False),  # replayed too late
    ("good", b"a=1&b=2", -301, False),  # from the future
    ("good", b"a=1&b=3", 0, False),  # body changed
    ("rotated", b"a=1&b=2", 0, True),  # old and new secret during a rotation
    ("no-v1", b"a=1&b=2", 0, False),
    ("no-t", b"a=1&b=2", 0, False),
    ("", b"a=1&b=2", 0, False),
])
def test_verify_signature(header, body, now_offset, ok):
    t0 = 1_800_000_000
    good = sign("s3cret", b"a=1&b=2", t0)
    headers = {"good": good, "rotated": sign("old", b"a=1&b=2", t0) + "," + good.split(",")[1],
               "no-v1": f"t={t0}", "no-t": good.split(",")[1], "": ""}
    assert verify_signature("s3cret", headers[header], body, t0 + now_offset) is ok


def test_signature_accepts_str_and_datetime(clock):
    header = sign("k", "body", clock())
    assert header.startswith(f"t={int(clock().timestamp())},v1=")
    assert verify_signature("k", header, b"body", clock() + timedelta(seconds=5))
