"""What ingress (smtpd, api, batch jobs) hands to cleanup, and how cleanup says no.

Ingress parses and authenticates; cleanup decides and writes. A refusal is a `SubmitRefused`
with a reason from REFUSALS; smtpd turns the reason into the guide's SMTP reply and the API
into its error code, both from this one table, so the two front doors refuse alike.

A row with an `explain` text says what to change: its refusal is raised through
`SubmitRefused.explained(reason, **facts)` (or the helpers below), the filled text becomes the
refusal's detail, and both front doors show it: SMTP in place of the row's short text (the code
and enhanced code stay the guide's), the API after the row's message.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import NamedTuple, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class Refusal(NamedTuple):
    smtp: str  # the full SMTP reply line (code, enhanced code, text) — the guide's texts where it has one
    api_code: str  # the DirectMail API error code
    http_status: int
    api_message: str
    requirement: str
    explain: str = ""  # what to change, with {facts} (SubmitRefused.explained); shown by SMTP and the API


# reason -> how each front door says it. The SMTP texts are the guide's (R2, R3, R28, R32).
REFUSALS: dict[str, Refusal] = {
    "auth-failed": Refusal("535 5.7.8 Authentication failure", "InvalidAccessKeyId.NotFound", 404,
                           "Specified access key is not found.", "R32"),
    "too-many-rcpts": Refusal("556 5.5.3 The number of RCPTs is over size", "InvalidToAddress", 400,
                              "The specified toAddress is wrongly formed.", "R32"),
    "too-large": Refusal("557 5.3.4 The length of DATA content is achieved the maximum threshold", "InvalidBody", 400,
                         "The specified textBody or htmlBody is wrongly formed.", "R32"),
    "invalid-rcpt": Refusal("559 5.1.1 Invalid rcptto", "InvalidToAddress.Spam", 400,
                            "Sendmail rejected by invalid address.", "R32, R37"),
    "quota-daily": Refusal("552 5.7.0 Daily sending quota exceeded", "InvalidSendMail.Spam", 400,
                           "Sendmail rejected by spam filter.", "R2"),
    "quota-monthly": Refusal("552 5.7.0 Monthly sending quota exceeded", "InvalidSendMail.Spam", 400,
                             "Sendmail rejected by spam filter.", "R2"),
    "quota-insufficient": Refusal("552 5.7.0 Not enough sending quota", "InvalidSendMail.Spam", 400,
                                  "Sendmail rejected by spam filter.", "R2"),
    "spam": Refusal("554 5.7.1 Reject by content spam", "InvalidSendMail.Spam", 400,
                    "Sendmail rejected by spam filter.", "R32"),
    "account-unavailable": Refusal("551 5.7.1 Main account unavailable", "InvalidSendMail.Spam", 400,
                                   "Sendmail rejected by spam filter.", "R3"),
    "ip-not-allowed": Refusal("554 5.7.1 Client IP not in the IP allow-list", "Forbidden", 403,
                              "The user is not authorized to operate on the specified resource.", "R28",
                              "Client {client_ip} is not in the account's IP allow-list (config ip_allowlist); "
                              "add it or set ip_allowlist.enabled: false"),
    "sender-unknown": Refusal("550 5.1.8 Sender address unknown", "InvalidMailAddress.NotFound", 404,
                              "The specified mailAddress does not exist.", "R12"),
    "sender-mismatch": Refusal("553 5.7.1 Sender address does not match the authenticated user", "Forbidden", 403,
                               "The user is not authorized to operate on the specified resource.", "R31"),
    "sender-not-active": Refusal("451 4.7.1 Sender address not active yet, try again later",
                                 "InvalidMailAddressStatus.Malformed", 400,
                                 "The specified mailAddress status is wrongly formed.", "R15",
                                 "Sender address not active yet (new senders wait {delay}): it becomes active at "
                                 "{active_at} ({timezone}), in {left}; try again then"),
    "sender-wrong-type": Refusal("550 5.7.1 Sender address type cannot send batch mail",
                                 "InvalidMailAddressSendType.Malformed", 400,
                                 "The specified mailAddress sendType is wrongly formed.", "R12"),
    "domain-unverified": Refusal("550 5.7.1 Sender domain is not verified", "InvalidMailAddressDomain.Malformed", 400,
                                 "The specified mailAddress domain does not exist.", "R9"),
    "wrong-region": Refusal("550 5.7.1 Sender address belongs to another region", "InvalidMailAddress.NotFound", 404,
                            "The specified mailAddress does not exist.", "R1"),
    "template-unusable": Refusal("550 5.7.1 Template not approved", "InvalidTemplate.NotFound", 404,
                                 "The specified template does not exist.", "R20"),
    "list-unknown": Refusal("550 5.1.1 Recipient list not found", "InvalidReceiver.NotFound", 404,
                            "The specified receiver does not exist.", "R17"),
    "tag-unknown": Refusal("550 5.7.1 Tag not found", "InvalidTag.NotFound", 404, "The specified tag does not exist.", "R16"),
    "tracking-unavailable": Refusal("550 5.7.1 Tracking needs a CNAME-verified domain", "InvalidParameter", 400,
                                    "Specified parameter ClickTrace is not valid.", "R9, R29"),
    # the sending identity (issue 11): the author is the authenticated sender, as DirectMail requires
    "from-mismatch": Refusal("550 5.7.1 From header does not match the authenticated user", "Forbidden", 403,
                             "The user is not authorized to operate on the specified resource.", "R31"),
    "from-malformed": Refusal("550 5.7.1 From header must be one mailbox, the authenticated user", "Forbidden", 403,
                              "The user is not authorized to operate on the specified resource.", "R31"),
    # replays and retries (issue 11): an API request's nonce is claimed with its message; a retry key
    # (ClientToken) reused for a different request is refused rather than answered with another EnvId
    "replayed": Refusal("554 5.7.1 Request already received", "SignatureNonceUsed", 400,
                        "Specified signature nonce was used already.", "R30"),
    "idempotency-mismatch": Refusal("554 5.7.1 Retry key already used for a different message",
                                    "IdempotentParameterMismatch", 400,
                                    "The request uses the same client token as a previous, but non-identical request.",
                                    "R30"),
}


class SubmitRefused(Exception):
    def __init__(self, reason: str, detail: str = ""):
        if reason not in REFUSALS:
            raise ValueError(f"unknown refusal reason {reason!r}")
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail

    @classmethod
    def explained(cls, reason: str, **facts: object) -> SubmitRefused:
        """The refusal with its row's `explain` text filled from `facts` as its detail."""
        return cls(reason, REFUSALS[reason].explain.format(**facts))

    @property
    def refusal(self) -> Refusal:
        return REFUSALS[self.reason]

    @property
    def smtp(self) -> str:
        """The SMTP reply line: the guide's code and enhanced code, then the explanation when the
        row has one (one line of ASCII), else the row's text."""
        row = self.refusal
        if not (row.explain and self.detail):
            return row.smtp
        code, enhanced, _ = row.smtp.split(" ", 2)
        text = " ".join(self.detail.encode("ascii", "backslashreplace").decode().split())[:400]
        return f"{code} {enhanced} {text}"


def ip_not_allowed(client_ip: str | None) -> SubmitRefused:
    """R28: the allow-list is on and `client_ip` is not on it."""
    return SubmitRefused.explained("ip-not-allowed", client_ip=client_ip or "(unknown address)")


def duration(seconds: float) -> str:
    """`seconds` rounded up, as people read it: 45 s, 9 min 30 s, 2 h 5 min."""
    s = max(0, math.ceil(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s" if s % 60 else f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60} min" if s % 3600 // 60 else f"{s // 3600} h"


def sender_not_active(created_at: datetime, delay_seconds: float, now: datetime, tz: str | None) -> SubmitRefused:
    """R15: the sender was created less than `delay_seconds` ago; says when it becomes active, in
    the account's timezone `tz` (UTC when unknown), and how long that is from `now`."""
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    active = created_at + timedelta(seconds=delay_seconds)
    try:
        zone, name = ZoneInfo(tz or "UTC"), tz or "UTC"
    except (ZoneInfoNotFoundError, ValueError):
        zone, name = ZoneInfo("UTC"), "UTC"
    local = active.astimezone(zone)
    offset = local.strftime("%z")
    return SubmitRefused.explained(
        "sender-not-active", delay=duration(delay_seconds), left=duration((active - now).total_seconds()),
        active_at=f"{local:%Y-%m-%d %H:%M:%S} UTC{offset[:3]}:{offset[3:]}", timezone=name)


@dataclass
class Recipient:
    address: str
    variables: dict = field(default_factory=dict)  # template variables for this recipient (R19)


@dataclass
class Submission:
    """One message (or one batch) as an ingress received it."""

    account: str
    sender: str  # the sender address (AccountName / authenticated SMTP user)
    recipients: list[Recipient]
    source: str  # "smtp" | "api" | "batch"
    region: str | None = None  # the region whose listener/endpoint received it (R1)
    client_ip: str | None = None
    subject: str | None = None
    html_body: str | None = None
    text_body: str | None = None
    raw_message: bytes | None = None  # SMTP: the DATA as received
    from_alias: str | None = None
    reply_to_sender: bool = False  # API ReplyToAddress: use the sender's verified reply-to (R13)
    tag: str | None = None
    tracking: bool = False  # ClickTrace / X-AliDM-Trace open tracking (R21)
    address_type: str = "sender"  # "random" | "sender" (R29)
    headers: dict = field(default_factory=dict)
    template: str | None = None  # batch: approved template name
    receivers_list: str | None = None  # batch: recipient list name
    client_token: str | None = None  # API ClientToken: a retry with it gets the first EnvId back
    replay: tuple[str, str, float] | None = None  # API: (AccessKeyId, nonce digest, expiry epoch), claimed with the message


@dataclass
class SubmitResult:
    env_id: str  # the queue id returned to the client (`###envid=N`, API EnvId)
    recipients: int


class Submitter(Protocol):
    async def submit(self, submission: Submission) -> SubmitResult: ...
