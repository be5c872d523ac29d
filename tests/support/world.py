"""Recipient-side world on loopback: the built-in DNS server serving recipient domains' MX
records, and a fake MX (the harness) behind them."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from mailcore.delivery.transport import Transport, TransportSettings
from mailcore.harness import FakeMX, ManualClock
from provision.dnsrunner import DnsServerProcess
from provision.zonefiles import create_zone_file, zone_path

# zone dest.example: every record a delivery test needs
RECORDS = """
@            MX 10 mx.dest.example.
mx           A  127.0.0.1
multi        MX 10 dead.dest.example.
multi        MX 20 mx.dest.example.
dead         A  127.0.0.2
implicit     A  127.0.0.1
nullmx       MX 0 .
nohost       MX 10 missing.dest.example.
down         MX 10 dead.dest.example.
"""


@dataclass
class World:
    dns: DnsServerProcess
    mx: FakeMX
    transport: Transport


@pytest.fixture
def world(tmp_path):
    zones = tmp_path / "zones"
    create_zone_file(zones, "dest.example")
    with zone_path(zones, "dest.example").open("a") as fh:
        fh.write(RECORDS)
    dns = DnsServerProcess(zones).start()
    mx = FakeMX(clock=ManualClock()).start()
    transport = Transport(TransportSettings(nameservers=["127.0.0.1"], dns_port=dns.port, smtp_port=mx.port,
                                            connect_timeout=3, command_timeout=10, dns_timeout=2))
    try:
        yield World(dns, mx, transport)
    finally:
        mx.stop()
        dns.stop()
