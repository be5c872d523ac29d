"""The mail core as a user runs it: `python -m mailcore serve`, real SMTP and the official SDK in,
delivery out to the fake MX, and a kill -9 under load that loses no acknowledged message."""
from __future__ import annotations

import re
import smtplib
import ssl
import threading
import time
from email.message import EmailMessage

import pytest
import sqlalchemy as sa
from alibabacloud_dm20151123 import models as dm
from alibabacloud_dm20151123.client import Client
from alibabacloud_tea_openapi.utils_models import Config

from mailcore.store import open_store
from mailcore.store import tables as t
from tests.support.store import EXAMPLE_ENV

PASSWORD = EXAMPLE_ENV["DM_SMTP_PASSWORD_ORDERS"]
ENVID = re.compile(rb"envid=(\d+)")


def smtp_send(port, rcpt, message_id, sender="orders@mail.example.com", password=PASSWORD):
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"], msg["Message-ID"] = sender, rcpt, "hello", message_id
    msg.set_content("hi there\n" * 50)
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.starttls(context=ctx)
        s.login(sender, password)
        code, reply = s.mail(sender)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, sender)
        code, reply = s.rcpt(rcpt)
        if code != 250:
            raise smtplib.SMTPRecipientsRefused({rcpt: (code, reply)})
        code, reply = s.data(msg.as_bytes())
    return code, reply


def wait_for(fn, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_smtp_and_sdk_in_delivery_out(mailcore_service, world):
    served = mailcore_service.start()
    code, reply = smtp_send(served.port("smtp"), "alice@dest.example", "<m1@client.example>")
    assert code == 250 and ENVID.search(reply)
    client = Client(Config(access_key_id="LTAI5tExampleShop0001", access_key_secret=EXAMPLE_ENV["DM_ACCESS_KEY_SECRET"],
                           endpoint=f"127.0.0.1:{served.port('api')}", protocol="http"))
    resp = client.single_send_mail(dm.SingleSendMailRequest(
        account_name="orders@mail.example.com", address_type=1, reply_to_address=False, to_address="bob@dest.example",
        subject="Order 17", html_body="<p>Thanks</p>"))
    assert resp.body.env_id
    msgs = wait_for(lambda: len(world.mx.messages()) == 2 and world.mx.messages())
    assert sorted(r for m in msgs for r in m.rcpt_tos) == ["alice@dest.example", "bob@dest.example"]
    assert all(b"DKIM-Signature:" in m.data for m in msgs)
    # the wrong region's listener refuses this region's sender (R1)
    with pytest.raises(smtplib.SMTPSenderRefused) as exc:
        smtp_send(served.port("smtp", "ap-southeast-1"), "carol@dest.example", "<m2@client.example>")
    assert exc.value.smtp_code == 550 and b"another region" in exc.value.smtp_error


def test_kill_9_under_load_loses_no_acknowledged_message(mailcore_service, tmp_path):
    served = mailcore_service.start(stages="smtpd")
    port = served.port("smtp")
    acked: dict[str, str] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def client(n):
        i = 0
        while not stop.is_set():
            mid = f"<load-{n}-{i}@client.example>"
            i += 1
            try:
                code, reply = smtp_send(port, f"r{n}-{i}@dest.example", mid)
            except (OSError, smtplib.SMTPException):
                continue  # the server died mid-conversation: not acknowledged
            if code == 250:
                with lock:
                    acked[mid] = ENVID.search(reply).group(1).decode()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for th in threads:
        th.start()
    wait_for(lambda: len(acked) >= 40, timeout=60)
    mailcore_service.kill9()
    stop.set()
    for th in threads:
        th.join(30)
    mailcore_service.start(stages="smtpd")  # restarts cleanly on the same store
    store = open_store(mailcore_service.store_url)
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(t.queue_messages.c.id, t.queue_messages.c.message_id)).all()
    by_mid: dict[str, list[int]] = {}
    for row_id, mid in rows:
        by_mid.setdefault(mid, []).append(row_id)
    assert len(acked) >= 40
    for mid, env_id in acked.items():
        assert by_mid.get(mid) == [int(env_id)], f"{mid} acknowledged as {env_id} but stored as {by_mid.get(mid)}"
    assert all(len(ids) == 1 for ids in by_mid.values())  # nothing twice
