"""What the fake MX answers: the recipient address scheme and the YAML scenario file.

A :class:`Script` is everything the server needs for one recipient: a reply sequence for RCPT
and for DATA (one entry per attempt, the last repeating), a delay before the RCPT reply, a
per-recipient rate limit, and SES-simulator side effects. :class:`Scenario` is the server-level
part (connect and MAIL replies, a global rate limit, TLS) plus the explicit per-recipient
scripts of a YAML file; :meth:`Scenario.script_for` resolves a recipient to its script, the
file's entries first, then the local-part scheme (see the package docstring).
"""
from __future__ import annotations

import dataclasses
import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mailcore.delivery import bounce

ACCEPT = "250 2.0.0 OK"
DROP = "drop"          # a reply meaning: close the connection without answering
PROCEED = "220"        # a connect reply meaning: greet normally

RATE_LIMIT_REPLY = "451 4.7.650 The mail server [$IP] has been temporarily rate limited due to IP reputation."
GREYLIST_REPLY = "451 4.7.1 Greylisting in action, please come back later"
NXBOX_REPLY = "550 5.1.1 <$EMAIL>: Recipient address rejected: User unknown in local recipient table"
FULL_REPLY = ("452 4.2.2 The email account that you tried to reach is over quota. "
              "https://support.google.com/mail/?p=OverQuotaTemp")
SPAM_REPLY = "550 5.7.1 Message rejected as spam by Content Filtering"
RCPT_REJECT_REPLY = "550 5.7.1 Delivery not authorized, message refused"
DATA_REJECT_REPLY = "554 5.6.0 Transaction failed: message refused"
MAIL_REJECT_REPLY = "553 5.7.1 Sender address rejected: not permitted"
CONNECT_REJECT_REPLY = "554 5.7.1 No SMTP service here"
TEMPFAIL_REPLY = "451 4.3.0 Temporary server error, please try again later"
SES_BOUNCE_REPLY = "550 5.1.1 user unknown"
SES_SUPPRESSED_REPLY = "550 5.1.1 Recipient address is on the suppression list"
DEFAULT_SLOW_SECONDS = 2.0


class ScenarioError(Exception):
    """A scenario file or a scenario name is wrong; the message says where."""


def normalise_reply(reply: Any, where: str) -> str:
    """``250`` or ``"250"`` -> ``"250 2.0.0 OK"``; ``"drop"`` stays; anything else must start with 3 digits."""
    text = str(reply).strip()
    if text.lower() == DROP:
        return DROP
    if re.fullmatch(r"2\d\d", text):
        return ACCEPT if text == "250" else text + " OK"
    if not re.match(r"[2-5]\d\d(\s|$)", text):
        raise ScenarioError(f"{where}: {reply!r} is not an SMTP reply (three digits, then text) or 'drop'")
    return text


def _sequence(value: Any, where: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ScenarioError(f"{where}: an empty sequence")
    return tuple(normalise_reply(v, f"{where}[{i}]") for i, v in enumerate(items))


@dataclass(frozen=True)
class Script:
    """Replies for one recipient. Sequences are per attempt; the last entry repeats."""

    name: str = "accept"
    rcpt: tuple[str, ...] = (ACCEPT,)
    data: tuple[str, ...] = (ACCEPT,)
    delay_seconds: float = 0.0
    rate_per_minute: int | None = None
    rate_reply: str = RATE_LIMIT_REPLY
    feedback: str | None = None      # SES simulator: 'ooto' or 'complaint' recorded on acceptance


def fill(reply: str, *, email: str, ip: str) -> str:
    """Replace ``$EMAIL``, ``$IP`` and ``$DOMAIN`` in a reply with the recipient, client IP and domain."""
    domain = email.rsplit("@", 1)[-1]
    # "xx" stays literal here: it is a placeholder only in the guide's rows (see bounce_script).
    return bounce.render(reply, {"$EMAIL": email, "$IP": ip, "$DOMAIN": domain, "xx": "xx"})


_FIXED: dict[str, Script] = {
    "success": Script("success"),
    "nxbox": Script("nxbox", rcpt=(NXBOX_REPLY,)),
    "spam": Script("spam", data=(SPAM_REPLY,)),
    "full": Script("full", rcpt=(FULL_REPLY,)),
    "drop": Script("drop", rcpt=(DROP,)),
    "drop-data": Script("drop-data", data=(DROP,)),
    "tempfail": Script("tempfail", rcpt=(TEMPFAIL_REPLY,)),
    "rcpt-reject": Script("rcpt-reject", rcpt=(RCPT_REJECT_REPLY,)),
    "data-reject": Script("data-reject", data=(DATA_REJECT_REPLY,)),
    # Amazon SES mailbox simulator local parts.
    "bounce": Script("bounce", rcpt=(SES_BOUNCE_REPLY,)),
    "ooto": Script("ooto", feedback="ooto"),
    "complaint": Script("complaint", feedback="complaint"),
    "suppressionlist": Script("suppressionlist", rcpt=(SES_SUPPRESSED_REPLY,)),
}

_NUMBERED = re.compile(r"^(greylist|rate|slow)(\d*)$")


def scheme_script(local_part: str) -> Script | None:
    """The script a recipient's local part names (``+tag`` ignored), or None for plain acceptance."""
    name = local_part.lower().split("+", 1)[0]
    if name in _FIXED:
        return _FIXED[name]
    m = _NUMBERED.match(name)
    if m:
        kind, n = m.group(1), m.group(2)
        if kind == "greylist":
            times = int(n) if n else 1
            return Script(name, rcpt=(GREYLIST_REPLY,) * times + (ACCEPT,))
        if kind == "rate":
            return Script(name, rate_per_minute=int(n) if n else 1)
        return Script(name, delay_seconds=int(n) / 1000 if n else DEFAULT_SLOW_SECONDS)
    if name.startswith("bounce-"):
        row = bounce.ROWS_BY_ID.get(name[len("bounce-"):])
        if row is None or row not in bounce.RECIPIENT_ROWS:
            # Refuse loudly rather than accept: a typo in a row id must not look like a delivery.
            return Script(name, rcpt=(f"550 5.5.0 fake MX: no recipient-side row {name[7:]!r} in "
                                      "mailcore.delivery.bounce.TABLE (python -m mailcore.harness --list)",))
        return bounce_script(row)
    return None


def bounce_script(row: bounce.Row) -> Script:
    """Replay a recipient-side row of :mod:`mailcore.delivery.bounce` at its phase (connect/MAIL rows at RCPT:
    the server cannot know the recipient before RCPT)."""
    reply = row.template.replace("xx", bounce.SAMPLE_VALUES["xx"])  # "[BLxx]" -> "[BLTS01]"
    if row.phase == "data":
        return Script(f"bounce-{row.id}", data=(reply,))
    return Script(f"bounce-{row.id}", rcpt=(reply,))


@dataclass
class Scenario:
    """Server-level behaviour plus the explicit recipient scripts of a scenario file."""

    tls: bool = True
    smtputf8: bool = True  # advertise SMTPUTF8 (RFC 6531); false: a next hop that cannot take UTF-8 addresses
    hostname: str = "fake-mx.test"
    connect: tuple[str, ...] = (PROCEED,)
    mail: tuple[str, ...] = (ACCEPT,)
    rate_per_minute: int | None = None
    rate_reply: str = RATE_LIMIT_REPLY
    recipients: list[tuple[str, Script]] = field(default_factory=list)

    def script_for(self, rcpt: str) -> Script:
        rcpt_l = rcpt.lower()
        for pattern, script in self.recipients:
            if fnmatch.fnmatchcase(rcpt_l, pattern):
                return script
        return scheme_script(rcpt_l.rsplit("@", 1)[0]) or Script()

    @classmethod
    def from_yaml(cls, path: str | Path) -> "Scenario":
        path = Path(path)
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ScenarioError(f"{path}: {exc}") from None
        return cls.from_dict(doc, where=str(path))

    @classmethod
    def from_dict(cls, doc: dict, where: str = "scenario") -> "Scenario":
        if not isinstance(doc, dict):
            raise ScenarioError(f"{where}: expected a mapping at the top level")
        known = {"tls", "smtputf8", "hostname", "connect", "mail", "rate_limit", "recipients"}
        unknown = set(doc) - known
        if unknown:
            raise ScenarioError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
                                f"known: {', '.join(sorted(known))}")
        sc = cls(tls=bool(doc.get("tls", True)), smtputf8=bool(doc.get("smtputf8", True)),
                 hostname=str(doc.get("hostname", cls.hostname)))
        if "connect" in doc:
            sc.connect = tuple(PROCEED if str(v).strip() == PROCEED else normalise_reply(v, f"{where}: connect")
                               for v in (doc["connect"] if isinstance(doc["connect"], list) else [doc["connect"]]))
        if "mail" in doc:
            sc.mail = _sequence(doc["mail"], f"{where}: mail")
        if "rate_limit" in doc:
            rl = doc["rate_limit"] or {}
            try:
                sc.rate_per_minute = int(rl["per_minute"])
            except (KeyError, TypeError, ValueError):
                raise ScenarioError(f"{where}: rate_limit needs per_minute: N") from None
            if "reply" in rl:
                sc.rate_reply = normalise_reply(rl["reply"], f"{where}: rate_limit.reply")
        for pattern, spec in (doc.get("recipients") or {}).items():
            sc.recipients.append((str(pattern).lower(), _script(str(pattern), spec or {}, f"{where}: {pattern}")))
        return sc


def _script(pattern: str, spec: dict, where: str) -> Script:
    if not isinstance(spec, dict):
        raise ScenarioError(f"{where}: expected a mapping with rcpt/data/delay_seconds/rate_per_minute/scenario")
    known = {"scenario", "rcpt", "data", "delay_seconds", "rate_per_minute", "rate_reply"}
    unknown = set(spec) - known
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
    base = Script(pattern)
    if "scenario" in spec:
        named = scheme_script(str(spec["scenario"]))
        if named is None:
            raise ScenarioError(f"{where}: unknown scenario {spec['scenario']!r}")
        base = named
    kw: dict[str, Any] = {}
    if "rcpt" in spec:
        kw["rcpt"] = _sequence(spec["rcpt"], f"{where}.rcpt")
    if "data" in spec:
        kw["data"] = _sequence(spec["data"], f"{where}.data")
    if "delay_seconds" in spec:
        kw["delay_seconds"] = float(spec["delay_seconds"])
    if "rate_per_minute" in spec:
        kw["rate_per_minute"] = int(spec["rate_per_minute"])
    if "rate_reply" in spec:
        kw["rate_reply"] = normalise_reply(spec["rate_reply"], f"{where}.rate_reply")
    return dataclasses.replace(base, name=pattern, **kw)
