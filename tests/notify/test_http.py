"""HTTP endpoints: a real receiver on loopback gets the body and a valid signature; failures
are retried with exponential backoff under an injected clock, every attempt recorded, then
given up."""
from __future__ import annotations

import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa

from mailcore.notify import http, parse_event_body
from mailcore.notify.http import (
    CONTENT_TYPE,
    HttpSettings,
    backoff,
    sign,
    verify_signature,
)
from mailcore.notify.router import route_pending
from mailcore.notify.worker import Notifier, NotifierSettings
from mailcore.spec import webhooks as spec_webhooks
from mailcore.spec.webhooks import target_problem
from mailcore.store import tables as t
from tests.support.notify import attempts, deliveries, insert_event, run

ORDERS = "orders@mail.example.com"
SECRET = "webhook-secret-value"  # DM_WEBHOOK_SECRET in storefixtures.EXAMPLE_ENV


def notifier(store, clock, **http) -> Notifier:
    return Notifier(store, clock, settings=NotifierSettings(http=HttpSettings(allow_private_targets=True, **http)))


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


# --- targets: no loopback, private or metadata receivers unless opted in ------------------------

ADDRESSES = [  # address, why it is refused (None: public); one row per NON_PUBLIC reason at least
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("::ffff:127.0.0.1", "loopback"),
    ("169.254.169.254", "link-local (cloud metadata services live here)"), ("fe80::1", "link-local (cloud metadata services live here)"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"), ("224.0.0.1", "multicast"),
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"), ("fd00:ec2::254", "private"),
    ("240.0.0.1", "reserved"), ("100.100.100.200", "not globally routable"),  # Alibaba Cloud's metadata, in 100.64/10
    ("93.184.216.34", None), ("2606:2800:220:1::1", None), ("8.8.8.8", None),
]


def test_every_non_public_reason_has_an_address():
    assert {why for _, why in http.NON_PUBLIC} <= {why for _, why in ADDRESSES}


@pytest.mark.parametrize("address, why", ADDRESSES, ids=[a for a, _ in ADDRESSES])
def test_address_classes(address, why):
    assert http.non_public(address) == why
    # validate refuses the same literal addresses (its own copy of the table: spec imports nothing of notify)
    problem = target_problem(f"http://{'[' + address + ']' if ':' in address else address}:8080/hook")
    assert (problem is None) == (why is None) and (why is None or why in problem)


def test_the_table_is_the_same_in_validate_and_delivery():
    assert spec_webhooks.NON_PUBLIC == http.NON_PUBLIC


def test_a_loopback_receiver_is_refused_by_default(notify_store, receiver, clock):
    eid = insert_event(notify_store, ORDERS)
    run(Notifier(notify_store, clock).run_once())
    assert receiver.requests == []
    (a,) = attempts(notify_store, http_delivery(notify_store, eid)["id"])
    assert a["outcome"] == "retry" and a["status_code"] is None
    assert a["error"] == "PrivateTarget: 127.0.0.1 resolves to 127.0.0.1, loopback"


def _retarget(store, clock, url: str) -> None:
    route_pending(store, clock())
    with store.transaction() as conn:
        conn.execute(sa.update(t.notify_deliveries).where(t.notify_deliveries.c.kind == "http").values(target=url))


def test_a_name_is_checked_after_resolution(notify_store, receiver, clock):
    """`localhost` is resolved by the system resolver, and what it resolves to is refused."""
    eid = insert_event(notify_store, ORDERS)
    _retarget(notify_store, clock, f"http://localhost:{receiver.server.server_address[1]}/hook")
    run(Notifier(notify_store, clock).run_once())
    assert receiver.requests == []
    (a,) = attempts(notify_store, http_delivery(notify_store, eid)["id"])
    assert a["error"].startswith("PrivateTarget: localhost resolves to ")


def test_one_private_address_among_public_ones_is_refused(notify_store, receiver, clock):
    """A rebinding name answers a public address and a private one: nothing is posted."""
    async def resolve(host, port):
        return ["93.184.216.34", "127.0.0.1"] if host == "hooks.rebind.test" else []
    eid = insert_event(notify_store, ORDERS)
    _retarget(notify_store, clock, f"http://hooks.rebind.test:{receiver.server.server_address[1]}/hook")
    run(Notifier(notify_store, clock, resolve=resolve).run_once())
    (a,) = attempts(notify_store, http_delivery(notify_store, eid)["id"])
    assert a["error"] == "PrivateTarget: hooks.rebind.test resolves to 127.0.0.1, loopback" and receiver.requests == []


def test_the_request_goes_to_the_checked_address(notify_store, receiver, clock):
    """The connection is made to the address that was checked (not resolved again), with the
    URL's own Host header: opted in here, `hooks.pinned.test` exists only in this resolver."""
    seen = []

    async def resolve(host, port):
        seen.append((host, port))
        return ["127.0.0.1"]
    port = receiver.server.server_address[1]
    eid = insert_event(notify_store, ORDERS)
    _retarget(notify_store, clock, f"http://hooks.pinned.test:{port}/hook")
    run(notifier_with(notify_store, clock, resolve).run_once())
    (req,) = receiver.requests
    assert req.headers["host"] == f"hooks.pinned.test:{port}" and req.path == "/hook"
    assert seen == [("hooks.pinned.test", port)]
    assert http_delivery(notify_store, eid)["state"] == "delivered"


def notifier_with(store, clock, resolve) -> Notifier:
    return Notifier(store, clock, settings=NotifierSettings(http=HttpSettings(allow_private_targets=True)), resolve=resolve)


def test_a_failed_attempt_keeps_the_status_not_the_answer(notify_store, clock):
    """The receiver's answer may hold anything (stack traces, internal hosts): only its status is kept."""
    class Leaky(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b"Traceback: db password=hunter2 at 10.0.0.7"
            self.send_response(502)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass
    server = ThreadingHTTPServer(("127.0.0.1", 0), Leaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        eid = insert_event(notify_store, ORDERS)
        _retarget(notify_store, clock, f"http://127.0.0.1:{server.server_address[1]}/hook")
        run(notifier(notify_store, clock).run_once())
    finally:
        server.shutdown()
        server.server_close()
    d = http_delivery(notify_store, eid)
    (a,) = attempts(notify_store, d["id"])
    assert (a["status_code"], a["error"], d["last_error"]) == (502, "HTTP 502", "HTTP 502")

