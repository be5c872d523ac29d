"""The RFC 2136 client against the built-in server and against Knot (same tests, both servers)."""
from __future__ import annotations

import base64
import dataclasses

import pytest

from provision import rfc2136
from provision.rfc2136 import DnsServer, RecordSet, TsigKey


def txt(name, *values, ttl=600):
    return RecordSet(name, "TXT", ttl, tuple(values))


def test_create_query_replace_delete(dns_server):
    s = dns_server.server
    rs = txt("a.example.com", '"hello"', '"world"')
    assert rfc2136.query(s, "a.example.com", "TXT") is None
    rfc2136.create(s, "example.com", rs)
    live = rfc2136.query(s, "a.example.com.", "TXT")
    assert live == rs
    new = txt("a.example.com", '"bye"', ttl=300)
    rfc2136.replace(s, "example.com", rs, new)
    assert rfc2136.query(s, "a.example.com", "TXT") == new
    rfc2136.delete(s, "example.com", new)
    assert rfc2136.query(s, "a.example.com", "TXT") is None
    rfc2136.delete(s, "example.com", new)  # already gone: done, so a rerun converges


def test_record_types(dns_server):
    s = dns_server.server
    sets = [
        RecordSet("mail.example.net", "MX", 600, ("10 mx01.dm.example.org.",)),
        RecordSet("dmtrace.mail.example.net", "CNAME", 600, ("tracedm.example.org.",)),
        RecordSet("k._domainkey.mail.example.net", "TXT", 600, ('"v=DKIM1; k=rsa; p=' + "A" * 230 + '" "' + "B" * 140 + '"',)),
    ]
    for rs in sets:
        rfc2136.create(s, "example.net", rs)
        assert rfc2136.query(s, rs.name_fqdn, rs.rtype) == rs


def test_create_refuses_to_clobber(dns_server):
    s = dns_server.server
    rfc2136.create(s, "example.com", txt("b.example.com", '"manual"'))
    with pytest.raises(rfc2136.RecordSetExists) as e:
        rfc2136.create(s, "example.com", txt("b.example.com", '"ours"'))
    assert "b.example.com. TXT" in str(e.value) and "manual" in str(e.value) and "\n" not in str(e.value)
    assert rfc2136.query(s, "b.example.com", "TXT").values == ('"manual"',)
    # exactly what we wanted already there (a crashed earlier run): adopted, no error
    rfc2136.create(s, "example.com", txt("b.example.com", '"manual"'))


def test_cname_refused_beside_other_data(dns_server):
    s = dns_server.server
    rfc2136.create(s, "example.com", txt("dmtrace.m.example.com", '"x"'))
    with pytest.raises(rfc2136.RecordSetExists, match="dmtrace.m.example.com"):
        rfc2136.create(s, "example.com", RecordSet("dmtrace.m.example.com", "CNAME", 600, ("t.example.org.",)))


def test_manual_edit_detected(dns_server):
    s = dns_server.server
    ours = txt("c.example.com", '"ours"')
    rfc2136.create(s, "example.com", ours)
    manual = txt("c.example.com", '"edited by hand"')
    rfc2136.replace(s, "example.com", ours, manual)  # someone else's edit
    with pytest.raises(rfc2136.RecordSetChanged) as e:
        rfc2136.replace(s, "example.com", ours, txt("c.example.com", '"ours v2"'))
    assert "c.example.com. TXT" in str(e.value) and "edited by hand" in str(e.value)
    with pytest.raises(rfc2136.RecordSetChanged):
        rfc2136.delete(s, "example.com", ours)
    assert rfc2136.query(s, "c.example.com", "TXT") == manual


def test_single_rr_in_shared_rrset(dns_server):
    s = dns_server.server
    other = '"google-site-verification=abc"'
    rfc2136.create(s, "example.com", txt("example.com", other))
    cur = rfc2136.query(s, "example.com", "TXT")
    spf = '"v=spf1 include:spf.example.org -all"'
    after = rfc2136.add_rr(s, "example.com", cur, "example.com", "TXT", 600, spf)
    assert rfc2136.query(s, "example.com", "TXT").values == after.values == tuple(sorted((other, spf)))
    spf2 = '"v=spf1 include:_spf.corp.example include:spf.example.org -all"'
    after2 = rfc2136.replace_rr(s, "example.com", after, spf, spf2)
    assert set(rfc2136.query(s, "example.com", "TXT").values) == {other, spf2} == set(after2.values)
    with pytest.raises(rfc2136.RecordSetChanged):  # stale view of the rrset
        rfc2136.replace_rr(s, "example.com", after, spf, '"v=spf1 -all"')
    left = rfc2136.delete_rr(s, "example.com", after2, spf2)
    assert left.values == (other,) == rfc2136.query(s, "example.com", "TXT").values
    assert rfc2136.add_rr(s, "example.net", None, "example.net", "TXT", 300, spf).values == (spf,)


def test_unsigned_update_refused(dns_server):
    s = dataclasses.replace(dns_server.server, tsig=None)
    with pytest.raises((rfc2136.DnsRefused, rfc2136.DnsNotAuth)) as e:
        rfc2136.create(s, "example.com", txt("d.example.com", '"x"'))
    assert "\n" not in str(e.value)
    assert rfc2136.query(s, "d.example.com", "TXT") is None


@pytest.mark.parametrize("which", ["secret", "name"])
def test_wrong_key_refused(dns_server, which):
    good = dns_server.key
    bad = TsigKey(good.name if which == "secret" else "other-key.", good.algorithm,
                  base64.b64encode(b"x" * 32).decode() if which == "secret" else good.secret_b64)
    s = dataclasses.replace(dns_server.server, tsig=bad)
    with pytest.raises(rfc2136.DnsNotAuth) as e:
        rfc2136.create(s, "example.com", txt("e.example.com", '"x"'))
    assert "\n" not in str(e.value)
    assert rfc2136.query(dataclasses.replace(s, tsig=None), "e.example.com", "TXT") is None


def test_timeout_and_unreachable():
    import socket

    from tests.support.dns import free_port

    with pytest.raises(rfc2136.DnsUnreachable, match="cannot resolve DNS server name ns1.nonexistent.invalid"):
        rfc2136.query(DnsServer("ns1.nonexistent.invalid", 53, None, 0.2), "example.com", "SOA")
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:  # swallows datagrams: a timeout
        sink.bind(("127.0.0.1", port))
        with pytest.raises(rfc2136.DnsTimeout, match=f"127.0.0.1:{port}"):
            rfc2136.query(DnsServer("127.0.0.1", port, None, 0.2), "x.example.com", "A")


def test_not_our_zone(dns_server):
    with pytest.raises((rfc2136.DnsNotAuth, rfc2136.DnsServerError, rfc2136.DnsRefused)) as e:
        rfc2136.create(dns_server.server, "example.org", txt("x.example.org", '"x"'))
    assert "\n" not in str(e.value)


def test_server_parse():
    assert DnsServer.parse("127.0.0.1:15353") == DnsServer("127.0.0.1", 15353)
    assert DnsServer.parse("ns1.example.com") == DnsServer("ns1.example.com", 53)
    assert DnsServer.parse("[::1]:5353") == DnsServer("::1", 5353)
    assert TsigKey.parse("k.:hmac-sha256:c2VjcmV0") == TsigKey("k.", "hmac-sha256", "c2VjcmV0")
