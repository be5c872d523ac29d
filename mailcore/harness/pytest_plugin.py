"""pytest fixtures for the fake MX; load with ``pytest -p mailcore.harness.pytest_plugin``.

* ``fake_mx_clock``: a :class:`~mailcore.harness.ManualClock` (rate limits move only when the test
  calls ``advance``).
* ``fake_mx``: a started :class:`~mailcore.harness.FakeMX` on 127.0.0.1 with STARTTLS and the HTTP
  endpoint, using ``fake_mx_clock``; stopped after the test.
* ``mail_world``: a fake MX and the built-in DNS server serving MX records of ``dest.example`` and
  ``shop.example`` for it; ``mail_world.delivery_settings()`` routes the mail core there.
* ``fake_mx_factory``: ``fake_mx_factory(scenario=None, **kwargs)`` starts more (a second MX that
  rejects at connect, one from a scenario file given as a path or a dict); all stopped after the test.

The mail core itself as a fixture (``mailcore_service``, the virtual clock, expectations on outcomes
and events) is in ``mailcore.testing.pytest_plugin``, which loads this plugin too.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from .scenario import Scenario
from .server import FakeMX, ManualClock


@pytest.fixture
def fake_mx_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def fake_mx_factory(fake_mx_clock):
    started: list[FakeMX] = []

    def make(scenario: Scenario | dict | str | Path | None = None, **kwargs) -> FakeMX:
        if isinstance(scenario, dict):
            scenario = Scenario.from_dict(scenario)
        elif isinstance(scenario, (str, Path)):
            scenario = Scenario.from_yaml(scenario)
        kwargs.setdefault("clock", fake_mx_clock)
        kwargs.setdefault("http", True)
        mx = FakeMX(scenario, **kwargs).start()
        started.append(mx)
        return mx

    yield make
    for mx in started:
        mx.stop()


@pytest.fixture
def fake_mx(fake_mx_factory) -> FakeMX:
    return fake_mx_factory()


class MailWorld:
    """Recipient domains on loopback: the built-in DNS server answers their MX (and A) records,
    pointing at a fake MX. Point the mail core's delivery at it with `delivery_settings()`."""

    def __init__(self, dns, mx: FakeMX, domains: tuple[str, ...]):
        self.dns, self.mx, self.domains = dns, mx, domains

    def delivery_settings(self) -> dict:
        """The `service.delivery` section (or TransportSettings fields) that routes mail here."""
        return {"nameservers": ["127.0.0.1"], "dns_port": self.dns.port, "smtp_port": self.mx.port}


@pytest.fixture
def mail_world(tmp_path_factory, fake_mx_factory):
    """A fake MX plus the built-in DNS server serving the recipient test domains `dest.example`
    and `shop.example` (any local part, see the address scheme); `nxdomain.<domain>` does not
    exist, for the guide's DNS failure."""
    from provision.dnsrunner import DnsServerProcess
    from provision.zonefiles import create_zone_file, zone_path

    domains = ("dest.example", "shop.example")
    mx = fake_mx_factory()
    zones = tmp_path_factory.mktemp("mail-world-zones")
    for domain in domains:
        create_zone_file(zones, domain)
        with zone_path(zones, domain).open("a") as fh:
            for owner, rtype, rdata in mx.dns_records(domain, mx_name=f"mx.{domain}"):
                fh.write(f"{owner} 300 IN {rtype} {rdata}\n")
    dns = DnsServerProcess(zones).start()
    try:
        yield MailWorld(dns, mx, domains)
    finally:
        dns.stop()
