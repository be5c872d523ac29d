"""Bounce classification: the DirectMail guide's reply tables as one table of data (R25, R27, R33, R37).

Every SMTP reply the delivery side sees (or produces itself: DNS failure, unreachable host,
dropped connection) goes through :func:`classify`, which returns the event fields the guide
defines (``status`` 0/2/3/4, ``failed_type``), whether the queue should retry, and whether the
address joins the invalid-address base. The rows come from the guide's section
"邮件推送常见退信代码及处理方法":

* DirectMail's own codes (535, 556, 557, 559, 423/524/526, 427, 552, 554, 551), ``source="directmail"``;
* every code example and every "退信代码包含如下信息" substring of the recipient tables,
  ``source="recipient"``;
* the big-provider table: the table itself is :data:`PROVIDER_REFERENCES` (provider, domains,
  reference page); a few replies those providers document and the guide's rows do not already
  cover are rows with ``source="provider:<name>"``;
* a handful of RFC 3463 enhanced-code rows (``source="rfc3463"``) so a reply none of the above
  names still gets the right failed_type from its enhanced status code.

A reply no row matches goes to the general classification (issue 13, :mod:`mailcore.delivery.reasons`):
DirectMail's own texts under any code, then the RFC 3463 registry (:mod:`mailcore.delivery.enhanced`),
then receiver phrases grouped by reason (:mod:`mailcore.delivery.phrases`); the rows above stay on
top. fixtures/bounces/replies.csv holds real replies labelled by hand; tests/delivery/test_corpus.py
prints the agreement.

Patterns: the guide's placeholders ``$EMAIL``, ``$IP``, ``$DOMAIN`` and ``xx`` become wildcards;
matching is a case-insensitive search with runs of whitespace treated as one space, so the
multi-line replies real servers send (Gmail's ``550-5.1.1 ...``) match. Spaces that the guide's
PDF extraction put inside URLs (``https://support.google.com/ mail/...``) and words
(``doesn' t``) are removed in the rows below: the rows carry what servers actually send.

Decisions where the guide contradicts itself (each row's ``why`` says which applies):

* **4xx is retried, always (R33).** The guide's rule "返回码 4xx 表示临时性错误, 邮件推送会多次重试投递"
  governs the queue. Where a later row says "不要重试" for a 4xx reply (greylisting under
  "收信系统灰名单机制", 427/423 under "连接失败或者MX解析查询失败", the network-error 400) it is
  advice to the *sender* not to resubmit by hand; the service still retries within its give-up
  window, and a reply that never clears expires with the row's status and failed_type.
  Greylisting in particular (RFC 6647) only ever delivers if the sender retries.
* **5xx is never retried.** Rows under categories whose advice is "稍后重新尝试" (rate limits,
  "550 Mailbox unavailable or access denied") are still final when the code is 5xx; the advice
  is for the sender's next campaign.
* **OverQuota** appears as "邮箱空间满" (mailbox full) and as "收信人配合问题" (too much mail to one
  recipient, "不要重试"). Both are about the recipient's mailbox, not its existence: failed_type
  SmtpRcptFreq ("请暂时停止给当前收信人发信"), status 4, never an invalid address; retried when
  4xx (Gmail's ``OverQuotaTemp`` says so itself), final when 5xx.
* "400 the mta server of unexpected closed" is listed under 接收方临时故障 and 网络异常; it is one
  row (a duplicated match cannot have two outcomes): temporary, retried, and not added to the
  invalid-address base automatically even though the guide says repeated failures "usually" mean
  an invalid address: "usually" is not evidence enough to block a recipient for good.
* Status 3 ("接收方认为垃圾邮件") is used only with failed_type SmtpContSpam (the 垃圾邮件 rows and
  DirectMail's 554); IP and account blacklists are status 4 SmtpZPermErr: the guide's remedy for
  them is a ticket, not a content change.
* Invalid-address base (R37): only 5xx replies at RCPT or DATA that say the mailbox does not
  exist or the address is malformed, DirectMail's 559, and authoritative DNS answers that the
  domain cannot receive mail (524 NXDOMAIN, 526 no MX/A or null MX). A reply at connect or MAIL
  is about the sending side, so it never marks a recipient invalid, except an answer about the
  recipient's domain (SysOutDnsResolveFail: 524/526), which means the same at any phase.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Literal

from mailcore.delivery import reasons as _reasons

Phase = Literal["connect", "mail", "rcpt", "data"]
PHASES: tuple[str, ...] = ("connect", "mail", "rcpt", "data")

# R27, in the guide's order.
FAILED_TYPES: tuple[str, ...] = (
    "SendOk", "SysOutDnsResolveFail", "SmtpMfFreq", "SmtpContSpam", "SmtpAuthFail",
    "SmtpNxBox", "SysOutInvRcpt", "SmtpRcptFreq", "SmtpTempErr", "SmtpZPermErr",
)
STATUSES = {0: "success", 2: "invalid address", 3: "judged spam", 4: "failure"}

# Values the placeholders take in a row's example reply (tests, the fake MX's bounce-<id> scenario).
SAMPLE_VALUES = {"$EMAIL": "rcpt@example.test", "$IP": "192.0.2.10", "$DOMAIN": "example.test", "xx": "TS01"}
_PLACEHOLDER = re.compile(r"(\$EMAIL|\$IP|\$DOMAIN|xx)")
_WILDCARD = {"$EMAIL": r"[^\s<>()]+@[^\s<>()]+", "$IP": r"[0-9A-Fa-f:.]+", "$DOMAIN": r"[A-Za-z0-9.-]+",
             "xx": r"[^\s\]]*"}
_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?=\s|$|[:;,])")


@dataclass(frozen=True)
class Row:
    """One line of a guide table. ``code`` is exact; ``code_class`` (4 or 5) is for substring rows
    that match any code of that class; ``enhanced`` is an RFC 3463 code; ``text`` a pattern."""

    id: str
    source: str
    category_zh: str
    category: str
    code: int | None
    code_class: int | None
    enhanced: str | None
    text: str | None
    status: int
    failed_type: str
    retry: bool
    invalid_address: bool
    why: str
    phase: str = "rcpt"            # where a receiver typically says it (the fake MX replays it there)
    sample_code: int | None = None  # rows without a code: the example's code (default 553 or 450)

    @property
    def template(self) -> str:
        """The reply this row documents, placeholders kept (the fake MX fills in the real values)."""
        code = self.code or self.sample_code or (553 if self.code_class == 5 else 450)
        return " ".join(str(p) for p in (code, self.enhanced, self.text) if p)

    @property
    def example(self) -> str:
        """The reply this row documents, placeholders filled with :data:`SAMPLE_VALUES`."""
        return render(self.template)

    @property
    def level(self) -> int:
        """Precedence level, lower first: 0 code+text, 1 class+text, 2 code+enhanced, 3 enhanced."""
        if self.text is not None:
            return 0 if self.code is not None else 1
        return 2 if self.code is not None else 3


def render(pattern: str, values: dict[str, str] | None = None) -> str:
    """A pattern with its placeholders replaced (by the sample values unless given)."""
    vals = dict(SAMPLE_VALUES, **(values or {}))
    return _PLACEHOLDER.sub(lambda m: vals[m.group(1)], pattern)


def _compile(pattern: str) -> re.Pattern[str]:
    out = []
    for piece in _PLACEHOLDER.split(pattern):
        if piece in _WILDCARD:
            out.append(_WILDCARD[piece])
        elif piece:
            out.append(r"\s+".join(re.escape(w) for w in piece.split(" ")) if piece.strip() else r"\s+")
    return re.compile("".join(out), re.IGNORECASE)


# ----------------------------------------------------------------------------------- the table
_DM = "directmail"
_RC = "recipient"


def _r(id, cat_zh, cat, code, text, status, ft, why, *, enhanced=None, invalid=False, phase="rcpt",
       source=_RC, retry=None):
    """A code-example row; retry defaults to R33 (4xx yes, 5xx no)."""
    return Row(id=id, source=source, category_zh=cat_zh, category=cat, code=code, code_class=code // 100,
               enhanced=enhanced, text=text, status=status, failed_type=ft,
               retry=(code // 100 == 4) if retry is None else retry, invalid_address=invalid, why=why,
               phase=phase)


def _s(id, cat_zh, cat, text, status, ft, why, *, cls=5, invalid=False, phase="rcpt", sample=None,
       source=_RC):
    """A "退信代码包含如下信息" substring row, matching any code of class ``cls``."""
    return Row(id=id, source=source, category_zh=cat_zh, category=cat, code=None, code_class=cls,
               enhanced=None, text=text, status=status, failed_type=ft, retry=cls == 4,
               invalid_address=invalid, why=why, phase=phase, sample_code=sample)


_NX = ("接收地址不存在", "recipient does not exist")
_NX_WHY = "the mailbox does not exist or is disabled: final, and the address joins the invalid-address base (R37)"
_NX_SUB = "substring listed under 接收地址不存在; matches any 5xx (a 4xx saying it is only deferred, R33)"
_ACCT_BL = ("账号黑名单", "sender account blacklisted")
_IP_BL = ("IP 黑名单", "sending IP blacklisted")
_IP_BL_WHY = "the sending IP is on a blacklist; the remedy is a ticket, not new content, so SmtpZPermErr"
_RCPT_LIM = ("接收地址被限制", "recipient temporarily restricted")
_IP_FREQ = ("IP 频率超限", "sending IP rate limited")
_SND_FREQ = ("发信账号频率超限", "sender account rate limited")
_DOM_FREQ = ("发信域名频率超限", "sending domain rate limited")
_SPAM = ("垃圾邮件", "spam")
_SPAM_WHY = "the receiver judged the content spam: status 3 SmtpContSpam"
_SIZE = ("邮件大小超限", "message too large")
_FULL = ("邮箱空间满", "mailbox full")
_FULL_WHY = ("mailbox full is about the mailbox, not its existence: SmtpRcptFreq (stop sending to this "
             "recipient for now), never invalid; retried when 4xx, final when 5xx")
_TEMP = ("接收方临时故障", "receiver temporary failure")
_GREY = ("账号灰名单", "greylisted")
_GREY_WHY = "greylisting only delivers when the sender retries (RFC 6647): SmtpTempErr, retried"
_SYNTAX = ("接收地址格式错误", "malformed recipient address")
_SPF = ("SPF 验证失败", "SPF check failed")
_GREY_SYS = ("收信系统灰名单机制", "receiver greylisting mechanism")
_GREY_SYS_WHY = ("the guide says 提交工单优化, 不要重试 here but lists the same replies under 账号灰名单 as "
                 "稍后重试; greylisting needs a retry to ever deliver, so it is retried (R33) and the "
                 "'do not retry' is read as advice not to resubmit by hand")

TABLE: tuple[Row, ...] = (
    # ---------------------------------------------------------------- success
    _r("ok", "投递成功", "delivered", 250, None, 0, "SendOk",
       "250: the receiver accepted the message (guide: 250 send mail ok)", phase="data"),

    # ---------------------------------------------------------------- DirectMail's own codes (R32)
    _r("dm-535", "认证失败", "authentication failure", 535, "Authentication failure", 4, "SmtpZPermErr",
       "submission refused: wrong sender address or password; the client must fix its credentials, "
       "not retry (SmtpAuthFail is the guide's SPF/DKIM type, not SMTP AUTH)", source=_DM, phase="mail"),
    _r("dm-556", "收件地址数量超限", "too many recipients", 556, "The number of RCPTs is over size",
       4, "SmtpZPermErr", "more than 30 RCPTs in one message: the message must be split", source=_DM),
    _r("dm-557", "邮件大小超限", "message too large", 557,
       "The length of DATA content is achieved the maximum threshold", 4, "SmtpZPermErr",
       "DATA over the size limit: final", source=_DM, phase="data"),
    _r("dm-559", "命中无效地址库", "invalid-address base hit", 559, "Invalid rcptto", 2, "SysOutInvRcpt",
       "the address is already in the invalid-address base (R37): final, status 2", invalid=True,
       source=_DM),
    _r("dm-423", "MX 解析查询失败", "MX lookup failed", 423, "Dns resolve error", 4, "SysOutDnsResolveFail",
       "DirectMail's text for SERVFAIL/timeout. The guide says 不要重试 (连接失败或者MX解析查询失败) but "
       "a resolver failure is temporary by nature (RFC 5321 5.1), so it is retried like any 4xx; not "
       "invalid: nothing authoritative said the domain is gone", source=_DM),
    _r("dm-524", "MX 解析查询失败", "MX lookup failed", 524, "Host not found by dns resolve", 4,
       "SysOutDnsResolveFail", "NXDOMAIN: the domain does not exist (guide: 一般是无效域名, 从您收信列表剔除); "
       "final, invalid", invalid=True, source=_DM),
    _r("dm-526", "MX 解析查询失败", "MX lookup failed", 526, "No data by dns resolve", 4,
       "SysOutDnsResolveFail", "no MX and no A/AAAA, or a null MX (RFC 7505): the domain receives no mail; "
       "final, invalid", invalid=True, source=_DM),
    _r("dm-427", "连接失败", "connection failed", 427, "Socks Connect to UNREACHABLE host", 4, "SmtpTempErr",
       "every MX refused or timed out. The guide says 不要重试 and blames a missing MX, but a missing MX "
       "is 526 here; an unreachable host is a network condition, retried (R33), not invalid",
       source=_DM),
    _r("dm-552-monthly", "发信额度超限制", "quota exceeded", 552, "Monthly sending quota exceeded", 4,
       "SmtpZPermErr", "account quota (R2) exhausted: final for this message", source=_DM, phase="mail"),
    _r("dm-552-daily", "发信额度超限制", "quota exceeded", 552, "Daily sending quota exceeded", 4,
       "SmtpZPermErr", "account quota (R2) exhausted: final for this message", source=_DM, phase="mail"),
    _r("dm-552-notenough", "发信额度超限制", "quota exceeded", 552, "Not enough sending quota", 4,
       "SmtpZPermErr", "account quota (R2) exhausted: final for this message", source=_DM, phase="mail"),
    _r("dm-554", "反垃圾类错误", "rejected as spam", 554, "Reject by content spam", 3, "SmtpContSpam",
       "DirectMail's own content filter: status 3 SmtpContSpam", source=_DM, phase="data"),
    _r("dm-551", "发信账户状态异常", "account unavailable", 551, "Main account unavailable", 4, "SmtpZPermErr",
       "the account is restricted (R3): final", source=_DM, phase="mail"),
    # delivery's own refusals of one recipient (issue 11): contained to that recipient, never the queue
    _r("dm-553-bad-rcpt", "接收地址格式错误", "malformed recipient address", 553,
       "Recipient address cannot be delivered", 2, "SysOutInvRcpt",
       "the queued address cannot be put on the wire (a DNS label over 63 octets, an over-long address, "
       "a malformed domain): no server can ever take it, so final and invalid (R37); ingress refuses "
       "such addresses, this row catches what was queued before", enhanced="5.1.3", invalid=True, source=_DM),
    _r("dm-553-smtputf8", "接收方不支持 SMTPUTF8", "next hop lacks SMTPUTF8", 553,
       "Recipient address needs SMTPUTF8, which the receiving server does not offer", 4, "SmtpZPermErr",
       "a non-ASCII local part can only travel with SMTPUTF8 (RFC 6531 3.2); the address itself is valid, "
       "so status 4, never the invalid-address base; final (the receiver's software decides, not time)",
       enhanced="5.6.7", source=_DM),
    _r("dm-451-local", "本地投递错误", "local delivery error", 451, "Local delivery error", 4, "SmtpTempErr",
       "the message could not be built or handed over because of a fault on our side (logged with its "
       "traceback): that recipient is deferred and retried within the give-up window (R33), the rest of "
       "the queue keeps flowing", enhanced="4.3.0", source=_DM),

    # ---------------------------------------------------------------- 接收地址不存在
    _r("nx-521", *_NX, 521, "Recipient address rejected", 2, "SmtpNxBox", _NX_WHY, invalid=True),
    _r("nx-gmail-nosuchuser", *_NX, 550, "https://support.google.com/mail/?p=NoSuchUser", 2, "SmtpNxBox",
       _NX_WHY, enhanced="5.1.1", invalid=True),
    _r("nx-550-511", *_NX, 550, None, 2, "SmtpNxBox", "550 5.1.1 with any text: bad destination mailbox. "
       + _NX_WHY, enhanced="5.1.1", invalid=True),
    _r("nx-gmail-6596", *_NX, 550, "https://support.google.com/mail/answer/6596", 2, "SmtpNxBox", _NX_WHY,
       enhanced="5.1.1", invalid=True),
    _r("nx-invalid-user", *_NX, 550, "Invalid User", 2, "SmtpNxBox", _NX_WHY, invalid=True),
    _r("nx-mailbox-not-found", *_NX, 550, "Mailbox not found", 2, "SmtpNxBox", _NX_WHY, invalid=True),
    _r("nx-user-not-exist", *_NX, 550, "user not exist", 2, "SmtpNxBox",
       "listed twice in the guide; one row. " + _NX_WHY, invalid=True),
    _r("nx-user-not-found", *_NX, 550, "User not found", 2, "SmtpNxBox", _NX_WHY, invalid=True),
    _r("nx-yahoo-disabled", *_NX, 554,
       "delivery error: dd Sorry your message to $EMAIL cannot be delivered. This account has been "
       "disabled or discontinued", 2, "SmtpNxBox", _NX_WHY, invalid=True),
    _r("nx-yahoo-no-account", *_NX, 554, "delivery error: dd This user doesn't have a $DOMAIN account ($EMAIL)",
       2, "SmtpNxBox", _NX_WHY, invalid=True),
    *(_s(f"nx-sub-{slug}", *_NX, text, 2, "SmtpNxBox", _NX_SUB + "; " + _NX_WHY, invalid=True)
      for slug, text in (
          ("account-does-not-exist", "account does not exist"), ("invalid-address", "invalid address"),
          ("invalid-mailbox", "invalid mailbox"), ("invalid-recipient", "invalid recipient"),
          ("invalid-user", "invalid user"), ("not-a-valid-mailbox", "is not a valid mailbox"),
          ("not-a-valid-user", "is not a valid user"), ("mailbox-not-found", "mailbox not found"),
          ("no-mailbox-by-that-name", "no mailbox by that name"),
          ("no-mailbox-here", "no mailbox here by that name"), ("no-such-address", "no such address"),
          ("no-such-mailbox", "no such mailbox"), ("no-such-recipient", "no such recipient"),
          ("no-such-user", "no such user"), ("recipient-does-not-exist", "recipient does not exist"),
          ("recipient-is-not-exist", "recipient is not exist"), ("recipient-unknown", "recipient unknown"),
          ("unknown-or-illegal-alias", "unknown or illegal alias"), ("unknown-user", "unknown user"),
          ("user-not-found", "user not found"), ("user-unknown", "user unknown"))),

    # ---------------------------------------------------------------- 账号黑名单
    _r("acct-bl-rejected-by-recipients", *_ACCT_BL, 550, "Mail is rejected by recipients", 4, "SmtpZPermErr",
       "the recipient or its system blacklisted the sender; final, the address itself is valid"),
    _r("acct-bl-sender-in-prision", *_ACCT_BL, 550, "sender in prision", 4, "SmtpZPermErr",
       "the sender is jailed at the receiver; final, the address itself is valid"),
    _r("acct-bl-user-in-blacklist", *_ACCT_BL, 550, "User in blacklist", 4, "SmtpZPermErr",
       "the sender is on the recipient's blacklist; final, the address itself is valid"),

    # ---------------------------------------------------------------- IP 黑名单
    _r("ipbl-450-dt-rbl", *_IP_BL, 450, "DT:RBL", 4, "SmtpTempErr",
       "NetEase defers mail from an RBL-listed IP: 4xx, retried (R33)", phase="connect"),
    _r("ipbl-554-hl-ipb", *_IP_BL, 554, "HL:IPB", 4, "SmtpZPermErr", _IP_BL_WHY, phase="connect"),
    *(_r(f"ipbl-550-{t.lower()}", *_IP_BL, 550, t, 4, "SmtpZPermErr", _IP_BL_WHY)
      for t in ("DY-001", "DY-002", "OU-001", "OU-002", "SC-003", "SC-004")),
    _r("ipbl-550-in-an-rbl", *_IP_BL, 550, "in an RBL", 4, "SmtpZPermErr", _IP_BL_WHY),
    _r("ipbl-550-ip-in-prision", *_IP_BL, 550, "ip in prision", 4, "SmtpZPermErr", _IP_BL_WHY),
    _r("ipbl-550-ip-blacklisted", *_IP_BL, 550, "Your IP address is blacklisted", 4, "SmtpZPermErr", _IP_BL_WHY),
    _r("ipbl-550-571-blocked-using", *_IP_BL, 550, "Service unavailable; client [$IP] blocked using $DOMAIN",
       4, "SmtpZPermErr", _IP_BL_WHY, enhanced="5.7.1"),
    _r("ipbl-553-bl-connections", *_IP_BL, 553, "[BLxx] Connections will not be accepted from $IP", 4,
       "SmtpZPermErr", _IP_BL_WHY, enhanced="5.7.1", phase="connect"),
    _r("ipbl-554-571-client-host-blocked", *_IP_BL, 554, "Client host [$IP] blocked using $DOMAIN", 4,
       "SmtpZPermErr", _IP_BL_WHY, enhanced="5.7.1"),
    _r("ipbl-550-spamhaus-sbl", *_IP_BL, 550, "Mail from IP $IP was rejected due to listing in Spamhaus SBL",
       4, "SmtpZPermErr", _IP_BL_WHY, enhanced="5.7.1"),
    _r("ipbl-550-ip-is-blocked", *_IP_BL, 550, "IP $IP is blocked", 4, "SmtpZPermErr", _IP_BL_WHY),
    _r("ipbl-554-ip-in-blacklist", *_IP_BL, 554, "IP in blacklist", 4, "SmtpZPermErr", _IP_BL_WHY),
    _r("ipbl-598-ip-address-in-blacklist", *_IP_BL, 598, "ip address in blacklist", 4, "SmtpZPermErr",
       "598 is not a standard code but its class is 5: final. " + _IP_BL_WHY),
    *(_s(f"ipbl-sub-{slug}", *_IP_BL, text, 4, "SmtpZPermErr",
         "substring listed under IP 黑名单; 5xx only (a 4xx is a deferral, R33). " + _IP_BL_WHY)
      for slug, text in (("denied-by-rbl", "denied by RBL"), ("in-a-dns-blacklist", "in a DNS blacklist"),
                         ("in-the-rbl", "in the RBL"), ("filtered-by-rbl", "is filtered by RBL"),
                         ("listed-in-rbl", "is listed in RBL"))),

    # ---------------------------------------------------------------- 接收地址被限制
    _r("rcptlim-gmail-450-421", *_RCPT_LIM, 450, "https://support.google.com/mail/answer/6592", 4,
       "SmtpRcptFreq", "Gmail: the recipient receives mail too fast; deferred, retried", enhanced="4.2.1"),
    _r("rcptlim-550-access-denied", *_RCPT_LIM, 550, "Mailbox unavailable or access denied", 4, "SmtpRcptFreq",
       "the guide says pause and try later, but the code is 5xx: final for this message (R33); the "
       "address exists, so not invalid"),

    # ---------------------------------------------------------------- IP 频率超限
    *(_r(f"ipfreq-421-{t.lower().replace(':', '-')}", *_IP_FREQ, 421, t, 4, "SmtpMfFreq",
         "the sending IP is over the receiver's rate: SmtpMfFreq (lower the sending rate), 4xx retried",
         phase="connect")
      for t in ("HL:ICC", "HL:IFC", "RP-001", "RP-002", "RP-003")),
    _r("ipfreq-550-connection", *_IP_FREQ, 550, "Connection frequency limited", 4, "SmtpMfFreq",
       "rate limit for the rest of the day (本日内禁止再发信): 5xx, final"),
    _r("ipfreq-550-ip", *_IP_FREQ, 550, "IP frequency limited", 4, "SmtpMfFreq",
       "rate limit for the rest of the day (本日内禁止再发信): 5xx, final"),

    # ---------------------------------------------------------------- 发信账号频率超限
    _r("sndfreq-451-mi-sfq", *_SND_FREQ, 451, "MI:SFQ", 4, "SmtpMfFreq",
       "sender over the receiver's rate; 4xx retried"),
    _r("sndfreq-550-mi-stc", *_SND_FREQ, 550, "MI:STC", 4, "SmtpMfFreq", "sender over the daily limit; 5xx final"),
    _r("sndfreq-550-rp-trc", *_SND_FREQ, 550, "RP:TRC", 4, "SmtpMfFreq", "sender over the daily limit; 5xx final"),
    _r("sndfreq-554-mi-stc", *_SND_FREQ, 554, "MI:STC", 4, "SmtpMfFreq", "sender over the daily limit; 5xx final"),
    _r("sndfreq-550-sender", *_SND_FREQ, 550, "Sender frequency limited", 4, "SmtpMfFreq",
       "sender over the daily limit; 5xx final"),

    # ---------------------------------------------------------------- 发信域名频率超限
    _r("domfreq-550-domain", *_DOM_FREQ, 550, "Domain frequency limited", 4, "SmtpMfFreq",
       "sending domain over the daily limit; 5xx final"),

    # ---------------------------------------------------------------- 垃圾邮件
    _r("spam-421-470-message-from-ip", *_SPAM, 421, "[xx] Message from ($IP) temporarily deferred", 3,
       "SmtpContSpam", _SPAM_WHY + "; 4xx deferral, retried", enhanced="4.7.0", phase="data"),
    _r("spam-421-470-message-deferred", *_SPAM, 421, "[xx] Message temporarily deferred", 3, "SmtpContSpam",
       _SPAM_WHY + "; 4xx deferral, retried", enhanced="4.7.0", phase="data"),
    _r("spam-gmail-421-188131", *_SPAM, 421, "https://support.google.com/mail/answer/188131", 3, "SmtpContSpam",
       "Gmail: unusual rate of unsolicited mail. " + _SPAM_WHY + "; 4xx, retried", enhanced="4.7.0",
       phase="data"),
    _r("spam-450-requested-action", *_SPAM, 450, "Requested action not taken", 3, "SmtpContSpam",
       "a generic text the guide files under spam; followed as written, 4xx retried", phase="data"),
    _r("spam-451-dt-spm", *_SPAM, 451, "DT:SPM", 3, "SmtpContSpam", _SPAM_WHY + "; 4xx retried", phase="data"),
    _r("spam-550-dt-spm", *_SPAM, 550, "DT:SPM", 3, "SmtpContSpam", _SPAM_WHY, phase="data"),
    _r("spam-550-sc-001", *_SPAM, 550, "SC-001", 3, "SmtpContSpam", _SPAM_WHY, phase="data"),
    _r("spam-521-aol", *_SPAM, 521, ": AOL will not accept delivery of this message", 3, "SmtpContSpam",
       _SPAM_WHY, enhanced="5.2.1", phase="data"),
    _r("spam-550-content-filtering", *_SPAM, 550, "Message rejected as spam by Content Filtering", 3,
       "SmtpContSpam", _SPAM_WHY, enhanced="5.7.1", phase="data"),
    _r("spam-550-content-denied", *_SPAM, 550, "Mail content denied", 3, "SmtpContSpam", _SPAM_WHY, phase="data"),
    _r("spam-550-suspected", *_SPAM, 550, "Suspected spam", 3, "SmtpContSpam", _SPAM_WHY, phase="data"),
    _r("spam-554-not-allowed", *_SPAM, 554, "Message not allowed", 3, "SmtpContSpam", _SPAM_WHY, phase="data"),
    *(_s(f"spam-sub-{slug}", *_SPAM, text, 3, "SmtpContSpam",
         "substring listed under 垃圾邮件; 5xx only (a 4xx is a deferral, R33). " + _SPAM_WHY, phase="data")
      for slug, text in (("as-spam", "as spam"), ("is-spam", "is spam"), ("spam-denied", "spam denied"),
                         ("spam-detected", "spam detected"), ("spam-filtering", "spam filtering"),
                         ("suspected-spam", "suspected spam"), ("contain-spam-contents", "contain the spam contents"))),

    # ---------------------------------------------------------------- 邮件大小超限
    _r("size-550-too-large", *_SIZE, 550, "Message too large", 4, "SmtpZPermErr",
       "the receiver's size limit: final until the message is made smaller", phase="data"),
    _r("size-552-mailsize", *_SIZE, 552, "Requested mail action aborted: exceeded mailsize limit", 4,
       "SmtpZPermErr", "the receiver's size limit: final until the message is made smaller", phase="data"),

    # ---------------------------------------------------------------- 邮箱空间满
    _r("full-gmail-452-overquotatemp", *_FULL, 452, "https://support.google.com/mail/?p=OverQuotaTemp", 4,
       "SmtpRcptFreq", _FULL_WHY, enhanced="4.2.2"),
    _r("full-gmail-452-6558", *_FULL, 452, "https://support.google.com/mail/answer/6558", 4, "SmtpRcptFreq",
       _FULL_WHY, enhanced="4.2.2"),
    _r("full-gmail-552-6558", *_FULL, 552, "https://support.google.com/mail/answer/6558", 4, "SmtpRcptFreq",
       _FULL_WHY, enhanced="5.2.2"),
    _r("full-550-limit-exceeded", *_FULL, 550, "mailbox limit exceeded", 4, "SmtpRcptFreq", _FULL_WHY),
    _r("full-552-is-full", *_FULL, 552, "mailbox is full", 4, "SmtpRcptFreq", _FULL_WHY),
    _r("full-552-521-quota", *_FULL, 552, "Quota exceeded or service disabled", 4, "SmtpRcptFreq",
       _FULL_WHY + "; 'or service disabled' could mean a dead mailbox, but the guide files it under "
       "mailbox full, so not invalid", enhanced="5.2.1"),
    *(_s(f"full-sub-{slug}-{cls}xx", *_FULL, text, 4, "SmtpRcptFreq",
         "substring listed under 邮箱空间满 / 收信人配合问题 (OverQuota, 不要重试). " + _FULL_WHY, cls=cls)
      for slug, text in (("is-over-quota", "is over quota"), ("exceed-mailbox-quota", "exceed mailbox quota"),
                         ("overquota", "OverQuota"))
      for cls in (4, 5)),

    # ---------------------------------------------------------------- 接收方临时故障 / 网络异常
    _r("temp-400-unexpected-closed", *_TEMP, 400, "the mta server of unexpected closed", 4, "SmtpTempErr",
       "listed twice (接收方临时故障 and 网络异常); one row. Also DirectMail's text for a connection the "
       "receiver dropped. Retried (R33); the guide's 'repeated failures usually mean an invalid address' "
       "is not evidence enough to add it to the invalid-address base"),
    _r("temp-450-service-unavailable", *_TEMP, 450, "Service temporarily unavailable", 4, "SmtpTempErr",
       "receiver-side temporary failure: retried"),
    _r("temp-451-domain-resources", *_TEMP, 451, "$DOMAIN Resources temporarily unavailable", 4, "SmtpTempErr",
       "receiver-side temporary failure: retried"),
    _r("temp-451-471-sorry", *_TEMP, 451, "Sorry, the service is currently unavailable", 4, "SmtpTempErr",
       "receiver-side temporary failure: retried", enhanced="4.7.1"),
    _r("temp-451-internal-resource", *_TEMP, 451, "Internal resource temporarily unavailable", 4, "SmtpTempErr",
       "receiver-side temporary failure: retried. The same text with Mimecast's URL is also listed under "
       "收信系统灰名单机制 (不要重试); retried either way, see that row"),
    _r("temp-451-resources-not-available", *_TEMP, 451, "Resources temporarily not available", 4, "SmtpTempErr",
       "receiver-side temporary failure: retried"),
    _r("temp-451-unable-to-process", *_TEMP, 451, "Temporarily unable to process your email", 4, "SmtpTempErr",
       "receiver-side temporary failure: retried"),

    # ---------------------------------------------------------------- 账号灰名单
    _r("grey-450-420-recipient-rejected", *_GREY, 450, "<$EMAIL>: Recipient address rejected", 4, "SmtpTempErr",
       _GREY_WHY + " (Postfix/postgrey's greylisting reply)", enhanced="4.2.0"),
    _r("grey-451-471-in-action", *_GREY, 451, "Greylisting in action", 4, "SmtpTempErr", _GREY_WHY,
       enhanced="4.7.1"),
    _r("grey-451-grey-bounce", *_GREY, 451, "Grey bounce", 4, "SmtpTempErr", _GREY_WHY),
    _s("grey-sub-grey-listed", *_GREY, "grey listed", 4, "SmtpTempErr", "substring, 4xx. " + _GREY_WHY, cls=4),

    # ---------------------------------------------------------------- 接收地址格式错误
    _r("syntax-501-bad-address", *_SYNTAX, 501, "Bad address syntax", 2, "SysOutInvRcpt",
       "the address is malformed: final, invalid (R37)", invalid=True),
    _r("syntax-550-mi-imf", *_SYNTAX, 550, "MI:IMF", 2, "SysOutInvRcpt",
       "filed by the guide under malformed address: final, invalid (R37)", invalid=True),

    # ---------------------------------------------------------------- SPF 验证失败
    _r("spf-520-not-match", *_SPF, 520, "ip and spf record not match", 4, "SmtpAuthFail",
       "SPF failed: fix the sending domain's SPF (R7); final", phase="mail"),
    _r("spf-550-mi-spf", *_SPF, 550, "MI:SPF", 4, "SmtpAuthFail", "SPF failed: final", phase="mail"),
    _r("spf-550-check-failed", *_SPF, 550, "SPF check failed", 4, "SmtpAuthFail", "SPF failed: final",
       phase="mail"),

    # ------------------------------------------- 流控 / 收信系统灰名单机制 / 无效地址 / 收件方需放行
    _s("ratelimit-sub-temporarily-rate-limited", "流控", "rate limited", "has been temporarily rate limited",
       4, "SmtpMfFreq", "Microsoft's 4.7.650 IP-reputation throttle; guide: 稍后重试. Retried", cls=4, sample=421),
    _s("greysys-sub-greylisted", *_GREY_SYS, "GreyListed", 4, "SmtpTempErr", _GREY_SYS_WHY, cls=4),
    _s("greysys-sub-try-again-later", *_GREY_SYS, "try again later", 4, "SmtpTempErr", _GREY_SYS_WHY, cls=4),
    _s("greysys-sub-come-back-later", *_GREY_SYS, "come back later", 4, "SmtpTempErr", _GREY_SYS_WHY, cls=4),
    _r("greysys-451-mimecast", *_GREY_SYS, 451,
       "Internal resource temporarily unavailable - https://community.mimecast.com/docs/DOC-1369#451", 4,
       "SmtpTempErr", _GREY_SYS_WHY),
    _r("invalid-554-delivery-error-dd", "无效地址", "invalid address", 554, "delivery error: dd", 2, "SmtpNxBox",
       "Yahoo's prefix for a dead mailbox; guide: 从您收信列表剔除, 不要重试: final, invalid", invalid=True),
    _r("relay-454-471-relay-denied", "收件方需放行", "relay access denied", 454, "<$EMAIL>: Relay access denied",
       4, "SmtpTempErr", "the receiving MX does not (yet) accept this domain; the recipient must allow it. "
       "4xx, so retried within the give-up window (R33) in case they do", enhanced="4.7.1"),

    # ---------------------------------------------------------------- big providers (PROVIDER_REFERENCES)
    _r("qq-550-not-found-or-denied", *_NX, 550, "Mailbox not found or access denied", 2, "SmtpNxBox",
       "QQ Mail's reply for a mailbox that does not exist (service.mail.qq.com help 20022). " + _NX_WHY,
       invalid=True, source="provider:QQ"),
    _r("netease-554-dt-spm", *_SPAM, 554, "DT:SPM", 3, "SmtpContSpam",
       "NetEase: content judged spam (help.163.com). " + _SPAM_WHY, phase="data", source="provider:NetEase"),
    _r("netease-550-mi-dma", "SPF 验证失败", "sender authentication failed", 550, "MI:DMA", 4, "SmtpAuthFail",
       "NetEase: DMARC check failed; SmtpAuthFail (SPF or DKIM), final", phase="data", source="provider:NetEase"),
    _r("netease-554-hl-ihu", *_IP_BL, 554, "HL:IHU", 4, "SmtpZPermErr",
       "NetEase: the sending IP is suspended for spam behaviour. " + _IP_BL_WHY, phase="connect",
       source="provider:NetEase"),
    _r("netease-451-rp-qrc", *_SND_FREQ, 451, "RP:QRC", 4, "SmtpMfFreq",
       "NetEase: the sender's recipient quota for the period is used up; 4xx retried", source="provider:NetEase"),
    _r("microsoft-550-550-mailbox-unavailable", *_NX, 550, "Requested action not taken: mailbox unavailable",
       2, "SmtpNxBox", "Outlook.com's reply for an address that does not exist. " + _NX_WHY, enhanced="5.5.0",
       invalid=True, source="provider:Microsoft"),
    _r("microsoft-550-571-weren't-sent", *_IP_BL, 550, "Unfortunately, messages from [$IP] weren't sent", 4,
       "SmtpZPermErr", "Outlook.com: the IP is on its block list (S3150). " + _IP_BL_WHY, enhanced="5.7.1",
       source="provider:Microsoft"),
    _r("microsoft-451-47500-server-busy", *_TEMP, 451, "Server busy", 4, "SmtpTempErr",
       "Outlook.com throttling (4.7.500-699): retried", enhanced="4.7.500", source="provider:Microsoft"),
    _r("yahoo-421-470-messages-from", *_SPAM, 421, "[xx] Messages from $IP temporarily deferred", 3,
       "SmtpContSpam", "Yahoo TSS04: unexpected volume or user complaints; the guide's 'Message from ($IP)' "
       "row written as Yahoo sends it. " + _SPAM_WHY + "; 4xx retried", enhanced="4.7.0", phase="data",
       source="provider:Yahoo"),
    _r("yahoo-554-579-policy", *_SPAM, 554, "Message not accepted for policy reasons", 3, "SmtpContSpam",
       "Yahoo: content or reputation policy. " + _SPAM_WHY, enhanced="5.7.9", phase="data",
       source="provider:Yahoo"),

    _r("microsoft-550-541-access-denied", *_NX, 550, "Recipient address rejected: Access denied", 2, "SmtpNxBox",
       "Exchange Online's directory-based edge blocking: the recipient is not in the tenant. " + _NX_WHY,
       enhanced="5.4.1", invalid=True, source="provider:Microsoft"),
    _r("gmail-550-521-disabled", *_NX, 550, "The email account that you tried to reach is disabled", 2,
       "SmtpNxBox", "Gmail: a disabled account (the guide's 接收地址不存在 covers 被禁用). " + _NX_WHY,
       enhanced="5.2.1", invalid=True, source="provider:Gmail"),
    _r("gmail-550-571-unsolicited", *_SPAM, 550, "https://support.google.com/mail/?p=UnsolicitedMessageError", 3,
       "SmtpContSpam", "Gmail: likely unsolicited mail. " + _SPAM_WHY, enhanced="5.7.1", phase="data",
       source="provider:Gmail"),
    *(_s(f"gmail-sub-unusual-rate-unsolicited-{cls}xx", *_SPAM, "unusual rate of unsolicited mail", 3,
         "SmtpContSpam", "Gmail (4.7.28/5.7.28-style): unsolicited mail from the IP or domain. " + _SPAM_WHY,
         cls=cls, phase="data", source="provider:Gmail", sample=421 if cls == 4 else 550)
      for cls in (4, 5)),

    # ---------------------------------------------------------------- RFC 3463 enhanced codes (no text)
    Row("rfc3463-x11-5", "rfc3463", *_NX, None, 5, "5.1.1", None, 2, "SmtpNxBox", False, True,
        "X.1.1 bad destination mailbox address, any 5xx. " + _NX_WHY),
    Row("rfc3463-x110-5", "rfc3463", "MX 解析查询失败", "null MX", None, 5, "5.1.10", None, 2, "SmtpNxBox", False,
        True, "X.1.10 recipient domain has a null MX (RFC 7505): the address cannot receive mail"),
    Row("rfc3463-x13-5", "rfc3463", *_SYNTAX, None, 5, "5.1.3", None, 2, "SysOutInvRcpt", False, True,
        "X.1.3 bad destination mailbox address syntax: final, invalid (R37)"),
    Row("rfc3463-x22-4", "rfc3463", *_FULL, None, 4, "4.2.2", None, 4, "SmtpRcptFreq", True, False, _FULL_WHY),
    Row("rfc3463-x22-5", "rfc3463", *_FULL, None, 5, "5.2.2", None, 4, "SmtpRcptFreq", False, False, _FULL_WHY),
    Row("rfc3463-x723-5", "rfc3463", *_SPF, None, 5, "5.7.23", None, 4, "SmtpAuthFail", False, False,
        "X.7.23 SPF validation failed: final"),
    Row("rfc3463-x726-5", "rfc3463", "SPF 验证失败", "sender authentication failed", None, 5, "5.7.26", None, 4,
        "SmtpAuthFail", False, False, "X.7.26 multiple authentication checks (SPF/DKIM/DMARC) failed: final"),
)

# The guide's 部分大邮件服务商退信代码参考 table: where each provider documents its replies.
PROVIDER_REFERENCES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("QQ 邮箱", ("qq.com", "foxmail.com"), "http://service.mail.qq.com/cgi-bin/help?id=20022"),
    ("网易邮箱", ("163.com", "126.com", "yeah.net"), "http://help.163.com/09/1224/17/5RAJ4LMH00753VB8.html"),
    ("263 邮箱", ("263.net",), "http://www.263.net/263/helpcenter/mailbounce/20150906/842.html"),
    ("Sohu 邮箱", ("sohu.com",), "http://mail.sohu.com/info/policy"),
    ("微软邮箱", ("hotmail.com", "live.com", "live.cn", "outlook.com"),
     "https://mail.live.com/mail/troubleshooting.aspx#errors"),
    ("Yahoo 邮箱", ("yahoo.com",), "https://help.yahoo.com/kb/postmaster/smtp-error-codes-sln23996.html?impressions=true"),
    ("Aol 邮箱", ("aol.com",), "https://postmaster.aol.com/error-codes"),
)

ROWS_BY_ID: dict[str, Row] = {row.id: row for row in TABLE}
if len(ROWS_BY_ID) != len(TABLE):  # pragma: no cover - a duplicate id is a bug in the table above
    raise RuntimeError("duplicate row id in mailcore.bounce.TABLE")

# Rows a receiving MX can send, i.e. what the fake MX's bounce-<id> scenario replays.
RECIPIENT_ROWS: tuple[Row, ...] = tuple(r for r in TABLE if r.source != _DM and r.id != "ok")

_COMPILED: dict[str, re.Pattern[str]] = {r.id: _compile(r.text) for r in TABLE if r.text}
# Within a level, a longer literal pattern is more specific; ties keep table order.
_ORDERED: tuple[Row, ...] = tuple(sorted(
    TABLE, key=lambda r: (r.level, -len(_PLACEHOLDER.sub("", r.text or "")), TABLE.index(r))))


def provider_reference(domain: str) -> str | None:
    """The reference page the guide lists for a recipient domain's provider, if any."""
    domain = domain.lower().rsplit("@", 1)[-1]
    for _name, domains, url in PROVIDER_REFERENCES:
        if any(domain == d or domain.endswith("." + d) for d in domains):
            return url
    return None


# ----------------------------------------------------------------------------------- classify
@dataclass(frozen=True)
class Classification:
    """The outcome of one reply: event fields (status, failed_type, err_code, err_msg) and what to do."""

    code: int
    text: str
    status: int
    failed_type: str
    retry: bool
    invalid_address: bool
    category: str
    category_zh: str
    row_id: str | None            # None for the generic 4xx/5xx fallback
    phase: str = "rcpt"
    enhanced: str | None = field(default=None)

    @property
    def err_code(self) -> int:
        return self.code

    @property
    def err_msg(self) -> str:
        return f"{self.code} {self.text}".strip()

    @property
    def permanent(self) -> bool:
        return not self.retry and self.status != 0


def split_enhanced(text: str) -> tuple[str | None, str]:
    """``'5.1.1 user unknown'`` -> ``('5.1.1', 'user unknown')``; no enhanced code -> ``(None, text)``."""
    text = text.strip()
    m = _ENHANCED.match(text)
    if not m:
        return None, text
    return ".".join(m.groups()), text[m.end():].lstrip(" :;,")


def _normalise(text: str | bytes) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    lines = [ln.strip() for ln in text.replace("\r", "").split("\n")]
    # Multi-line replies repeat "550-5.1.1" on every line; keep the first line's code only.
    out = []
    for i, ln in enumerate(lines):
        if i:
            ln = re.sub(r"^\d{3}[- ]", "", ln)
            ln = _ENHANCED.sub("", ln, count=1).lstrip()
        out.append(ln)
    return " ".join(x for x in out if x)


def _matches(row: Row, code: int, enhanced: str | None, full: str) -> bool:
    """Code and class must agree; a row without text needs the same enhanced code; a row with
    text matches on the text (an enhanced code in the guide's example is not required)."""
    if row.code is not None and row.code != code:
        return False
    if row.code_class is not None and row.code_class != code // 100:
        return False
    if row.text is None:
        return row.enhanced is not None and enhanced == row.enhanced
    return bool(_COMPILED[row.id].search(full))


def classify(code: int, text: str | bytes = "", *, phase: Phase = "rcpt") -> Classification:
    """Classify one SMTP reply (``code`` and the text after it, multi-line allowed).

    Precedence: a row with a code and a text pattern, then a substring row for the code's class,
    then a row with a code and an enhanced code, then an enhanced-code row; the longer pattern
    wins within a level. Nothing matches: 2xx success, 4xx SmtpTempErr retried, 5xx
    SmtpZPermErr final. Replies at ``connect`` or ``mail`` never mark the recipient invalid.
    """
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {', '.join(PHASES)}, not {phase!r}")
    code = int(code)
    norm = _normalise(text)
    enhanced, _rest = split_enhanced(norm)
    if 200 <= code < 300:
        row = ROWS_BY_ID["ok"]
        return Classification(code, norm, 0, "SendOk", False, False, row.category, row.category_zh,
                              row.id, phase, enhanced)
    for row in _ORDERED:
        if row.id == "ok":
            continue
        if _matches(row, code, enhanced, norm):
            if row.text is None and row.invalid_address:
                # an enhanced code alone (X.1.1) never marks an address invalid against the reply's own
                # words: "550 5.1.1 ... has sent to too many recipients this hour" is a rate limit
                said = _reasons.said(enhanced, norm)
                if said is not None and not _reasons.REASONS[said].perm[2]:
                    status, failed_type, retry, invalid = _reasons.fields(said, code)
                    reason = _reasons.REASONS[said]
                    return Classification(code, norm, status, failed_type, retry, False, reason.category,
                                          reason.category_zh, None, phase, enhanced)
            invalid = _invalid(row.invalid_address, row.failed_type, code, phase)
            return Classification(code, norm, row.status, row.failed_type, row.retry, invalid, row.category,
                                  row.category_zh, row.id, phase, enhanced)
    verdict = _reasons.judge(code, enhanced, norm)  # no row: the general classification (issue 13)
    if verdict.row_id is not None:
        row = ROWS_BY_ID[verdict.row_id]
        retry = code // 100 == 4  # R33, whatever code carries DirectMail's text
        invalid = _invalid(row.invalid_address, row.failed_type, code, phase)
        return Classification(code, norm, row.status, row.failed_type, retry, invalid, row.category,
                              row.category_zh, row.id, phase, enhanced)
    if verdict.reason is not None:
        status, failed_type, retry, invalid = _reasons.fields(verdict.reason, code)
        reason = _reasons.REASONS[verdict.reason]
        return Classification(code, norm, status, failed_type, retry, _invalid(invalid, failed_type, code, phase),
                              reason.category, reason.category_zh, None, phase, enhanced)
    if code // 100 == 4:
        return Classification(code, norm, 4, "SmtpTempErr", True, False, "temporary failure", "临时错误",
                              None, phase, enhanced)
    return Classification(code, norm, 4, "SmtpZPermErr", False, False, "permanent failure", "永久错误",
                          None, phase, enhanced)


def _invalid(flag: bool, failed_type: str, code: int, phase: str) -> bool:
    """R37: only a 5xx, and only at RCPT or DATA, except an answer about the recipient's domain
    (524/526 and their like, SysOutDnsResolveFail), which says the same at any phase."""
    return flag and code // 100 == 5 and (phase in ("rcpt", "data") or failed_type == "SysOutDnsResolveFail")


def classify_line(reply: str, *, phase: Phase = "rcpt") -> Classification:
    """Classify a reply written as one string, ``'550 5.1.1 user unknown'`` (or ``550-...`` lines)."""
    m = re.match(r"\s*(\d{3})[ -]?(.*)", reply, re.DOTALL)
    if not m:
        raise ValueError(f"not an SMTP reply: {reply!r}")
    return classify(int(m.group(1)), m.group(2), phase=phase)


# ------------------------------------------------------------- DirectMail's own delivery failures
DnsFailure = Literal["nxdomain", "servfail", "timeout", "nodata", "no-mx", "null-mx"]
_DNS_ROWS = {"servfail": "dm-423", "timeout": "dm-423", "nxdomain": "dm-524", "nodata": "dm-526",
             "no-mx": "dm-526", "null-mx": "dm-526"}


def classify_dns_failure(kind: DnsFailure) -> Classification:
    """The guide's 423/524/526 for a recipient domain whose MX lookup failed.

    ``servfail``/``timeout`` -> 423 Dns resolve error (retried); ``nxdomain`` -> 524 Host not found
    by dns resolve; ``nodata``/``no-mx`` (no MX and no A/AAAA) and ``null-mx`` -> 526 No data by dns
    resolve. RFC 7505 suggests 556 for a null MX, but DirectMail uses 556 for "too many RCPTs".
    """
    try:
        row = ROWS_BY_ID[_DNS_ROWS[kind]]
    except KeyError:
        raise ValueError(f"unknown DNS failure {kind!r}; one of {', '.join(_DNS_ROWS)}") from None
    return _own(row)


def classify_connect_failure(host: str | None = None) -> Classification:
    """427 Socks Connect to UNREACHABLE host: no MX host accepted a TCP connection."""
    return _own(ROWS_BY_ID["dm-427"])


def classify_dropped(phase: Phase = "rcpt") -> Classification:
    """The receiver closed the connection without a reply: the guide's 400 (retried)."""
    return dataclasses.replace(_own(ROWS_BY_ID["temp-400-unexpected-closed"]), phase=phase)


def classify_bad_address(why: str) -> Classification:
    """553 5.1.3: the queued address cannot be sent to at all (`why` says which limit it breaks)."""
    return _detail(ROWS_BY_ID["dm-553-bad-rcpt"], why)


def classify_smtputf8_unavailable() -> Classification:
    """553 5.6.7: the address needs SMTPUTF8 and the next hop does not offer it (RFC 6531)."""
    return _own(ROWS_BY_ID["dm-553-smtputf8"])


def classify_local_error(why: str) -> Classification:
    """451 4.3.0: a fault on our side while building or handing over this recipient's message."""
    return _detail(ROWS_BY_ID["dm-451-local"], why)


def _detail(row: Row, why: str) -> Classification:
    why = " ".join(str(why).split())[:300]  # one line, bounded: it goes into the event's err_msg
    return dataclasses.replace(_own(row), text=f"{row.text}: {why}" if why else row.text)


def _own(row: Row) -> Classification:
    return Classification(row.code, row.text, row.status, row.failed_type, row.retry, row.invalid_address,
                          row.category, row.category_zh, row.id, row.phase, row.enhanced)
