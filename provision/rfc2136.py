"""A small RFC 2136 (DNS UPDATE) client with TSIG, on dnspython.

Why it exists: the Pulumi dynamic provider (``provision.dynamic``) must never clobber a record
set it does not manage nor silently overwrite a manual edit.  Every write here therefore
carries an RFC 2136 prerequisite, so the *server* decides atomically:

- ``create``  : "rrset must not exist" (CNAME: "name must not be in use") -> :class:`RecordSetExists`
- ``replace`` / ``delete`` : "rrset equals old" (value-dependent, TTL 0 in the prerequisite,
  else Knot and BIND answer FORMERR) -> :class:`RecordSetChanged`
- ``add_rr`` / ``replace_rr`` / ``delete_rr`` : one TXT RR inside an rrset shared with records we
  do not own (SPF lives beside site-verification TXT records); the prerequisite is the whole
  rrset as just read, so a concurrent edit is detected instead of lost.

A prerequisite failure is re-checked with a query: when the server already holds exactly the
wanted result (a previous run crashed after the server applied it) the call succeeds, so a
rerun converges.  Errors are typed and carry one-line messages meant for operators.
"""
from __future__ import annotations

import socket
from dataclasses import dataclass, field

import dns.exception
import dns.flags
import dns.inet
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.tsigkeyring
import dns.update

DEFAULT_TIMEOUT_S = 3.0


# --------------------------------------------------------------------------- errors


class DnsUpdateError(Exception):
    """Base class: a DNS query or update did not do what was asked. ``str()`` is one line."""


class DnsTimeout(DnsUpdateError):
    pass


class DnsUnreachable(DnsUpdateError):
    pass


class DnsRefused(DnsUpdateError):
    pass


class DnsNotAuth(DnsUpdateError):
    """NOTAUTH or a TSIG failure: wrong key, wrong secret, or not authoritative for the zone."""


class DnsServerError(DnsUpdateError):
    """Any other failing rcode (SERVFAIL, FORMERR, NOTZONE, ...)."""


class RecordSetExists(DnsUpdateError):
    """Create refused: a record set we do not manage already exists at the name."""


class RecordSetChanged(DnsUpdateError):
    """Update/delete refused: the record set no longer equals what we wrote (a manual edit)."""


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class TsigKey:
    name: str
    algorithm: str  # e.g. "hmac-sha256"
    secret_b64: str = field(repr=False)

    def keyring(self) -> dict:
        return {dns.name.from_text(self.name): dns.tsig.Key(self.name, self.secret_b64, self.algorithm)}

    @classmethod
    def parse(cls, text: str) -> "TsigKey":
        """``name:algorithm:secret`` (the CLI form used by ``python -m provision.dnsserver``)."""
        name, alg, secret = text.split(":", 2)
        return cls(name, alg, secret)


@dataclass(frozen=True)
class DnsServer:
    host: str
    port: int = 53
    tsig: TsigKey | None = None
    timeout: float = DEFAULT_TIMEOUT_S

    @classmethod
    def parse(cls, server: str, tsig: TsigKey | None = None, timeout: float = DEFAULT_TIMEOUT_S) -> "DnsServer":
        """``host`` or ``host:port`` (``[v6]:port`` for IPv6), as in the config's ``server``."""
        host, port = server, 53
        if server.startswith("["):
            host, _, rest = server[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") else 53
        elif server.count(":") == 1:
            host, p = server.split(":")
            port = int(p)
        return cls(host, port, tsig, timeout)

    def describe(self) -> str:
        return f"{self.host}:{self.port}"


def fqdn(name: str) -> str:
    name = name.strip().lower()
    return name if name.endswith(".") else name + "."


def canonical_values(rtype: str, values) -> tuple[str, ...]:
    """Presentation-format values normalised by dnspython and sorted (rrset equality ignores order)."""
    rdtype = dns.rdatatype.from_text(rtype)
    return tuple(sorted({dns.rdata.from_text(dns.rdataclass.IN, rdtype, v, dns.name.root, relativize=False).to_text() for v in values}))


@dataclass(frozen=True)
class RecordSet:
    name_fqdn: str
    rtype: str
    ttl: int
    values: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "name_fqdn", fqdn(self.name_fqdn))
        object.__setattr__(self, "rtype", self.rtype.upper())
        object.__setattr__(self, "values", canonical_values(self.rtype, self.values))

    def describe(self) -> str:
        return f"{self.name_fqdn} {self.rtype}"

    def rdatas(self) -> list[dns.rdata.Rdata]:
        rdtype = dns.rdatatype.from_text(self.rtype)
        return [dns.rdata.from_text(dns.rdataclass.IN, rdtype, v, dns.name.root, relativize=False) for v in self.values]

    def same_data(self, other: "RecordSet | None") -> bool:
        return other is not None and (self.name_fqdn, self.rtype, self.values) == (other.name_fqdn, other.rtype, other.values)

    def shown(self) -> str:
        return f"{self.describe()} ttl={self.ttl} [{', '.join(self.values)}]"


def _shown(rs: RecordSet | None) -> str:
    return rs.shown() if rs else "nothing"


# --------------------------------------------------------------------------- transport


def _address(server: DnsServer, what: str) -> str:
    """The server's IP address (config may name it by host name)."""
    try:
        dns.inet.af_for_address(server.host)
        return server.host
    except ValueError:
        pass
    try:
        return socket.getaddrinfo(server.host, server.port, proto=socket.IPPROTO_UDP)[0][4][0]
    except (socket.gaierror, IndexError) as e:
        raise DnsUnreachable(f"{what}: cannot resolve DNS server name {server.host} ({e})") from None


def _exchange(server: DnsServer, msg: dns.message.Message, what: str) -> dns.message.Message:
    """Send over UDP, retry over TCP when truncated; map transport failures to typed errors."""
    where = _address(server, what)
    try:
        resp, _tcp = dns.query.udp_with_fallback(msg, where, timeout=server.timeout, port=server.port)
        return resp
    except dns.exception.Timeout:
        raise DnsTimeout(f"{what}: no answer from {server.describe()} within {server.timeout:g}s") from None
    except dns.tsig.PeerError as e:  # the server signed its error: the key or signature was refused
        raise DnsNotAuth(f"{what}: {server.describe()} rejected the TSIG signature ({type(e).__name__}); "
                         "check the key name, algorithm and secret") from None
    except dns.tsig.BadSignature:
        raise DnsNotAuth(f"{what}: the answer from {server.describe()} failed TSIG verification; check the secret") from None
    except (ConnectionRefusedError, socket.gaierror, OSError) as e:
        raise DnsUnreachable(f"{what}: cannot reach {server.describe()} ({e.strerror or e})") from None
    except dns.exception.FormError as e:
        if server.tsig and "requires a TSIG" in str(e):  # an unsigned error reply to a signed request
            raise DnsNotAuth(f"{what}: {server.describe()} refused the TSIG key {server.tsig.name} "
                             "(unsigned error reply); check the key name, algorithm and secret") from None
        raise DnsServerError(f"{what}: bad answer from {server.describe()} ({e})") from None
    except dns.exception.DNSException as e:
        raise DnsServerError(f"{what}: bad answer from {server.describe()} ({e})") from None


def _raise_for_rcode(server: DnsServer, rcode: int, what: str) -> None:
    text = dns.rcode.to_text(rcode)
    if rcode == dns.rcode.REFUSED:
        raise DnsRefused(f"{what}: {server.describe()} answered REFUSED (not allowed by its policy, or not its zone)")
    if rcode == dns.rcode.NOTAUTH:
        raise DnsNotAuth(f"{what}: {server.describe()} answered NOTAUTH (update not signed with a key it accepts, "
                         "or not authoritative for the zone)")
    raise DnsServerError(f"{what}: {server.describe()} answered {text}")


# --------------------------------------------------------------------------- queries


def query(server: DnsServer, name: str, rtype: str) -> RecordSet | None:
    """The rrset at ``name``/``rtype`` as the server holds it (direct, no recursion), or None."""
    name = fqdn(name)
    rdtype = dns.rdatatype.from_text(rtype)
    msg = dns.message.make_query(name, rdtype, want_dnssec=False)
    msg.flags &= ~dns.flags.RD
    if server.tsig:
        msg.use_tsig(server.tsig.keyring(), keyname=dns.name.from_text(server.tsig.name))
    what = f"query {name} {rtype.upper()}"
    resp = _exchange(server, msg, what)
    if resp.rcode() == dns.rcode.NXDOMAIN:
        return None
    if resp.rcode() != dns.rcode.NOERROR:
        _raise_for_rcode(server, resp.rcode(), what)
    qname = dns.name.from_text(name)
    for rrset in resp.answer:
        if rrset.name == qname and rrset.rdtype == rdtype:
            return RecordSet(name, rtype, rrset.ttl, tuple(rd.to_text() for rd in rrset))
    return None


# --------------------------------------------------------------------------- updates


def _update(server: DnsServer, zone: str) -> dns.update.UpdateMessage:
    if server.tsig:
        return dns.update.UpdateMessage(fqdn(zone), keyring=server.tsig.keyring(),
                                        keyname=dns.name.from_text(server.tsig.name),
                                        keyalgorithm=server.tsig.algorithm)
    return dns.update.UpdateMessage(fqdn(zone))


def _send(server: DnsServer, upd: dns.update.UpdateMessage, what: str) -> int:
    """Send an update; return NOERROR or a prerequisite rcode; raise for everything else."""
    resp = _exchange(server, upd, what)
    rcode = resp.rcode()
    if rcode in (dns.rcode.NOERROR, dns.rcode.YXRRSET, dns.rcode.NXRRSET, dns.rcode.YXDOMAIN, dns.rcode.NXDOMAIN):
        return rcode
    _raise_for_rcode(server, rcode, what)
    return rcode  # pragma: no cover


def _prereq_equals(upd: dns.update.UpdateMessage, rs: RecordSet) -> None:
    # present(name, rdata...) puts TTL 0 in the prerequisite, as RFC 2136 3.2.4 wants.
    upd.present(dns.name.from_text(rs.name_fqdn), *rs.rdatas())


def _prereq_absent(upd: dns.update.UpdateMessage, rs: RecordSet) -> None:
    name = dns.name.from_text(rs.name_fqdn)
    if rs.rtype == "CNAME":
        upd.absent(name)  # a CNAME may not share its name with any other data
    else:
        upd.absent(name, rs.rtype)


def _check_same_set(old: RecordSet | None, new: RecordSet | None) -> None:
    sets = [r for r in (old, new) if r is not None]
    if len({(r.name_fqdn, r.rtype) for r in sets}) > 1:
        raise ValueError("old and new must name the same record set")


def create(server: DnsServer, zone: str, rs: RecordSet) -> None:
    """Add ``rs`` only if no rrset exists at its name and type (any data at all, for a CNAME)."""
    upd = _update(server, zone)
    _prereq_absent(upd, rs)
    upd.add(dns.name.from_text(rs.name_fqdn), rs.ttl, *rs.rdatas())
    what = f"create {rs.describe()}"
    if _send(server, upd, what) == dns.rcode.NOERROR:
        return
    live = query(server, rs.name_fqdn, rs.rtype)
    if live is not None and live.same_data(rs) and live.ttl == rs.ttl:
        return  # already exactly as wanted (an earlier run got this far): adopt
    if live is None and rs.rtype == "CNAME":
        raise RecordSetExists(f"{what}: the name {rs.name_fqdn} already holds other records, "
                              "which a CNAME may not share; remove them or pick another name")
    raise RecordSetExists(f"{what}: an unmanaged record set already exists there ({_shown(live)}); "
                          "remove it by hand or import it, it will not be overwritten")


def replace(server: DnsServer, zone: str, old: RecordSet, new: RecordSet) -> None:
    """Replace rrset ``old`` by ``new`` only if the server still holds exactly ``old``."""
    _check_same_set(old, new)
    upd = _update(server, zone)
    _prereq_equals(upd, old)
    name = dns.name.from_text(new.name_fqdn)
    upd.delete(name, new.rtype)
    upd.add(name, new.ttl, *new.rdatas())
    what = f"update {new.describe()}"
    if _send(server, upd, what) == dns.rcode.NOERROR:
        return
    live = query(server, new.name_fqdn, new.rtype)
    if live is not None and live.same_data(new) and live.ttl == new.ttl:
        return
    raise RecordSetChanged(f"{what}: changed outside mailcore (expected {old.shown()}, found {_shown(live)}); "
                           "restore it or remove it by hand, it will not be overwritten")


def delete(server: DnsServer, zone: str, rs: RecordSet) -> None:
    """Delete rrset ``rs`` only if the server still holds exactly it; already gone counts as done."""
    upd = _update(server, zone)
    _prereq_equals(upd, rs)
    upd.delete(dns.name.from_text(rs.name_fqdn), rs.rtype)
    what = f"delete {rs.describe()}"
    if _send(server, upd, what) == dns.rcode.NOERROR:
        return
    live = query(server, rs.name_fqdn, rs.rtype)
    if live is None:
        return
    raise RecordSetChanged(f"{what}: changed outside mailcore (expected {rs.shown()}, found {live.shown()}); "
                           "it was left in place")


# ---- single RRs inside a shared rrset (SPF among other TXT records)


def _one(rtype: str, value: str) -> str:
    return canonical_values(rtype, [value])[0]


def add_rr(server: DnsServer, zone: str, current: RecordSet | None, name: str, rtype: str, ttl: int, value: str) -> RecordSet:
    """Add one RR to the rrset at ``name``, which must still equal ``current`` (None: absent).

    The new RR takes the existing rrset's TTL (one rrset has one TTL).  Returns the new rrset.
    """
    value = _one(rtype, value)
    probe = RecordSet(name, rtype, ttl, (value,))
    _check_same_set(current, probe)
    upd = _update(server, zone)
    if current is None:
        _prereq_absent(upd, probe)
        result = probe
    else:
        _prereq_equals(upd, current)
        result = RecordSet(name, rtype, current.ttl, current.values + (value,))
    upd.add(dns.name.from_text(probe.name_fqdn), result.ttl, *probe.rdatas())
    what = f"add to {probe.describe()}"
    if _send(server, upd, what) == dns.rcode.NOERROR:
        return result
    live = query(server, probe.name_fqdn, rtype)
    if live is not None and live.same_data(result):
        return live
    raise RecordSetChanged(f"{what}: changed while being updated (expected {_shown(current)}, found {_shown(live)}); "
                           "rerun to retry")


def replace_rr(server: DnsServer, zone: str, current: RecordSet, old_value: str, new_value: str) -> RecordSet:
    """Swap one RR of ``current`` (which the server must still hold exactly) for ``new_value``."""
    old_value, new_value = _one(current.rtype, old_value), _one(current.rtype, new_value)
    if old_value not in current.values:
        raise RecordSetChanged(f"update {current.describe()}: the record {old_value} is no longer there "
                               f"(found {current.shown()}); restore it or remove the others by hand")
    rest = tuple(v for v in current.values if v != old_value)
    result = RecordSet(current.name_fqdn, current.rtype, current.ttl, rest + (new_value,))
    upd = _update(server, zone)
    _prereq_equals(upd, current)
    name = dns.name.from_text(current.name_fqdn)
    old_rd = RecordSet(current.name_fqdn, current.rtype, current.ttl, (old_value,)).rdatas()
    upd.delete(name, *old_rd)
    upd.add(name, current.ttl, *RecordSet(current.name_fqdn, current.rtype, current.ttl, (new_value,)).rdatas())
    what = f"update {current.describe()}"
    if _send(server, upd, what) == dns.rcode.NOERROR:
        return result
    live = query(server, current.name_fqdn, current.rtype)
    if live is not None and live.same_data(result):
        return live
    raise RecordSetChanged(f"{what}: changed outside mailcore (expected {current.shown()}, found {_shown(live)}); "
                           "it will not be overwritten")


def delete_rr(server: DnsServer, zone: str, current: RecordSet, value: str) -> RecordSet | None:
    """Remove one RR from ``current`` (which the server must still hold exactly); returns what is left."""
    value = _one(current.rtype, value)
    rest = tuple(v for v in current.values if v != value)
    if len(rest) == len(current.values):
        return current
    upd = _update(server, zone)
    _prereq_equals(upd, current)
    name = dns.name.from_text(current.name_fqdn)
    upd.delete(name, *RecordSet(current.name_fqdn, current.rtype, current.ttl, (value,)).rdatas())
    result = RecordSet(current.name_fqdn, current.rtype, current.ttl, rest) if rest else None
    what = f"delete from {current.describe()}"
    if _send(server, upd, what) == dns.rcode.NOERROR:
        return result
    live = query(server, current.name_fqdn, current.rtype)
    if live is None or value not in live.values:
        return live
    raise RecordSetChanged(f"{what}: changed outside mailcore (expected {current.shown()}, found {live.shown()}); "
                           "it was left in place")
