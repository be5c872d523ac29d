"""RFC 3463 enhanced status codes: the IANA registry as data, each detail with the reason it gives.

Source: IANA, "Simple Mail Transfer Protocol (SMTP) Enhanced Status Codes" registry
(https://www.iana.org/assignments/smtp-enhanced-status-codes), which collects RFC 3463 and the
codes added by RFC 3886, 4468, 4954, 5248, 6531, 6710, 7293, 7372, 7505, 8098, 8617 and 8689.
:data:`VENDOR` holds the codes big receivers document outside the registry (Microsoft Exchange
Online's NDR reference, learn.microsoft.com/exchange/mail-flow-best-practices/non-delivery-reports-in-exchange-online).

A detail's ``reason`` is a key of :data:`mailcore.delivery.reasons.REASONS`, or ``None`` when the
detail says too little to decide (X.0.0, X.7.1 "delivery not authorized", the network details
a server can only send about a *third* host): then the reply's phrases decide.
"""
from __future__ import annotations

import re

# subject -> title (the class digit is the reply's: 2 success, 4 persistent transient, 5 permanent)
SUBJECTS: dict[int, str] = {
    0: "Other or Undefined Status", 1: "Addressing Status", 2: "Mailbox Status", 3: "Mail System Status",
    4: "Network and Routing Status", 5: "Mail Delivery Protocol Status", 6: "Message Content or Media Status",
    7: "Security or Policy Status",
}

# "subject.detail" -> (title, reference, reason or None)
REGISTRY: dict[str, tuple[str, str, str | None]] = {
    "0.0": ("Other undefined Status", "RFC 3463", None),
    "1.0": ("Other address status", "RFC 3463", None),
    "1.1": ("Bad destination mailbox address", "RFC 3463", "nx"),
    "1.2": ("Bad destination system address", "RFC 3463", "nodomain"),
    "1.3": ("Bad destination mailbox address syntax", "RFC 3463", "syntax"),
    "1.4": ("Destination mailbox address ambiguous", "RFC 3463", "perm"),
    "1.5": ("Destination address valid", "RFC 3463", None),
    "1.6": ("Destination mailbox has moved, No forwarding address", "RFC 3463", "nx"),
    "1.7": ("Bad sender's mailbox address syntax", "RFC 3463", "sender"),
    "1.8": ("Bad sender's system address", "RFC 3463", "sender"),
    "1.9": ("Message relayed to non-compliant mailer", "RFC 3886", None),
    "1.10": ("Recipient address has null MX", "RFC 7505", "nullmx"),
    "2.0": ("Other or undefined mailbox status", "RFC 3463", None),
    "2.1": ("Mailbox disabled, not accepting messages", "RFC 3463", "nx"),
    "2.2": ("Mailbox full", "RFC 3463", "full"),
    "2.3": ("Message length exceeds administrative limit", "RFC 3463", "size"),
    "2.4": ("Mailing list expansion problem", "RFC 3463", "perm"),
    "3.0": ("Other or undefined mail system status", "RFC 3463", None),
    "3.1": ("Mail system full", "RFC 3463", "system"),
    "3.2": ("System not accepting network messages", "RFC 3463", None),
    "3.3": ("System not capable of selected features", "RFC 3463", "perm"),
    "3.4": ("Message too big for system", "RFC 3463", "size"),
    "3.5": ("System incorrectly configured", "RFC 3463", "system"),
    "3.6": ("Requested priority was changed", "RFC 6710", None),
    "4.0": ("Other or undefined network or routing status", "RFC 3463", None),
    "4.1": ("No answer from host", "RFC 3463", None),
    "4.2": ("Bad connection", "RFC 3463", None),
    "4.3": ("Directory server failure", "RFC 3463", "system"),
    "4.4": ("Unable to route", "RFC 3463", None),
    "4.5": ("Mail system congestion", "RFC 3463", "system"),
    "4.6": ("Routing loop detected", "RFC 3463", "perm"),
    "4.7": ("Delivery time expired", "RFC 3463", None),
    "5.0": ("Other or undefined protocol status", "RFC 3463", None),
    "5.1": ("Invalid command", "RFC 3463", "protocol"),
    "5.2": ("Syntax error", "RFC 3463", "protocol"),
    "5.3": ("Too many recipients", "RFC 3463", "perm"),
    "5.4": ("Invalid command arguments", "RFC 3463", "protocol"),
    "5.5": ("Wrong protocol version", "RFC 3463", "protocol"),
    "5.6": ("Authentication Exchange line is too long", "RFC 4954", "protocol"),
    "6.0": ("Other or undefined media error", "RFC 3463", None),
    "6.1": ("Media not supported", "RFC 3463", "content"),
    "6.2": ("Conversion required and prohibited", "RFC 3463", "content"),
    "6.3": ("Conversion required but not supported", "RFC 3463", "content"),
    "6.4": ("Conversion with loss performed", "RFC 3463", "content"),
    "6.5": ("Conversion Failed", "RFC 3463", "content"),
    "6.6": ("Message content not available", "RFC 4468", "content"),
    "6.7": ("Non-ASCII addresses not permitted for that sender/recipient", "RFC 6531", "content"),
    "6.8": ("UTF-8 string reply is required, but not permitted by the SMTP client", "RFC 6531", "content"),
    "6.9": ("UTF-8 header message cannot be transferred to one or more recipients", "RFC 6531", "content"),
    "6.10": ("UTF-8 string reply is required, but not permitted by the SMTP client", "RFC 6531", "content"),
    "7.0": ("Other or undefined security status", "RFC 3463", None),
    "7.1": ("Delivery not authorized, message refused", "RFC 3463", None),
    "7.2": ("Mailing list expansion prohibited", "RFC 3463", "perm"),
    "7.3": ("Security conversion required but not possible", "RFC 3463", "perm"),
    "7.4": ("Security features not supported", "RFC 3463", "perm"),
    "7.5": ("Cryptographic failure", "RFC 3463", "perm"),
    "7.6": ("Cryptographic algorithm not supported", "RFC 3463", "perm"),
    "7.7": ("Message integrity failure", "RFC 3463", None),
    "7.8": ("Authentication credentials invalid", "RFC 4954", "perm"),
    "7.9": ("Authentication mechanism is too weak", "RFC 4954", None),
    "7.10": ("Encryption Needed", "RFC 5248", "perm"),
    "7.11": ("Encryption required for requested authentication mechanism", "RFC 4954", "perm"),
    "7.12": ("A password transition is needed", "RFC 4954", "perm"),
    "7.13": ("User Account Disabled", "RFC 5248", "nx"),
    "7.14": ("Trust relationship required", "RFC 5248", "perm"),
    "7.15": ("Priority Level is too low", "RFC 6710", "perm"),
    "7.16": ("Message is too big for the specified priority", "RFC 6710", "size"),
    "7.17": ("Mailbox owner has changed", "RFC 7293", "nx"),
    "7.18": ("Domain owner has changed", "RFC 7293", "nx"),
    "7.19": ("RRVS test cannot be completed", "RFC 7293", None),
    "7.20": ("No passing DKIM signature found", "RFC 7372", "auth"),
    "7.21": ("No acceptable DKIM signature found", "RFC 7372", "auth"),
    "7.22": ("No valid author-matched DKIM signature found", "RFC 7372", "auth"),
    "7.23": ("SPF validation failed", "RFC 7372", "auth"),
    "7.24": ("SPF validation error", "RFC 7372", "auth"),
    "7.25": ("Reverse DNS validation failed", "RFC 7372", "blocked"),
    "7.26": ("Multiple authentication checks failed", "RFC 7372", "auth"),
    "7.27": ("Sender address has null MX", "RFC 7505", "sender"),
    "7.28": ("Mail flood detected", "RFC 8098", "spam"),
    "7.29": ("ARC validation failure", "RFC 8617", "auth"),
    "7.30": ("REQUIRETLS support required", "RFC 8689", "perm"),
}

# Codes outside the registry that big receivers document: (class, "subject.detail") -> reason.
# Microsoft Exchange Online / Outlook.com NDR reference (learn.microsoft.com, "Email non-delivery
# reports and SMTP errors in Exchange Online") and Outlook.com's postmaster pages.
VENDOR: dict[str, tuple[str, str, str]] = {
    "5.7.509": ("Access denied, sending domain does not pass DMARC verification", "Microsoft", "auth"),
    "5.7.510": ("Access denied, the sending address does not pass DMARC", "Microsoft", "auth"),
    "5.7.515": ("Sending domain doesn't meet the required authentication level", "Microsoft", "auth"),
    "5.7.57": ("Client was not authenticated to send anonymous mail during MAIL FROM", "Microsoft", "perm"),
    "5.7.606": ("Access denied, banned sending IP", "Microsoft", "blocked"),
    "5.7.705": ("Access denied, tenant has exceeded threshold", "Microsoft", "blocked"),
    "5.7.708": ("Access denied, traffic not accepted from this IP", "Microsoft", "blocked"),
    "5.7.750": ("Service unavailable. Client blocked from sending from unregistered domains", "Microsoft",
                "blocked"),
    "4.7.650": ("The mail server has been temporarily rate limited due to IP reputation", "Microsoft", "freq"),
    "5.4.1": ("Recipient address rejected: Access denied (directory-based edge blocking)", "Microsoft", "nx"),
}
# Microsoft: 5.7.606-649 are banned-IP codes, 4.7.500-699 server busy / throttling.
_VENDOR_RANGES: tuple[tuple[int, int, int, str], ...] = ((5, 606, 649, "blocked"), (4, 500, 649, "system"),
                                                       (4, 650, 699, "freq"))
_TEXT_OF_541 = re.compile(r"access\s+denied|recipient\s+(?:address\s+)?rejected|not\s+found", re.I)


def parse(enhanced: str | None) -> tuple[int, int, int] | None:
    """``'5.7.26'`` -> ``(5, 7, 26)``; anything else -> None."""
    if not enhanced:
        return None
    try:
        cls, subj, det = (int(p) for p in enhanced.split("."))
    except ValueError:
        return None
    return cls, subj, det


def title(enhanced: str) -> str | None:
    """The registry's (or the vendor's) title for a code, e.g. ``'5.2.2'`` -> ``'Mailbox full'``."""
    if enhanced in VENDOR:
        return VENDOR[enhanced][0]
    p = parse(enhanced)
    if p is None:
        return None
    entry = REGISTRY.get(f"{p[1]}.{p[2]}")
    return entry[0] if entry else SUBJECTS.get(p[1])


def reason(enhanced: str | None, text: str = "") -> str | None:
    """The reason an enhanced code gives on its own, or None when it says too little.

    Vendor codes first (Microsoft's 5.4.1 only with its documented wording: in the registry it
    means "no answer from host", which a host that answered cannot mean), then the registry.
    """
    p = parse(enhanced)
    if p is None:
        return None
    cls, subj, det = p
    if enhanced in VENDOR:
        if enhanced != "5.4.1" or _TEXT_OF_541.search(text):
            return VENDOR[enhanced][2]
    if subj == 7 and det >= 500:
        for c, lo, hi, why in _VENDOR_RANGES:
            if c == cls and lo <= det <= hi:
                return why
        return None
    entry = REGISTRY.get(f"{subj}.{det}")
    return entry[2] if entry else None
