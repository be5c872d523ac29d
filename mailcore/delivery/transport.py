"""Delivery: find the recipient domain's mail servers and hand messages to them over SMTP.

MX lookup with dnspython in preference order, the implicit MX (A/AAAA) when there is none, null
MX, NXDOMAIN and SERVFAIL as the guide's DNS failures (423/524/526); aiosmtplib with
opportunistic STARTTLS; the next MX when a connection fails (427 when none answers); one
connection reused for every message to the destination. The resolver's servers and port and
the SMTP port are settings, so tests point everything at loopback.
"""
from __future__ import annotations

import asyncio
import random
import ssl
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable

import aiosmtplib
import dns.asyncresolver
import dns.exception
import dns.rdatatype
import dns.resolver

from mailcore.delivery.bounce import Classification, classify, classify_connect_failure, classify_dns_failure, classify_dropped


@dataclass
class TransportSettings:
    nameservers: list[str] | None = None  # None: the system's resolvers
    dns_port: int = 53
    smtp_port: int = 25
    helo: str = "mailcore.localdomain"
    connect_timeout: float = 30.0
    command_timeout: float = 300.0
    dns_timeout: float = 10.0
    starttls: bool = True  # opportunistic: used when offered, certificates not verified (RFC 7435)
    max_rcpts_per_transaction: int = 50  # Postfix's smtp_destination_recipient_limit
    mx_cache_seconds: float = 30.0  # one MX lookup serves every connection to a destination meanwhile


@dataclass
class Item:
    recipient_id: int
    rcpt: str
    envelope_from: str
    content: bytes | Callable[[], bytes]  # a callable renders it when its transaction starts
    group: object = None  # items of one group share envelope and bytes: one transaction, several RCPTs

    def key(self) -> tuple:
        return (self.envelope_from, self.group if self.group is not None else self.content)

    def data(self) -> bytes:
        return self.content() if callable(self.content) else self.content


Report = Callable[[list["Outcome"]], Awaitable[None]]


@dataclass
class Outcome:
    recipient_id: int
    result: Classification
    relay: str = "none"


class DnsFailure(Exception):
    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


@dataclass
class Destination:
    domain: str
    hosts: list[tuple[str, str]] = field(default_factory=list)  # (mx host name, address) in try order


class Transport:
    def __init__(self, settings: TransportSettings | None = None):
        self.settings = settings or TransportSettings()
        r = dns.asyncresolver.Resolver(configure=self.settings.nameservers is None)
        if self.settings.nameservers is not None:
            r.nameservers = list(self.settings.nameservers)
            r.port = self.settings.dns_port
        r.lifetime = self.settings.dns_timeout
        r.timeout = self.settings.dns_timeout
        self.resolver = r
        self._tls = ssl.create_default_context()
        self._tls.check_hostname = False
        self._tls.verify_mode = ssl.CERT_NONE
        self._mx_cache: dict[str, tuple[float, object]] = {}

    async def _addresses(self, host: str) -> list[str]:
        out = []
        for rdtype in ("A", "AAAA"):
            try:
                answer = await self.resolver.resolve(host, rdtype)
                out.extend(r.address for r in answer)
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers, dns.exception.Timeout):
                continue
        return out

    async def resolve(self, domain: str) -> Destination:
        """MX hosts by preference (random among equals), each host's addresses; raises DnsFailure."""
        try:
            answer = await self.resolver.resolve(domain, "MX")
            records = sorted(answer, key=lambda r: (r.preference, random.random()))
            if len(records) == 1 and records[0].exchange.to_text() in (".", ""):
                raise DnsFailure("null-mx")
            names = [r.exchange.to_text().rstrip(".") for r in records]
        except dns.resolver.NXDOMAIN:
            raise DnsFailure("nxdomain") from None
        except dns.resolver.NoAnswer:
            names = [domain]  # RFC 5321 5.1: the implicit MX
        except dns.resolver.NoNameservers:
            raise DnsFailure("servfail") from None
        except dns.exception.Timeout:
            raise DnsFailure("timeout") from None
        dest = Destination(domain)
        for name in names:
            for addr in await self._addresses(name):
                dest.hosts.append((name, addr))
        if not dest.hosts:
            raise DnsFailure("no-mx" if names != [domain] else "nodata")
        return dest

    async def _resolve_cached(self, domain: str) -> Destination:
        hit = self._mx_cache.get(domain)
        mono = time.monotonic()
        if hit and mono - hit[0] < self.settings.mx_cache_seconds:
            if isinstance(hit[1], DnsFailure):
                raise hit[1]
            return hit[1]
        try:
            dest = await self.resolve(domain)
        except DnsFailure as exc:
            self._mx_cache[domain] = (mono, exc)
            raise
        self._mx_cache[domain] = (mono, dest)
        return dest

    async def deliver(self, domain: str, items: list[Item], report: Report | None = None) -> list[Outcome]:
        """Deliver every item to one destination domain; one outcome per item. `report` is awaited
        with each transaction's outcomes as soon as it ends, so they can be recorded at once (the
        shorter the time between a 250 and its record, the fewer duplicates a crash can cause)."""
        outcomes: list[Outcome] = []

        async def done(batch: list[Outcome]) -> None:
            outcomes.extend(batch)
            if report is not None:
                await report(batch)

        try:
            dest = await self._resolve_cached(domain)
        except DnsFailure as exc:
            result = classify_dns_failure(exc.kind)
            await done([Outcome(i.recipient_id, result) for i in items])
            return outcomes
        pending = list(items)
        for host, addr in dest.hosts:
            relay = f"{host}[{addr}]:{self.settings.smtp_port}"
            try:
                client = await self._connect(host, addr)
            except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
                continue  # the next MX (RFC 5321 5.1)
            try:
                await self._session(client, relay, pending, done)
                return outcomes
            finally:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
                    client.close()
        result = classify_connect_failure(domain)
        await done([Outcome(i.recipient_id, result) for i in pending])
        return outcomes

    async def _connect(self, host: str, addr: str) -> aiosmtplib.SMTP:
        s = self.settings
        client = aiosmtplib.SMTP(hostname=addr, port=s.smtp_port, local_hostname=s.helo, timeout=s.command_timeout,
                                 start_tls=False, use_tls=False)
        await asyncio.wait_for(client.connect(), s.connect_timeout)
        await client.ehlo()
        if s.starttls and client.supports_extension("starttls"):
            await client.starttls(tls_context=self._tls, server_hostname=host)
            await client.ehlo()
        return client

    async def _session(self, client: aiosmtplib.SMTP, relay: str, items: list[Item], done) -> None:
        """Send each group of items sharing envelope and content as one transaction (at most
        max_rcpts_per_transaction RCPTs each); reuse the connection."""
        groups: dict[tuple, list[Item]] = {}
        for item in items:
            groups.setdefault(item.key(), []).append(item)
        n = self.settings.max_rcpts_per_transaction
        transactions = [g[i:i + n] for g in groups.values() for i in range(0, len(g), n)]
        sent = 0
        try:
            for group in transactions:
                await done(await self._transaction(client, relay, group))
                sent += 1
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPConnectError, OSError, asyncio.TimeoutError,
                aiosmtplib.SMTPTimeoutError):
            dropped = classify_dropped()
            await done([Outcome(i.recipient_id, dropped, relay) for g in transactions[sent:] for i in g])

    async def _transaction(self, client: aiosmtplib.SMTP, relay: str, group: list[Item]) -> list[Outcome]:
        first = group[0]
        try:
            await client.mail(first.envelope_from)
        except aiosmtplib.SMTPResponseException as exc:
            result = classify(exc.code, exc.message, phase="mail")
            await _rset(client)
            return [Outcome(i.recipient_id, result, relay) for i in group]
        accepted, out = [], []
        for item in group:
            try:
                await client.rcpt(item.rcpt)
                accepted.append(item)
            except aiosmtplib.SMTPResponseException as exc:
                out.append(Outcome(item.recipient_id, classify(exc.code, exc.message, phase="rcpt"), relay))
        if not accepted:
            await _rset(client)
            return out
        try:
            response = await client.data(first.data())
            result = classify(response.code, response.message, phase="data")
        except aiosmtplib.SMTPResponseException as exc:
            result = classify(exc.code, exc.message, phase="data")
            await _rset(client)
        return out + [Outcome(i.recipient_id, result, relay) for i in accepted]


async def _rset(client: aiosmtplib.SMTP) -> None:
    try:
        await client.rset()
    except aiosmtplib.SMTPResponseException:
        pass
