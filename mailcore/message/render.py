"""Message rendering shared by cleanup and qmgr: the template variables (R19), the header fields cleanup reads, and a batch message rendered and signed per recipient at delivery.

Template variables are the recipient's data, never markup or header syntax (issue 11):

- each value is cut to MAX_VARIABLE_CHARS characters (the API refuses longer ones at ingress);
- in header fields (Subject) a run of control characters or line/paragraph separators (CR and LF
  included) becomes one space, so no value can start a header line of its own;
- in an HTML body each value is HTML-escaped (`<`, `>`, `&`, quotes); a text body gets it as is.

`render_parts` is what both sides use: cleanup runs the content check on every recipient's
rendered parts, qmgr builds the message from the same parts.
"""
from __future__ import annotations

import html as _html
import re
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

import idna

from mailcore.message.dkim import Signer
from mailcore.spec.limits import VARIABLE_PATTERN

MAX_VARIABLE_CHARS = 1000  # one template variable's value (TemplateData); R18's list limits are smaller

# the header fields cleanup reads from a submitted message: name, then the value as sent
# (continuation lines included), as the compat32 parser would give it, without parsing the rest
_FIELDS = re.compile(rb"^(message-id|date|subject|x-alidm-trace|from):[ \t]*([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)",
                     re.I | re.M)


TRACE_FIELD = re.compile(rb"(?im)^X-AliDM-Trace:.*(?:\r?\n[ \t].*)*\r?\n?")


def header_fields(head: bytes) -> dict[str, list[str]]:
    """{lower-case name: [value, ...]} of the Message-ID, Date, Subject, X-AliDM-Trace and From
    fields of a header block, in order (undecodable bytes replaced): one scan of the block."""
    found: dict[str, list[str]] = {}
    for m in _FIELDS.finditer(head):
        # NUL dropped: the store keeps these as text and PostgreSQL refuses a NUL there, which
        # would fail the whole group commit the message is written in (issue 11)
        found.setdefault(m.group(1).decode().lower(), []).append(m.group(2).decode("utf-8", "replace").replace("\x00", ""))
    return found


def header_values(head: bytes) -> dict[str, str]:
    """{lower-case name: value} of the first of each field `header_fields` reads."""
    return {name: values[0] for name, values in header_fields(head).items()}


_VAR = VARIABLE_PATTERN  # the template variables (R19): one pattern, shared with validate


_UNSAFE_IN_HEADER = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def header_safe(value: str) -> str:
    """A value for a header field: control characters and line breaks (runs of them) become one space."""
    return _UNSAFE_IN_HEADER.sub(" ", value)


def render_text(text: str, variables: dict, *, where: str = "text") -> str:
    """Replace the template variables (R19); a variable the recipient lacks becomes empty. `where`
    is "text" (as is), "html" (HTML-escaped) or "header" (no control characters, one line); every
    value is cut to MAX_VARIABLE_CHARS."""
    def value(m: re.Match) -> str:
        v = str(variables.get(m.group(1)) or "")[:MAX_VARIABLE_CHARS]
        if where == "html":
            return _html.escape(v)
        return header_safe(v) if where == "header" else v
    out = _VAR.sub(value, text)
    return header_safe(out) if where == "header" else out


def render_parts(tpl: dict, variables: dict) -> tuple[str, str, str | None]:
    """(subject, html, text) of a template for one recipient's variables."""
    text = tpl.get("text")
    return (render_text(tpl.get("subject") or "", variables, where="header"),
            render_text(tpl.get("html") or "", variables, where="html"),
            render_text(text, variables) if text else None)


def _to_field(rcpt: str) -> tuple[str, policy.Policy]:
    """The To: value and the policy that can write it: an ASCII local part with its domain in
    A-labels (plain RFC 5322), or, for a UTF-8 local part, the address as is under RFC 6532
    (delivered only over SMTPUTF8). Encoded words are never allowed inside an address."""
    local, _, domain = rcpt.rpartition("@")
    if rcpt.isascii():
        return rcpt, policy.SMTP
    if local.isascii():
        try:
            return f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}", policy.SMTP
        except (idna.IDNAError, UnicodeError):
            pass
    return rcpt, policy.SMTPUTF8


def render(signer: Signer, message: dict, recipient: dict, now: datetime) -> bytes:
    """The bytes to deliver to one recipient: the stored content, or the batch template rendered
    with the recipient's variables and signed. Deterministic per recipient, so a retry sends the
    same Message-ID."""
    if message["content"] is not None:
        return message["content"]
    tpl, variables = message["template"], recipient.get("variables") or {}
    domain = message["sender"].rpartition("@")[2]
    to, pol = _to_field(recipient["rcpt"])
    subject, html, text = render_parts(tpl, variables)
    msg = EmailMessage(policy=pol)
    msg["From"] = formataddr((tpl.get("from_alias"), message["sender"])) if tpl.get("from_alias") else message["sender"]
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = f"<{message['id']}.{recipient['id']}@{domain}>"
    if tpl.get("reply_to"):
        msg["Reply-To"] = tpl["reply_to"]
    for name, value in (tpl.get("headers") or {}).items():
        msg[name] = value
    if text:
        msg.set_content(text)
        msg.add_alternative(html, subtype="html")
    else:
        msg.set_content(html, subtype="html")
    return signer.sign(domain, msg.as_bytes())
