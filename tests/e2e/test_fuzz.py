"""Property test (hypothesis): generated recipients (ASCII, UTF-8, odd but valid forms, labels at and
over 63 octets), header values and template data go through the real SMTP and API front doors,
cleanup, qmgr and the fake MX. Whatever is accepted reaches a final or deferred state, nothing is
stuck, no front door answers with an internal error, and ordinary mail sent afterwards is delivered."""
from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email import policy

from alibabacloud_dm20151123 import models as dm
from alibabacloud_tea_openapi.exceptions import ClientException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.pipeline import SENDER

SCENARIOS = ["success", "nxbox", "greylist", "tempfail", "spam", "full", "rcpt-reject", "user"]
ODD_LOCAL = st.sampled_from(["a.b", "a+tag", "x-y_z", "o'neil", "UPPER", "1", "a" * 64, "a" * 65, "a..b", ".a",
                             "josé", "用户", "ñandú.test", "a b", "quote\"d"])
DOMAINS = st.sampled_from(["dest.example", "DEST.example", "nope.dest.example", "implicit.dest.example",
                           "bücher.dest.example", "x" * 63 + ".dest.example", "x" * 64 + ".dest.example",
                           "exa_mple.dest.example", "-bad.dest.example", "nullmx.dest.example"])
LOCAL = st.one_of(st.sampled_from(SCENARIOS), ODD_LOCAL,
                  st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12))
RECIPIENT = st.builds(lambda local, domain: f"{local}@{domain}", LOCAL, DOMAINS)
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80)
HOSTILE = st.sampled_from(["\r\nBcc: victim@else.example", "<script>alert(1)</script>", "&amp;", "\x00", "\u2028X-Evil: 1",
                           "x" * 1200, "{UserName}", "=?utf-8?q?x?="])
VALUE = st.one_of(TEXT, HOSTILE, st.builds(lambda a, b: a + b, TEXT, HOSTILE))
SEND = st.fixed_dictionaries({
    "door": st.sampled_from(["smtp", "smtp-utf8", "api", "api-template"]),
    "rcpts": st.lists(RECIPIENT, min_size=1, max_size=3),
    "subject": VALUE,
    "data": st.dictionaries(st.sampled_from(["UserName", "NickName", "Mobile"]), VALUE, max_size=3),
})


def smtp_send(pipeline, send) -> tuple[str | None, list[int]]:
    """(the env id when DATA was accepted, every reply code seen)."""
    utf8 = send["door"] == "smtp-utf8"
    msg = EmailMessage(policy=policy.SMTPUTF8 if utf8 else policy.SMTP)
    msg["From"], msg["To"] = SENDER, "undisclosed-recipients:;"
    try:
        msg["Subject"] = send["subject"]
        raw = msg.as_bytes() + b"hello\r\n" if not msg.is_multipart() else msg.as_bytes()
    except (ValueError, UnicodeError):  # the client library refuses to write it: not our input
        raw = f"From: {SENDER}\r\nSubject: plain\r\n\r\nhello\r\n".encode()
    codes = []
    with pipeline.smtp(smtputf8=utf8) as c:
        code, _ = c.mail(SENDER, ["SMTPUTF8"] if utf8 else [])
        codes.append(code)
        accepted = 0
        for rcpt in send["rcpts"]:
            try:
                code, _ = c.rcpt(rcpt)
            except UnicodeEncodeError:  # smtplib cannot write it without SMTPUTF8
                continue
            codes.append(code)
            accepted += code == 250
        if not accepted:
            return None, codes
        try:
            code, text = c.data(raw)
        except smtplib.SMTPDataError as exc:
            code, text = exc.smtp_code, exc.smtp_error
        codes.append(code)
        return (text.decode().rsplit("envid=", 1)[-1] if code == 250 else None), codes


def api_send(pipeline, send) -> tuple[str | None, list[int]]:
    kw = {}
    if send["door"] == "api-template":
        kw = dict(text_body=None, template=dm.SingleSendMailRequestTemplate(
            template_id=pipeline.template_id("vip-offer"), template_data=send["data"]))
    # line breaks in Subject (CR, LF and what str.splitlines also breaks on) are the Subject check's
    # (issue 11, "CRLF in Subject/FromAlias"), not this test's
    subject = "".join(ch for ch in send["subject"] if len(f"a{ch}b".splitlines()) == 1)[:200] or "s"
    try:
        return pipeline.single(", ".join(send["rcpts"]), subject=subject, **kw), [200]
    except ClientException as exc:
        return None, [exc.status_code]


def test_generated_input_never_stops_delivery(pipeline, world):
    sent = {"n": 0}

    @settings(max_examples=30, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                     HealthCheck.data_too_large])
    @given(SEND)
    def one(send):
        env, codes = (smtp_send if send["door"].startswith("smtp") else api_send)(pipeline, send)
        assert 500 not in codes and 451 not in codes, (send, codes)  # refused, never an internal error
        pipeline.drain()
        if env is not None:
            states = pipeline.states(env)
            assert states and all(s in ("sent", "bounced", "expired", "deferred") for s in states.values()), states
        assert pipeline.stuck() == {}
        sent["n"] += 1  # ordinary mail still flows
        ordinary = f"success+{sent['n']}@dest.example"
        env = pipeline.single(ordinary)
        pipeline.drain()
        assert pipeline.states(env) == {ordinary: "sent"}

    one()
