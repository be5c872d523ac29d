"""Issue 5's end-to-end flow on loopback, as a user runs it: the example account applied (DNS
through Pulumi into the built-in DNS server) and verified; mail sent through SMTP and through the
official SDK to recipients that deliver, bounce 550 5.1.1, fill up (452), greylist then accept,
reject as spam and fail DNS; every final status and failed_type as the guide says; the events at
an HTTP endpoint and in a queue; a resend to the invalid address refused."""
from __future__ import annotations

import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import pytest
import sqlalchemy as sa
from alibabacloud_dm20151123 import models as dm
from alibabacloud_dm20151123.client import Client
from alibabacloud_tea_openapi.utils_models import Config

from mailcore.notify.http import verify_signature
from mailcore.notify.mq import QueueClient
from mailcore.store import open_store
from mailcore.store import tables as t
from tests.service.test_serve import smtp_send, wait_for
from tests.support.dns import free_port
from tests.support.helpers import edit_yaml
from tests.support.serve import Mailcore
from tests.support.store import EXAMPLE_ENV, ROOT


class Receiver(BaseHTTPRequestHandler):
    got: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        Receiver.got.append((self.headers.get("X-Mailcore-Signature"), body.decode()))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    Receiver.got = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def cli(args, env):
    return subprocess.run([sys.executable, "-m", "mailcore", *args], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=300)


def test_end_to_end(tmp_path, example_env, example_config, world, receiver):
    cfg = example_config
    dns_port = free_port()
    edit_yaml(cfg / "domains.yaml", lambda d: d["dns_backends"]["builtin"].__setitem__("server", f"127.0.0.1:{dns_port}"))
    edit_yaml(cfg / "account.yaml", lambda d: d["ip_allowlist"].__setitem__("enabled", False))
    hook = f"http://127.0.0.1:{receiver.server_port}/events"
    edit_yaml(cfg / "notifications.yaml",
              lambda d: d["notification_rules"][0]["endpoints"][0].__setitem__("url", hook))

    def service(d):
        d["service"]["listeners"] = [
            {"region": "cn-hangzhou", "kind": "smtp", "listen": "127.0.0.1:0", "tls": "starttls"},
            {"region": "cn-hangzhou", "kind": "api", "listen": "127.0.0.1:0"},
            {"region": "cn-hangzhou", "kind": "queues", "listen": "127.0.0.1:0"}]
        d["service"]["limits"] = {"activation_delay_seconds": 0}
        d["service"]["notifications_allow_private_targets"] = True  # the receiver is on loopback
        d["service"]["delivery"] = {"smtp_port": world.mx.port, "nameservers": ["127.0.0.1"], "dns_port": world.dns.port}
        d["service"]["queue"] = {"retry_min_seconds": 1, "retry_max_seconds": 1, "give_up_seconds": 6}
    edit_yaml(cfg / "service.yaml", service)
    url = f"sqlite:///{tmp_path / 'mailcore.db'}"
    env = {**example_env, "MAILCORE_ENV_FILE": "", "MAILCORE_STATE_DIR": str(tmp_path / "state")}
    try:
        r = cli(["apply", "--config", str(cfg), "--store", url], env)
        assert r.returncode == 0, r.stdout + r.stderr
        r = cli(["verify", "--config", str(cfg), "--store", url], env)
        assert r.returncode == 0 and "Verified 3 of 3 domain(s)" in r.stdout, r.stdout + r.stderr
        mc = Mailcore(cfg, url, env)
        served = mc.start()
        try:
            _flow(served, mc, world, url)
        finally:
            mc.stop()
    finally:
        pid = tmp_path / "state" / "dns-builtin.pid"
        if pid.exists():
            subprocess.run(["kill", pid.read_text().strip()])


EXPECTED = {  # recipient -> (status, failed_type): the guide's classification of what each receiver says
    "ok@dest.example": (0, "SendOk"),
    "nxbox@dest.example": (2, "SmtpNxBox"),
    "full@dest.example": (4, "SmtpRcptFreq"),
    "greylist@dest.example": (0, "SendOk"),
    "spam@dest.example": (3, "SmtpContSpam"),
    "x@nxdomain.dest.example": (4, "SysOutDnsResolveFail"),  # the guide's own sample: 524, status=4
}


def _flow(served, mc, world, url):
    port = served.port("smtp")
    for i, rcpt in enumerate(["ok@dest.example", "nxbox@dest.example", "full@dest.example"]):
        code, _ = smtp_send(port, rcpt, f"<e2e-{i}@client.example>")
        assert code == 250
    client = Client(Config(access_key_id="LTAI5tExampleShop0001", access_key_secret=EXAMPLE_ENV["DM_ACCESS_KEY_SECRET"],
                           endpoint=f"127.0.0.1:{served.port('api')}", protocol="http"))
    for rcpt in ("greylist@dest.example", "spam@dest.example", "x@nxdomain.dest.example"):
        resp = client.single_send_mail(dm.SingleSendMailRequest(
            account_name="orders@mail.example.com", address_type=1, reply_to_address=False, to_address=rcpt,
            subject="Order", html_body="<p>Thanks</p>", tag_name="order_confirmation"))
        assert resp.body.env_id
    store = open_store(url)

    def finals():
        with store.engine.connect() as conn:
            rows = conn.execute(sa.select(t.queue_recipients.c.rcpt, t.queue_recipients.c.status,
                                          t.queue_recipients.c.failed_type, t.queue_recipients.c.state)).all()
        done = {r[0]: (r[1], r[2]) for r in rows if r[3] in ("sent", "bounced", "expired")}
        return done if len(done) == len(EXPECTED) else None

    assert wait_for(finals, timeout=90) == EXPECTED
    # events: the HTTP endpoint got every delivery event, signed
    got = wait_for(lambda: len(Receiver.got) >= len(EXPECTED) and Receiver.got, timeout=30)
    bodies = {}
    for signature, body in got:
        assert verify_signature(EXAMPLE_ENV["DM_WEBHOOK_SECRET"], signature, body, __import__("time").time())
        fields = dict(kv.split("=", 1) for kv in body.split("&"))
        bodies[fields["rcpt"]] = fields
    assert {k: (int(v["status"]), v["failed_type"]) for k, v in bodies.items()} == EXPECTED
    assert bodies["nxbox@dest.example"]["err_code"] == "550" and unquote(bodies["nxbox@dest.example"]["err_msg"]).startswith("550")
    assert all(v["event"] == "deliver" and v["region"] == "cn-hangzhou" for v in bodies.values())
    # ...and the queue endpoint holds the same events
    with QueueClient(f"http://127.0.0.1:{served.port('queues')}", account="example-shop",
                     access_key_id="LTAI5tExampleShop0001", access_key_secret=EXAMPLE_ENV["DM_ACCESS_KEY_SECRET"]) as q:
        seen = set()
        for _ in range(20):
            for m in q.receive("dm-deliveries", wait=1, max_messages=10):
                seen.add(dict(kv.split("=", 1) for kv in m.body.split("&"))["rcpt"])
                q.delete("dm-deliveries", m.receipt)
            if len(seen) == len(EXPECTED):
                break
    assert seen == set(EXPECTED)
    # a resend to the invalid address is refused (R37)
    import smtplib
    with pytest.raises(smtplib.SMTPRecipientsRefused) as exc:
        smtp_send(port, "nxbox@dest.example", "<e2e-again@client.example>")
    assert exc.value.recipients["nxbox@dest.example"][0] == 559
