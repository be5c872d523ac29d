"""The welcome app against a real mail core (mailcore_service) and a fake MX: the recipient's local
part picks the receiver's answer (success, nxbox = 550 user unknown, greylist = 451 once)."""
import pytest

from welcome_app import Settings, WelcomeApp

SENDER = "hello@mail.welcome-app.example"


@pytest.fixture
def mailcore_env():
    """The secrets mailcore-config/ reads with {env: ...}."""
    return {"WELCOME_SMTP_PASSWORD": "Welcome2026Pw", "WELCOME_ACCESS_KEY_SECRET": "welcome-ak-secret-0001"}


@pytest.fixture
def app(mailcore_service):
    mc = mailcore_service
    return WelcomeApp(Settings(mc.smtp_host, mc.smtp_port, SENDER, mc.passwords[SENDER], mc.api_endpoint,
                               mc.access_key_id, mc.access_key_secret))


def test_a_sign_up_gets_the_welcome_mail(app, mailcore_service):
    user = app.sign_up("success+alice@dest.test")
    [row] = mailcore_service.wait_for_delivery(env_id=user.env_id)
    assert row["state"] == "sent"
    [mail] = mailcore_service.fake_mx.messages(rcpt="success+alice@dest.test")
    assert mail.subject == "Welcome aboard"
    assert app.check_bounces() == [] and user.state == "welcomed"


def test_a_550_marks_the_address_bad_and_it_is_not_mailed_again(app, mailcore_service):
    user = app.sign_up("nxbox@dest.test")
    mailcore_service.expect_outcome("nxbox@dest.test", "SmtpNxBox")
    mailcore_service.assert_event("Deliver:SendFailed", "nxbox@dest.test", endpoint="queue:welcome-failures")
    assert app.check_bounces() == [user]
    assert user.state == "bad" and "User unknown" in user.reason
    app.sign_up("nxbox@dest.test")
    assert len(mailcore_service.recipients(rcpt="nxbox@dest.test")) == 1  # nothing new was sent


def test_a_greylisted_welcome_arrives_after_the_retry(app, mailcore_service, mailcore_clock):
    user = app.sign_up("greylist@dest.test")
    mailcore_service.wait_for(env_id=user.env_id, states="deferred")
    mailcore_clock.advance(300)  # the first retry, without waiting five minutes
    mailcore_service.expect_outcome("greylist@dest.test")
    assert app.check_bounces() == [] and user.state == "welcomed"
