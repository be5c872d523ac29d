"""The notifier as a service: `run(stop)` serves until stopped; a crashed notifier's claimed
HTTP deliveries are taken over once its lease expires."""
from __future__ import annotations

import asyncio

from mailcore.notify.router import route_pending
from mailcore.notify.worker import Notifier, listing, retry
from tests.support.notify import attempts, deliveries, insert_event, local_settings, run

ORDERS = "orders@mail.example.com"


def test_run_serves_until_stopped(notify_store, receiver, clock):
    eid = insert_event(notify_store, ORDERS, "Deliver:SendFailed")

    async def main():
        stop = asyncio.Event()
        task = asyncio.create_task(Notifier(notify_store, clock, settings=local_settings(poll_seconds=0.05)).run(stop))
        for _ in range(400):  # until the receiver has it (a liveness bound, not a timing assertion)
            if receiver.requests:
                break
            await asyncio.sleep(0.025)
        stop.set()
        await asyncio.wait_for(task, 10)

    run(main())
    assert len(receiver.requests) == 1
    assert {d["state"] for d in deliveries(notify_store, eid)} == {"delivered"}


def test_a_crashed_notifiers_http_deliveries_are_taken_over_after_the_lease(notify_store, receiver, clock):
    eid = insert_event(notify_store, ORDERS)
    crashed = Notifier(notify_store, clock, settings=local_settings())
    route_pending(notify_store, clock())
    assert len(crashed.claim_http()) == 1  # claimed, then the process died before posting
    survivor = Notifier(notify_store, clock, settings=local_settings())
    assert run(survivor.run_once()).http_attempts == 0  # still leased
    clock.advance(survivor.settings.http.lease_seconds + 1)
    assert run(survivor.run_once()).http_attempts == 1
    (d,) = [d for d in deliveries(notify_store, eid) if d["kind"] == "http"]
    assert d["state"] == "delivered" and len(attempts(notify_store, d["id"])) == 1 and len(receiver.requests) == 1


def test_a_missing_master_key_is_an_attempt_error(notify_store, receiver, clock, monkeypatch):
    monkeypatch.delenv("MAILCORE_MASTER_KEY")
    eid = insert_event(notify_store, ORDERS)
    run(Notifier(notify_store, clock, settings=local_settings()).run_once())
    (d,) = [d for d in deliveries(notify_store, eid) if d["kind"] == "http"]
    (a,) = attempts(notify_store, d["id"])
    assert a["outcome"] == "retry" and "MAILCORE_MASTER_KEY is not set" in a["error"] and not receiver.requests


def test_failed_deliveries_are_listed_and_can_be_retried(notify_store, receiver, clock):
    receiver.script = [500, 500]
    eid = insert_event(notify_store, ORDERS, "Deliver:SendFailed")
    n = Notifier(notify_store, clock, settings=local_settings(max_attempts=2))
    run(n.run_once())
    clock.advance(10)
    run(n.run_once())
    with notify_store.transaction() as conn:
        (failed,) = listing(conn, "failed")
        assert [r["kind"] for r in listing(conn)] == ["queue", "http"]
    assert failed["event"] == "Deliver:SendFailed" and failed["attempts"] == 2 and "HTTP 500" in failed["last_error"]
    assert retry(notify_store, [failed["id"]], clock()) == 1
    run(n.run_once())
    (d,) = [d for d in deliveries(notify_store, eid) if d["kind"] == "http"]
    assert d["state"] == "delivered" and [a["status_code"] for a in attempts(notify_store, d["id"])] == [500, 500, 204]
    assert retry(notify_store, None, clock()) == 0
