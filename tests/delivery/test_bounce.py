"""The guide's bounce tables (mailcore.delivery.bounce.TABLE): a test per row, then precedence and fallbacks."""
from __future__ import annotations

import pytest

from mailcore.delivery import bounce
from mailcore.delivery.bounce import (
    FAILED_TYPES,
    ROWS_BY_ID,
    TABLE,
    classify,
    classify_connect_failure,
    classify_dns_failure,
    classify_dropped,
    classify_line,
)


@pytest.mark.parametrize("row", TABLE, ids=[r.id for r in TABLE])
def test_row_classifies_its_own_example(row):
    got = classify_line(row.example, phase=row.phase)
    assert got.row_id == row.id, f"{row.example!r} matched {got.row_id}"
    assert (got.status, got.failed_type, got.retry, got.invalid_address) == (
        row.status, row.failed_type, row.retry, row.invalid_address)
    assert got.category_zh == row.category_zh and got.err_code == int(row.example[:3])


@pytest.mark.parametrize("row", TABLE, ids=[r.id for r in TABLE])
def test_row_is_consistent(row):
    """The invariants the module docstring promises, row by row."""
    assert row.failed_type in FAILED_TYPES
    assert row.status in bounce.STATUSES
    assert row.why.strip()
    assert row.phase in bounce.PHASES
    code = int(row.template[:3])
    if code // 100 == 2:
        assert (row.status, row.failed_type, row.retry) == (0, "SendOk", False)
        return
    assert row.status != 0 and row.failed_type != "SendOk"
    assert row.retry == (code // 100 == 4), "R33: 4xx retried, 5xx final"
    assert (row.status == 3) == (row.failed_type == "SmtpContSpam")
    if row.invalid_address:
        assert code // 100 == 5 and row.status in (2, 4)
    if row.status == 2:
        assert row.invalid_address and row.failed_type in ("SmtpNxBox", "SysOutInvRcpt")
    if row.failed_type == "SmtpTempErr":
        assert row.retry
    if row.failed_type == "SmtpZPermErr":
        assert not row.retry


@pytest.mark.parametrize("row", [r for r in TABLE if r.text], ids=[r.id for r in TABLE if r.text])
def test_placeholders_are_wildcards(row):
    """The same row matches with other values in $EMAIL/$IP/$DOMAIN/xx and in other letter case."""
    other = bounce.render(row.template, {"$EMAIL": "Someone.Else+x@mail.example.org", "$IP": "2001:db8::25",
                                         "$DOMAIN": "mail.example.org", "xx": "TSS04"})
    assert classify_line(other.upper() if "$" not in row.text else other, phase=row.phase).row_id == row.id


def test_every_guide_substring_and_code_is_a_row():
    """Spot-check the guide's lists are complete: every substring of 接收地址不存在 and 垃圾邮件."""
    texts = {r.text.lower() for r in TABLE if r.text}
    for s in ("account does not exist", "invalid address", "invalid mailbox", "invalid recipient", "invalid user",
              "is not a valid mailbox", "is not a valid user", "mailbox not found", "no mailbox by that name",
              "no mailbox here by that name", "no such address", "no such mailbox", "no such recipient",
              "no such user", "recipient does not exist", "recipient is not exist", "recipient unknown",
              "unknown or illegal alias", "unknown user", "user not found", "user unknown",
              "denied by rbl", "in a dns blacklist", "in the rbl", "is filtered by rbl", "is listed in rbl",
              "as spam", "is spam", "spam denied", "spam detected", "spam filtering", "suspected spam",
              "contain the spam contents", "is over quota", "exceed mailbox quota", "grey listed",
              "has been temporarily rate limited", "greylisted", "try again later", "come back later", "overquota"):
        assert s in texts, s
    codes = {int(r.template[:3]) for r in TABLE}
    for c in (535, 556, 557, 559, 423, 524, 526, 427, 552, 554, 551, 400, 421, 450, 451, 452, 454, 501, 520,
              521, 550, 553, 598):
        assert c in codes, c


# ------------------------------------------------------------------ precedence
@pytest.mark.parametrize("reply, row_id", [
    # code+text beats the class substring ("user not found" is both)
    ("550 User not found", "nx-user-not-found"),
    ("553 5.1.1 User not found", "nx-sub-user-not-found"),
    # code+text beats code+enhanced (Gmail's URL row over the bare 550 5.1.1 row)
    ("550 5.1.1 https://support.google.com/mail/?p=NoSuchUser", "nx-gmail-nosuchuser"),
    ("550 5.1.1 nope", "nx-550-511"),
    # a class substring beats code+enhanced
    ("550 5.1.1 <a@b.test>: user unknown", "nx-sub-user-unknown"),
    # the longer pattern wins within a level
    ("554 delivery error: dd Sorry your message to a@yahoo.com cannot be delivered. This account has been "
     "disabled or discontinued [#102]", "nx-yahoo-disabled"),
    ("554 delivery error: dd mailbox gone", "invalid-554-delivery-error-dd"),
    ("451 Internal resource temporarily unavailable - https://community.mimecast.com/docs/DOC-1369#451",
     "greysys-451-mimecast"),
    # an enhanced-only RFC 3463 row when nothing more specific matches
    ("452 4.2.2 mailbox full", "rfc3463-x22-4"),
    ("553 5.1.10 null MX", "rfc3463-x110-5"),
    # class restriction: the same substring at 4xx and 5xx
    ("452 4.2.2 user is over quota", "full-sub-is-over-quota-4xx"),
    ("552 5.2.2 user is over quota", "full-sub-is-over-quota-5xx"),
])
def test_precedence(reply, row_id):
    assert classify_line(reply).row_id == row_id


def test_multiline_gmail_reply():
    reply = ("550-5.1.1 The email account that you tried to reach does not exist. Please try\n"
             "550-5.1.1 double-checking the recipient's email address for typos or\n"
             "550-5.1.1 unnecessary spaces. For more information, go to\n"
             "550 5.1.1  https://support.google.com/mail/?p=NoSuchUser d2si123.12 - gsmtp")
    c = classify_line(reply)
    assert (c.row_id, c.status, c.failed_type, c.invalid_address, c.enhanced) == (
        "nx-gmail-nosuchuser", 2, "SmtpNxBox", True, "5.1.1")


def test_success():
    c = classify(250, "2.0.0 OK 1700000000 x1si")
    assert (c.status, c.failed_type, c.retry, c.invalid_address, c.row_id) == (0, "SendOk", False, False, "ok")
    assert classify(251, "forwarded").failed_type == "SendOk"


@pytest.mark.parametrize("code, text, failed_type, retry", [
    (421, "4.3.2 System not accepting network messages", "SmtpTempErr", True),
    (452, "4.3.1 Insufficient system storage", "SmtpTempErr", True),
    (550, "5.7.1 Relaying denied", "SmtpZPermErr", False),
    (554, "5.0.0 Something else", "SmtpZPermErr", False),
    (503, "", "SmtpZPermErr", False),
])
def test_generic_fallback(code, text, failed_type, retry):
    c = classify(code, text)
    assert (c.row_id, c.failed_type, c.retry, c.status, c.invalid_address) == (None, failed_type, retry, 4, False)


def test_permanent_class_substring_in_a_4xx_is_only_deferred():
    """'user unknown' at 450 is a deferral (R33): no invalid-address entry, retried."""
    c = classify(450, "4.1.1 <a@b.test>: Recipient address rejected: User unknown in local recipient table")
    assert c.retry and not c.invalid_address and c.failed_type == "SmtpTempErr"


@pytest.mark.parametrize("phase", ["connect", "mail"])
def test_replies_before_rcpt_never_mark_the_recipient_invalid(phase):
    c = classify(550, "5.1.1 user unknown", phase=phase)
    assert c.failed_type == "SmtpNxBox" and not c.invalid_address
    assert classify(550, "5.1.1 user unknown", phase="data").invalid_address


def test_bad_phase_and_bad_reply_are_clear_errors():
    with pytest.raises(ValueError, match="phase must be one of"):
        classify(550, "x", phase="helo")
    with pytest.raises(ValueError, match="not an SMTP reply"):
        classify_line("hello")


def test_bytes_and_whitespace_are_tolerated():
    assert classify(550, b"  Mailbox   not\r\n found ").row_id == "nx-mailbox-not-found"


# ------------------------------------------------------------------ DirectMail's own delivery failures
@pytest.mark.parametrize("kind, code, retry, invalid", [
    ("servfail", 423, True, False), ("timeout", 423, True, False), ("nxdomain", 524, False, True),
    ("nodata", 526, False, True), ("no-mx", 526, False, True), ("null-mx", 526, False, True),
])
def test_dns_failures(kind, code, retry, invalid):
    c = classify_dns_failure(kind)
    assert (c.code, c.failed_type, c.status, c.retry, c.invalid_address) == (
        code, "SysOutDnsResolveFail", 4, retry, invalid)
    assert c.err_msg.startswith(str(code) + " ")


def test_dns_failure_names_are_checked():
    with pytest.raises(ValueError, match="unknown DNS failure"):
        classify_dns_failure("refused")


def test_connect_failure_and_dropped_connection():
    c = classify_connect_failure("mx.example.test")
    assert (c.code, c.err_msg, c.retry, c.invalid_address) == (
        427, "427 Socks Connect to UNREACHABLE host", True, False)
    d = classify_dropped("data")
    assert (d.code, d.failed_type, d.retry, d.phase) == (400, "SmtpTempErr", True, "data")


def test_event_fields_match_the_guides_sample():
    """The guide's sample failure event: err_code=524, status=4, failed_type=SysOutDnsResolveFail."""
    c = classify_line("524 Host not found by dns resolve [@ou070302]")
    assert (c.err_code, c.status, c.failed_type) == (524, 4, "SysOutDnsResolveFail")


def test_provider_references():
    assert bounce.provider_reference("someone@QQ.com") == "http://service.mail.qq.com/cgi-bin/help?id=20022"
    assert bounce.provider_reference("mx.outlook.com").startswith("https://mail.live.com/")
    assert bounce.provider_reference("example.test") is None
    assert len(bounce.PROVIDER_REFERENCES) == 7


def test_row_ids_are_unique_and_recipient_rows_exclude_directmail():
    assert len(ROWS_BY_ID) == len(TABLE)
    assert all(r.source != "directmail" for r in bounce.RECIPIENT_ROWS)
    assert {r.source for r in TABLE} >= {"directmail", "recipient", "rfc3463"}


@pytest.mark.parametrize("reason, row_id", [
    ("auth-failed", "dm-535"), ("too-many-rcpts", "dm-556"), ("too-large", "dm-557"), ("invalid-rcpt", "dm-559"),
    ("quota-daily", "dm-552-daily"), ("quota-monthly", "dm-552-monthly"),
    ("quota-insufficient", "dm-552-notenough"), ("spam", "dm-554"), ("account-unavailable", "dm-551"),
])
def test_submission_refusals_classify_as_directmail_rows(reason, row_id):
    """The SMTP texts cleanup refuses with (mailcore.cleanup.submission.REFUSALS, R32) are the rows of this table."""
    from mailcore.cleanup.submission import REFUSALS
    assert classify_line(REFUSALS[reason].smtp).row_id == row_id


# ------------------------------------------------------------------ DirectMail's codes as reply text (issue 13)
_OWN = [("servfail", classify_dns_failure("servfail")), ("nxdomain", classify_dns_failure("nxdomain")),
        ("nodata", classify_dns_failure("nodata")), ("null-mx", classify_dns_failure("null-mx")),
        ("unreachable", classify_connect_failure())]


def _fields(c):
    return (c.code, c.status, c.failed_type, c.retry, c.invalid_address, c.category_zh)


@pytest.mark.parametrize("phase", bounce.PHASES)
@pytest.mark.parametrize("kind, own", _OWN, ids=[k for k, _ in _OWN])
def test_directmail_codes_classify_the_same_as_reply_text(kind, own, phase):
    """423/524/526/427 from our own delivery and the same reply relayed back by a server, at any phase."""
    for reply in (own.err_msg, own.err_msg.lower(), own.err_msg + " [@ou070302]"):
        assert _fields(classify_line(reply, phase=phase)) == _fields(own), reply


@pytest.mark.parametrize("reply, row_id", [
    # DirectMail's texts under another code (a relay passing them on): the row's outcome, R33's retry
    ("550 5.4.4 Host not found by dns resolve", "dm-524"),
    ("554 No data by dns resolve", "dm-526"),
    ("450 4.4.3 Dns resolve error", "dm-423"),
    ("421 Socks Connect to UNREACHABLE host", "dm-427"),
    ("550 Invalid rcptto", "dm-559"),
    ("554 5.7.1 Reject by content spam", "dm-554"),
    ("550 Monthly sending quota exceeded", "dm-552-daily"),
])
def test_directmail_texts_under_other_codes(reply, row_id):
    c, row = classify_line(reply), ROWS_BY_ID[row_id]
    assert (c.row_id, c.status, c.failed_type, c.retry) == (row_id, row.status, row.failed_type, reply[0] == "4")
    assert c.invalid_address == (row.invalid_address and reply[0] == "5")


@pytest.mark.parametrize("reply, failed_type, invalid", [
    # the general classification: enhanced code, then phrases, for replies no row names
    ("550 5.7.26 Multiple authentication checks failed", "SmtpAuthFail", False),
    ("550 5.7.23 SPF validation failed", "SmtpAuthFail", False),
    ("452 4.2.2 Mailbox full", "SmtpRcptFreq", False),
    ("553 5.1.10 null MX", "SmtpNxBox", True),
    ("550 5.1.6 Destination mailbox has moved, no forwarding address", "SmtpNxBox", True),
    ("554 5.7.25 Reverse DNS validation failed", "SmtpZPermErr", False),
    ("553 5.1.8 Domain of sender address does not exist", "SmtpZPermErr", False),
    ("421 4.7.0 Too many connections from your IP", "SmtpMfFreq", False),
    ("550 5.7.1 Our system has detected that this message is likely suspicious", "SmtpContSpam", False),
    ("550 5.7.1 550-5.7.1 flattened 5.7.1 reply that 5.7.1 fails DMARC", "SmtpAuthFail", False),
])
def test_general_classification(reply, failed_type, invalid):
    c = classify_line(reply)
    assert (c.failed_type, c.invalid_address, c.retry) == (failed_type, invalid, reply[0] == "4")
