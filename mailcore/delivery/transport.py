"""Delivery: find the recipient domain's mail servers and hand messages to them over SMTP.

MX lookup with dnspython in preference order, the implicit MX (A/AAAA) when there is none, null
MX, NXDOMAIN and SERVFAIL as the guide's DNS failures (423/524/526); aiosmtplib with
opportunistic STARTTLS; the next MX when a connection fails (427 when none answers); one
connection reused for every message to the destination. The resolver's servers and port and
the SMTP port are settings, so tests point everything at loopback.

Failures stay with their recipient (issue 11): an address that cannot go on the wire (a DNS
label over 63 octets, ...) is bounced 553 5.1.3 before any lookup; the domain is looked up as
IDNA A-labels; a non-ASCII local part is sent with SMTPUTF8 when the next hop offers it and
bounced 553 5.6.7 when it does not; a message that cannot be built is deferred 451 4.3.0 with
the reason, without opening a transaction. Anything else unforeseen is the caller's (qmgr defers
the recipients it had not reported).
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

from mailcore.delivery.address import wire_address
from mailcore.delivery.bounce import (Classification, classify, classify_bad_address, classify_connect_failure,
                                      classify_dns_failure, classify_dropped, classify_local_error,
                                      classify_smtputf8_unavailable)


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
    wire: str | None = None  # the RCPT form (A-label domain), set by deliver()
    utf8: bool = False  # the address needs SMTPUTF8 (a non-ASCII local part)

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
        except dns.exception.DNSException:  # anything else the resolver raises: temporary, retried
            raise DnsFailure("servfail") from None
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

        items, bad = _on_the_wire(items)
        if bad:
            await done(bad)
        if not items:
            return outcomes
        try:
            dest = await self._resolve_cached(items[0].wire.rpartition("@")[2])  # the A-label form
        except DnsFailure as exc:
            result = classify_dns_failure(exc.kind)
            await done([Outcome(i.recipient_id, result) for i in items])
            return outcomes
        pending, hosts = list(items), list(dest.hosts)
        while pending and hosts:
            host, addr = hosts[0]
            relay = f"{host}[{addr}]:{self.settings.smtp_port}"
            try:
                client = await self._connect(host, addr)
            except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
                hosts.pop(0)
                continue  # the next MX (RFC 5321 5.1)
            try:
                # a dropped connection fails only the transaction in flight; the rest go on a new one
                pending = await self._session(client, relay, pending, done)
            finally:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
                    client.close()
        if not pending:
            return outcomes
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

    async def _session(self, client: aiosmtplib.SMTP, relay: str, items: list[Item], done) -> list[Item]:
        """Send each group of items sharing envelope and content as one transaction (at most
        max_rcpts_per_transaction RCPTs each); reuse the connection. When the connection drops,
        the transaction in flight is classified as dropped (retried later) and the items not
        tried yet are returned, for a new connection: one recipient whose server hangs up on it
        does not defer the others."""
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
            await done([Outcome(i.recipient_id, dropped, relay) for i in transactions[sent]])
            return [i for g in transactions[sent + 1:] for i in g]
        return []

    async def _transaction(self, client: aiosmtplib.SMTP, relay: str, group: list[Item]) -> list[Outcome]:
        first = group[0]
        try:
            data = first.data()  # before MAIL: a message that cannot be built opens no transaction
        except Exception as exc:  # noqa: BLE001 - contained to this group, with the reason
            result = classify_local_error(f"message not built: {type(exc).__name__}: {exc}")
            return [Outcome(i.recipient_id, result, relay) for i in group]
        out: list[Outcome] = []
        sender, sender_utf8 = wire_address(first.envelope_from) if "@" in first.envelope_from else (first.envelope_from, False)
        utf8 = client.supports_extension("smtputf8")
        if not utf8:  # RFC 6531 3.2: a UTF-8 address cannot be sent to a server without SMTPUTF8
            refused = [i for i in group if sender_utf8 or i.utf8]
            if refused:
                result = classify_smtputf8_unavailable()
                out += [Outcome(i.recipient_id, result, relay) for i in refused]
                group = [i for i in group if i not in refused]
                if not group:
                    return out
        needs_utf8 = utf8 and (sender_utf8 or any(i.utf8 for i in group))
        encoding = "utf-8" if needs_utf8 else "ascii"
        try:
            await client.mail(sender, options=["SMTPUTF8"] if needs_utf8 else None, encoding=encoding)
        except aiosmtplib.SMTPResponseException as exc:
            result = classify(exc.code, exc.message, phase="mail")
            await _rset(client)
            return out + [Outcome(i.recipient_id, result, relay) for i in group]
        accepted = []
        for item in group:
            try:
                await client.rcpt(item.wire or item.rcpt, encoding=encoding)
                accepted.append(item)
            except aiosmtplib.SMTPResponseException as exc:
                out.append(Outcome(item.recipient_id, classify(exc.code, exc.message, phase="rcpt"), relay))
        if not accepted:
            await _rset(client)
            return out
        try:
            response = await client.data(data)
            result = classify(response.code, response.message, phase="data")
        except aiosmtplib.SMTPResponseException as exc:
            result = classify(exc.code, exc.message, phase="data")
            await _rset(client)
        return out + [Outcome(i.recipient_id, result, relay) for i in accepted]


def _on_the_wire(items: list[Item]) -> tuple[list[Item], list[Outcome]]:
    """(the items whose address can be sent, with their wire form set; outcomes for the rest)."""
    ok, bad = [], []
    for item in items:
        try:
            item.wire, item.utf8 = wire_address(item.rcpt)
        except ValueError as exc:
            bad.append(Outcome(item.recipient_id, classify_bad_address(str(exc))))
            continue
        ok.append(item)
    return ok, bad


async def _rset(client: aiosmtplib.SMTP) -> None:
    try:
        await client.rset()
    except aiosmtplib.SMTPResponseException:
        pass
