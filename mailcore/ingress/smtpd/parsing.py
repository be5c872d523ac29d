"""What the submission service reads from the client besides the protocol: the X-AliDM-Trace header (R21) and the DSN parameters of MAIL and RCPT (RFC 3461), and the common form of a path that skips the RFC 5322 parser."""
from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Callable

TRACE_HEADER = "X-AliDM-Trace"


class TraceHeaderError(ValueError):
    """The X-AliDM-Trace header is not base64-encoded JSON object."""


@dataclass(frozen=True)
class Trace:
    tag: str | None = None
    open_tracking: bool = False


_TRACE_NEEDLE = TRACE_HEADER.lower().encode()


def parse_trace(raw_message: bytes) -> Trace:
    """Tag and open tracking from the message's X-AliDM-Trace header, as DirectMail's SMTP
    examples build it: base64 of a JSON object such as {"OpenTrace": "1", "TagName": "x"}.
    "LinkTrace" (click tracking) is accepted and ignored: the guide says SMTP does not support it."""
    end = raw_message.find(b"\r\n\r\n")
    head = raw_message if end < 0 else raw_message[:end + 2]
    if _TRACE_NEEDLE not in head.lower():  # the common case, without parsing headers
        return Trace()
    value = BytesHeaderParser(policy=compat32).parsebytes(head + b"\r\n").get(TRACE_HEADER)
    if value is None:
        return Trace()
    try:
        data = json.loads(base64.b64decode(re.sub(r"\s+", "", str(value)), validate=True))
    except (binascii.Error, ValueError) as exc:
        raise TraceHeaderError(f"{TRACE_HEADER}: {exc}") from None
    if not isinstance(data, dict):
        raise TraceHeaderError(f"{TRACE_HEADER}: expected a JSON object")
    tag = data.get("TagName")
    if tag is not None and not isinstance(tag, str):
        raise TraceHeaderError(f"{TRACE_HEADER}: TagName must be a string")
    return Trace(tag=tag or None, open_tracking=str(data.get("OpenTrace", "0")).strip().lower() in ("1", "true"))


_XTEXT = re.compile(r"(?:[!-*,-<>-~]|\+[0-9A-F]{2})+")


_DSN_CHECKS: dict[str, Callable[[str], bool]] = {
    "RET": lambda v: v.upper() in ("FULL", "HDRS"),
    "ENVID": lambda v: len(v) <= 100 and bool(_XTEXT.fullmatch(v)),
    "NOTIFY": lambda v: v.upper() == "NEVER" or (
        bool(v) and set(v.upper().split(",")) <= {"SUCCESS", "FAILURE", "DELAY"}),
    "ORCPT": lambda v: ";" in v and bool(_XTEXT.fullmatch(v.split(";", 1)[1])),
}


MAIL_DSN, RCPT_DSN = ("RET", "ENVID"), ("NOTIFY", "ORCPT")


def take_dsn_params(arg: str, names: tuple[str, ...]) -> tuple[str, dict[str, str], str | None]:
    """(arg without the DSN parameters, those parameters, the first invalid one or None).
    aiosmtpd refuses parameters it does not know, and upper-cases the rest (ENVID and ORCPT are
    case-sensitive), so the DSN ones are taken out before aiosmtpd parses the command."""
    head, sep, tail = arg.rpartition(">")
    if not sep:
        head, _, tail = arg.strip().partition(" ")
    kept, found = [], {}
    for token in tail.split():
        key, eq, value = token.partition("=")
        if key.upper() in names:
            if not eq or key.upper() in found or not _DSN_CHECKS[key.upper()](value):
                return arg, {}, key.upper()
            found[key.upper()] = value
        else:
            kept.append(token)
    return " ".join([head + sep] + kept), found, None


_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"


# <dot-atom@domain> and what follows: the paths nearly every client sends. Anything else (quoted
# local parts, source routes, address literals, comments, <>) goes to aiosmtpd's full RFC 5322
# parser, which costs some 50 microseconds per address.
_SIMPLE_PATH = re.compile(rf"[ \t]*<((?:{_ATOM}\.)*{_ATOM}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>[ \t]*([^(]*)", re.S)
