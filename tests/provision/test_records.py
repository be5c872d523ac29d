"""Desired records per domain, the SPF merge table, the lookup-count warning and key generation."""
from __future__ import annotations

import base64

import pytest

from mailcore.spec.model import DomainSpec, RegionSpec
from provision import records
from provision.records import merge_spf, spf_lookups, txt_text, txt_value

INC = "spf.dm.example.org"

# (existing TXT texts at the domain, expected merged SPF text, replaced SPF text or None)
SPF_MERGE_TABLE = [
    ([], f"v=spf1 include:{INC} -all", None),
    (["google-site-verification=abc"], f"v=spf1 include:{INC} -all", None),
    (["v=spf1 -all"], f"v=spf1 include:{INC} -all", "v=spf1 -all"),
    (["v=spf1 include:_spf.google.com ~all"], f"v=spf1 include:_spf.google.com include:{INC} ~all",
     "v=spf1 include:_spf.google.com ~all"),
    (["v=spf1 mx a ?all", "other"], f"v=spf1 mx a include:{INC} ?all", "v=spf1 mx a ?all"),
    (["v=spf1 include:_spf.corp.example"], f"v=spf1 include:_spf.corp.example include:{INC}",
     "v=spf1 include:_spf.corp.example"),
    (["v=spf1 a redirect=_spf.corp.example"], f"v=spf1 a include:{INC} redirect=_spf.corp.example",
     "v=spf1 a redirect=_spf.corp.example"),
    ([f"v=spf1 include:{INC} -all"], f"v=spf1 include:{INC} -all", f"v=spf1 include:{INC} -all"),
    ([f"v=spf1 mx +include:{INC.upper()} -all"], f"v=spf1 mx +include:{INC.upper()} -all",
     f"v=spf1 mx +include:{INC.upper()} -all"),
    (["V=SPF1 ip4:192.0.2.1 -ALL"], f"V=SPF1 ip4:192.0.2.1 include:{INC} -ALL", "V=SPF1 ip4:192.0.2.1 -ALL"),
    (["v=spf10 not-spf"], f"v=spf1 include:{INC} -all", None),
]


@pytest.mark.parametrize("existing,merged,replaced", SPF_MERGE_TABLE)
def test_spf_merge_table(existing, merged, replaced):
    m = merge_spf([txt_value(t) for t in existing], INC)
    assert txt_text(m.value) == merged
    assert (txt_text(m.replaced) if m.replaced else None) == replaced
    assert m.warning is None


def test_two_spf_records_refused():
    with pytest.raises(records.SpfError, match="2 SPF records"):
        merge_spf([txt_value("v=spf1 -all"), txt_value("v=spf1 mx -all")], INC)


@pytest.mark.parametrize("text,count", [
    ("v=spf1 -all", 0),
    ("v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 all", 0),
    ("v=spf1 a mx ptr exists:%{i}.x.example include:a.example redirect=b.example", 6),
    ("v=spf1 a/24 mx:mx.example/24 -include:c.example ~exists:d.example ?ptr:e.example", 5),
    ("v=spf1 exp=explain.example -all", 0),
])
def test_spf_lookup_count(text, count):
    assert spf_lookups(text) == count


def test_lookup_warning_above_ten():
    ten = "v=spf1 " + " ".join(f"include:s{i}.example" for i in range(9)) + " -all"
    assert merge_spf([txt_value(ten)], INC).warning is None  # 9 + ours = 10
    eleven = "v=spf1 " + " ".join(f"include:s{i}.example" for i in range(10)) + " -all"
    m = merge_spf([txt_value(eleven)], INC)
    assert m.lookups == 11 and "11 DNS lookups" in m.warning and "limit of 10" in m.warning


def test_txt_value_splits_at_255_bytes():
    text = "p=" + "A" * 600
    v = txt_value(text)
    parts = v.split(" ")
    assert [len(p) - 2 for p in parts] == [255, 255, 92]
    assert txt_text(v) == text
    assert txt_text(txt_value('say "hi" \\ there')) == 'say "hi" \\ there'


def _domain(**kw):
    base = dict(name="mail.example.com", region="r1", dns="builtin", zone="example.com", tracking=True,
                ttl_seconds=None, dmarc="v=DMARC1; p=none", purpose="trigger", path=())
    base.update(kw)
    return DomainSpec(**base)


REGION = RegionSpec("r1", "mx01.dm.example.org", INC, "tracedm.example.org", ())


def test_desired_records_every_kind():
    recs = records.desired_records(_domain(), REGION, "tok123", "PUBKEY", "sel1")
    by_kind = {r.kind: r for r in recs}
    assert [r.kind for r in recs] == list(records.KINDS)
    assert all(r.zone == "example.com" and r.rs.ttl == 600 for r in recs)
    assert by_kind["ownership"].rs.name_fqdn == "aliyundm.mail.example.com."
    assert by_kind["ownership"].rs.values == ('"tok123"',)
    assert by_kind["spf"].rs.name_fqdn == "mail.example.com." and by_kind["spf"].spf_include == INC
    assert txt_text(by_kind["spf"].rs.values[0]) == f"v=spf1 include:{INC} -all"
    assert by_kind["mx"].rs.values == ("10 mx01.dm.example.org.",)
    assert by_kind["tracking"].rs.name_fqdn == "dmtrace.mail.example.com."
    assert by_kind["tracking"].rs.values == ("tracedm.example.org.",)
    assert by_kind["dkim"].rs.name_fqdn == "sel1._domainkey.mail.example.com."
    assert txt_text(by_kind["dkim"].rs.values[0]) == "v=DKIM1; k=rsa; p=PUBKEY"
    assert by_kind["dmarc"].rs.name_fqdn == "_dmarc.mail.example.com."
    assert by_kind["mx"].key == "mail.example.com/mx"


def test_optional_records_and_ttl():
    recs = records.desired_records(_domain(tracking=False, dmarc=None, ttl_seconds=300, zone=None), REGION, "t", "P")
    assert [r.kind for r in recs] == ["ownership", "spf", "mx", "dkim"]
    assert all(r.rs.ttl == 300 and r.zone == "mail.example.com" for r in recs)
    assert recs[-1].rs.name_fqdn == f"{records.DEFAULT_SELECTOR}._domainkey.mail.example.com."


def test_generate_domain_keys():
    from cryptography.hazmat.primitives import serialization

    k = records.generate_domain_keys()
    assert len(k.ownership_token) == 32 and k.ownership_token != records.generate_domain_keys(1024).ownership_token
    priv = serialization.load_pem_private_key(k.dkim_private_pem.encode(), None)
    assert priv.key_size == 2048
    pub = serialization.load_der_public_key(base64.b64decode(k.dkim_public_b64))
    assert pub.public_numbers() == priv.public_key().public_numbers()
    dkim = txt_value(f"v=DKIM1; k=rsa; p={k.dkim_public_b64}")
    assert dkim.count('" "') == 1  # a 2048-bit key needs two strings
