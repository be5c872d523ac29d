"""One recipient never stops delivery for everyone (issue 11): the three triggers found (a UTF-8
local part, a DNS label over 63 octets, CRLF in TemplateData), each contained to its recipient
and classified, with ordinary mail in the same pass still delivered; a failure nobody foresaw is
deferred with a reason; qmgr's loop survives a failing pass."""
from __future__ import annotations

import asyncio
import logging

import sqlalchemy as sa

from mailcore.cleanup.submission import Recipient, Submission
from mailcore.harness import FakeMX, ManualClock, Scenario
from mailcore.queue.qmgr import Qmgr, QmgrSettings
from mailcore.store import tables as t
from tests.support.flow import events, recipients, send

LONG_LABEL = "a@" + "x" * 64 + ".dest.example"


def smtp_submit(cleanup, *rcpts):
    raw = b"From: orders@mail.example.com\r\nTo: someone\r\nSubject: hi\r\n\r\nhello\r\n"
    return cleanup.submit_sync(Submission("example-shop", "orders@mail.example.com", [Recipient(r) for r in rcpts],
                                          "smtp", raw_message=raw))


def template_submit(cleanup, rcpt, variables):
    return cleanup.submit_sync(Submission("example-shop", "orders@mail.example.com", [Recipient(rcpt, variables)], "api",
                                          template="vip-offer"))


def state(store, rcpt):
    r = recipients(store)[rcpt]
    return r["state"], r["status"], r["failed_type"], r["last_code"]


def test_utf8_local_part_is_delivered_with_smtputf8(flow, ready_store, world):
    cleanup, qmgr = flow
    send(cleanup, "josé@dest.example")
    send(cleanup, "alice@dest.example")
    assert asyncio.run(qmgr.run_once()) == 2
    assert state(ready_store, "josé@dest.example")[:2] == ("sent", 0)
    assert state(ready_store, "alice@dest.example")[:2] == ("sent", 0)
    [msg] = world.mx.messages(rcpt="josé@dest.example")
    assert list(msg.rcpt_tos) == ["josé@dest.example"]


def test_utf8_local_part_bounces_clearly_when_the_next_hop_lacks_smtputf8(flow, ready_store, world):
    cleanup, qmgr = flow
    world.mx.stop()
    plain = FakeMX(Scenario(smtputf8=False), clock=ManualClock(), port=world.mx.port).start()
    try:
        send(cleanup, "josé@dest.example")
        send(cleanup, "alice@dest.example")
        assert asyncio.run(qmgr.run_once()) == 2
        st, status, failed_type, code = state(ready_store, "josé@dest.example")
        assert (st, status, failed_type, code) == ("bounced", 4, "SmtpZPermErr", 553)
        assert "SMTPUTF8" in recipients(ready_store)["josé@dest.example"]["last_text"]
        assert state(ready_store, "alice@dest.example")[:2] == ("sent", 0)
        with ready_store.engine.connect() as conn:  # a valid address: never in the invalid base
            assert not conn.execute(sa.select(t.invalid_addresses)).all()
        [(kind, body)] = [e for e in events(ready_store) if e[1]["rcpt"] != "alice@dest.example"]
        assert kind == "Deliver:SendFailed" and body["status"] == "4" and body["err_code"] == "553"
    finally:
        plain.stop()


def test_a_dns_label_over_63_octets_bounces_that_recipient_only(flow, ready_store, world):
    cleanup, qmgr = flow
    smtp_submit(cleanup, LONG_LABEL, "bob@dest.example")
    assert asyncio.run(qmgr.run_once()) == 2
    st, status, failed_type, code = state(ready_store, LONG_LABEL)
    assert (st, status, failed_type) == ("bounced", 2, "SysOutInvRcpt")
    assert "63" in recipients(ready_store)[LONG_LABEL]["last_text"] or "label" in recipients(ready_store)[LONG_LABEL]["last_text"]
    assert state(ready_store, "bob@dest.example")[:2] == ("sent", 0)


def test_crlf_in_template_data_cannot_inject_a_header(flow, ready_store, world):
    cleanup, qmgr = flow
    template_submit(cleanup, "carol@dest.example", {"UserName": "Carol\r\nBcc: victim@else.example\r\nX-Evil: 1"})
    send(cleanup, "dave@dest.example")
    assert asyncio.run(qmgr.run_once()) == 2
    assert state(ready_store, "carol@dest.example")[:2] == ("sent", 0)
    assert state(ready_store, "dave@dest.example")[:2] == ("sent", 0)
    [msg] = world.mx.messages(rcpt="carol@dest.example")
    head = msg.data.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in head and b"\r\nX-Evil:" not in head
    assert b"Subject: An offer for you, Carol Bcc: victim@else.example X-Evil: 1" in head


def test_template_data_is_html_escaped_in_the_html_body(flow, ready_store, world):
    cleanup, qmgr = flow
    template_submit(cleanup, "erin@dest.example", {"UserName": "<script>alert(1)</script>&"})
    asyncio.run(qmgr.run_once())
    [msg] = world.mx.messages(rcpt="erin@dest.example")
    import email
    from email import policy
    parsed = email.message_from_bytes(msg.data, policy=policy.default)
    html = next(p for p in parsed.walk() if p.get_content_type() == "text/html").get_content()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;&amp;" in html
    assert parsed["Subject"] == "An offer for you, <script>alert(1)</script>&"  # a header is not HTML


def test_an_unforeseen_failure_is_deferred_with_a_reason_and_the_rest_delivered(flow, ready_store, world, caplog):
    cleanup, qmgr = flow
    env = send(cleanup, "frank@dest.example").env_id
    send(cleanup, "gina@other.dest.example".replace("other.", ""))
    real = qmgr.transport.deliver

    async def flaky(domain, items, report=None):
        if any(i.rcpt == "frank@dest.example" for i in items):
            raise RuntimeError("boom in delivery")
        return await real(domain, items, report=report)
    qmgr.transport.deliver = flaky
    qmgr.settings.per_destination = 1
    qmgr.settings.batch_per_connection = 1
    with caplog.at_level(logging.INFO, logger="mailcore.queue.qmgr"):
        assert asyncio.run(qmgr.run_once()) == 2
    r = recipients(ready_store)["frank@dest.example"]
    assert (r["state"], r["attempts"]) == ("deferred", 1)
    assert "boom in delivery" in r["last_text"]
    assert recipients(ready_store)["gina@dest.example"]["state"] == "sent"
    lines = [rec for rec in caplog.records if f"queue_id={env}" in rec.getMessage()]
    assert len(lines) == 1 and "deferred" in lines[0].getMessage()
    assert any(rec.exc_info for rec in caplog.records if rec.levelno >= logging.ERROR)


def test_qmgr_loop_survives_a_failing_pass_and_backs_off(ready_store, world, caplog):
    from mailcore.message.dkim import Signer
    waits: list[float] = []
    passes = {"n": 0}

    class Broken(Qmgr):
        async def run_once(self):
            passes["n"] += 1
            if passes["n"] <= 3:
                raise RuntimeError(f"store went away {passes['n']}")
            stop.set()
            return 0

    async def main():
        q = Broken(ready_store, world.transport, Signer(ready_store, None),
                   settings=QmgrSettings(poll_seconds=0.01, error_backoff_seconds=0.001, error_backoff_max_seconds=0.003))
        q.pause = lambda seconds, stop: waits.append(seconds) or asyncio.sleep(0)
        await q.run(stop)
    stop = asyncio.Event()
    with caplog.at_level(logging.ERROR, logger="mailcore.queue.qmgr"):
        asyncio.run(main())
    assert passes["n"] == 4
    assert waits == [0.001, 0.002, 0.003]  # doubling, capped
    failures = [r for r in caplog.records if "qmgr pass failed" in r.getMessage()]
    assert len(failures) == 3 and all(r.exc_info for r in failures)


def test_the_content_check_runs_on_every_recipients_rendered_message(flow, ready_store):
    import pytest

    from mailcore.cleanup.submission import SubmitRefused
    from mailcore.cleanup.writer import GTUBE
    cleanup, _ = flow
    with pytest.raises(SubmitRefused) as exc:
        cleanup.submit_sync(Submission("example-shop", "orders@mail.example.com",
                                       [Recipient("a@dest.example", {"UserName": "Ann"}),
                                        Recipient("b@dest.example", {"UserName": GTUBE.decode()})], "api",
                                       template="vip-offer"))
    assert exc.value.reason == "spam"
    assert not recipients(ready_store)


def test_a_template_value_is_capped_at_render_time(flow, ready_store, world):
    from mailcore.message.render import MAX_VARIABLE_CHARS
    from mailcore.ingress.api.sending import MAX_TEMPLATE_VALUE
    assert MAX_TEMPLATE_VALUE == MAX_VARIABLE_CHARS  # the API refuses what render would cut
    cleanup, qmgr = flow
    template_submit(cleanup, "hank@dest.example", {"UserName": "y" * (MAX_VARIABLE_CHARS + 500)})
    asyncio.run(qmgr.run_once())
    [msg] = world.mx.messages(rcpt="hank@dest.example")
    assert b"y" * MAX_VARIABLE_CHARS in msg.data.replace(b"=\r\n", b"") and b"y" * (MAX_VARIABLE_CHARS + 1) not in msg.data.replace(b"=\r\n", b"")


def test_a_server_hanging_up_on_one_recipient_does_not_defer_the_others(flow, ready_store, world):
    cleanup, qmgr = flow
    qmgr.settings.per_destination = 1  # one connection carries every transaction
    send(cleanup, "drop@dest.example")
    send(cleanup, "ivy@dest.example")
    send(cleanup, "jack@dest.example")
    assert asyncio.run(qmgr.run_once()) == 3
    assert state(ready_store, "drop@dest.example")[0] == "deferred"
    assert state(ready_store, "ivy@dest.example")[:2] == ("sent", 0)
    assert state(ready_store, "jack@dest.example")[:2] == ("sent", 0)
