"""Cloud DNS mappings (Alibaba Cloud DNS, Cloudflare, Route53) under Pulumi's mocks.

Their provider plugins download at run time, which cannot work here, so these tests check what
the program *declares*: resource types, names, zones and values, one row per record kind.
"""
from __future__ import annotations

import asyncio

import pulumi
import pytest

from mailcore.spec.model import DnsBackendSpec, DomainSpec, RegionSpec
from provision import cloud, records
from provision.program import make_program


class Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.created: list[tuple[str, str, dict]] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.created.append((args.typ, args.name, dict(args.inputs)))
        return [f"{args.name}-id", dict(args.inputs)]

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


@pytest.fixture
def mocks():
    # Pulumi's mock runtime uses the thread's current event loop; earlier tests (asyncio.run)
    # may have left none, so give it its own.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    m = Mocks()
    pulumi.runtime.set_mocks(m, preview=False)
    try:
        yield m
    finally:
        asyncio.set_event_loop(None)
        loop.close()


REGION = RegionSpec("r1", "mx01.dm.example.org", "spf.dm.example.org", "tracedm.example.org", ())
DOMAIN = DomainSpec("mail.example.com", "r1", "cloud", "example.com", True, 300, "v=DMARC1; p=none", "trigger", ())
PUB = "MIIB" + "A" * 400  # long enough for two TXT strings
RECS = records.desired_records(DOMAIN, REGION, "tok", PUB, "sel1")
BACKENDS = {
    "alidns": DnsBackendSpec("cloud", "alidns", {"access_key_id": {"env": "T_AK"}, "access_key_secret": {"env": "T_SK"}}, ()),
    "cloudflare": DnsBackendSpec("cloud", "cloudflare", {"zone_id": "zone123", "api_token": {"env": "T_CF"}}, ()),
    "route53": DnsBackendSpec("cloud", "route53", {"hosted_zone_id": "Z123", "region": "ap-southeast-1"}, ()),
}
ENV = {"T_AK": "ak", "T_SK": "sk", "T_CF": "cf-token"}

# kind -> (alidns rr, alidns/cloudflare value, MX priority)
EXPECTED = {
    "ownership": ("aliyundm.mail", "tok", None),
    "spf": ("mail", "v=spf1 include:spf.dm.example.org -all", None),
    "mx": ("mail", "mx01.dm.example.org", 10),
    "tracking": ("dmtrace.mail", "tracedm.example.org", None),
    "dkim": ("sel1._domainkey.mail", f"v=DKIM1; k=rsa; p={PUB}", None),
    "dmarc": ("_dmarc.mail", "v=DMARC1; p=none", None),
}


def _declare(kind: str):
    c = cloud.CloudRecords(ENV)
    res = []
    for rec in RECS:
        res += c.declare(rec, BACKENDS[kind])
    return pulumi.Output.all(*[r.urn for r in res])


def _secret_value(v):
    """Credentials must reach the provider as Pulumi secrets (a signed wrapper), never as plain inputs."""
    assert isinstance(v, dict) and len(v) == 2, f"not a secret: {v!r}"
    return v["value"]


def _records(mocks, typ):
    return {name: inputs for t, name, inputs in mocks.created if t == typ}


@pulumi.runtime.test
def test_alidns(mocks):
    def check(_):
        got = _records(mocks, "alicloud:dns/alidnsRecord:AlidnsRecord")
        assert set(got) == {r.key for r in RECS}
        for rec in RECS:
            rr, value, prio = EXPECTED[rec.kind]
            i = got[rec.key]
            assert (i["domainName"], i["rr"], i["type"], i["value"], i["ttl"]) == ("example.com", rr, rec.rs.rtype, value, 300)
            assert i.get("priority") == prio
        prov = _records(mocks, "pulumi:providers:alicloud")["dns-cloud"]
        assert _secret_value(prov["accessKey"]) == "ak" and _secret_value(prov["secretKey"]) == "sk"
    return _declare("alidns").apply(check)


@pulumi.runtime.test
def test_cloudflare(mocks):
    def check(_):
        got = _records(mocks, "cloudflare:index/dnsRecord:DnsRecord")
        for rec in RECS:
            _rr, value, prio = EXPECTED[rec.kind]
            i = got[rec.key]
            assert (i["zoneId"], i["name"], i["type"], i["content"], i["ttl"]) == (
                "zone123", rec.rs.name_fqdn.rstrip("."), rec.rs.rtype, value, 300)
            assert i.get("priority") == prio and i["proxied"] is False
        assert _secret_value(_records(mocks, "pulumi:providers:cloudflare")["dns-cloud"]["apiToken"]) == "cf-token"
    return _declare("cloudflare").apply(check)


@pulumi.runtime.test
def test_route53(mocks):
    def check(_):
        got = _records(mocks, "aws:route53/record:Record")
        for rec in RECS:
            i = got[rec.key]
            assert (i["zoneId"], i["name"], i["type"], i["ttl"], i["allowOverwrite"]) == (
                "Z123", rec.rs.name_fqdn.rstrip("."), rec.rs.rtype, 300, False)
        assert got["mail.example.com/mx"]["records"] == ["10 mx01.dm.example.org."]
        dkim = got["mail.example.com/dkim"]["records"][0]
        assert dkim.count('""') == 1 and dkim.replace('""', "") == f"v=DKIM1; k=rsa; p={PUB}"
        assert _records(mocks, "pulumi:providers:aws")["dns-cloud"]["region"] == "ap-southeast-1"
    return _declare("route53").apply(check)


def test_program_one_provider_per_backend(mocks, monkeypatch):
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    d2 = DomainSpec("news.example.com", "r1", "cloud", "example.com", False, None, None, "batch", ())
    keys = {"mail.example.com": ("tok", "sel1", PUB), "news.example.com": ("tok2", "sel1", PUB)}
    program = make_program([DOMAIN, d2], {"r1": REGION}, {"cloud": BACKENDS["cloudflare"]}, keys)

    @pulumi.runtime.test
    def run():  # the decorator waits for every registration the program started
        program()

    run()
    assert len(_records(mocks, "pulumi:providers:cloudflare")) == 1
    assert len(_records(mocks, "cloudflare:index/dnsRecord:DnsRecord")) == len(RECS) + 4


def test_relative_host_and_errors():
    assert cloud.relative_host("example.com.", "example.com") == "@"
    assert cloud.relative_host("a.b.example.com.", "example.com.") == "a.b"
    with pytest.raises(cloud.CloudConfigError, match="not inside zone"):
        cloud.relative_host("a.example.net.", "example.com")
    with pytest.raises(cloud.CloudConfigError, match="T_MISSING is not set"):
        cloud._secret(DnsBackendSpec("x", "cloudflare", {"api_token": {"env": "T_MISSING"}}, ()), "api_token", {})
