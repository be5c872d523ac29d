"""The built-in authoritative DNS server: zone files in, TSIG-signed RFC 2136 UPDATEs, queries out.

Why it exists: a fresh machine has no DNS server the project could publish a sending domain's
records to, and the end-to-end tests need one that starts in milliseconds.  It is deliberately
small: one process, zones loaded from ``<dir>/<zone>.zone``, every accepted update written back
to that file atomically (a crash never leaves half a zone), SOA serial bumped per update.
Real servers (Knot, BIND) are what production uses; the RFC 2136 behaviour here follows them
(prerequisites, NOTAUTH for a bad key, REFUSED for an unsigned update) so the same client and
tests run against both.

Run it in the foreground::

    MAILCORE_DNS_KEYS=mailcore-key.:hmac-sha256:SECRET python -m provision.dnsserver --zones DIR --port 15353

TSIG keys (``NAME:ALGORITHM:SECRET``, several separated by whitespace) come from the environment
variable ``MAILCORE_DNS_KEYS`` or from ``--key-file PATH`` (one per line, the file readable by its
owner only), never from the command line, where every local user could read the secret (ps, /proc).

or in-process (tests): ``with DnsServerProcess(zone_dir, keys=[key]) as srv: srv.port``.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import io
import logging
import os
import signal
import struct
import sys
import threading
from pathlib import Path
from typing import Iterable

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rrset
import dns.serial
import dns.tsig
import dns.zone

from .zonefiles import (
    ZONE_SUFFIX,
    ZoneLoadError,
    create_zone_file,
    load_zone,
    save_zone,
    zone_path,
)

from .rfc2136 import TsigKey
from .tsigkeys import KEYS_ENV, read_keys

log = logging.getLogger("mailcore.dnsserver")


UDP_LIMIT = 512


class Authority:
    """The zones and the keys; turns one request wire into one or more response wires.

    Pure and synchronous so it can be tested without sockets; the asyncio transport below only
    frames bytes.
    """

    def __init__(self, zone_dir: Path | str, keys: Iterable[TsigKey] = ()) -> None:
        self.zone_dir = Path(zone_dir)
        self.keyring = {dns.name.from_text(k.name): dns.tsig.Key(k.name, k.secret_b64, k.algorithm) for k in keys}
        self.zones: dict[dns.name.Name, dns.zone.Zone] = {}
        self.reload()

    def reload(self) -> None:
        zones = {}
        for path in sorted(self.zone_dir.glob("*" + ZONE_SUFFIX)):
            z = load_zone(path)
            zones[z.origin] = z
        self.zones = zones

    def find_zone(self, name: dns.name.Name) -> dns.zone.Zone | None:
        best = None
        for origin, z in self.zones.items():
            if name.is_subdomain(origin) and (best is None or len(origin) > len(best.origin)):
                best = z
        return best

    # ---- entry point

    def handle(self, wire: bytes, *, tcp: bool) -> list[bytes]:
        try:
            msg = dns.message.from_wire(wire, keyring=self.keyring)
            signed_ok = msg.had_tsig
        except dns.message.UnknownTSIGKey as e:
            log.info("TSIG rejected: %s", e)
            return self._error_reply(wire, dns.rcode.NOTAUTH, dns.rcode.BADKEY)
        except (dns.tsig.BadSignature, dns.tsig.BadKey, dns.tsig.BadAlgorithm) as e:
            log.info("TSIG rejected: %s", e)
            return self._error_reply(wire, dns.rcode.NOTAUTH, dns.rcode.BADSIG)
        except dns.tsig.BadTime as e:
            log.info("TSIG rejected: %s", e)
            return self._error_reply(wire, dns.rcode.NOTAUTH, dns.rcode.BADTIME)
        except dns.exception.DNSException:
            return self._error_reply(wire, dns.rcode.FORMERR)
        try:
            opcode = msg.opcode()
            if opcode == dns.opcode.UPDATE:
                resp = self._update(msg, signed_ok)
            elif opcode == dns.opcode.QUERY:
                if msg.question and msg.question[0].rdtype == dns.rdatatype.AXFR:
                    resp = self._axfr(msg, signed_ok, tcp)
                else:
                    resp = self._query(msg)
            else:
                resp = dns.message.make_response(msg)
                resp.set_rcode(dns.rcode.NOTIMP)
        except Exception:  # never let one bad packet stop the server
            log.exception("internal error")
            resp = dns.message.make_response(msg)
            resp.set_rcode(dns.rcode.SERVFAIL)
        return [self._to_wire(resp, msg, tcp)]

    def _error_reply(self, wire: bytes, rcode: int, tsig_error: int | None = None) -> list[bytes]:
        """An error answer; for a refused TSIG, an unsigned TSIG RR carrying the error (RFC 8945 5.3.2)."""
        try:
            msg = dns.message.from_wire(wire, keyring=False)
        except dns.exception.DNSException:
            if len(wire) < 12:
                return []
            # Echo id and opcode with the error; nothing else can be trusted.
            (qid, flags) = struct.unpack("!HH", wire[:4])
            return [struct.pack("!HHHHHH", qid, (flags | 0x8000) & 0xF800 | rcode, 0, 0, 0, 0)]
        resp = dns.message.make_response(msg)
        resp.set_rcode(rcode)
        out = resp.to_wire()
        if tsig_error is not None and msg.had_tsig and msg.tsig:
            tsig = msg.tsig[0]
            rd = tsig.replace(mac=b"", error=tsig_error, other=b"")
            buf = io.BytesIO()
            dns.rrset.from_rdata(msg.tsig.name, 0, rd).to_wire(buf)
            arcount = struct.unpack("!H", out[10:12])[0] + 1
            out = out[:10] + struct.pack("!H", arcount) + out[12:] + buf.getvalue()
        return [out]

    def _to_wire(self, resp: dns.message.Message, query: dns.message.Message, tcp: bool) -> bytes:
        limit = 65535 if tcp else max(UDP_LIMIT, query.payload if query.edns >= 0 else UDP_LIMIT)
        try:
            return resp.to_wire(max_size=limit)
        except dns.exception.TooBig:
            resp.answer.clear()
            resp.authority.clear()
            resp.additional.clear()
            resp.flags |= dns.flags.TC
            return resp.to_wire()

    # ---- queries

    def _query(self, msg: dns.message.Message) -> dns.message.Message:
        resp = dns.message.make_response(msg)
        resp.flags &= ~dns.flags.RA
        if len(msg.question) != 1:
            resp.set_rcode(dns.rcode.FORMERR)
            return resp
        q = msg.question[0]
        zone = self.find_zone(q.name)
        if zone is None or q.rdclass != dns.rdataclass.IN:
            resp.set_rcode(dns.rcode.REFUSED)
            return resp
        resp.flags |= dns.flags.AA
        node = zone.get_node(q.name)
        if node is not None and len(node.rdatasets):
            if q.rdtype == dns.rdatatype.ANY:
                for rds in node.rdatasets:
                    resp.answer.append(_rrset(q.name, rds))
                return resp
            rds = node.get_rdataset(dns.rdataclass.IN, q.rdtype)
            if rds is None and q.rdtype != dns.rdatatype.CNAME:
                rds = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.CNAME)
            if rds is not None:
                resp.answer.append(_rrset(q.name, rds))
                return resp
        elif not self._has_descendant(zone, q.name):
            resp.set_rcode(dns.rcode.NXDOMAIN)
        soa = zone.get_rdataset(zone.origin, dns.rdatatype.SOA)
        rr = _rrset(zone.origin, soa)
        rr.update_ttl(min(soa.ttl, soa[0].minimum))
        resp.authority.append(rr)
        return resp

    @staticmethod
    def _has_descendant(zone: dns.zone.Zone, name: dns.name.Name) -> bool:
        """An empty non-terminal exists (NODATA, not NXDOMAIN)."""
        return any(n != name and n.is_subdomain(name) for n in zone.nodes)

    def _axfr(self, msg: dns.message.Message, signed_ok: bool, tcp: bool) -> dns.message.Message:
        resp = dns.message.make_response(msg)
        zone = self.zones.get(msg.question[0].name)
        if not tcp or not signed_ok or zone is None:
            resp.set_rcode(dns.rcode.REFUSED if zone is None or not signed_ok else dns.rcode.FORMERR)
            return resp
        resp.flags |= dns.flags.AA
        soa = _rrset(zone.origin, zone.get_rdataset(zone.origin, dns.rdatatype.SOA))
        resp.answer.append(soa)
        for name, node in sorted(zone.nodes.items()):
            for rds in node.rdatasets:
                if not (name == zone.origin and rds.rdtype == dns.rdatatype.SOA):
                    resp.answer.append(_rrset(name, rds))
        resp.answer.append(soa)
        return resp

    # ---- updates (RFC 2136 section 3)

    def _update(self, msg: dns.message.Message, signed_ok: bool) -> dns.message.Message:
        resp = dns.message.make_response(msg)

        def fail(rcode: int, why: str) -> dns.message.Message:
            log.info("update refused (%s): %s", dns.rcode.to_text(rcode), why)
            resp.set_rcode(rcode)
            return resp

        if len(msg.zone) != 1 or msg.zone[0].rdtype != dns.rdatatype.SOA:
            return fail(dns.rcode.FORMERR, "zone section must hold one SOA question")
        zone = self.zones.get(msg.zone[0].name)
        if zone is None:
            return fail(dns.rcode.NOTAUTH, f"not authoritative for {msg.zone[0].name}")
        if not signed_ok:
            return fail(dns.rcode.REFUSED, "update not signed with TSIG")

        rcode = self._check_prerequisites(zone, msg.prerequisite)
        if rcode != dns.rcode.NOERROR:
            return fail(rcode, "prerequisite failed")
        rcode = self._prescan(zone, msg.update)
        if rcode != dns.rcode.NOERROR:
            return fail(rcode, "malformed update section")

        new = copy.deepcopy(zone)
        if self._apply(new, msg.update):
            _bump_serial(new)
            try:
                save_zone(new, zone_path(self.zone_dir, new.origin.to_text()))
            except OSError as e:
                return fail(dns.rcode.SERVFAIL, f"cannot persist zone: {e}")
            self.zones[new.origin] = new
        return resp

    @staticmethod
    def _check_prerequisites(zone: dns.zone.Zone, prereqs: list[dns.rrset.RRset]) -> int:
        wanted: dict[tuple, dns.rdataset.Rdataset] = {}
        for rr in prereqs:
            if rr.ttl != 0:
                return dns.rcode.FORMERR
            if not rr.name.is_subdomain(zone.origin):
                return dns.rcode.NOTZONE
            node = zone.get_node(rr.name)
            in_use = node is not None and len(node.rdatasets) > 0
            if rr.deleting in (dns.rdataclass.ANY, dns.rdataclass.NONE):
                if len(rr):
                    return dns.rcode.FORMERR
                exists = in_use if rr.rdtype == dns.rdatatype.ANY else (
                    in_use and node.get_rdataset(dns.rdataclass.IN, rr.rdtype) is not None)
                if rr.deleting == dns.rdataclass.ANY and not exists:
                    return dns.rcode.NXDOMAIN if rr.rdtype == dns.rdatatype.ANY else dns.rcode.NXRRSET
                if rr.deleting == dns.rdataclass.NONE and exists:
                    return dns.rcode.YXDOMAIN if rr.rdtype == dns.rdatatype.ANY else dns.rcode.YXRRSET
            elif rr.rdclass == dns.rdataclass.IN:
                key = (rr.name, rr.rdtype)
                acc = wanted.setdefault(key, dns.rdataset.Rdataset(dns.rdataclass.IN, rr.rdtype))
                for rd in rr:
                    acc.add(rd)
            else:
                return dns.rcode.FORMERR
        for (name, rdtype), acc in wanted.items():
            have = zone.get_rdataset(name, rdtype)
            if have is None or set(have) != set(acc):
                return dns.rcode.NXRRSET
        return dns.rcode.NOERROR

    @staticmethod
    def _prescan(zone: dns.zone.Zone, updates: list[dns.rrset.RRset]) -> int:
        meta = {dns.rdatatype.ANY, dns.rdatatype.AXFR, dns.rdatatype.IXFR, dns.rdatatype.MAILA,
                dns.rdatatype.MAILB, dns.rdatatype.TSIG, dns.rdatatype.OPT}
        for rr in updates:
            if not rr.name.is_subdomain(zone.origin):
                return dns.rcode.NOTZONE
            if rr.deleting is None:
                if rr.rdclass != dns.rdataclass.IN or rr.rdtype in meta:
                    return dns.rcode.FORMERR
            elif rr.deleting == dns.rdataclass.ANY:
                if rr.ttl != 0 or len(rr) or rr.rdtype in meta - {dns.rdatatype.ANY}:
                    return dns.rcode.FORMERR
            elif rr.deleting == dns.rdataclass.NONE:
                if rr.ttl != 0 or rr.rdtype in meta:
                    return dns.rcode.FORMERR
            else:
                return dns.rcode.FORMERR
        return dns.rcode.NOERROR

    @staticmethod
    def _apply(zone: dns.zone.Zone, updates: list[dns.rrset.RRset]) -> bool:
        """Apply the update section in order (RFC 2136 3.4.2); True when the zone changed."""
        changed = False
        apex = zone.origin
        protected = {dns.rdatatype.SOA, dns.rdatatype.NS}
        for rr in updates:
            node = zone.get_node(rr.name)
            if rr.deleting is None:  # add to an rrset
                if rr.rdtype == dns.rdatatype.SOA:
                    if rr.name != apex:
                        continue
                    cur = zone.get_rdataset(apex, dns.rdatatype.SOA)
                    if cur is not None and dns.serial.Serial(rr[0].serial) <= dns.serial.Serial(cur[0].serial):
                        continue
                if node is not None:
                    has_cname = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.CNAME) is not None
                    others = any(r.rdtype not in (dns.rdatatype.CNAME, dns.rdatatype.RRSIG, dns.rdatatype.NSEC)
                                 for r in node.rdatasets)
                    if rr.rdtype == dns.rdatatype.CNAME and others:
                        continue  # RFC 2136 3.4.2.2: a CNAME may not join other data
                    if rr.rdtype != dns.rdatatype.CNAME and has_cname:
                        continue
                rds = zone.find_rdataset(rr.name, rr.rdtype, create=True)
                before = (set(rds), rds.ttl)
                if rr.rdtype in (dns.rdatatype.SOA, dns.rdatatype.CNAME):
                    rds.clear()
                for rd in rr:
                    rds.add(rd)
                rds.ttl = rr.ttl  # one rrset, one TTL: the newest wins (as BIND and Knot do)
                changed |= (set(rds), rds.ttl) != before
            elif rr.deleting == dns.rdataclass.ANY:
                if node is None:
                    continue
                if rr.rdtype == dns.rdatatype.ANY:
                    for rds in list(node.rdatasets):
                        if rr.name == apex and rds.rdtype in protected:
                            continue
                        zone.delete_rdataset(rr.name, rds.rdtype)
                        changed = True
                else:
                    if rr.name == apex and rr.rdtype in protected:
                        continue
                    if zone.get_rdataset(rr.name, rr.rdtype) is not None:
                        zone.delete_rdataset(rr.name, rr.rdtype)
                        changed = True
            else:  # NONE: delete individual RRs
                if rr.rdtype == dns.rdatatype.SOA:
                    continue
                rds = zone.get_rdataset(rr.name, rr.rdtype)
                if rds is None:
                    continue
                for rd in rr:
                    if rd in rds:
                        if rr.name == apex and rr.rdtype == dns.rdatatype.NS and len(rds) == 1:
                            continue
                        rds.discard(rd)
                        changed = True
                if len(rds) == 0:
                    zone.delete_rdataset(rr.name, rr.rdtype)
            if node is not None and not len(node.rdatasets) and rr.name != apex:
                zone.delete_node(rr.name)
        return changed


def _bump_serial(zone: dns.zone.Zone) -> None:
    soa = zone.find_rdataset(zone.origin, dns.rdatatype.SOA)
    old = soa[0]
    serial = (dns.serial.Serial(old.serial) + 1).value
    soa.clear()
    soa.add(old.replace(serial=serial))


def _rrset(name: dns.name.Name, rds: dns.rdataset.Rdataset) -> dns.rrset.RRset:
    rrset = dns.rrset.RRset(name, rds.rdclass, rds.rdtype)
    rrset.update(rds)
    return rrset


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, authority: Authority) -> None:
        self.authority = authority

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        for out in self.authority.handle(data, tcp=False):
            self.transport.sendto(out, addr)


async def _tcp_client(authority: Authority, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            try:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                data = await reader.readexactly(length)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            for out in authority.handle(data, tcp=True):
                writer.write(struct.pack("!H", len(out)) + out)
            await writer.drain()
    finally:
        writer.close()


async def start_listeners(authority: Authority, host: str, port: int):
    """Bind UDP and TCP on the same port (port 0: a free one). Returns (udp_transport, tcp_server, port)."""
    loop = asyncio.get_running_loop()
    for _attempt in range(20):
        udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(authority), local_addr=(host, port))
        bound = udp.get_extra_info("sockname")[1]
        try:
            tcp = await asyncio.start_server(lambda r, w: _tcp_client(authority, r, w), host, bound)
        except OSError:
            udp.close()
            if port:
                raise
            continue
        return udp, tcp, bound
    raise OSError(f"no free port on {host} for both UDP and TCP")


async def serve(zone_dir: Path | str, host: str = "127.0.0.1", port: int = 15353,
                keys: Iterable[TsigKey] = (), *, ready: "threading.Event | None" = None,
                stop: "asyncio.Event | None" = None, on_bound=None) -> None:
    """Serve until ``stop`` is set (or forever)."""
    authority = Authority(zone_dir, keys)
    udp, tcp, bound = await start_listeners(authority, host, port)
    if on_bound:
        on_bound(authority, bound)
    if ready:
        ready.set()
    try:
        await (stop.wait() if stop else asyncio.Event().wait())
    finally:
        udp.close()
        tcp.close()
        await tcp.wait_closed()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m provision.dnsserver",
                                 description="Authoritative DNS server with TSIG-signed RFC 2136 updates. TSIG keys "
                                             f"(NAME:ALG:SECRET) come from ${KEYS_ENV} or --key-file.")
    ap.add_argument("--zones", type=Path, required=True, help="directory of <zone>.zone files")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=15353)
    ap.add_argument("--key-file", type=Path, metavar="PATH",
                    help="TSIG keys allowed to update, NAME:ALG:SECRET per line; the file must be mode 0600")
    ap.add_argument("--key", action="append", default=[], help=argparse.SUPPRESS)
    ap.add_argument("--create-zone", action="append", default=[], metavar="ZONE",
                    help="create ZONE's file (SOA, NS, NS A) if it does not exist yet")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    if args.key:  # never echo it: it holds a secret
        print(f"error: --key puts the TSIG secret on the command line, where every local user can read it; "
              f"pass it in ${KEYS_ENV} or --key-file (mode 0600)", file=sys.stderr)
        return 2
    try:
        keys = read_keys(args.key_file)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    os.environ.pop(KEYS_ENV, None)  # not inherited by anything this process starts
    for z in args.create_zone:
        if not zone_path(args.zones, z).exists():
            create_zone_file(args.zones, z)
    if not args.zones.is_dir():
        print(f"error: zone directory {args.zones} does not exist", file=sys.stderr)
        return 2

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        def bound(authority: Authority, port: int) -> None:
            zones = ", ".join(sorted(z.to_text() for z in authority.zones)) or "none"
            print(f"dnsserver listening on {args.host}:{port} (udp+tcp); zones: {zones}", file=sys.stderr, flush=True)

        await serve(args.zones, args.host, args.port, keys, stop=stop, on_bound=bound)

    try:
        asyncio.run(run())
    except (ZoneLoadError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
