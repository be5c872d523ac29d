"""The DNS stack end to end: real Pulumi CLI, file backend, the dynamic provider, a real DNS server.

One long scenario per server (the built-in one and Knot) because every Pulumi run costs seconds.
"""
from __future__ import annotations

import dataclasses

import pytest

from mailcore.spec.model import DnsBackendSpec, DomainSpec, RegionSpec
from provision import rfc2136
from provision.program import DnsApplyError, DnsStack, backend_environment, make_program
from provision.records import generate_domain_keys, txt_text, txt_value
from provision.rfc2136 import RecordSet

REGION = RegionSpec("r1", "mx01.dm.example.org", "spf.dm.example.org", "tracedm.example.org", ())
KEYS = {}


def _domain(name, zone, **kw):
    base = dict(name=name, region="r1", dns="test", zone=zone, tracking=False, ttl_seconds=None, dmarc=None,
                purpose="trigger", path=())
    base.update(kw)
    return DomainSpec(**base)


def _keys(*names):
    for n in names:
        if n not in KEYS:
            k = generate_domain_keys(1024)  # size does not matter here; 1024 keeps the test fast
            KEYS[n] = (k.ownership_token, "sel1", k.dkim_public_b64)
    return {n: KEYS[n] for n in names}


def _stack(tmp_path, dns, pulumi_bin, domains):
    backend = DnsBackendSpec("test", "rfc2136", {
        "server": dns.address,
        "tsig": {"name": dns.key.name, "algorithm": dns.key.algorithm, "secret": {"env": "TEST_TSIG"}},
    }, ())
    env = backend_environment({"test": backend}, {"TEST_TSIG": dns.key.secret_b64})
    program = make_program(domains, {"r1": REGION}, {"test": backend}, _keys(*(d.name for d in domains)))
    return DnsStack(tmp_path / "state", program, passphrase="test-passphrase", env=env, bin_dir=pulumi_bin), backend


def test_reconcile_scenario(tmp_path, dns_server, pulumi_bin):
    s = dns_server.server
    # an existing SPF (and an unrelated TXT) at one domain: ours must be merged into it
    rfc2136.create(s, "example.net", RecordSet("news.example.net", "TXT", 300,
                                               (txt_value("v=spf1 include:_spf.corp.example ~all"), '"other=1"')))
    domains = [_domain("mail.example.com", "example.com", tracking=True, dmarc="v=DMARC1; p=none"),
               _domain("news.example.net", "example.net")]
    stack, backend = _stack(tmp_path, dns_server, pulumi_bin, domains)

    first = stack.preview()
    assert first.has_changes and first.changes.get("create") == 11  # + the stack
    assert {st.name for st in first.steps if st.op == "create"} >= {"mail.example.com/mx", "news.example.net/spf"}

    lines: list[str] = []
    up = stack.up(progress=lines.append)
    assert up.changes.get("create") == 11 and any("mail.example.com/dkim" in ln for ln in lines)

    assert rfc2136.query(s, "mail.example.com", "MX").values == ("10 mx01.dm.example.org.",)
    assert rfc2136.query(s, "dmtrace.mail.example.com", "CNAME").values == ("tracedm.example.org.",)
    assert rfc2136.query(s, "aliyundm.mail.example.com", "TXT").values == (f'"{KEYS["mail.example.com"][0]}"',)
    dkim = rfc2136.query(s, "sel1._domainkey.news.example.net", "TXT")
    assert txt_text(dkim.values[0]) == f"v=DKIM1; k=rsa; p={KEYS['news.example.net'][2]}"
    assert txt_text(rfc2136.query(s, "_dmarc.mail.example.com", "TXT").values[0]) == "v=DMARC1; p=none"
    net_txt = {txt_text(v) for v in rfc2136.query(s, "news.example.net", "TXT").values}
    assert net_txt == {"v=spf1 include:_spf.corp.example include:spf.dm.example.org ~all", "other=1"}
    com_txt = {txt_text(v) for v in rfc2136.query(s, "mail.example.com", "TXT").values}
    assert com_txt == {"v=spf1 include:spf.dm.example.org -all"}

    said: list[str] = []
    again = stack.preview(progress=said.append)  # answered from state + live DNS, without Pulumi
    assert not again.has_changes and again.changes == {"same": 11} and "unchanged" in said[0]
    real = stack.preview(shortcut=False)
    assert real.changes == again.changes and {st.name for st in real.steps} == {st.name for st in again.steps}

    # a manual edit (drift, R10): the preview shows it; the next up repairs it, no more and no less
    mx = rfc2136.query(s, "mail.example.com", "MX")
    rfc2136.replace(s, "example.com", mx, RecordSet("mail.example.com", "MX", 600, ("10 elsewhere.example.",)))
    drift = stack.preview()
    assert [(st.op, st.name) for st in drift.steps if st.op != "same"] == [("update", "mail.example.com/mx")]
    stack.up()
    assert rfc2136.query(s, "mail.example.com", "MX").values == mx.values
    assert not stack.preview().has_changes

    # a new domain whose DKIM name already holds an unmanaged record set: create stops, naming it
    rfc2136.create(s, "example.com", RecordSet("sel1._domainkey.shop.example.com", "TXT", 600, ('"v=DKIM1; p=theirs"',)))
    stack.program = make_program(domains + [_domain("shop.example.com", "example.com")], {"r1": REGION},
                                 {"test": backend}, _keys("mail.example.com", "news.example.net", "shop.example.com"))
    with pytest.raises(DnsApplyError) as e:
        stack.up()
    msg = str(e.value)
    assert "sel1._domainkey.shop.example.com. TXT" in msg and "unmanaged" in msg and "\n" not in msg
    assert rfc2136.query(s, "sel1._domainkey.shop.example.com", "TXT").values == ('"v=DKIM1; p=theirs"',)

    # removing everything gives back the original SPF and leaves the unmanaged record alone
    stack.program = make_program([], {"r1": REGION}, {"test": backend}, {})
    stack.up()
    net_txt = {txt_text(v) for v in rfc2136.query(s, "news.example.net", "TXT").values}
    assert net_txt == {"v=spf1 include:_spf.corp.example ~all", "other=1"}
    assert rfc2136.query(s, "mail.example.com", "MX") is None
    assert rfc2136.query(s, "sel1._domainkey.shop.example.com", "TXT") is not None


def test_changed_input_updates_record(tmp_path, builtin_dns, pulumi_bin):
    s = builtin_dns.server
    d = _domain("mail.example.com", "example.com")
    stack, backend = _stack(tmp_path, builtin_dns, pulumi_bin, [d])
    stack.up()
    stack.program = make_program([dataclasses.replace(d, ttl_seconds=120)], {"r1": REGION}, {"test": backend},
                                 _keys("mail.example.com"))
    pv = stack.preview()
    assert pv.changes.get("update") == 4  # ownership, spf, mx, dkim
    stack.up()
    assert rfc2136.query(s, "mail.example.com", "MX").ttl == 120
    assert not stack.preview().has_changes


def test_missing_tsig_secret_is_one_line(tmp_path, builtin_dns, pulumi_bin):
    d = _domain("mail.example.com", "example.com")
    stack, _backend = _stack(tmp_path, builtin_dns, pulumi_bin, [d])
    stack.extra_env = {}  # the secret's variable is not passed to the provider
    with pytest.raises(DnsApplyError) as e:
        stack.up()
    assert "MAILCORE_DNS_TSIG_TEST is not set" in str(e.value) and "\n" not in str(e.value)
