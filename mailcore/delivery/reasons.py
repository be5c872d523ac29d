"""The general classification (issue 13): a reply the guide's rows do not name, classified by reason.

Evidence, in order (mailcore.delivery.bounce runs the guide's TABLE first and keeps it on top):

1. the reply code: 2xx success; 4xx retried, 5xx final (R33) whatever the reason;
2. :func:`mailcore.delivery.phrases.decisive`: DirectMail's own texts, whatever code carries them,
   and the few receiver wordings that overrule the enhanced code they come with;
3. the RFC 3463 enhanced status code (:mod:`mailcore.delivery.enhanced`, the IANA registry);
4. the receiver's phrases (:data:`mailcore.delivery.phrases.PHRASES`);
5. nothing: SmtpTempErr (4xx) or SmtpZPermErr (5xx), as before.

:data:`REASONS` turns a reason into the guide's fields. Only three reasons ever mark an address
invalid (R37), and only in a 5xx: the mailbox does not exist or is disabled (``nx``), the address is
malformed (``syntax``), the domain does not exist or receives no mail (``nodomain``, ``nullmx``).
A 4xx never does: whatever it says, it is a deferral (R33).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from mailcore.delivery import enhanced as _enhanced
from mailcore.delivery import phrases as _phrases


@dataclass(frozen=True)
class Reason:
    """What a reason means in the guide's terms; ``perm`` is for a 5xx, ``temp`` for a 4xx."""

    category: str
    category_zh: str
    perm: tuple[int, str, bool]   # status, failed_type, invalid address
    temp: tuple[int, str]         # status, failed_type (never invalid, always retried)


_Z = (4, "SmtpZPermErr", False)
_T = (4, "SmtpTempErr")

REASONS: dict[str, Reason] = {
    "nx": Reason("recipient does not exist", "接收地址不存在", (2, "SmtpNxBox", True), _T),
    "syntax": Reason("malformed recipient address", "接收地址格式错误", (2, "SysOutInvRcpt", True), _T),
    "nullmx": Reason("null MX", "MX 解析查询失败", (2, "SmtpNxBox", True), _T),
    "nodomain": Reason("recipient domain does not exist", "MX 解析查询失败", (4, "SysOutDnsResolveFail", True),
                       (4, "SysOutDnsResolveFail")),
    "dns": Reason("DNS lookup failed", "MX 解析查询失败", (4, "SysOutDnsResolveFail", False), (4, "SysOutDnsResolveFail")),
    "full": Reason("mailbox full", "邮箱空间满", (4, "SmtpRcptFreq", False), (4, "SmtpRcptFreq")),
    "rcptfreq": Reason("recipient temporarily restricted", "接收地址被限制", (4, "SmtpRcptFreq", False),
                       (4, "SmtpRcptFreq")),
    "freq": Reason("sending rate limited", "IP 频率超限", (4, "SmtpMfFreq", False), (4, "SmtpMfFreq")),
    "auth": Reason("sender authentication failed", "SPF 验证失败", (4, "SmtpAuthFail", False), (4, "SmtpAuthFail")),
    "spam": Reason("spam", "垃圾邮件", (3, "SmtpContSpam", False), (3, "SmtpContSpam")),
    "blocked": Reason("sending IP or domain blocked", "IP 黑名单", _Z, _T),
    "size": Reason("message too large", "邮件大小超限", _Z, _T),
    "sender": Reason("sender address rejected", "发信地址被拒绝", _Z, _T),
    "relay": Reason("relay access denied", "收件方需放行", _Z, _T),
    "grey": Reason("greylisted", "账号灰名单", _Z, _T),
    "system": Reason("receiver system failure", "接收方临时故障", _Z, _T),
    "protocol": Reason("SMTP protocol error", "协议错误", _Z, _T),
    "content": Reason("message format refused", "邮件格式错误", _Z, _T),
    "perm": Reason("permanent failure", "永久错误", _Z, _T),
}

# DirectMail's own texts (phrases.DECISIVE) classify as the guide's row for them.
DIRECTMAIL_ROWS: dict[str, str] = {
    "dm-dns-nxdomain": "dm-524", "dm-dns-nodata": "dm-526", "dm-dns-error": "dm-423",
    "dm-unreachable": "dm-427", "dm-invalid-rcpt": "dm-559", "dm-quota": "dm-552-daily", "dm-spam": "dm-554",
    "dm-size": "dm-557", "dm-rcpts": "dm-556",
}


@dataclass(frozen=True)
class Verdict:
    """The general classifier's answer: a reason (key of REASONS) or a DirectMail row id, and why."""

    reason: str | None
    row_id: str | None
    evidence: str        # "directmail", "phrase", "enhanced", "fallback"


def judge(code: int, enhanced: str | None, text: str) -> Verdict:
    """The reason for a reply that no row of the guide's table matched (see the module docstring)."""
    if enhanced:  # a flattened multi-line reply repeats its codes ("550-5.7.1") inside the text
        text = re.sub(rf"(?:\b\d{{3}}[- ])?(?<![\d.]){re.escape(enhanced)}(?![\d.])", " ", text)
        text = re.sub(r"\s+", " ", text).strip()
    found = _phrases.decisive(text)
    if found in DIRECTMAIL_ROWS:
        return Verdict(None, DIRECTMAIL_ROWS[found], "directmail")
    if found:
        return Verdict(found, None, "phrase")
    by_code = _enhanced.reason(enhanced, text)
    if by_code:
        return Verdict(by_code, None, "enhanced")
    found = _phrases.reason(text)
    if found:
        return Verdict(found, None, "phrase")
    return Verdict(None, None, "fallback")


def said(enhanced: str | None, text: str) -> str | None:
    """The reason the reply's own words give (decisive or receiver phrases), ignoring its enhanced code;
    None when the words say nothing or only DirectMail's own texts match."""
    if enhanced:
        text = re.sub(rf"(?:\b\d{{3}}[- ])?(?<![\d.]){re.escape(enhanced)}(?![\d.])", " ", text)
    found = _phrases.decisive(text)
    if found in DIRECTMAIL_ROWS:
        return None
    return found or _phrases.reason(text)


def fields(reason: str, code: int) -> tuple[int, str, bool, bool]:
    """``(status, failed_type, retry, invalid_address)`` for a reason and a 4xx/5xx code (R33)."""
    r = REASONS[reason]
    if code // 100 == 4:
        status, failed_type = r.temp
        return status, failed_type, True, False
    status, failed_type, invalid = r.perm
    return status, failed_type, False, invalid
