"""The harness's `mail_world` fixture as a user's suite would use it: delivery through the built-in
DNS server's MX records to the fake MX."""
from __future__ import annotations

import asyncio

from mailcore.delivery.transport import Item, Transport, TransportSettings
from mailcore.harness.pytest_plugin import fake_mx_clock, fake_mx_factory, mail_world  # noqa: F401


def test_mail_world_routes_recipient_domains_to_the_fake_mx(mail_world):  # noqa: F811 (the fixture)
    transport = Transport(TransportSettings(**mail_world.delivery_settings()))
    msg = b"From: a@shop.example\r\nSubject: s\r\n\r\nhi\r\n"
    items = [Item(1, "ok@dest.example", "a@mail.example.com", msg), Item(2, "nxbox@dest.example", "a@mail.example.com", msg)]
    out = {o.recipient_id: o.result for o in asyncio.run(transport.deliver("dest.example", items))}
    assert (out[1].status, out[2].failed_type) == (0, "SmtpNxBox")
    [o] = asyncio.run(transport.deliver("shop.example", [Item(3, "x@shop.example", "a@mail.example.com", msg)]))
    assert o.result.status == 0 and o.relay.startswith("mx.shop.example[127.0.0.1]")
    [o] = asyncio.run(transport.deliver("nxdomain.dest.example", [Item(4, "x@nxdomain.dest.example", "a@m.example", msg)]))
    assert o.result.code == 524
    assert [m.rcpt_tos for m in mail_world.mx.messages()] == [("ok@dest.example",), ("x@shop.example",)]


def test_recipient_world_routes_the_test_domains_and_nothing_else():
    import pytest

    from mailcore.harness.world import DEV_DOMAINS, RecipientWorld
    with pytest.raises(ValueError, match="under .test"):
        RecipientWorld(("dest.example",))
    msg = b"From: a@mail.example.com\r\nSubject: s\r\n\r\nhi\r\n"
    with RecipientWorld() as world:
        transport = Transport(TransportSettings(**world.delivery_settings(), dns_timeout=2))
        for domain in DEV_DOMAINS:
            [o] = asyncio.run(transport.deliver(domain, [Item(1, f"success@{domain}", "a@mail.example.com", msg)]))
            assert o.result.status == 0, (domain, o.result)
        [o] = asyncio.run(transport.deliver("dest.test", [Item(2, "nxbox@dest.test", "a@mail.example.com", msg)]))
        assert o.result.failed_type == "SmtpNxBox"
        [o] = asyncio.run(transport.deliver("other.test", [Item(3, "success@other.test", "a@mail.example.com", msg)]))
        assert o.result.status != 0  # not one of the world's domains: not delivered
        assert sorted(r for m in world.mx.messages() for r in m.rcpt_tos) == sorted(f"success@{d}" for d in DEV_DOMAINS)
        assert any(world.mx.http_url in line for line in world.describe())
    assert world.dns is None
