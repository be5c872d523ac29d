"""A recipient address as delivery puts it on the wire (RFC 5321, RFC 6531, IDNA 2008/UTS 46).

Ingress refuses malformed addresses (mailcore.spec.emails); this module is delivery's own guard, so
a row that got into the queue anyway (before that check existed, or through another door) is
bounced as a bad address instead of raising inside the delivery loop:

- the domain as DNS looks it up: IDNA A-labels, lower-case, every label 1..63 octets, the name at
  most 253 octets;
- the local part as given; no spaces, control characters or angle brackets; at most 64 octets;
- whether the transaction needs SMTPUTF8: a non-ASCII local part (an internationalised domain
  alone does not, its A-label form is ASCII).
"""
from __future__ import annotations

import re

import idna

MAX_ADDRESS_OCTETS = 254  # RFC 5321 4.5.3.1.3 path (256) less the angle brackets
MAX_LOCAL_OCTETS = 64  # RFC 5321 4.5.3.1.1
MAX_DOMAIN_OCTETS = 253  # RFC 1035 2.3.4, without the root's trailing dot
MAX_LABEL_OCTETS = 63
_LDH = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?|[A-Za-z0-9_-]+")
_UNSAFE_LOCAL = re.compile(r"[\x00-\x20\x7f<>\x85\u2028\u2029]")


def ascii_domain(domain: str) -> str:
    """The domain as DNS looks it up: IDNA A-labels (UTS 46 mapping), lower-case; ValueError with
    the reason when it cannot be one (an empty or over-long label, a name over 253 octets, a
    character no label may hold)."""
    name = domain[:-1] if domain.endswith(".") else domain
    if not name:
        raise ValueError("the domain is empty")
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError) as exc:
            raise ValueError(f"the domain is not a valid internationalised name ({exc})") from None
    for label in name.split("."):
        if not label:
            raise ValueError("the domain has an empty label")
        if len(label) > MAX_LABEL_OCTETS:
            raise ValueError(f"a DNS label of the domain is {len(label)} octets long; at most {MAX_LABEL_OCTETS}")
        if not _LDH.fullmatch(label):
            raise ValueError(f"the domain label {label!r} holds characters a host name may not")
    if len(name) > MAX_DOMAIN_OCTETS:
        raise ValueError(f"the domain is {len(name)} octets long; at most {MAX_DOMAIN_OCTETS}")
    return name.lower()


def wire_address(address: str) -> tuple[str, bool]:
    """(the address as RCPT/MAIL sends it, whether it needs SMTPUTF8); ValueError with the reason
    when it cannot be sent at all."""
    local, at, domain = address.rpartition("@")
    if not at or not local:
        raise ValueError("the address has no local part and @-sign")
    if _UNSAFE_LOCAL.search(local):
        raise ValueError("the local part holds a space, a control character or an angle bracket")
    if len(local.encode("utf-8")) > MAX_LOCAL_OCTETS:
        raise ValueError(f"the local part is {len(local.encode('utf-8'))} octets long; at most {MAX_LOCAL_OCTETS}")
    wire = f"{local}@{ascii_domain(domain)}"
    if len(wire.encode("utf-8")) > MAX_ADDRESS_OCTETS:
        raise ValueError(f"the address is {len(wire.encode('utf-8'))} octets long; at most {MAX_ADDRESS_OCTETS}")
    return wire, not local.isascii()
