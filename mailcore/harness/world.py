"""A recipient world on loopback in one call: a fake MX (with its JSON endpoint) and the built-in
DNS server answering the MX records of the recipient test domains, pointing at it.

`mailcore serve --dev` starts one so that mail to ``success@dest.test``, ``nxbox@dest.test`` (550),
``greylist@dest.test`` ... is delivered or bounced on this machine; tests and users' own scripts
can start one too::

    with RecipientWorld() as world:          # dest.test, shop.test, example.test
        settings = world.delivery_settings()  # the `service.delivery` section that routes mail here
        ...
        world.mx.messages(rcpt="success@dest.test")   # or GET {world.mx.http_url}/messages

The DNS server holds one zone, ``test.`` (RFC 6761 reserves the name), with an MX record for each
domain of `domains` and the A record of the fake MX's name. Any other ``.test`` domain does not
exist (NXDOMAIN: delivery bounces it at once), and a name outside ``test.`` is refused, so mail
routed here never leaves the machine.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from .scenario import Scenario
from .server import FakeMX

DEV_DOMAINS = ("dest.test", "shop.test", "example.test")  # recipient domains whose MX is the fake MX
MX_NAME = "mx.harness.test"


class RecipientWorld:
    """A fake MX plus the DNS that routes `domains` to it. `start()` / `stop()` or a `with` block."""

    def __init__(self, domains: tuple[str, ...] = DEV_DOMAINS, *, host: str = "127.0.0.1",
                 scenario: Scenario | None = None, http_port: int = 0, clock=None) -> None:
        bad = [d for d in domains if not d.lower().rstrip(".").endswith(".test")]
        if bad:
            raise ValueError(f"recipient world domains must be under .test (RFC 6761), not {', '.join(bad)}")
        self.domains = tuple(d.lower().rstrip(".") for d in domains)
        self.host = host
        self.mx = FakeMX(scenario, host=host, http=True, http_port=http_port, clock=clock)
        self.dns = None
        self._zones: str | None = None

    def start(self) -> "RecipientWorld":
        from provision.dnsrunner import DnsServerProcess
        from provision.zonefiles import create_zone_file, zone_path

        self.mx.start()
        try:
            self._zones = tempfile.mkdtemp(prefix="mailcore-world-")
            create_zone_file(self._zones, "test")
            with zone_path(self._zones, "test").open("a") as fh:
                for owner, rtype, rdata in self.mx.dns_records(*self.domains, mx_name=MX_NAME):
                    fh.write(f"{owner} 60 IN {rtype} {rdata}\n")
            self.dns = DnsServerProcess(Path(self._zones), host=self.host).start()
        except BaseException:
            self.stop()
            raise
        return self

    def delivery_settings(self) -> dict:
        """The `service.delivery` section (or TransportSettings fields) that routes mail here."""
        return {"nameservers": [self.host], "dns_port": self.dns.port, "smtp_port": self.mx.port}

    def describe(self) -> list[str]:
        """What a user needs to know, one line each (printed by `serve --dev`)."""
        return [f"fake MX on {self.host}:{self.mx.port}; what it received: GET {self.mx.http_url}/messages",
                f"recipient domains {', '.join(self.domains)} -> the fake MX (DNS {self.host}:{self.dns.port}); "
                f"the local part picks the answer (success, nxbox, spam, greylist, full, ...; see mailcore.harness); "
                f"any other domain is not delivered"]

    def stop(self) -> None:
        if self.dns is not None:
            self.dns.stop()
            self.dns = None
        self.mx.stop()
        if self._zones:
            shutil.rmtree(self._zones, ignore_errors=True)
            self._zones = None

    def __enter__(self) -> "RecipientWorld":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
