"""The development profile (issue 14): `dev.demo` from a fresh copy of the example sends by SMTP and by
the SDK and sees both delivered to the local fake MX; `serve --dev` lets loopback clients past the
allow-list and the activation delay, plain `serve` still refuses them; --dev listens on loopback only."""
from __future__ import annotations

import os
import re
import shutil
import smtplib
import ssl
import subprocess
import sys
from email.message import EmailMessage

import pytest
import sqlalchemy as sa
import yaml

from mailcore.store import open_store
from mailcore.store import tables as t
from tests.support.cli import ROOT, run
from tests.support.dns import free_port
from tests.support.helpers import edit_yaml
from tests.support.serve import Mailcore
from tests.support.store import EXAMPLE_ENV, make_ready


def _loopback_ports(cfg) -> None:
    """Free ports for every listener (the example's fixed ones may be taken on a shared machine)."""
    def service(d):
        for li in d["service"]["listeners"]:
            li["listen"] = "127.0.0.1:0"
    edit_yaml(cfg / "service.yaml", service)


def test_demo_from_a_fresh_copy_delivers_by_smtp_and_sdk(tmp_path, key):
    cfg = tmp_path / "config"
    shutil.copytree(ROOT / "config", cfg)
    port = free_port()  # the embedded built-in DNS server of the sending domains
    edit_yaml(cfg / "domains.yaml", lambda d: d["dns_backends"]["builtin"].__setitem__("server", f"127.0.0.1:{port}"))
    _loopback_ports(cfg)
    assert yaml.safe_load((cfg / "account.yaml").read_text())["ip_allowlist"]["enabled"] is True  # as shipped
    env = {**key, "MAILCORE_TSIG_SECRET": EXAMPLE_ENV["MAILCORE_TSIG_SECRET"]}
    try:
        for task in ("apply", "verify"):
            r = run([task, "--config", str(cfg)], env, tmp_path)
            assert r.returncode == 0, r.stdout + r.stderr
        r = run(["dev.demo", "--config", str(cfg)], env, tmp_path)
    finally:
        pid = tmp_path / "state" / "dns-builtin.pid"
        if pid.exists():
            subprocess.run(["kill", pid.read_text().strip()])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    out = r.stdout
    assert "mailcore: development mode: loopback clients skip the IP allow-list" in out
    assert re.search(r"fake MX on 127\.0\.0\.1:\d+; what it received: GET http://127\.0\.0\.1:\d+/messages", out)
    assert "SMTP: queued as EnvId 1 for success@dest.test" in out
    assert "API (the official SDK): SingleSendMail queued as EnvId 2 for success+sdk@dest.test" in out
    assert "from orders@mail.example.com to success@dest.test: 'mailcore dev.demo (SMTP)', TLS, DKIM-signed" in out
    assert "from orders@mail.example.com to success+sdk@dest.test: 'mailcore dev.demo (API)', TLS, DKIM-signed" in out
    assert "delivered 2 message(s) to the local fake MX" in out
    store = open_store(f"sqlite:///{tmp_path / 'state' / 'mailcore.db'}")
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(t.queue_recipients.c.rcpt, t.queue_recipients.c.state)
                            .order_by(t.queue_recipients.c.id)).all()
    store.dispose()
    assert [tuple(x) for x in rows] == [("success@dest.test", "sent"), ("success+sdk@dest.test", "sent")]
    # the demo stopped what it started: the service's listeners are gone
    assert "serve --dev is running (pid" in out
    served = int(re.search(r"serve --dev is running \(pid (\d+)\)", out).group(1))
    assert not os.path.exists(f"/proc/{served}") or "zombie" in open(f"/proc/{served}/status").read().lower()


def test_demo_says_what_is_missing_when_not_applied(tmp_path, key):
    cfg = tmp_path / "config"
    shutil.copytree(ROOT / "config", cfg)
    _loopback_ports(cfg)
    assert run(["apply", "--no-dns", "--config", str(cfg)], key, tmp_path).returncode == 0  # not verified
    r = run(["dev.demo", "--config", str(cfg), "--timeout", "5"], key, tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stdout + r.stderr
    assert "SMTP refused: 550" in r.stderr and "Sender domain is not verified" in r.stderr
    assert "invoke secrets.init apply verify" in r.stderr


def _send(port: int, sender="orders@mail.example.com", rcpt="success@dest.test"):
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, rcpt, "dev"
    msg.set_content("hi\n")
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.starttls(context=ctx)
        s.login(sender, EXAMPLE_ENV["DM_SMTP_PASSWORD_ORDERS"])
        return s.mail(sender)


@pytest.fixture
def fresh_example(tmp_path, example_env, example_config):
    """The example as shipped (allow-list on, loopback not in it), applied a moment ago: senders
    within their activation delay; listeners on free ports."""
    edit_yaml(example_config / "service.yaml", lambda d: d["service"].__setitem__("listeners", [
        {"region": "cn-hangzhou", "kind": "smtp", "listen": "127.0.0.1:0", "tls": "starttls"}]))
    url = f"sqlite:///{tmp_path / 'mailcore.db'}"
    store = open_store(url)
    make_ready(store, example_config, age_seconds=0)
    store.dispose()
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(MAILCORE_ENV_FILE="", MAILCORE_STATE_DIR=str(tmp_path / "state"))
    mc = Mailcore(example_config, url, env)
    yield mc
    mc.stop()


def test_without_dev_loopback_is_refused_by_the_allow_list(fresh_example):
    served = fresh_example.start(stages="smtpd")
    code, reply = _send(served.port("smtp"))
    assert code == 554 and b"IP allow-list" in reply and b"127.0.0.1" in reply
    assert "development mode" not in "".join(served.lines)


def test_dev_lets_loopback_past_the_allow_list_and_the_activation_delay(fresh_example):
    served = fresh_example.start(stages="smtpd", dev=True)
    code, reply = _send(served.port("smtp"))
    assert code == 250, reply
    log = fresh_example.stop()
    assert "development mode: loopback clients skip the IP allow-list" in log
    # smtpd alone delivers nothing, so no fake MX was started
    assert "fake MX on" not in log


def test_dev_refuses_a_listener_off_loopback(tmp_path, example_env, example_config):
    edit_yaml(example_config / "service.yaml",
              lambda d: d["service"].__setitem__("listeners", [{"region": "cn-hangzhou", "kind": "smtp",
                                                                "listen": "0.0.0.0:0", "tls": "starttls"}]))
    env = {**os.environ, "MAILCORE_ENV_FILE": "", "MAILCORE_STATE_DIR": str(tmp_path / "state")}
    r = subprocess.run([sys.executable, "-m", "mailcore", "serve", "--dev", "--config", str(example_config),
                        "--store", f"sqlite:///{tmp_path / 'm.db'}"], capture_output=True, text=True, env=env,
                       cwd=ROOT, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "development mode listens on loopback addresses only" in r.stderr
    assert "smtp cn-hangzhou 0.0.0.0:0" in r.stderr
