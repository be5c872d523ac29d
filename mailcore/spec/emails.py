"""Email address syntax, checked by email-validator.

Recipient files hold up to 100,000 addresses; email-validator costs about 40 us per address, so a
conservative pattern accepts the plain ASCII addresses that make up almost every list and the
library decides everything else. The pattern is a strict subset of what the library accepts
(tests check this on generated addresses): dot-atom local part of letters, digits and
`._%+-` without leading, trailing or doubled dots, LDH labels, an alphabetic TLD that is not a
special-use name, and the RFC length limits.

`address_error` is what ingress (SMTP RCPT/MAIL, the API's addresses) asks: `email_error`, and for
SMTP RFC 6531's rule that an address with non-ASCII characters needs the SMTPUTF8 parameter.
(What delivery puts on the wire, A-label domains included, is mailcore.delivery.address.)
"""
from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email
from email_validator import SPECIAL_USE_DOMAIN_NAMES

_PLAIN = re.compile(
    r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"([A-Za-z]{2,63})"
)
_SPECIAL = frozenset(SPECIAL_USE_DOMAIN_NAMES)


def _plain(address: str) -> bool:
    m = _PLAIN.fullmatch(address)
    if not m or len(address) > 254:
        return False
    local, _, domain = address.rpartition("@")
    if len(local) > 64:
        return False
    labels = domain.lower().split(".")
    if any(label[2:4] == "--" for label in labels):  # IDNA-reserved: the library decides
        return False
    return not any(".".join(labels[i:]) in _SPECIAL for i in range(len(labels)))


def email_error(address: str, *, allow_special_use: bool = False) -> str | None:
    """None when `address` is a valid address, else the reason it is not."""
    if _plain(address):
        return None
    try:
        validate_email(address, check_deliverability=False, test_environment=allow_special_use)
    except EmailNotValidError as exc:
        return str(exc)
    return None


def address_error(address: str, *, smtputf8: bool = True) -> str | None:
    """None when ingress may accept `address` (SMTP RCPT and MAIL, the API's addresses), else the
    reason. `smtputf8` False (an SMTP transaction without the SMTPUTF8 parameter) refuses any
    non-ASCII character (RFC 6531). email-validator checks the rest: a DNS label over 63 octets,
    an address over 254 or a local part over 64 octets, a domain that is no valid (IDNA) name.
    The `.test` names (RFC 6761, reserved for testing) are accepted, so a test suite can send to
    the fake MX through its own DNS; the other special-use names (`.local`, `.localhost`,
    `.invalid`, `.onion`, `.arpa`) are refused: no mail can reach them."""
    if not address.isascii() and not smtputf8:
        return "a non-ASCII address needs the SMTPUTF8 parameter of MAIL FROM (RFC 6531)"
    return email_error(address, allow_special_use=True)
