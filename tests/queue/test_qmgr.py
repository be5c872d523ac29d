"""qmgr end to end on loopback: cleanup -> queue -> qmgr -> delivery -> fake MX; outcomes, events,
the invalid-address base, retries on an injected clock, leases."""
from __future__ import annotations

import asyncio
from urllib.parse import unquote

import pytest
import sqlalchemy as sa

from mailcore.cleanup.submission import SubmitRefused
from mailcore.queue.qmgr import Qmgr, QmgrSettings, backoff
from mailcore.store import tables as t
from tests.support.flow import events, recipients, send


def test_outcomes_events_and_invalid_base(flow, ready_store, world):
    cleanup, qmgr = flow
    env = send(cleanup, "alice@dest.example", "nxbox@dest.example", "x@nope.dest.example").env_id
    send(cleanup, "spam@dest.example")  # DATA has one reply per transaction: its own message
    assert asyncio.run(qmgr.run_once()) == 4
    rows = recipients(ready_store)
    assert {k: (v["state"], v["status"], v["failed_type"]) for k, v in rows.items()} == {
        "alice@dest.example": ("sent", 0, "SendOk"),
        "nxbox@dest.example": ("bounced", 2, "SmtpNxBox"),
        "spam@dest.example": ("bounced", 3, "SmtpContSpam"),
        "x@nope.dest.example": ("bounced", 4, "SysOutDnsResolveFail"),
    }
    evs = {body["rcpt"]: (kind, body) for kind, body in events(ready_store)}
    kind, ok = evs["alice@dest.example"]
    assert kind == "Deliver:SendSuccessfully"
    assert (ok["event"], ok["region"], ok["env_id"], ok["account"], ok["from"], ok["status"], ok["err_code"],
            ok["failed_type"]) == ("deliver", "cn-hangzhou", env, "orders@mail.example.com", "orders@mail.example.com",
                                   "0", "250", "SendOk")
    assert len(ok["end_time"]) == 19 and ok["msg_id"] and "@mail.example.com" in ok["msg_id"]
    kind, bad = evs["nxbox@dest.example"]
    assert kind == "Deliver:SendFailed" and bad["status"] == "2" and unquote(bad["err_msg"]).startswith("550")
    assert evs["x@nope.dest.example"][1]["err_code"] == "524"
    with ready_store.engine.connect() as conn:
        invalid = set(conn.execute(sa.select(t.invalid_addresses.c.address)).scalars())
    assert invalid == {"nxbox@dest.example", "x@nope.dest.example"}  # NXDOMAIN: "remove it from your list"
    with pytest.raises(SubmitRefused) as exc:  # a resend to the invalid address is refused (R37, 559)
        send(cleanup, "nxbox@dest.example")
    assert exc.value.reason == "invalid-rcpt"


def test_greylisting_is_retried_on_schedule_then_delivered(flow, ready_store, world, clock):
    cleanup, qmgr = flow
    send(cleanup, "greylist2@dest.example")
    asyncio.run(qmgr.run_once())
    r = recipients(ready_store)["greylist2@dest.example"]
    assert (r["state"], r["attempts"]) == ("deferred", 1)
    assert asyncio.run(qmgr.run_once()) == 0  # not due yet
    clock.advance(backoff(1, qmgr.settings).total_seconds())
    asyncio.run(qmgr.run_once())
    assert recipients(ready_store)["greylist2@dest.example"]["state"] == "deferred"
    clock.advance(backoff(2, qmgr.settings).total_seconds())
    asyncio.run(qmgr.run_once())
    r = recipients(ready_store)["greylist2@dest.example"]
    assert (r["state"], r["attempts"], r["status"]) == ("sent", 3, 0)
    assert [k for k, _ in events(ready_store)] == ["Deliver:SendSuccessfully"]  # no event for the deferrals


def test_temporary_failures_expire_at_the_give_up_time(flow, ready_store, world, clock):
    cleanup, qmgr = flow
    send(cleanup, "tempfail@dest.example")
    for _ in range(20):
        asyncio.run(qmgr.run_once())
        clock.advance(600)
    r = recipients(ready_store)["tempfail@dest.example"]
    assert (r["state"], r["status"], r["failed_type"]) == ("expired", 4, "SmtpTempErr")
    [(kind, body)] = events(ready_store)
    assert kind == "Deliver:SendFailed" and body["err_code"] == "451"


def test_backoff_doubles_and_caps():
    s = QmgrSettings()
    assert [backoff(n, s).total_seconds() for n in (1, 2, 3, 4, 5, 6)] == [300, 600, 1200, 2400, 4000, 4000]


def test_crashed_workers_lease_expires_and_another_delivers(flow, ready_store, world, clock):
    cleanup, qmgr = flow
    send(cleanup, "bob@dest.example")
    assert len(qmgr.claim()) == 1  # claimed, then "crashes" before delivering
    other = Qmgr(ready_store, qmgr.transport, qmgr.signer, clock=clock, settings=qmgr.settings)
    assert asyncio.run(other.run_once()) == 0  # the lease still holds
    clock.advance(qmgr.settings.lease_seconds + 1)
    assert asyncio.run(other.run_once()) == 1
    assert recipients(ready_store)["bob@dest.example"]["state"] == "sent"
    assert len(world.mx.messages(rcpt="bob@dest.example")) == 1


def test_two_qmgrs_share_a_store_without_delivering_twice(flow, ready_store, world, clock):
    cleanup, qmgr = flow
    rcpts = [f"u{i}@dest.example" for i in range(60)]
    for i in range(0, 60, 10):
        send(cleanup, *rcpts[i:i + 10])
    a = Qmgr(ready_store, qmgr.transport, qmgr.signer, clock=clock, settings=QmgrSettings(active_window=7))
    b = Qmgr(ready_store, qmgr.transport, qmgr.signer, clock=clock, settings=QmgrSettings(active_window=7))

    async def both():
        total = 0
        while True:
            n = sum(await asyncio.gather(a.run_once(), b.run_once()))
            total += n
            if not n:
                return total
    assert asyncio.run(both()) == 60
    delivered = [r for m in world.mx.messages() for r in m.rcpt_tos]
    assert sorted(delivered) == sorted(rcpts)
    assert {r["state"] for r in recipients(ready_store).values()} == {"sent"}


def test_leases_of_dead_local_processes_are_recovered(flow, ready_store, world, clock):
    import socket
    import subprocess
    cleanup, qmgr = flow
    send(cleanup, "carol@dest.example")
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = Qmgr(ready_store, qmgr.transport, qmgr.signer, clock=clock, owner=f"{socket.gethostname()}:{gone.pid}:abc")
    alive = Qmgr(ready_store, qmgr.transport, qmgr.signer, clock=clock, owner=f"{socket.gethostname()}:1:abc")
    elsewhere = Qmgr(ready_store, qmgr.transport, qmgr.signer, clock=clock, owner=f"otherhost:{gone.pid}:abc")
    assert len(dead.claim()) == 1
    assert qmgr.recover() == 1  # its process is gone: the lease ends now
    assert len(alive.claim()) == 1
    assert qmgr.recover() == 0  # pid 1 is alive
    send(cleanup, "dave@dest.example")
    assert len(elsewhere.claim()) == 1
    assert qmgr.recover() == 0  # another host's lease is left to expire
