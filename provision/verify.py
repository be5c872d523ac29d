"""Verification (R9, R10): every record a domain needs, expected vs found on its authoritative server.

A domain is `verified` when everything is in place (CNAME included, so it may track, R9),
`usable` with named issues when ownership is proven but something else is missing or wrong
(the guide's "可使用-XXX"), and `failed` when the ownership TXT is not there. Comparing a new
result with the last one gives the drift report (R10). `mx_conflict` is R5's enterprise-mailbox
check: a domain whose MX already points elsewhere receives mail there, and our MX would take it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .records import DesiredRecord, is_spf, txt_text
from .rfc2136 import DnsServer, RecordSet, query

VERIFIED, USABLE, FAILED = "verified", "usable", "failed"
# what a missing record is called in a usable status ("usable: SPF, DKIM")
LABEL = {"ownership": "ownership TXT", "spf": "SPF", "mx": "MX", "tracking": "CNAME", "dkim": "DKIM", "dmarc": "DMARC"}


@dataclass
class RecordCheck:
    kind: str
    name: str
    rtype: str
    expected: str
    found: list[str]
    ok: bool
    note: str = ""


@dataclass
class DomainVerification:
    domain: str
    status: str
    checks: list[RecordCheck] = field(default_factory=list)

    @property
    def issues(self) -> list[str]:
        return [LABEL[c.kind] for c in self.checks if not c.ok]

    @property
    def detail(self) -> str:
        if self.status == VERIFIED:
            return "all records found"
        return "; ".join(f"{LABEL[c.kind]}: expected {c.expected}, found {', '.join(c.found) or 'nothing'}"
                         + (f" ({c.note})" if c.note else "") for c in self.checks if not c.ok)

    @property
    def label(self) -> str:
        return self.status if self.status != USABLE else f"usable: {', '.join(self.issues)}"


def _found(server: DnsServer, rs: RecordSet) -> tuple[list[str], str]:
    """What the server holds. A server that cannot be asked (down, refusing, wrong TSIG key) raises
    ``DnsUpdateError``: that says nothing about the domain, so no status may be derived from it."""
    got = query(server, rs.name_fqdn, rs.rtype)
    return (list(got.values) if got else []), ""


def check_record(server: DnsServer, want: DesiredRecord) -> RecordCheck:
    rs = want.rs
    found, note = _found(server, rs)
    if want.kind == "spf":
        spfs = [txt_text(v) for v in found if is_spf(txt_text(v))]
        needle = f"include:{want.spf_include}".lower()
        ok = len(spfs) == 1 and any(term.lower().lstrip("+") == needle for term in spfs[0].split()[1:])
        if len(spfs) > 1:
            note = "more than one SPF record: receivers treat that as an error (RFC 7208 3.2)"
        return RecordCheck("spf", rs.name_fqdn, "TXT", f"an SPF record with include:{want.spf_include}", spfs, ok, note)
    if rs.rtype == "TXT":
        texts = [txt_text(v) for v in found]
        expected = txt_text(rs.values[0])
        return RecordCheck(want.kind, rs.name_fqdn, "TXT", expected, texts, expected in texts, note)
    if want.kind == "mx":
        ours = rs.values[0].split()[-1].lower()
        hosts = [v.split()[-1].lower() for v in found]
        ok = ours in hosts
        if found and not ok:
            note = "MX points elsewhere: this domain receives mail there; our MX would take it over (R5)"
        return RecordCheck("mx", rs.name_fqdn, "MX", ours, hosts, ok, note)
    expected = rs.values[0].lower()
    return RecordCheck(want.kind, rs.name_fqdn, rs.rtype, expected, [v.lower() for v in found], expected in
                       [v.lower() for v in found], note)


def verify_domain(server: DnsServer, desired: list[DesiredRecord]) -> DomainVerification:
    """Every record checked; raises ``DnsUpdateError`` when the server cannot be asked."""
    checks = [check_record(server, d) for d in desired]
    domain = desired[0].domain if desired else ""
    ownership = next((c for c in checks if c.kind == "ownership"), None)
    if ownership is None or not ownership.ok:
        status = FAILED
    elif all(c.ok for c in checks):
        status = VERIFIED
    else:
        status = USABLE
    return DomainVerification(domain, status, checks)


def drift(before_status: str | None, before_detail: str | None, after: DomainVerification) -> str | None:
    """What changed since the last verification, in one line, or None. Only a verified or usable
    domain can drift; a first verification is not drift."""
    if before_status not in (VERIFIED, USABLE) or (before_status == after.status and (before_detail or "") == after.detail):
        return None
    if after.status == VERIFIED:
        return None  # repaired: not a problem to report
    return f"{after.domain}: {before_status} -> {after.status}: {after.detail}"


def mx_conflict(server: DnsServer, desired: list[DesiredRecord]) -> str | None:
    """R5: the domain's MX already points somewhere else (an existing mailbox); None when free or ours."""
    for d in desired:
        if d.kind != "mx":
            continue
        check = check_record(server, d)
        if check.found and not check.ok:
            return (f"{d.domain} already has MX records pointing to {', '.join(check.found)}: it receives mail there "
                    f"(an enterprise mailbox?). Publishing our MX ({check.expected}) would take over its inbound mail (R5); "
                    f"send from a subdomain such as dm.{d.domain} instead")
    return None
