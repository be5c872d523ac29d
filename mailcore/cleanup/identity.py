"""The sending identity of a message submitted over SMTP: its author must be the sender that
authenticated, as DirectMail requires. Otherwise the message would leave DKIM-signed with
d=<our domain> under another sender's (or another domain's) name.

Rule: exactly one From field holding exactly one mailbox, whose address is the authenticated
sender address (a display name is fine; the comparison ignores case, as sender addresses are
unique regardless of case and the envelope sender is compared the same way). A message without
From is refused too: it has no author to check, and receivers treat it as suspect.
"""
from __future__ import annotations

import re
from email import policy
from email.errors import HeaderParseError

# the common shapes, parsed without the email package: `addr`, `<addr>`, `Name <addr>`, `"Name" <addr>`
_SIMPLE = re.compile(r'\s*(?:(?:"(?:[^"\\\r\n]|\\.)*"|[^"<>,;:@()\\\r\n]*)\s*<([^<>\s,;:()"]+@[^<>\s,;:()"@]+)>'
                     r'|([^<>\s,;:()"]+@[^<>\s,;:()"@]+))\s*')
_FOLD = re.compile(r"\r?\n(?=[ \t])")


def mailboxes(value: str) -> list[str] | None:
    """The addresses of a From field's value, or None when it does not parse (groups count as
    not a mailbox)."""
    value = _FOLD.sub("", value)
    m = _SIMPLE.fullmatch(value)
    if m:
        return [m.group(1) or m.group(2)]
    try:  # anything else (encoded words, comments, several mailboxes): the standard parser
        header = policy.SMTP.header_factory("From", value)
    except (HeaderParseError, IndexError, ValueError):
        return None
    if header.defects or any(g.display_name is not None for g in header.groups):
        return None
    return [a.addr_spec for a in header.addresses]


def author_refusal(from_values: list[str] | None, sender: str) -> tuple[str, str] | None:
    """(REFUSALS reason, detail) when the From fields do not name `sender` alone, else None."""
    if not from_values:
        return "from-malformed", "the message has no From header"
    if len(from_values) > 1:
        return "from-malformed", f"the message has {len(from_values)} From headers"
    found = mailboxes(from_values[0])
    if not found:
        return "from-malformed", f"From: {from_values[0][:200]!r} is not one mailbox"
    if len(found) > 1:
        return "from-malformed", f"From names {len(found)} mailboxes"
    if found[0].lower() != sender.lower():
        return "from-mismatch", f"From <{found[0][:254]}> is not the authenticated sender <{sender}>"
    return None
