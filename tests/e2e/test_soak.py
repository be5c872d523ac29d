"""Bounded soak (issue 11): `mailcore serve` as two real processes over one store (smtpd+api, and qmgr),
several SMTP and API clients sending at once to a fake MX that accepts, greylists, fails 4xx and
5xx, drops connections and answers slowly, with bad input mixed in (a DNS label over 63 octets,
UTF-8 addresses with and without SMTPUTF8, CRLF and markup in TemplateData), while the qmgr
process is killed with SIGKILL twice. At the end every acknowledged recipient has exactly one
final state and exactly one delivery event, and nothing is left incoming, active or deferred."""
from __future__ import annotations

import itertools
import random
import re
import smtplib
import ssl
import threading
import time

import sqlalchemy as sa
from alibabacloud_dm20151123 import models as dm
from alibabacloud_dm20151123.client import Client
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.utils_models import Config

from mailcore.store import open_store
from mailcore.store import tables as t
from tests.service.test_serve import wait_for
from tests.support.helpers import edit_yaml
from tests.support.serve import Mailcore
from tests.support.store import EXAMPLE_ENV

SENDER = "orders@mail.example.com"
PASSWORD = EXAMPLE_ENV["DM_SMTP_PASSWORD_ORDERS"]
MIX = ["success", "success", "user", "greylist2", "tempfail", "nxbox", "spam", "drop", "drop-data", "slow300",
       "full", "rcpt-reject", "josé"]
BAD_RCPTS = ["a@" + "x" * 64 + ".dest.example", "b@exa_mple.dest.example", "josé@dest.example"]  # the last: no SMTPUTF8
PER_CLIENT = 40
ENVID = re.compile(r"envid=(\d+)")
TLS = ssl.create_default_context()
TLS.check_hostname, TLS.verify_mode = False, ssl.CERT_NONE


def smtp_client(port: int, n: int, seed: int, acked: list, errors: list) -> None:
    rng = random.Random(seed)
    for i in range(n):
        local = rng.choice(MIX)
        rcpt = f"{local}+s{seed}-{i}@dest.example"
        utf8 = not local.isascii()
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as c:
                c.ehlo("soak.test")
                c.starttls(context=TLS)
                c.ehlo("soak.test")
                c.login(SENDER, PASSWORD)
                c.command_encoding = "utf-8"
                c.mail(SENDER, ["SMTPUTF8"] if utf8 else [])
                code, _ = c.rcpt(rng.choice(BAD_RCPTS[:2] if utf8 else BAD_RCPTS))  # injected bad input: refused
                if code < 500:
                    errors.append(("bad rcpt accepted", code))
                if c.rcpt(rcpt)[0] != 250:
                    errors.append(("rcpt refused", rcpt))
                    continue
                code, text = c.data(f"From: {SENDER}\r\nTo: {rcpt}\r\nSubject: soak {i}\r\n\r\nhello\r\n".encode())
                if code == 250:
                    acked.append(ENVID.search(text.decode()).group(1))
                else:
                    errors.append(("data", code, text))
        except (OSError, smtplib.SMTPException) as exc:
            errors.append(("smtp", repr(exc)))


def api_client(port: int, n: int, seed: int, acked: list, errors: list, template_id: str) -> None:
    rng = random.Random(seed)
    client = Client(Config(access_key_id="LTAI5tExampleShop0001", access_key_secret=EXAMPLE_ENV["DM_ACCESS_KEY_SECRET"],
                           endpoint=f"127.0.0.1:{port}", protocol="http", read_timeout=60000))
    for i in range(n):
        rcpt = f"{rng.choice(MIX)}+a{seed}-{i}@dest.example"
        kw = dict(text_body="hello")
        if i % 2:
            kw = dict(template=dm.SingleSendMailRequestTemplate(template_id=template_id, template_data={
                "UserName": rng.choice(["Ann\r\nBcc: x@else.example", "<b>Bo</b>", "Zoë"])}))
        try:
            if i % 5 == 0:  # injected bad input: refused with a 400, never queued
                try:
                    client.single_send_mail(dm.SingleSendMailRequest(
                        account_name=SENDER, address_type=1, reply_to_address=False, subject="bad",
                        to_address=rng.choice(BAD_RCPTS[:2]), text_body="x"))
                    errors.append(("bad address accepted by the API", i))
                except ClientException as exc:
                    if exc.status_code != 400:
                        errors.append(("api bad input", exc.status_code))
            resp = client.single_send_mail(dm.SingleSendMailRequest(
                account_name=SENDER, address_type=1, reply_to_address=False, subject=f"soak {i}", to_address=rcpt, **kw))
            acked.append(resp.body.env_id)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(("api", repr(exc)))


def counts(store) -> dict[str, int]:
    with store.engine.connect() as conn:
        r = t.queue_recipients
        return dict(conn.execute(sa.select(r.c.state, sa.func.count()).group_by(r.c.state)).all())


def test_soak_with_bad_input_and_two_sigkills_of_qmgr(mailcore_service, world):
    mc = mailcore_service

    def service(d):
        d["service"]["queue"] = {"retry_min_seconds": 1, "retry_max_seconds": 2, "give_up_seconds": 12,
                                 "lease_seconds": 30}
        d["service"]["limits"] = {"activation_delay_seconds": 0}
    edit_yaml(mc.config / "service.yaml", service)
    ingress = mc.start(stages="smtpd,api")
    qmgr = Mailcore(mc.config, mc.store_url, mc.env)
    qmgr.start(stages="qmgr")
    store = open_store(mc.store_url)
    sdk = Client(Config(access_key_id="LTAI5tExampleShop0001", access_key_secret=EXAMPLE_ENV["DM_ACCESS_KEY_SECRET"],
                        endpoint=f"127.0.0.1:{ingress.port('api')}", protocol="http"))
    found = sdk.query_template_by_param(dm.QueryTemplateByParamRequest(key_word="vip-offer")).body.data.template
    template_id = found[0].template_id
    acked: list[str] = []
    errors: list = []
    seeds = itertools.count(1)
    clients = [threading.Thread(target=smtp_client, args=(ingress.port("smtp"), PER_CLIENT, next(seeds), acked, errors))
               for _ in range(3)]
    clients += [threading.Thread(target=api_client, args=(ingress.port("api"), PER_CLIENT, next(seeds), acked, errors,
                                                          template_id)) for _ in range(2)]
    try:
        for c in clients:
            c.start()
        for _ in range(2):  # SIGKILL qmgr while mail flows in and out, then start it again
            try:
                wait_for(lambda: counts(store).get("sent", 0) >= 5 + len(acked) // 4, timeout=120)
            except AssertionError:
                raise AssertionError(f"no delivery: {counts(store)} acked={len(acked)} errors={errors[:3]}\n"
                                     + "".join(qmgr.current.lines[-30:])) from None
            qmgr.kill9()
            time.sleep(0.5)
            qmgr.start(stages="qmgr")
        for c in clients:
            c.join(180)
        assert not errors, errors[:5]
        assert len(acked) == 5 * PER_CLIENT and len(set(acked)) == len(acked)
        # everything reaches a final state: 4xx forever expires after give_up_seconds
        wait_for(lambda: not ({"incoming", "active", "deferred", "hold"} & set(counts(store))), timeout=120)
    finally:
        qmgr.stop()
    r, e = t.queue_recipients, t.events
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(r.c.id, r.c.message_id, r.c.state)).all()
        per_rcpt = dict(conn.execute(sa.select(e.c.recipient_id, sa.func.count()).where(e.c.event.like("Deliver:%"))
                                     .group_by(e.c.recipient_id)).all())
    assert {str(m) for _, m, _ in rows} == set(acked)  # every acknowledged message queued, nothing else
    assert all(state in ("sent", "bounced", "expired") for _, _, state in rows)
    assert {rid: per_rcpt.get(rid, 0) for rid, _, _ in rows} == {rid: 1 for rid, _, _ in rows}  # one event each
    states = counts(store)
    assert states.get("sent") and states.get("bounced") and states.get("expired"), states
    store.dispose()
