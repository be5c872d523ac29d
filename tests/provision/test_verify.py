"""Verification against the built-in DNS server and Knot: verified, usable with named issues,
failed, drift, and R5's MX conflict."""
from __future__ import annotations

from mailcore.spec.model import DomainSpec, RegionSpec
from provision import rfc2136
from provision.records import desired_records, txt_value
from provision.verify import FAILED, USABLE, VERIFIED, drift, mx_conflict, verify_domain

REGION = RegionSpec("cn-hangzhou", "mx01.dm.example.org", "spf.dm.example.org", "tracedm.example.org", ())


def _domain(name="mail.example.com", tracking=True):
    return DomainSpec(name, "cn-hangzhou", "builtin", "example.com", tracking, None, None, "mixed", ())


def publish(server, desired):
    for d in desired:
        rfc2136.create(server, d.zone, d.rs)


def test_verified_then_drift_then_failed(dns_server):
    server = dns_server.server
    desired = desired_records(_domain(), REGION, "token-123", "QUJD")
    publish(server, desired)
    first = verify_domain(server, desired)
    assert (first.status, first.issues, first.label) == (VERIFIED, [], "verified")
    # someone edits the SPF record by hand
    spf = next(d for d in desired if d.kind == "spf")
    current = rfc2136.query(server, spf.rs.name_fqdn, "TXT")
    rfc2136.replace_rr(server, "example.com", current, spf.rs.values[0], txt_value("v=spf1 include:other.example -all"))
    second = verify_domain(server, desired)
    assert (second.status, second.issues) == (USABLE, ["SPF"])
    report = drift(first.status, first.detail, second)
    assert report.startswith("mail.example.com: verified -> usable: SPF: expected an SPF record with include:spf.dm.example.org")
    assert "v=spf1 include:other.example -all" in report
    # the ownership record disappears
    own = next(d for d in desired if d.kind == "ownership")
    rfc2136.delete(server, "example.com", rfc2136.query(server, own.rs.name_fqdn, "TXT"))
    third = verify_domain(server, desired)
    assert third.status == FAILED and "ownership TXT" in third.issues
    assert drift(second.status, second.detail, third).startswith("mail.example.com: usable -> failed")


def test_tracking_cname_missing_is_usable_not_verified(dns_server):
    server = dns_server.server
    desired = desired_records(_domain("news.example.com"), REGION, "tok", "QUJD")
    publish(server, [d for d in desired if d.kind != "tracking"])
    v = verify_domain(server, desired)
    assert (v.status, v.issues) == (USABLE, ["CNAME"])  # R9: no tracking without the CNAME


def test_first_verification_and_repair_are_not_drift(dns_server):
    server = dns_server.server
    desired = desired_records(_domain("a.example.com", tracking=False), REGION, "tok", "QUJD")
    publish(server, desired)
    v = verify_domain(server, desired)
    assert drift(None, None, v) is None and drift("failed", "x", v) is None and drift("usable", "x", v) is None


def test_existing_mx_elsewhere_is_refused_with_r5(dns_server):
    server = dns_server.server
    rfc2136.create(server, "example.com", rfc2136.RecordSet("corp.example.com", "MX", 300, ("10 mx.mailhost.example.",)))
    desired = desired_records(_domain("corp.example.com", tracking=False), REGION, "tok", "QUJD")
    message = mx_conflict(server, desired)
    assert "corp.example.com already has MX records pointing to mx.mailhost.example." in message
    assert "R5" in message and "dm.corp.example.com" in message
    assert mx_conflict(server, desired_records(_domain("free.example.com"), REGION, "t", "QUJD")) is None
