"""Reply-to verification (R13): a ticket mailed to the reply-to, valid 10 minutes, one mail per
10 minutes; only a confirmed reply-to goes into messages; the API actions through the official SDK."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest
import sqlalchemy as sa
from alibabacloud_dm20151123 import models as dm
from alibabacloud_tea_openapi.exceptions import ClientException

from mailcore.account import replyto
from mailcore.account.catalog import Catalog
from mailcore.cleanup.writer import Cleanup
from mailcore.ingress.api.errors import API_ERRORS
from mailcore.ingress.api.verifying import REASON_CODES, verification_submission
from mailcore.store import tables as t
from mailcore.store.crypto import SecretBox
from tests.cleanup.test_writer import ACCOUNT, rows
from tests.cleanup.test_writer import api as api_submission

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=timezone.utc)
ORDERS, SUPPORT = "orders@mail.example.com", "support@example.com"


def ask(store, at=NOW, address=ORDERS):
    return replyto.request(store, ACCOUNT, at, "http://127.0.0.1:8080/", address=address)


def reason(call) -> str:
    with pytest.raises(replyto.ReplyToError) as exc:
        call()
    return exc.value.reason


def test_a_ticket_confirms_the_reply_to_once(ready_store):
    req = ask(ready_store)
    mail = verification_submission(ACCOUNT, req)
    assert (req.reply_to, mail.sender, [r.address for r in mail.recipients]) == (SUPPORT, ORDERS, [SUPPORT])
    assert req.link == f"http://127.0.0.1:8080/reply-to/approve?ticket={req.ticket}" and req.link in mail.text_body
    assert not Catalog(ready_store).sender(ORDERS).reply_to_verified
    assert replyto.approve(ready_store, req.ticket, NOW + timedelta(minutes=9)) == (ORDERS, SUPPORT)
    assert Catalog(ready_store).sender(ORDERS).reply_to_verified
    assert reason(lambda: replyto.approve(ready_store, req.ticket, NOW + timedelta(minutes=9))) == "ticket-unknown"


def test_one_mail_per_ten_minutes_and_a_ticket_lives_ten_minutes(ready_store):
    first = ask(ready_store)
    assert reason(lambda: ask(ready_store, NOW + timedelta(minutes=9, seconds=59))) == "too-soon"
    assert reason(lambda: replyto.approve(ready_store, first.ticket, NOW + timedelta(minutes=10, seconds=1))) \
        == "ticket-expired"
    second = ask(ready_store, NOW + timedelta(minutes=10))
    assert reason(lambda: replyto.approve(ready_store, first.ticket, NOW + timedelta(minutes=11))) == "ticket-unknown"
    assert replyto.approve(ready_store, second.ticket, NOW + timedelta(minutes=11)) == (ORDERS, SUPPORT)


def test_a_new_reply_to_in_config_needs_a_new_confirmation(ready_store):
    req = ask(ready_store)
    replyto.approve(ready_store, req.ticket, NOW)
    later = ask(ready_store, NOW + timedelta(minutes=20))
    with ready_store.transaction() as conn:  # what apply does when `reply_to` changes in config
        conn.execute(sa.update(t.senders).where(t.senders.c.address == ORDERS).values(reply_to="help@example.com"))
    assert not Catalog(ready_store).sender(ORDERS).reply_to_verified
    assert reason(lambda: replyto.approve(ready_store, later.ticket, NOW + timedelta(minutes=21))) == "reply-to-changed"


def test_unknown_senders_and_senders_without_a_reply_to(ready_store):
    assert reason(lambda: ask(ready_store, address="nobody@mail.example.com")) == "sender-unknown"
    assert reason(lambda: ask(ready_store, address="security@mail.example.com")) == "no-reply-to"


def test_a_withdrawn_request_does_not_count_against_the_interval(ready_store):
    replyto.withdraw(ready_store, ask(ready_store))
    assert ask(ready_store, NOW + timedelta(minutes=1)).reply_to == SUPPORT


def test_reply_to_goes_into_api_mail_only_once_confirmed(ready_store):
    cleanup = Cleanup(ready_store, box=SecretBox.from_env(), settings=None)
    cleanup.settings.lookup_cache_seconds = 0
    try:
        cleanup.submit_sync(api_submission(reply_to_sender=True))
        now = datetime.now(timezone.utc)
        replyto.approve(ready_store, replyto.request(ready_store, ACCOUNT, now, "http://x", address=ORDERS).ticket, now)
        cleanup.submit_sync(api_submission(reply_to_sender=True))
        cleanup.submit_sync(api_submission(reply_to_sender=False))
    finally:
        cleanup.close()
    contents = [m["content"] for m in sorted(rows(ready_store, t.queue_messages), key=lambda m: m["id"])]
    assert [b"Reply-To: support@example.com" in c for c in contents] == [False, True, False]


def test_every_reason_has_a_documented_api_error():
    assert set(REASON_CODES) == set(replyto.REASONS)
    assert all(code in API_ERRORS for code in REASON_CODES.values())


def sdk_refused(call) -> tuple[str, int]:
    with pytest.raises(ClientException) as exc:
        call()
    return exc.value.code, exc.value.status_code


def test_the_sdk_asks_the_link_confirms_and_the_status_shows_it(api):
    client = api.client()
    ids = {a.account_name: int(a.mail_address_id) for a in
           client.query_mail_address_by_param(dm.QueryMailAddressByParamRequest()).body.data.mail_address}

    def status():
        return {a.account_name: a.reply_status for a in
                client.query_mail_address_by_param(dm.QueryMailAddressByParamRequest()).body.data.mail_address}[ORDERS]

    assert status() == "0"
    client.check_reply_to_mail_address(dm.CheckReplyToMailAddressRequest(mail_address_id=ids[ORDERS]))
    [mail] = api.submitter.submissions
    assert (mail.sender, [r.address for r in mail.recipients]) == (ORDERS, [SUPPORT])
    link = next(w for w in mail.text_body.split() if w.startswith("http"))
    assert link.startswith(api.endpoint if api.endpoint.startswith("http") else f"http://{api.endpoint}")
    assert sdk_refused(lambda: client.check_reply_to_mail_address(
        dm.CheckReplyToMailAddressRequest(mail_address_id=ids[ORDERS]))) == ("Throttling.User", 400)
    ticket = link.rsplit("=", 1)[1]
    page = httpx.get(link)  # opening the link (a mail scanner does too) changes nothing: a button
    assert page.status_code == 200 and 'method="post"' in page.text and f'value="{ticket}"' in page.text
    assert status() == "0"
    url = link.split("?")[0]
    assert httpx.post(url, data={"ticket": "x" + ticket}).status_code == 400
    done = httpx.post(url, data={"ticket": ticket})  # the button
    assert done.status_code == 200 and f"now go to {SUPPORT}" in done.text
    assert status() == "1"
    assert sdk_refused(lambda: client.approve_reply_mail_address(
        dm.ApproveReplyMailAddressRequest(ticket=link.rsplit("=", 1)[1]))) == ("InvalidTicket", 400)
    assert sdk_refused(lambda: client.check_reply_to_mail_address(dm.CheckReplyToMailAddressRequest(
        mail_address_id=ids["security@mail.example.com"]))) == ("InvalidReplyAddress.NotFound", 404)
    assert sdk_refused(lambda: client.check_reply_to_mail_address(
        dm.CheckReplyToMailAddressRequest(mail_address_id=99999))) == ("InvalidMailAddress.NotFound", 404)


def test_the_sdk_approves_with_the_ticket(api, applied_store):
    client = api.client()
    ids = {a.account_name: int(a.mail_address_id) for a in
           client.query_mail_address_by_param(dm.QueryMailAddressByParamRequest()).body.data.mail_address}
    client.check_reply_to_mail_address(dm.CheckReplyToMailAddressRequest(mail_address_id=ids["newsletter@news.example.com"]))
    ticket = api.submitter.submissions[0].text_body.split("ticket=", 1)[1].split()[0]
    client.approve_reply_mail_address(dm.ApproveReplyMailAddressRequest(ticket=ticket))
    assert Catalog(applied_store).sender("newsletter@news.example.com").reply_to_verified


def test_the_link_points_at_the_configured_base_url_not_the_host_header(applied_store, example_env):
    import uuid

    from mailcore.ingress.api.app import ApiServer, create_app
    from tests.ingress.api.test_hostile import signed
    from tests.support.api import RecordingSubmitter

    secret = example_env["DM_ACCESS_KEY_SECRET"]
    for base_url, expected in ((None, "http://127.0.0.1:"), ("https://mail.example.com/dm/",
                                                              "https://mail.example.com/dm/reply-to/approve?ticket=")):
        submitter = RecordingSubmitter()
        with ApiServer(create_app(applied_store, submitter, base_url=base_url)) as server:
            ids = httpx.post(f"{server.url}/", data=signed(secret, "QueryMailAddressByParam", {}), trust_env=False).json()
            sender_id = next(a["MailAddressId"] for a in ids["data"]["mailAddress"] if a["AccountName"] == ORDERS)
            with applied_store.transaction() as conn:  # a fresh request each round
                conn.execute(sa.delete(t.reply_to_verifications))
            r = httpx.post(f"{server.url}/", headers={"Host": f"evil-{uuid.uuid4().hex[:6]}.example"}, trust_env=False,
                           data=signed(secret, "CheckReplyToMailAddress", {"MailAddressId": str(sender_id)}))
            assert r.status_code == 200, r.text
        link = next(w for w in submitter.submissions[0].text_body.split() if w.startswith("http"))
        assert link.startswith(expected) and "evil" not in link


def test_check_reply_to_obeys_the_ip_allow_list(store, example_config, example_env):
    from mailcore.ingress.api.app import ApiServer, create_app
    from tests.support.api import Clock, RecordingSubmitter, RunningApi
    from tests.support.helpers import apply

    apply(store, example_config)  # the allow-list on; loopback is not in it
    submitter = RecordingSubmitter()
    with ApiServer(create_app(store, submitter)) as server:
        client = RunningApi(server, submitter, Clock(), example_env["DM_ACCESS_KEY_SECRET"]).client()
        ids = {a.account_name: int(a.mail_address_id) for a in
               client.query_mail_address_by_param(dm.QueryMailAddressByParamRequest()).body.data.mail_address}
        assert sdk_refused(lambda: client.check_reply_to_mail_address(
            dm.CheckReplyToMailAddressRequest(mail_address_id=ids[ORDERS]))) == ("Forbidden", 403)
    assert submitter.submissions == []
