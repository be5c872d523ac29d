"""Delivery against the built-in DNS server and the fake MX, all on loopback."""
from __future__ import annotations

import asyncio

import pytest

from mailcore.delivery.transport import DnsFailure, Item

MSG = b"From: a@shop.example\r\nTo: x\r\nSubject: s\r\n\r\nhello\r\n"


def deliver(world, domain, rcpts, content=MSG):
    items = [Item(i, r, "orders@mail.example.com", content) for i, r in enumerate(rcpts)]
    return asyncio.run(world.transport.deliver(domain, items))


def test_mx_in_preference_order_and_next_mx_on_connection_failure(world):
    dest = asyncio.run(world.transport.resolve("multi.dest.example"))
    assert [h for h, _ in dest.hosts] == ["dead.dest.example", "mx.dest.example"]
    [o] = deliver(world, "multi.dest.example", ["ok@multi.dest.example"])
    assert (o.result.status, o.result.failed_type, o.relay) == (0, "SendOk", f"mx.dest.example[127.0.0.1]:{world.mx.port}")
    [m] = world.mx.messages()
    assert (m.rcpt_tos, m.mail_from, m.tls) == (("ok@multi.dest.example",), "orders@mail.example.com", True)


@pytest.mark.parametrize("domain, kind, code", [
    ("nope.dest.example", "nxdomain", 524),
    ("nullmx.dest.example", "null-mx", 526),
    ("nohost.dest.example", "no-mx", 526),
    ("elsewhere.invalid", "servfail", 423),
])
def test_dns_failures_are_the_guides(world, domain, kind, code):
    with pytest.raises(DnsFailure) as exc:
        asyncio.run(world.transport.resolve(domain))
    assert exc.value.kind == kind
    [o] = deliver(world, domain, [f"x@{domain}"])
    assert (o.result.code, o.result.failed_type) == (code, "SysOutDnsResolveFail")


def test_implicit_mx_uses_the_a_record(world):
    [o] = deliver(world, "implicit.dest.example", ["x@implicit.dest.example"])
    assert o.result.status == 0


def test_unreachable_host_is_427_and_retried(world):
    [o] = deliver(world, "down.dest.example", ["x@down.dest.example"])
    assert (o.result.code, o.result.retry) == (427, True)


def test_one_connection_many_messages_and_per_recipient_replies(world):
    rcpts = ["a@dest.example", "nxbox@dest.example", "b@dest.example", "greylist@dest.example"]
    outcomes = deliver(world, "dest.example", rcpts)
    by = {o.recipient_id: o.result for o in outcomes}
    assert (by[0].status, by[2].status) == (0, 0)
    assert (by[1].status, by[1].failed_type, by[1].invalid_address, by[1].retry) == (2, "SmtpNxBox", True, False)
    assert by[3].retry and by[3].status == 4
    # different contents to one destination: one connection, several transactions
    items = [Item(10 + i, f"p{i}@dest.example", "orders@mail.example.com", MSG + str(i).encode()) for i in range(3)]
    out = asyncio.run(world.transport.deliver("dest.example", items))
    assert [o.result.status for o in out] == [0, 0, 0]


def test_dropped_connection_is_a_temporary_failure(world):
    [o] = deliver(world, "dest.example", ["drop@dest.example"])
    assert o.result.retry and o.result.code == 400
