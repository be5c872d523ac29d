"""Issue 11's three triggers through the real front doors (SMTP and the official SDK), then qmgr and
the fake MX: refused at ingress with the guide's style of error when the address is malformed,
delivered over SMTPUTF8 when it is a valid UTF-8 address, and ordinary mail keeps flowing."""
from __future__ import annotations

import pytest
from alibabacloud_dm20151123 import models as dm
from alibabacloud_tea_openapi.exceptions import ClientException

from mailcore.ingress.smtpd.replies import reply
from tests.support.pipeline import SENDER

LONG_LABEL = "a@" + "x" * 64 + ".dest.example"
MESSAGE = (f"From: {SENDER}\r\nTo: someone@dest.example\r\nSubject: hi\r\n\r\nhello\r\n").encode()


def line(code, text):
    return f"{code} {text.decode().splitlines()[-1]}"


def test_smtp_refuses_a_dns_label_over_63_octets_at_rcpt_and_delivery_goes_on(pipeline, world):
    with pipeline.smtp() as c:
        assert "smtputf8" in c.esmtp_features
        assert c.mail(SENDER)[0] == 250
        code, text = c.rcpt(LONG_LABEL)
        assert code == 501 and line(code, text).startswith("501 5.1.3 Bad recipient address syntax: ")
        assert b"63" in text or b"periods cannot be separated" in text
        code, text = c.rcpt("x@exa_mple.dest.example")  # a malformed domain
        assert code == 501
        assert c.rcpt("alice@dest.example")[0] == 250
        code, text = c.data(MESSAGE)
        assert code == 250
    assert pipeline.drain() == 1
    assert pipeline.states() == {"alice@dest.example": "sent"}


def test_smtp_takes_a_utf8_address_only_with_smtputf8_and_delivers_it(pipeline, world):
    with pipeline.smtp(smtputf8=True) as c:  # no SMTPUTF8 parameter on MAIL: RFC 6531 says no
        assert c.mail(SENDER)[0] == 250
        assert line(*c.rcpt("josé@dest.example")) == reply("smtputf8-required")
        c.rset()
        assert c.mail(SENDER, ["SMTPUTF8"])[0] == 250
        assert c.rcpt("josé@dest.example")[0] == 250
        assert c.data(MESSAGE)[0] == 250
    pipeline.drain()
    assert pipeline.states() == {"josé@dest.example": "sent"}
    assert [list(m.rcpt_tos) for m in world.mx.messages()] == [["josé@dest.example"]]


def test_smtp_refuses_a_malformed_mail_from(pipeline):
    with pipeline.smtp() as c:
        code, text = c.mail("orders@-mail.example.com")
        assert code == 501 and line(code, text).startswith("501 5.1.7 Bad sender address syntax: ")


def test_api_accepts_a_utf8_address_and_refuses_malformed_ones(pipeline, world):
    env = pipeline.single("josé@dest.example, bob@dest.example")
    for bad in (LONG_LABEL, "a@" + "b." * 130 + "dest.example", "x@exa_mple.org"):
        with pytest.raises(ClientException) as exc:
            pipeline.single(bad)
        assert (exc.value.code, exc.value.status_code) == ("InvalidToAddress", 400)
    with pytest.raises(ClientException) as exc:
        pipeline.single("bob@dest.example", account_name="orders@-mail.example.com")
    assert (exc.value.code, exc.value.status_code) == ("InvalidParameter", 400)
    pipeline.drain()
    assert pipeline.states(env) == {"josé@dest.example": "sent", "bob@dest.example": "sent"}


@pytest.mark.parametrize("data, why", [
    ({"UserName": "x" * 1001}, "at most 1000"),
    ({"UserName": "nul\x00byte"}, "control character"),
])
def test_api_refuses_template_data_it_cannot_take(pipeline, data, why):
    with pytest.raises(ClientException) as exc:
        pipeline.single("carol@dest.example", text_body=None, template=dm.SingleSendMailRequestTemplate(
            template_id=pipeline.template_id("vip-offer"), template_data=data))
    assert (exc.value.code, exc.value.status_code) == ("InvalidParameter", 400) and why in exc.value.message
    assert pipeline.states() == {}


def test_api_template_data_with_crlf_is_delivered_without_injected_headers(pipeline, world):
    env = pipeline.single("dave@dest.example", text_body=None, template=dm.SingleSendMailRequestTemplate(
        template_id=pipeline.template_id("vip-offer"), template_data={"UserName": "Dave\r\nBcc: x@else.example"}))
    pipeline.single("erin@dest.example")
    assert pipeline.drain() == 2
    assert pipeline.states(env) == {"dave@dest.example": "sent"}
    [msg] = world.mx.messages(rcpt="dave@dest.example")
    assert b"\r\nBcc:" not in msg.data.split(b"\r\n\r\n", 1)[0]
    assert pipeline.states()["erin@dest.example"] == "sent"


def test_a_nul_in_a_submitted_header_is_not_an_internal_error(pipeline, world):
    """PostgreSQL refuses NUL in text: a Subject holding one failed the whole group commit (451)."""
    with pipeline.smtp() as c:
        assert c.mail(SENDER)[0] == 250 and c.rcpt("frank@dest.example")[0] == 250
        code, _ = c.data(MESSAGE.replace(b"Subject: hi", b"Subject: h\x00i"))
        assert code == 250
    pipeline.drain()
    assert pipeline.states() == {"frank@dest.example": "sent"}
