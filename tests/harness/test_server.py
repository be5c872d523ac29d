"""The fake MX over real SMTP (smtplib and aiosmtplib) on loopback."""
from __future__ import annotations

import asyncio
import json
import os
import smtplib
import ssl
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import aiosmtplib
import pytest

from mailcore.delivery import bounce
from mailcore.harness import FakeMX, ManualClock, Scenario, ScenarioError, scheme_script
from tests.support.harness import attempt

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ the address scheme
@pytest.mark.parametrize("local, phase, code, text", [
    ("anyone", "data", 250, "2.0.0 OK queued as"),
    ("success", "data", 250, "2.0.0 OK queued as"),
    ("nxbox", "rcpt", 550, "5.1.1 <nxbox@example.test>: Recipient address rejected: User unknown"),
    ("spam", "data", 550, "5.7.1 Message rejected as spam by Content Filtering"),
    ("greylist", "rcpt", 451, "4.7.1 Greylisting in action"),
    ("full", "rcpt", 452, "4.2.2 The email account that you tried to reach is over quota. "
                          "https://support.google.com/mail/?p=OverQuotaTemp"),
    ("drop", "rcpt", 0, "connection dropped"),
    ("drop-data", "data", 0, "connection dropped"),
    ("tempfail", "rcpt", 451, "4.3.0 Temporary server error"),
    ("rcpt-reject", "rcpt", 550, "5.7.1 Delivery not authorized"),
    ("data-reject", "data", 554, "5.6.0 Transaction failed"),
    ("bounce", "rcpt", 550, "5.1.1 user unknown"),
    ("suppressionlist", "rcpt", 550, "5.1.1 Recipient address is on the suppression list"),
    ("ooto", "data", 250, "2.0.0 OK"),
    ("complaint", "data", 250, "2.0.0 OK"),
    ("bounce-no-such-row", "rcpt", 550, "5.5.0 fake MX: no recipient-side row 'no-such-row'"),
    ("NXBOX+Tag17", "rcpt", 550, "5.1.1 <NXBOX+Tag17@example.test>"),
])
def test_scheme_replies_as_documented(fake_mx, local, phase, code, text):
    out = attempt(fake_mx, f"{local}@example.test")
    assert (out.phase, out.code) == (phase, code)
    assert out.text.startswith(text)


def test_every_documented_local_part_is_in_the_docstring():
    import mailcore.harness as h
    for local in ("success", "nxbox", "spam", "greylistN", "full", "rateN", "drop", "drop-data", "slowMS",
                  "tempfail", "rcpt-reject", "data-reject", "bounce-<row-id>", "bounce", "suppressionlist",
                  "ooto", "complaint"):
        assert f"``{local}``" in h.__doc__, local
        if "<" not in local:
            assert scheme_script(local.replace("N", "2").replace("MS", "5")) is not None


def test_ses_simulator_feedback(fake_mx):
    attempt(fake_mx, "ooto@simulator.amazonses.com")
    attempt(fake_mx, "complaint+x@simulator.amazonses.com")
    attempt(fake_mx, "success@simulator.amazonses.com")
    assert [(f.kind, f.rcpt) for f in fake_mx.feedback()] == [
        ("ooto", "ooto@simulator.amazonses.com"), ("complaint", "complaint+x@simulator.amazonses.com")]
    assert len(fake_mx.messages()) == 3


# ------------------------------------------------------------------ sequences across attempts
def test_greylisting_twice_then_accepted_across_connections(fake_mx):
    rcpt = "greylist2@example.test"
    codes = [attempt(fake_mx, rcpt).code for _ in range(4)]
    assert codes == [451, 451, 250, 250]
    # Another envelope sender is another greylisting triplet: it starts over.
    assert attempt(fake_mx, rcpt, mail_from="alerts@shop.test").code == 451
    assert [r.attempt for r in fake_mx.replies(rcpt=rcpt, phase="rcpt")] == [1, 2, 3, 4, 1]
    assert len(fake_mx.messages(rcpt=rcpt)) == 2
    fake_mx.reset()
    assert attempt(fake_mx, rcpt).code == 451


def test_yaml_sequences_per_recipient_and_phase(fake_mx_factory, tmp_path):
    path = tmp_path / "scenario.yaml"
    path.write_text(textwrap.dedent("""\
        recipients:
          alice@example.test:
            rcpt: ["451 4.7.1 Greylisting in action", "451 4.7.1 Greylisting in action", "250"]
          bob@example.test:
            data: ["452 4.2.2 mailbox is full, OverQuota", drop, 250]
          "*@spam.test":
            scenario: spam
          carol@example.test:
            scenario: greylist3
            rcpt: ["421 4.7.0 [TS01] Message temporarily deferred", 250]
    """))
    mx = fake_mx_factory(path)
    assert [attempt(mx, "alice@example.test").code for _ in range(3)] == [451, 451, 250]
    # DATA attempts are counted per Message-ID: a new message starts the sequence again.
    assert [attempt(mx, "bob@example.test").code for _ in range(3)] == [452, 0, 250]
    assert attempt(mx, "bob@example.test", message_id="<m2@shop.test>").code == 452
    assert attempt(mx, "anyone@spam.test").reply.startswith("550 5.7.1 Message rejected as spam")
    assert [attempt(mx, "carol@example.test").code for _ in range(2)] == [421, 250]
    assert attempt(mx, "dave@example.test").code == 250


@pytest.mark.parametrize("doc, message", [
    ({"bogus": 1}, "unknown key(s) bogus"),
    ({"recipients": {"a@b.test": {"rcpt": "hello"}}}, "is not an SMTP reply"),
    ({"recipients": {"a@b.test": {"scenario": "nope"}}}, "unknown scenario 'nope'"),
    ({"recipients": {"a@b.test": {"rcpt": []}}}, "an empty sequence"),
    ({"recipients": {"a@b.test": {"colour": "red"}}}, "unknown key(s) colour"),
    ({"rate_limit": {"n": 3}}, "rate_limit needs per_minute"),
    ([1, 2], "expected a mapping"),
])
def test_scenario_errors_are_clear(doc, message):
    with pytest.raises(ScenarioError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Scenario.from_dict(doc)


def test_scenario_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("recipients: [\n")
    with pytest.raises(ScenarioError, match=str(bad)):
        Scenario.from_yaml(bad)


# ------------------------------------------------------------------ rejections before RCPT
def test_connect_rejection_then_greeting(fake_mx_factory):
    mx = fake_mx_factory({"connect": ["421 HL:ICC connection limit for $IP", "220"]})
    first = attempt(mx, "a@example.test")
    assert (first.phase, first.code, first.text) == ("connect", 421, "HL:ICC connection limit for 127.0.0.1")
    assert bounce.classify(first.code, first.text, phase="connect").failed_type == "SmtpMfFreq"
    assert attempt(mx, "a@example.test").code == 250


def test_connect_rejection_with_aiosmtplib(fake_mx_factory):
    mx = fake_mx_factory({"connect": "554 5.7.1 No SMTP service here"})

    async def go():
        client = aiosmtplib.SMTP(hostname=mx.host, port=mx.port, start_tls=False)
        with pytest.raises(aiosmtplib.SMTPConnectResponseError) as info:
            await client.connect()
        return info.value

    err = asyncio.run(go())
    assert err.code == 554


def test_mail_rejection_by_scenario_and_by_sender(fake_mx_factory, fake_mx):
    mx = fake_mx_factory({"mail": ["550 5.7.1 SPF check failed", "250"]})
    out = attempt(mx, "a@example.test")
    assert (out.phase, out.reply) == ("mail", "550 5.7.1 SPF check failed")
    assert bounce.classify(out.code, out.text, phase="mail").failed_type == "SmtpAuthFail"
    assert attempt(mx, "a@example.test").code == 250
    out = attempt(fake_mx, "a@example.test", mail_from="mail-reject@shop.test")
    assert (out.phase, out.code) == ("mail", 553)


# ------------------------------------------------------------------ rate limits with an injected clock
def test_per_recipient_rate_limit(fake_mx, fake_mx_clock):
    rcpt = "rate3@example.test"
    assert [attempt(fake_mx, rcpt).code for _ in range(4)] == [250, 250, 250, 451]
    refused = fake_mx.replies(rcpt=rcpt)[-1].reply
    assert "has been temporarily rate limited" in refused and "[127.0.0.1]" in refused
    assert bounce.classify_line(refused).failed_type == "SmtpMfFreq"
    fake_mx_clock.advance(59)
    assert attempt(fake_mx, rcpt).code == 451
    fake_mx_clock.advance(1.5)
    assert [attempt(fake_mx, rcpt).code for _ in range(4)] == [250, 250, 250, 451]
    # Other recipients are not limited.
    assert attempt(fake_mx, "rate3b@example.test").code == 250


def test_server_rate_limit(fake_mx_factory, fake_mx_clock):
    mx = fake_mx_factory({"rate_limit": {"per_minute": 2, "reply": "421 4.7.0 Too many messages"}})
    codes = [attempt(mx, f"user{i}@example.test").code for i in range(3)]
    assert codes == [250, 250, 421]
    fake_mx_clock.advance(60)
    assert attempt(mx, "user9@example.test").code == 250


# ------------------------------------------------------------------ slow replies
def test_slow_reply_uses_the_injected_sleep(fake_mx_factory):
    asked = []

    async def sleep(seconds):
        asked.append(seconds)
        await asyncio.sleep(0)

    mx = fake_mx_factory(sleep=sleep)
    assert attempt(mx, "slow1500@example.test").code == 250
    assert attempt(mx, "slow@example.test").code == 250
    assert asked == [1.5, 2.0]


def test_slow_reply_times_out_a_client(fake_mx):
    async def go():
        client = aiosmtplib.SMTP(hostname=fake_mx.host, port=fake_mx.port, start_tls=False, timeout=5)
        await client.connect()
        await client.mail("orders@shop.test")
        with pytest.raises(aiosmtplib.SMTPTimeoutError):
            await client.rcpt("slow60000@example.test", timeout=0.05)
        client.close()

    asyncio.run(go())
    assert fake_mx.messages() == []


# ------------------------------------------------------------------ TLS
def test_starttls_with_smtplib(fake_mx):
    out = attempt(fake_mx, "tls@example.test", starttls=True)
    assert out.code == 250
    assert fake_mx.messages(rcpt="tls@example.test")[0].tls is True
    attempt(fake_mx, "plain@example.test")
    assert fake_mx.messages(rcpt="plain@example.test")[0].tls is False


def test_starttls_with_aiosmtplib_verifying_the_generated_certificate(fake_mx):
    ctx = ssl.create_default_context(cadata=fake_mx.tls.cert_pem.decode())

    async def go():
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=fake_mx.port, start_tls=True, tls_context=ctx)
        await client.connect()
        errors, _ = await client.sendmail("orders@shop.test", ["a@example.test", "nxbox@example.test"],
                                          b"Subject: x\r\nMessage-ID: <tls@x>\r\n\r\nhi\r\n")
        await client.quit()
        return errors

    errors = asyncio.run(go())
    assert errors["nxbox@example.test"][0] == 550
    [msg] = fake_mx.messages(rcpt="a@example.test")
    assert msg.tls and msg.rcpt_tos == ("a@example.test",) and msg.message_id == "<tls@x>"


def test_tls_off(fake_mx_factory):
    mx = fake_mx_factory({"tls": False})
    with smtplib.SMTP(mx.host, mx.port) as s:
        s.ehlo()
        assert not s.has_extn("starttls")
    assert mx.tls is None


# ------------------------------------------------------------------ inspection: Python and HTTP
def _get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, json.load(r)


def test_messages_via_python_and_http(fake_mx):
    attempt(fake_mx, "alice@example.test", body="first")
    attempt(fake_mx, "bob@example.test", message_id="<m2@shop.test>")
    attempt(fake_mx, "nxbox@example.test")
    [m] = fake_mx.messages(rcpt="ALICE@example.test")
    assert (m.mail_from, m.subject, m.message_id) == ("orders@shop.test", "test", "<m1@shop.test>")
    assert b"first" in m.data
    status, body = _get(f"{fake_mx.http_url}/messages?rcpt=alice@example.test")
    assert status == 200 and len(body) == 1
    assert body[0]["rcpt_tos"] == ["alice@example.test"] and "first" in body[0]["data"]
    assert len(_get(f"{fake_mx.http_url}/messages")[1]) == 2
    status, replies = _get(f"{fake_mx.http_url}/replies?rcpt=nxbox@example.test&phase=rcpt")
    assert replies[0]["reply"].startswith("550 5.1.1") and replies[0]["scenario"] == "nxbox"
    assert _get(f"{fake_mx.http_url}/health")[1]["tls"] is True
    assert _get(f"{fake_mx.http_url}/feedback")[1] == []
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{fake_mx.http_url}/nope", timeout=5)
    assert info.value.code == 404
    req = urllib.request.Request(f"{fake_mx.http_url}/reset", method="POST")
    with urllib.request.urlopen(req, timeout=5):
        pass
    assert fake_mx.messages() == [] and fake_mx.replies() == []


def test_several_fake_mx_servers(fake_mx_factory):
    a, b = fake_mx_factory(), fake_mx_factory({"connect": "421 4.3.2 shutting down"})
    assert a.port != b.port
    assert attempt(a, "x@example.test").code == 250
    assert attempt(b, "x@example.test").code == 421
    assert a.address == ("127.0.0.1", a.port)


def test_second_server_on_another_loopback_address_same_port(fake_mx, fake_mx_factory):
    """What e2e wiring needs: one destination port, each test domain's MX on its own 127.0.0.N."""
    try:
        rejecting = fake_mx_factory({"connect": "553 5.7.1 [BL01] Connections will not be accepted from $IP"},
                                    host="127.0.0.2", port=fake_mx.port)
    except OSError as exc:  # pragma: no cover - platforms where only 127.0.0.1 is configured
        pytest.skip(str(exc))
    out = attempt(rejecting, "x@reject.test")
    # $IP is the client's (sending) address, as in the guide.
    assert out.phase == "connect"
    assert out.reply.startswith("553 5.7.1 [BL01] Connections will not be accepted from 127.")
    c = bounce.classify(out.code, out.text, phase="connect")
    assert (c.row_id, c.failed_type, c.invalid_address) == ("ipbl-553-bl-connections", "SmtpZPermErr", False)
    assert attempt(fake_mx, "x@ok.test").code == 250
    assert rejecting.dns_records("reject.test") == [
        ("reject.test.", "MX", "10 mx-127-0-0-2.harness.test."), ("mx-127-0-0-2.harness.test.", "A", "127.0.0.2")]
    assert fake_mx.dns_records("a.test", "b.test", mx_name="mx.harness.test")[-1] == (
        "mx.harness.test.", "A", "127.0.0.1")


def test_standalone_fake_mx_context_manager():
    clock = ManualClock(100.0)
    with FakeMX(clock=clock) as mx:
        attempt(mx, "x@example.test")
        assert mx.messages()[0].received_at == 100.0
    with pytest.raises(OSError, match="could not listen"):
        FakeMX(host="203.0.113.1").start()


# ------------------------------------------------------------------ entry points
def test_cli_runs_and_stops_on_sigterm():
    proc = subprocess.Popen([sys.executable, "-m", "mailcore.harness", "--port", "0"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("fake MX listening on 127.0.0.1:"), line + proc.stderr.read()
        port = int(line.split("127.0.0.1:")[1].split()[0])
        with smtplib.SMTP("127.0.0.1", port) as s:
            assert s.ehlo()[0] == 250 and s.has_extn("starttls")
        http = line.rsplit("messages at ", 1)[1].strip()
        assert _get(http)[0] == 200
    finally:
        proc.terminate()
        assert proc.wait(10) == 0


def test_cli_list_and_bad_scenario(tmp_path):
    out = subprocess.run([sys.executable, "-m", "mailcore.harness", "--list"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.splitlines()
    assert len(out) == len(bounce.RECIPIENT_ROWS)
    assert out[0].startswith("bounce-")
    bad = tmp_path / "s.yaml"
    bad.write_text("bogus: 1\n")
    res = subprocess.run([sys.executable, "-m", "mailcore.harness", "--scenario", str(bad)], cwd=ROOT,
                         capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.startswith("error: ") and "Traceback" not in res.stderr


def test_pytest_plugin_loads_with_dash_p(tmp_path):
    (tmp_path / "test_user.py").write_text(textwrap.dedent("""\
        import smtplib

        def test_uses_fake_mx(fake_mx, fake_mx_factory, fake_mx_clock):
            with smtplib.SMTP(fake_mx.host, fake_mx.port) as s:
                s.ehlo()
                s.mail("a@shop.test")
                assert s.rcpt("greylist@example.test")[0] == 451
            assert fake_mx_factory().port != fake_mx.port
    """))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "mailcore.harness.pytest_plugin",
                          "-p", "no:cacheprovider", "test_user.py"], cwd=tmp_path, capture_output=True,
                         text=True, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "1 passed" in res.stdout
