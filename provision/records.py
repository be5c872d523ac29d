"""The DNS records a sending domain needs (R7), computed from config, and its keys.

Why a module of its own: the same desired records feed the Pulumi program (which writes them),
the cloud backends, and verification (which compares them with live DNS), so they are computed
once, from plain values, with no I/O.  SPF is special: a domain usually has an SPF record
already, and a second ``v=spf1`` TXT record makes SPF fail (RFC 7208 3.2), so ours is merged
into the existing one (``merge_spf``) and the number of DNS-querying terms is checked against
RFC 7208's limit of 10.
"""
from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass
from typing import Iterable

import dns.rdata
import dns.rdataclass
import dns.rdatatype

from mailcore.spec.model import DomainSpec, RegionSpec

from .rfc2136 import RecordSet

DEFAULT_TTL = 600
DEFAULT_SELECTOR = "mailcore"
OWNERSHIP_PREFIX = "aliyundm"
TRACKING_PREFIX = "dmtrace"
SPF_LOOKUP_LIMIT = 10  # RFC 7208 4.6.4
# Terms that make a receiver query DNS (RFC 7208 4.6.4): mechanisms and the redirect modifier.
SPF_LOOKUP_TERMS = ("include", "a", "mx", "ptr", "exists", "redirect")
TXT_CHUNK = 255  # one <character-string> holds at most 255 bytes
DKIM_KEY_BITS = 2048

# The record kinds, in the order they are declared and shown.
KINDS = ("ownership", "spf", "mx", "tracking", "dkim", "dmarc")


class SpfError(ValueError):
    """The existing TXT records cannot take our include (e.g. two SPF records already)."""


@dataclass(frozen=True)
class DesiredRecord:
    """One record set to publish.  ``kind == "spf"`` owns one TXT RR in a shared rrset."""

    domain: str
    kind: str
    zone: str
    rs: RecordSet
    spf_include: str | None = None

    @property
    def key(self) -> str:
        """Stable per-domain identity, used as the Pulumi resource name."""
        return f"{self.domain}/{self.kind}"


@dataclass(frozen=True)
class DomainKeys:
    """What is generated once per domain and must stay stable: the caller stores it."""

    ownership_token: str
    dkim_private_pem: str
    dkim_public_b64: str


# --------------------------------------------------------------------------- TXT helpers


def txt_value(text: str) -> str:
    """Presentation format of one TXT RR holding ``text``, split into 255-byte strings."""
    raw = text.encode()
    chunks = [raw[i:i + TXT_CHUNK] for i in range(0, len(raw), TXT_CHUNK)] or [b""]
    return " ".join('"' + c.decode().replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)


def txt_text(value: str) -> str:
    """The joined text of one TXT RR given in presentation format (inverse of ``txt_value``)."""
    rd = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TXT, value)
    return b"".join(rd.strings).decode(errors="replace")


# --------------------------------------------------------------------------- SPF


def is_spf(text: str) -> bool:
    t = text.strip().lower()
    return t == "v=spf1" or t.startswith("v=spf1 ")


def _term_name(term: str) -> str:
    t = term.lower().lstrip("+-~?")
    return re.split(r"[:/=]", t, maxsplit=1)[0]


def spf_lookups(text: str) -> int:
    """How many DNS-querying terms an SPF record has (include, a, mx, ptr, exists, redirect)."""
    return sum(1 for term in text.split()[1:] if _term_name(term) in SPF_LOOKUP_TERMS)


def spf_default(include: str) -> str:
    return f"v=spf1 include:{include} -all"


@dataclass(frozen=True)
class SpfMerge:
    value: str  # TXT presentation value to publish
    replaced: str | None  # the existing SPF RR it replaces (presentation), None when added
    lookups: int
    warning: str | None


def merge_spf(existing_values: Iterable[str], include: str) -> SpfMerge:
    """Our SPF, given the TXT values already at the domain (presentation format).

    No SPF yet: ``v=spf1 include:<include> -all``.  One SPF: ours added to it (before its
    ``all`` term or modifiers), unchanged when it already includes us.  Two or more: refused.
    """
    spfs = [v for v in existing_values if is_spf(txt_text(v))]
    if len(spfs) > 1:
        raise SpfError(f"{len(spfs)} SPF records exist already ({'; '.join(txt_text(v) for v in spfs)}); "
                       "RFC 7208 allows one: merge them by hand first")
    if not spfs:
        text = spf_default(include)
        replaced = None
    else:
        replaced = spfs[0]
        terms = txt_text(replaced).split()
        ours = f"include:{include}".lower()
        if any(t.lower().lstrip("+") == ours for t in terms[1:]):
            text = " ".join(terms)
        else:
            pos = len(terms)
            for i, t in enumerate(terms[1:], start=1):
                if _term_name(t) == "all" or "=" in t.split(":", 1)[0]:
                    pos = i
                    break
            text = " ".join(terms[:pos] + [f"include:{include}"] + terms[pos:])
    n = spf_lookups(text)
    warning = None
    if n > SPF_LOOKUP_LIMIT:
        warning = (f"SPF record '{text}' needs {n} DNS lookups, over the limit of {SPF_LOOKUP_LIMIT} "
                   "(RFC 7208 4.6.4): receivers will treat it as a permanent error; flatten some includes")
    return SpfMerge(txt_value(text), replaced, n, warning)


def has_include(text: str, include: str) -> bool:
    ours = f"include:{include}".lower()
    return any(t.lower().lstrip("+") == ours for t in text.split()[1:])


def remove_include(text: str, include: str) -> str:
    """``text`` (an SPF record) without our ``include:`` term; everything else kept as it was."""
    ours = f"include:{include}".lower()
    terms = text.split()
    return " ".join(terms[:1] + [t for t in terms[1:] if t.lower().lstrip("+") != ours])


def spf_is_empty(text: str) -> bool:
    """Only ``v=spf1`` and an ``all`` term left: nothing anyone else relies on."""
    return all(_term_name(t) == "all" for t in text.split()[1:])


# --------------------------------------------------------------------------- records


def zone_of(domain: DomainSpec) -> str:
    return (domain.zone or domain.name).lower().rstrip(".")


def desired_records(domain: DomainSpec, region: RegionSpec, ownership_token: str, dkim_public_b64: str,
                    selector: str = DEFAULT_SELECTOR) -> list[DesiredRecord]:
    """Every record set ``domain`` needs, in ``KINDS`` order.

    The SPF entry carries the default value (no existing SPF); the provider merges it with
    what it finds on the server when it writes it.  Tracking's CNAME only when tracking is on,
    DMARC only when configured; MX/SPF/CNAME only when the region names the service's host.
    """
    name = domain.name.lower().rstrip(".")
    zone = zone_of(domain)
    ttl = domain.ttl_seconds or DEFAULT_TTL
    out = [DesiredRecord(name, "ownership", zone,
                         RecordSet(f"{OWNERSHIP_PREFIX}.{name}", "TXT", ttl, (txt_value(ownership_token),)))]
    if region.spf_include:
        out.append(DesiredRecord(name, "spf", zone,
                                 RecordSet(name, "TXT", ttl, (txt_value(spf_default(region.spf_include)),)),
                                 spf_include=region.spf_include))
    if region.mx_host:
        out.append(DesiredRecord(name, "mx", zone, RecordSet(name, "MX", ttl, (f"10 {_abs(region.mx_host)}",))))
    if domain.tracking and region.tracking_host:
        out.append(DesiredRecord(name, "tracking", zone, RecordSet(f"{TRACKING_PREFIX}.{name}", "CNAME", ttl,
                                                                   (_abs(region.tracking_host),))))
    out.append(DesiredRecord(name, "dkim", zone, RecordSet(f"{selector}._domainkey.{name}", "TXT", ttl,
                                                           (txt_value(f"v=DKIM1; k=rsa; p={dkim_public_b64}"),))))
    if domain.dmarc:
        out.append(DesiredRecord(name, "dmarc", zone, RecordSet(f"_dmarc.{name}", "TXT", ttl, (txt_value(domain.dmarc),))))
    return out


def _abs(host: str) -> str:
    return host.lower().rstrip(".") + "."


# --------------------------------------------------------------------------- keys


def generate_domain_keys(bits: int = DKIM_KEY_BITS) -> DomainKeys:
    """A random ownership token and an RSA DKIM key pair (PEM PKCS#8 private, base64 DER public)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    public_der = key.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    return DomainKeys(secrets.token_hex(16), private_pem, base64.b64encode(public_der).decode())
