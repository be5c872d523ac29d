"""The harness's `mail_world` fixture as a user's suite would use it: delivery through the built-in
DNS server's MX records to the fake MX."""
from __future__ import annotations

import asyncio

from mailcore.delivery.transport import Item, Transport, TransportSettings
from mailcore.harness.pytest_plugin import fake_mx_clock, fake_mx_factory, mail_world  # noqa: F401


def test_mail_world_routes_recipient_domains_to_the_fake_mx(mail_world):
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
