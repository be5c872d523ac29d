"""Every reply the submission server writes, in one table.

Refusals that cleanup and the API share (535, 556, 557, 559, 551, 552, 554, ...) live in
`mailcore.cleanup.submission.REFUSALS`; this table holds the rest: protocol replies (greeting, EHLO, AUTH,
syntax errors, the DATA acknowledgement with the queue id, shutdown). Codes carry RFC 3463
enhanced status codes (we advertise ENHANCEDSTATUSCODES, RFC 2034), except where RFC 2034
exempts them: the greeting, the EHLO/HELO lines, and the 3xx continuations.

aiosmtpd writes its own literal replies for the protocol states it handles (`smtp.py`). Rather
than re-implementing those commands, the server passes every line aiosmtpd writes through
`translate()`, which maps aiosmtpd's texts (AIOSMTPD_LINES) onto rows here or onto REFUSALS,
so what a client sees always comes from one of the two tables.
"""
from __future__ import annotations

import re
from typing import NamedTuple

from mailcore.cleanup.submission import REFUSALS


class Reply(NamedTuple):
    code: int
    enhanced: str | None  # RFC 3463 class.subject.detail; None where RFC 2034 exempts it
    text: str  # may hold {placeholders}, filled by line(**values)

    def line(self, **values: object) -> str:
        text = self.text.format(**values)
        return f"{self.code} {self.enhanced} {text}" if self.enhanced else f"{self.code} {text}"


REPLIES: dict[str, Reply] = {
    # connection
    "greeting": Reply(220, None, "{hostname} ESMTP mailcore submission ready"),
    "helo": Reply(250, None, "{hostname}"),
    "bye": Reply(221, "2.0.0", "Bye"),
    "shutdown": Reply(421, "4.3.2", "Service shutting down, try again later"),
    "timeout": Reply(421, "4.4.2", "Idle for too long, closing connection"),
    "too-many-connections": Reply(421, "4.3.2", "Too many connections, try again later"),
    "too-many-connections-ip": Reply(421, "4.7.0", "Too many connections from your address, try again later"),
    "ok": Reply(250, "2.0.0", "OK"),
    "help": Reply(214, "2.0.0", "Supported commands: {commands}"),
    "help-command": Reply(214, "2.0.0", "Syntax: {usage}"),
    "vrfy": Reply(252, "2.1.5", "Cannot VRFY user, but will accept message and attempt delivery"),
    "not-implemented": Reply(502, "5.5.1", "Command not implemented"),
    # TLS (RFC 3207)
    "starttls-ready": Reply(220, "2.0.0", "Ready to start TLS"),
    "tls-unavailable": Reply(454, "4.7.0", "TLS not available"),
    "starttls-first": Reply(530, "5.7.0", "Must issue a STARTTLS command first"),
    "tls-failed": Reply(554, "5.7.0", "Command refused due to lack of security"),
    # AUTH (RFC 4954); 535 is REFUSALS["auth-failed"]
    "auth-ok": Reply(235, "2.7.0", "Authentication successful"),
    "auth-required": Reply(530, "5.7.0", "Authentication required"),
    "encryption-required": Reply(538, "5.7.11", "Encryption required for requested authentication mechanism"),
    "already-authenticated": Reply(503, "5.5.1", "Already authenticated"),
    "auth-syntax": Reply(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]"),
    "auth-mechanism": Reply(504, "5.5.4", "Unrecognized authentication type"),
    "auth-aborted": Reply(501, "5.7.0", "Authentication aborted"),
    "auth-base64": Reply(501, "5.5.2", "Cannot decode base64"),
    "auth-plain-malformed": Reply(501, "5.5.2", "AUTH PLAIN response must be authzid NUL authcid NUL password"),
    "auth-too-many": Reply(421, "4.7.0", "{command} sent too many times"),
    "auth-throttled": Reply(454, "4.7.0", "Too many failed authentication attempts, try again later"),
    # the LOGIN prompts are the guide's (base64 "dXNlcm5hbWU6", "UGFzc3dvcmQ6"), sent base64-encoded
    "auth-login-username": Reply(334, None, "username:"),
    "auth-login-password": Reply(334, None, "Password:"),
    # command syntax and sequence
    "syntax": Reply(500, "5.5.2", "Syntax error, command unrecognized"),
    "line-too-long": Reply(500, "5.5.2", "Line too long"),
    "not-ascii": Reply(500, "5.5.2", "Non-ASCII input needs SMTPUTF8"),
    "unknown-command": Reply(500, "5.5.1", "Command {command} not recognized"),
    "too-many-unknown": Reply(502, "5.5.1", "Too many unrecognized commands, goodbye"),
    "syntax-args": Reply(501, "5.5.4", "Syntax: {usage}"),
    "helo-first": Reply(503, "5.5.1", "Send EHLO first"),
    "need-mail": Reply(503, "5.5.1", "Need MAIL command"),
    "need-rcpt": Reply(503, "5.5.1", "Need RCPT command"),
    "nested-mail": Reply(503, "5.5.1", "Nested MAIL command"),
    "bad-address": Reply(553, "5.1.3", "Malformed address"),
    "bad-sender-address": Reply(501, "5.1.7", "Bad sender address syntax: {why}"),
    "bad-rcpt-address": Reply(501, "5.1.3", "Bad recipient address syntax: {why}"),
    "smtputf8-required": Reply(553, "5.6.7", "Non-ASCII address needs the SMTPUTF8 parameter of MAIL FROM (RFC 6531)"),
    "bad-body": Reply(501, "5.5.4", "BODY must be 7BIT or 8BITMIME"),
    "smtputf8-unavailable": Reply(555, "5.5.4", "SMTPUTF8 not supported"),
    "mail-params": Reply(555, "5.5.4", "MAIL FROM parameters not recognized or not implemented"),
    "rcpt-params": Reply(555, "5.5.4", "RCPT TO parameters not recognized or not implemented"),
    "dsn-param": Reply(501, "5.5.4", "Invalid DSN parameter {param}"),
    # the transaction (the guide's texts: "Mail Ok", "Rcpt Ok", "Data Ok: queued as freedom ###envid=N")
    "mail-ok": Reply(250, "2.1.0", "Mail Ok"),
    "rcpt-ok": Reply(250, "2.1.5", "Rcpt Ok"),
    "data-start": Reply(354, None, "End data with <CR><LF>.<CR><LF>"),
    "data-line-too-long": Reply(500, "5.5.2", "Line too long (see RFC 5321 4.5.3.1.6)"),
    "queued": Reply(250, "2.0.0", "Data Ok: queued as freedom ###envid={env_id}"),
    "trace-header": Reply(550, "5.6.0", "X-AliDM-Trace must be base64-encoded JSON, e.g. {{\"OpenTrace\": \"1\"}}"),
    "temp-failure": Reply(451, "4.3.0", "Temporary failure, message not accepted, try again later"),
}


def reply(name: str, **values: object) -> str:
    """The line for row `name`; `values` fill its placeholders."""
    return REPLIES[name].line(**values)


def refusal(reason: str) -> str:
    """The line for a REFUSALS reason (the replies shared with cleanup and the API)."""
    return REFUSALS[reason].smtp


# aiosmtpd's own literal replies (aiosmtpd/smtp.py, 1.4.x) -> ("reply" | "refusal", name).
# Each pattern must match a whole line; named groups fill the row's placeholders.
AIOSMTPD_LINES: list[tuple[re.Pattern, str, str]] = [(re.compile(p), kind, name) for p, kind, name in [
    (r"220 Ready to start TLS", "reply", "starttls-ready"),
    (r"221 Bye", "reply", "bye"),
    (r"250 OK", "reply", "ok"),
    (r"250 Syntax: (?P<usage>.*)", "reply", "help-command"),
    (r"(?:250|501) Supported commands: (?P<commands>.*)", "reply", "help"),
    (r"252 Cannot VRFY user.*|502 Could not VRFY .*", "reply", "vrfy"),
    (r"235 2\.7\.0 Authentication successful", "reply", "auth-ok"),
    (r"354 End data with <CR><LF>\.<CR><LF>", "reply", "data-start"),
    (r"421 4\.7\.0 (?P<command>\S+) sent too many times", "reply", "auth-too-many"),
    (r"454 TLS not available", "reply", "tls-unavailable"),
    (r"500 Command line too long", "reply", "line-too-long"),
    (r"500 Error: bad syntax", "reply", "syntax"),
    (r"500 Error: strict ASCII mode", "reply", "not-ascii"),
    (r"500 Error: command [\"'](?P<command>[^\"']*)[\"'] not recognized", "reply", "unknown-command"),
    (r"500 Line too long \(see RFC5321 4\.5\.3\.1\.6\)", "reply", "data-line-too-long"),
    (r"500 Error: \(.*\) .*|500 Error: Cannot describe error", "reply", "temp-failure"),
    (r"501 Syntax: (?P<usage>.*)", "reply", "syntax-args"),
    (r"501 Not enough value|501 Too many values", "reply", "auth-syntax"),
    (r"501 5\.7\.0 Auth aborted", "reply", "auth-aborted"),
    (r"501 5\.5\.2 Can't decode base64", "reply", "auth-base64"),
    (r"501 5\.5\.2 Can't split auth value", "reply", "auth-plain-malformed"),
    (r"501 Error: BODY can only be one of 7BIT, 8BITMIME", "reply", "bad-body"),
    (r"501 Error: SMTPUTF8 .*", "reply", "smtputf8-unavailable"),
    (r"502 EXPN not implemented", "reply", "not-implemented"),
    (r"502 5\.5\.1 Too many unrecognized commands, goodbye\.", "reply", "too-many-unknown"),
    (r"503 Error: send \S+ first", "reply", "helo-first"),
    (r"503 Error: need MAIL command", "reply", "need-mail"),
    (r"503 Error: need RCPT command", "reply", "need-rcpt"),
    (r"503 Error: nested MAIL command", "reply", "nested-mail"),
    (r"503 Already authenticated", "reply", "already-authenticated"),
    (r"504 5\.5\.4 Unrecognized authentication type", "reply", "auth-mechanism"),
    (r"530 5\.7\.0 Authentication required", "reply", "auth-required"),
    (r"530 Must issue a STARTTLS command first", "reply", "starttls-first"),
    (r"535 5\.7\.8 Authentication credentials invalid", "refusal", "auth-failed"),
    (r"538 5\.7\.11 Encryption required for requested authentication mechanism", "reply", "encryption-required"),
    (r"552 Error: Too much mail data", "refusal", "too-large"),
    (r"552 Error: message size exceeds fixed maximum message size", "refusal", "too-large"),
    (r"553 5\.1\.3 Error: malformed address", "reply", "bad-address"),
    (r"554 Command refused due to lack of security", "reply", "tls-failed"),
    (r"555 MAIL FROM parameters not recognized or not implemented", "reply", "mail-params"),
    (r"555 RCPT TO parameters not recognized or not implemented", "reply", "rcpt-params"),
]]


_BY_CODE: dict[str, list[tuple[re.Pattern, str, str]]] = {}
for _row in AIOSMTPD_LINES:  # each line is tried only against the rows of its own reply code
    for _code in set(re.findall(r"\b[2-5][0-9][0-9]\b", _row[0].pattern)):
        _BY_CODE.setdefault(_code, []).append(_row)


def translate(line: str) -> str | None:
    """Our line for one of aiosmtpd's literal replies, or None when `line` is not one of them."""
    for pattern, kind, name in _BY_CODE.get(line[:3], ()):
        m = pattern.fullmatch(line)
        if m:
            return reply(name, **m.groupdict()) if kind == "reply" else refusal(name)
    return None
