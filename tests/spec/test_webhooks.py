"""Webhook targets at validate time: literal loopback, link-local, private and metadata addresses
and localhost names are refused unless service.notifications_allow_private_targets is true."""
from __future__ import annotations

import pytest

from mailcore.spec import load_account
from mailcore.spec.webhooks import target_problem

ENV = {"FIXTURE_SMTP_PASSWORD": "Abcdefgh12"}


@pytest.mark.parametrize("url, problem", [
    ("http://localhost:8080/hook", "'localhost' is loopback"),
    ("http://hooks.localhost/hook", "'hooks.localhost' is loopback"),
    ("https://[::ffff:10.0.0.1]/hook", "10.0.0.1 is private"),
    ("http:///hook", "the URL has no host"),
    ("http://[::1/hook", "not a URL (Invalid IPv6 URL)"),
    ("https://hooks.example.com/hook", None),  # a name: checked after resolution, at delivery
])
def test_target_problem(url, problem):
    assert target_problem(url) == problem


def test_validate_refuses_a_literal_private_webhook_unless_opted_in(minimal_account):
    (minimal_account / "notifications.yaml").write_text(
        "notification_rules:\n  - name: hooks\n    region: cn-hangzhou\n    events: [Deliver:SendFailed]\n"
        "    endpoints:\n      - {kind: http, url: 'http://169.254.169.254/latest/meta-data'}\n", encoding="utf-8")
    env = {"FIXTURE_SMTP_PASSWORD": "Abcdefgh12"}
    loaded = load_account(minimal_account, environ=env)
    assert [(i.validator, loc.line) for loc, i in loaded.report.issues] == [("webhook-target", 6)]
    with open(minimal_account / "account.yaml", "a", encoding="utf-8") as f:
        f.write("\nservice:\n  notifications_allow_private_targets: true\n")
    assert load_account(minimal_account, environ=env).report.issues == []


def test_a_topic_subscription_is_checked_too(minimal_account):
    (minimal_account / "notifications.yaml").write_text(
        "topics:\n  - name: fan\n    subscriptions:\n      - {kind: http, url: 'http://[::1]:9/hook'}\n", encoding="utf-8")
    loaded = load_account(minimal_account, environ=ENV)
    (loc, issue), = loaded.report.issues
    assert (issue.validator, loc.line) == ("webhook-target", 4)
    assert "topic 'fan' posts to http://[::1]:9/hook: ::1 is loopback" in issue.message
