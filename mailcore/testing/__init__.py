"""The mail core as a test fixture: a whole running service from a config directory, for users' own tests.

Why: testing "my app sends a welcome mail and handles a 550" needs the mail core itself (SMTP and API
listeners, cleanup, the queue, delivery, notifications) talking to a fake MX, on a clock the test can
move. This package starts one in the test's process; it is the top layer (it may import every package,
like cli), so the harness below it stays free of the service.

    pytest -p mailcore.testing.pytest_plugin      # or: pytest_plugins = ["mailcore.testing.pytest_plugin"]

    def test_welcome(mailcore_service):           # override the `mailcore_config` fixture (or set the
        app.signup("nxbox@dest.test")             # `mailcore_config` ini option) to name the config directory
        mailcore_service.expect_outcome("nxbox@dest.test", "SmtpNxBox")

What the runner does (mailcore.testing.running.MailcoreRunner): loads and applies the config to a
SQLite store in a temporary directory (`apply --no-dns`: no Pulumi, no DNS server of the account),
generates each domain's DKIM key, marks the domains verified and the templates approved, then runs the
service in development mode (loopback listeners on free ports; loopback clients skip the IP
allow-list and the activation delay) with delivery routed to a RecipientWorld (a fake MX plus DNS
for dest.test, shop.test, example.test), and qmgr and the notifier on a VirtualClock the test
advances to run the retry schedule.
"""
