"""mailcore.testing: a whole mail core from a config directory, driven the way users' tests drive it
(real SMTP, the official SDK, the fake MX, the virtual clock)."""
from __future__ import annotations

import os
import shutil
import smtplib
from email.message import EmailMessage

import pytest

from mailcore.testing.running import MailcoreConfigError, MailcoreRunner, VirtualClock
from tests.support.notify import point_webhook_at
from tests.support.store import EXAMPLE_ENV, ROOT

SENDER = "orders@mail.example.com"


def send(mc, *rcpts: str) -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = SENDER, ", ".join(rcpts), "hello"
    msg.set_content("hi\n")
    with smtplib.SMTP(mc.smtp_host, mc.smtp_port, timeout=10) as s:
        s.login(SENDER, mc.passwords[SENDER])
        s.send_message(msg)


def test_a_550_a_greylist_and_an_acceptance_end_as_the_receiver_said(mailcore_service, mailcore_clock):
    mc = mailcore_service
    send(mc, "nxbox@dest.test", "greylist@dest.test", "success@shop.test")
    row = mc.expect_outcome("nxbox@dest.test", "SmtpNxBox")
    assert (row["state"], row["last_code"]) == ("bounced", 550)
    mc.expect_outcome("success@shop.test")
    [deferred] = mc.wait_for(rcpt="greylist@dest.test", states="deferred")
    assert deferred["last_code"] == 451
    mailcore_clock.advance(300)  # the example's retry_min_seconds: the retry runs now, not in 5 minutes
    assert mc.expect_outcome("greylist@dest.test")["attempts"] == 2
    assert len(mc.fake_mx.messages(rcpt="greylist@dest.test")) == 1
    event = mc.assert_event("Deliver:SendFailed", "nxbox@dest.test", endpoint="queue:dm-deliveries")
    assert (event["failed_type"], event["err_code"], event["from"]) == ("SmtpNxBox", "550", SENDER)
    assert [e["rcpt"] for e in mc.events("Deliver:SendSuccessfully")] == ["success@shop.test", "greylist@dest.test"]


def test_the_official_sdk_sends_through_the_api_listener(mailcore_service):
    from alibabacloud_dm20151123 import models as dm
    resp = mailcore_service.sdk_client().single_send_mail(dm.SingleSendMailRequest(
        account_name=SENDER, address_type=1, reply_to_address=False, to_address="success+sdk@dest.test",
        subject="via the SDK", text_body="hi"))
    [row] = mailcore_service.wait_for_delivery(env_id=resp.body.env_id)
    assert row["state"] == "sent"
    [got] = mailcore_service.fake_mx.messages(rcpt="success+sdk@dest.test")
    assert got.subject == "via the SDK" and "DKIM-Signature:" in got.data.decode()  # the runner made the DKIM key


def test_failed_expectations_say_what_happened_instead(mailcore_service):
    mc = mailcore_service
    send(mc, "nxbox@dest.test", "greylist@dest.test")
    with pytest.raises(AssertionError, match=r"nxbox@dest.test ended bounced with failed_type 'SmtpNxBox' \(550"):
        mc.expect_outcome("nxbox@dest.test")  # expected delivered
    with pytest.raises(AssertionError, match="deferred .*advance the clock"):
        mc.wait_for_delivery(rcpt="greylist@dest.test", timeout=0.5)
    with pytest.raises(AssertionError, match="no Deliver:SendFailed for greylist@dest.test; seen: none"):
        mc.assert_event("Deliver:SendFailed", "greylist@dest.test", timeout=0.2)
    assert mc.advance_to_next_retry() > 0
    mc.expect_outcome("greylist@dest.test")
    assert mc.advance_to_next_retry() == 0  # nothing deferred any more


def test_an_event_no_rule_routes_is_named_so(tmp_path, mailcore_factory):
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    (config / "notifications.yaml").write_text("notifications: {}\n")  # no region for the account's events
    mc = mailcore_factory(config, env=EXAMPLE_ENV)
    send(mc, "nxbox@dest.test")
    with pytest.raises(AssertionError, match="no notification rule routed it"):
        mc.assert_event("Deliver:SendFailed", "nxbox@dest.test", endpoint="queue:dm-deliveries", timeout=1)


@pytest.fixture
def no_secrets_in_environ(monkeypatch):
    """Whatever earlier tests of this process left in os.environ, the config's secrets are not there."""
    for name in [*EXAMPLE_ENV, "MAILCORE_MASTER_KEY"]:
        monkeypatch.delenv(name, raising=False)


def test_secrets_are_set_only_while_the_config_is_applied(no_secrets_in_environ, mailcore_factory):
    assert "DM_SMTP_PASSWORD_ORDERS" not in os.environ
    mc = mailcore_factory(ROOT / "config", env=EXAMPLE_ENV)
    assert mc.passwords[SENDER] == EXAMPLE_ENV["DM_SMTP_PASSWORD_ORDERS"]
    assert mc.access_key_id and mc.access_key_secret == EXAMPLE_ENV["DM_ACCESS_KEY_SECRET"]
    assert "DM_SMTP_PASSWORD_ORDERS" not in os.environ and "MAILCORE_MASTER_KEY" not in os.environ


def test_a_config_that_does_not_validate_is_one_error_listing_the_findings(tmp_path):
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    (config / "tags.yaml").write_text("tags:\n  - {name: a}\n  - {name: a}\n")
    runner = MailcoreRunner(config, tmp_path / "state", env=EXAMPLE_ENV)
    with pytest.raises(MailcoreConfigError, match="does not validate:\n.*tags.yaml"):
        runner.start()
    assert runner.world.dns is None and runner.store is None  # nothing left running


def test_a_missing_secret_says_to_pass_it(no_secrets_in_environ, tmp_path):
    env = {k: v for k, v in EXAMPLE_ENV.items() if k != "DM_SMTP_PASSWORD_ORDERS"}
    runner = MailcoreRunner(ROOT / "config", tmp_path / "state", env=env)
    with pytest.raises(MailcoreConfigError, match="DM_SMTP_PASSWORD_ORDERS"):
        runner.start()


def test_the_virtual_clock_moves_only_forward():
    clock = VirtualClock()
    before = clock()
    clock.advance(3600)
    assert (clock() - before).total_seconds() >= 3600
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_a_webhook_on_loopback_gets_the_event_after_a_retry_on_the_clock(tmp_path, mailcore_factory, mailcore_clock,
                                                                         receiver):
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    point_webhook_at(config, receiver.url)  # the deliveries rule's http endpoint; hooks.example.com stays unreached
    receiver.script = [500]  # the first attempt fails, the retry is due on the notifier's (virtual) clock
    mc = mailcore_factory(config, env=EXAMPLE_ENV)
    send(mc, "nxbox@dest.test")
    mc.expect_outcome("nxbox@dest.test", "SmtpNxBox")
    with pytest.raises(AssertionError, match=r"http://127.0.0.1:\d+/directmail/deliveries': 'pending'"):
        mc.assert_event("Deliver:SendFailed", "nxbox@dest.test", endpoint=receiver.url, timeout=1)
    mailcore_clock.advance(3600)
    mc.assert_event("Deliver:SendFailed", "nxbox@dest.test", endpoint=receiver.url)
    assert [b"rcpt=nxbox@dest.test" in r.body for r in receiver.requests] == [True, True]


def test_webhooks_leave_the_machine_never():
    import asyncio
    from mailcore.testing.running import loopback_only
    assert asyncio.run(loopback_only("localhost", 80)) == ["127.0.0.1"]
    assert asyncio.run(loopback_only("[::1]", 80)) == ["::1"]
    for host in ("hooks.example.com", "203.0.113.7"):
        with pytest.raises(OSError, match="loopback addresses only"):
            asyncio.run(loopback_only(host, 443))
