"""Message rendering shared by cleanup and qmgr: the template variables (R19), the header fields cleanup reads, and a batch message rendered and signed per recipient at delivery."""
from __future__ import annotations

import re
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from mailcore.message.dkim import Signer

# the header fields cleanup reads from a submitted message: name, then the value as sent
# (continuation lines included), as the compat32 parser would give it, without parsing the rest
_FIELDS = re.compile(rb"^(message-id|date|subject|x-alidm-trace):[ \t]*([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)", re.I | re.M)


TRACE_FIELD = re.compile(rb"(?im)^X-AliDM-Trace:.*(?:\r?\n[ \t].*)*\r?\n?")


def header_values(head: bytes) -> dict[str, str]:
    """{lower-case name: value} of the first Message-ID, Date, Subject and X-AliDM-Trace fields
    of a header block (undecodable bytes replaced)."""
    found: dict[str, str] = {}
    for m in _FIELDS.finditer(head):
        found.setdefault(m.group(1).decode().lower(), m.group(2).decode("utf-8", "replace"))
    return found


_VAR = re.compile(r"\{(EAddr|UserName|NickName|Gender|Birthday|Mobile)\}")


def render_text(text: str, variables: dict) -> str:
    """Replace the template variables (R19); a variable the recipient lacks becomes empty."""
    return _VAR.sub(lambda m: str(variables.get(m.group(1)) or ""), text)


def render(signer: Signer, message: dict, recipient: dict, now: datetime) -> bytes:
    """The bytes to deliver to one recipient: the stored content, or the batch template rendered
    with the recipient's variables and signed. Deterministic per recipient, so a retry sends the
    same Message-ID."""
    if message["content"] is not None:
        return message["content"]
    tpl, variables = message["template"], recipient.get("variables") or {}
    domain = message["sender"].rpartition("@")[2]
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = formataddr((tpl.get("from_alias"), message["sender"])) if tpl.get("from_alias") else message["sender"]
    msg["To"] = recipient["rcpt"]
    msg["Subject"] = render_text(tpl["subject"], variables)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = f"<{message['id']}.{recipient['id']}@{domain}>"
    if tpl.get("reply_to"):
        msg["Reply-To"] = tpl["reply_to"]
    for name, value in (tpl.get("headers") or {}).items():
        msg[name] = value
    html = render_text(tpl.get("html") or "", variables)
    if tpl.get("text"):
        msg.set_content(render_text(tpl["text"], variables))
        msg.add_alternative(html, subtype="html")
    else:
        msg.set_content(html, subtype="html")
    return signer.sign(domain, msg.as_bytes())
