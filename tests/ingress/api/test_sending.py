"""SingleSendMail and BatchSendMail through the official SDK against the running API: what reaches
the submitter, and the documented refusals for malformed requests (nothing reaches it then)."""
from __future__ import annotations

import json

import pytest
from alibabacloud_dm20151123 import models as dm
from alibabacloud_tea_openapi.exceptions import ClientException

from mailcore.cleanup.submission import Recipient
from tests.support.api import run_api
from tests.support.helpers import apply

SENDER = "orders@mail.example.com"


def single(**kw) -> dm.SingleSendMailRequest:
    base = dict(account_name=SENDER, address_type=1, reply_to_address=False, subject="Your order",
                text_body="Thanks for your order.", to_address="buyer@example.org")
    return dm.SingleSendMailRequest(**{**base, **kw})


def refused(call) -> tuple[str, int]:
    with pytest.raises(ClientException) as exc:
        call()
    return exc.value.code, exc.value.status_code


@pytest.mark.parametrize("v2", [False, True], ids=["v3", "rpc-sha1"])
def test_single_send_mail_reaches_the_submitter(api, v2):
    resp = api.client(v2=v2).single_send_mail(single(
        to_address="a@example.org, b@example.org,A@example.org", from_alias="Example Shop", html_body="<p>Hi 你好</p>",
        tag_name="order_confirmation", click_trace="1", address_type=0, reply_to_address=True,
        headers=json.dumps({"Message-ID": "<abc@mail.example.com>", "X-User-Order": "42"}),
        reply_address="help@example.com", reply_address_alias="Help"))
    assert resp.status_code == 200 and resp.body.env_id == "1001" and len(resp.body.request_id) == 36
    [s] = api.submitter.submissions
    assert (s.account, s.sender, s.source, s.client_ip) == ("example-shop", SENDER, "api", "127.0.0.1")
    assert s.recipients == [Recipient("a@example.org"), Recipient("b@example.org")]  # the repeat dropped
    assert (s.subject, s.text_body, s.html_body, s.from_alias) == ("Your order", "Thanks for your order.",
                                                                   "<p>Hi 你好</p>", "Example Shop")
    assert (s.tag, s.tracking, s.address_type, s.reply_to_sender) == ("order_confirmation", True, "random", True)
    assert s.headers == {"Message-ID": "<abc@mail.example.com>", "X-User-Order": "42", "Reply-To": "Help <help@example.com>"}


def test_single_send_mail_defaults(api):
    api.client().single_send_mail(single())
    [s] = api.submitter.submissions
    assert (s.tag, s.tracking, s.address_type, s.reply_to_sender, s.headers) == (None, False, "sender", False, {})


def test_single_send_mail_with_a_template(api):
    tpl = api.client().query_template_by_param(dm.QueryTemplateByParamRequest(key_word="vip")).body.data.template[0]
    api.client().single_send_mail(single(text_body=None, template=dm.SingleSendMailRequestTemplate(
        template_id=tpl.template_id, template_data={"UserName": "Ann"})))
    [s] = api.submitter.submissions
    assert s.template == "vip-offer" and s.recipients == [Recipient("buyer@example.org", {"UserName": "Ann"})]
    assert refused(lambda: api.client().single_send_mail(single(template=dm.SingleSendMailRequestTemplate(
        template_id="999")))) == ("InvalidTemplate.NotFound", 404)


def test_one_hundred_recipients_is_the_limit(api):
    many = [f"r{i}@example.org" for i in range(101)]
    api.client().single_send_mail(single(to_address=",".join(many[:100])))
    assert len(api.submitter.submissions[0].recipients) == 100
    assert refused(lambda: api.client().single_send_mail(single(to_address=",".join(many)))) == ("InvalidToAddress", 400)


SINGLE_REFUSALS = [
    ({"to_address": "not-an-address"}, "InvalidToAddress"),
    ({"to_address": "a@example.org,b@@example.org"}, "InvalidToAddress"),
    ({"to_address": " , "}, "InvalidToAddress"),
    ({"text_body": None}, "InvalidBody"),
    ({"subject": "x" * 257}, "InvalidSubject.Malformed"),
    ({"from_alias": "x" * 16}, "InvalidFromAlias.Malformed"),
    ({"address_type": 2}, "InvalidParameter"),
    ({"click_trace": "yes"}, "InvalidParameter"),
    ({"tag_name": "no spaces"}, "InvalidParameter"),
    ({"headers": "{not json"}, "InvalidParameter"),
    ({"headers": json.dumps({"Bcc": "x@example.org"})}, "InvalidParameter"),
    ({"headers": json.dumps({f"X-User-{i}": "v" for i in range(11)})}, "InvalidParameter"),
    ({"reply_address": "nope"}, "InvalidParameter"),
    ({"bcc_address": "x@example.org"}, "InvalidParameter"),
    ({"un_subscribe_link_type": "always"}, "InvalidParameter"),
    ({"subject": None}, "MissingSubject"),
    ({"to_address": None}, "MissingToAddress"),
    ({"account_name": None}, "MissingAccountName"),
]


def test_single_send_mail_refusals(api):
    client = api.client()
    for change, code in SINGLE_REFUSALS:  # one server for all cases: a loop, not a parametrization
        assert refused(lambda: client.single_send_mail(single(**change))) == (code, 400), change
    assert api.submitter.submissions == []


def test_subject_of_256_and_alias_of_15_are_accepted(api):
    api.client().single_send_mail(single(subject="s" * 256, from_alias="a" * 15))
    assert len(api.submitter.submissions) == 1


def test_invalid_to_address_through_the_legacy_signature(api):
    assert refused(lambda: api.client(v2=True).single_send_mail(single(to_address="x@"))) == ("InvalidToAddress", 400)


def test_reply_to_address_is_a_required_boolean(api):
    client = api.client()
    req = single()
    req.reply_to_address = None
    assert refused(lambda: client.single_send_mail(req)) == ("MissingReplyToAddress", 400)


@pytest.mark.parametrize("v2", [False, True], ids=["v3", "rpc-sha1"])
def test_batch_send_mail_with_a_list_and_a_template(api, v2):
    resp = api.client(v2=v2).batch_send_mail(dm.BatchSendMailRequest(
        account_name="newsletter@news.example.com", address_type=0, template_name="weekly-newsletter",
        receivers_name="weekly-readers", tag_name="newsletter_weekly", click_trace="1"))
    assert resp.body.env_id == "1001"
    [s] = api.submitter.submissions
    assert (s.sender, s.template, s.receivers_list, s.recipients, s.tag, s.tracking, s.address_type) == \
        ("newsletter@news.example.com", "weekly-newsletter", "weekly-readers", [], "newsletter_weekly", True, "random")


def test_batch_send_mail_with_inline_receivers_and_content(api):
    api.client().batch_send_mail(dm.BatchSendMailRequest(
        account_name="newsletter@news.example.com", address_type=1,
        receivers=[dm.BatchSendMailRequestReceivers(to=["a@example.org"], template_data={"UserName": "A"}),
                   dm.BatchSendMailRequestReceivers(to=["b@example.org"])],
        template_content=dm.BatchSendMailRequestTemplateContent(alias="News", subject="Hello {UserName}",
                                                                html_body="<p>Hi {UserName}</p>")))
    [s] = api.submitter.submissions
    assert s.recipients == [Recipient("a@example.org", {"UserName": "A"}), Recipient("b@example.org")]
    assert (s.subject, s.html_body, s.from_alias, s.template, s.receivers_list) == \
        ("Hello {UserName}", "<p>Hi {UserName}</p>", "News", None, None)


BATCH_REFUSALS = [
    ({"template_name": "t" * 31}, ("InvalidTemplateName.Malformed", 400)),
    ({"template_name": None}, ("MissingTemplateName", 400)),
    ({"receivers_name": None}, ("InvalidReceiverName.Malformed", 400)),
    ({"receivers_name": None, "receivers": [dm.BatchSendMailRequestReceivers(to=["bad"])]}, ("InvalidToAddress", 400)),
    ({"receivers_name": None, "receivers": [dm.BatchSendMailRequestReceivers(to=[f"r{i}@example.org"])
                                            for i in range(101)]}, ("InvalidToAddress", 400)),
    ({"address_type": None}, ("MissingAddressType", 400)),
    ({"receivers_name": None, "receivers": [dm.BatchSendMailRequestReceivers(
        to=["a@example.org"], template_data={"UserName": {"nested": "no"}})]}, ("InvalidParameter", 400)),
    ({"template_name": None, "template_content": dm.BatchSendMailRequestTemplateContent(subject="s")},
     ("InvalidBody", 400)),
    ({"template_name": None, "template_content": dm.BatchSendMailRequestTemplateContent(html_body="<p>x</p>")},
     ("InvalidSubject.Malformed", 400)),
]


def test_batch_send_mail_refusals(api):
    base = dict(account_name="newsletter@news.example.com", address_type=1, template_name="weekly-newsletter",
                receivers_name="weekly-readers")
    client = api.client()
    for change, code in BATCH_REFUSALS:
        assert refused(lambda: client.batch_send_mail(dm.BatchSendMailRequest(**{**base, **change}))) == code, change
    assert api.submitter.submissions == []


def test_allow_list_refuses_other_clients(store, example_config, example_env):
    """R28: the example account allows 203.0.113.10, 198.51.100.0/24, 192.0.2.20-40 only."""
    apply(store, example_config)
    direct = run_api(store, example_env["DM_ACCESS_KEY_SECRET"])
    proxied = run_api(store, example_env["DM_ACCESS_KEY_SECRET"], trusted_proxies=["127.0.0.1"])
    try:
        assert refused(lambda: direct.client().single_send_mail(single())) == ("Forbidden", 403)
        # reading is not sending: the allow-list guards sends only
        direct.client().query_tag_by_param(dm.QueryTagByParamRequest())
        # the client is not trusted to name itself; only a trusted proxy in front may
        assert refused(lambda: direct.client(headers={"X-Forwarded-For": "203.0.113.10"}).single_send_mail(
            single())) == ("Forbidden", 403)
        proxied.client(headers={"X-Forwarded-For": "198.51.100.7"}).single_send_mail(single())
        proxied.client(headers={"X-Forwarded-For": "192.0.2.30"}).batch_send_mail(dm.BatchSendMailRequest(
            account_name="newsletter@news.example.com", address_type=1, template_name="weekly-newsletter",
            receivers_name="weekly-readers"))
        assert [s.client_ip for s in proxied.submitter.submissions] == ["198.51.100.7", "192.0.2.30"]
        assert refused(lambda: proxied.client(headers={"X-Forwarded-For": "192.0.2.41"}).single_send_mail(
            single())) == ("Forbidden", 403)
        assert direct.submitter.submissions == []
    finally:
        direct.server.stop()
        proxied.server.stop()


def test_every_choice_row_is_accepted(api):
    """ADDRESS_TYPES, CLICK_TRACE, the unsubscribe options and STANDARD_HEADERS, row by row."""
    from mailcore.ingress.api.sending import (
        ADDRESS_TYPES,
        CLICK_TRACE,
        STANDARD_HEADERS,
        UNSUBSCRIBE_FILTER_LEVELS,
        UNSUBSCRIBE_LINK_TYPES,
    )

    client = api.client()
    for raw, kind in ADDRESS_TYPES.items():
        client.single_send_mail(single(address_type=int(raw)))
        assert api.submitter.submissions[-1].address_type == kind
    for raw, on in CLICK_TRACE.items():
        client.single_send_mail(single(click_trace=raw))
        assert api.submitter.submissions[-1].tracking is on
    for value in UNSUBSCRIBE_LINK_TYPES:
        client.single_send_mail(single(un_subscribe_link_type=value))
    for value in UNSUBSCRIBE_FILTER_LEVELS:
        client.single_send_mail(single(un_subscribe_filter_level=value))
    for lowered, name in STANDARD_HEADERS.items():
        client.single_send_mail(single(headers=json.dumps({lowered: "v"})))
        assert api.submitter.submissions[-1].headers == {name: "v"}


# --- ClientToken: a retried send gets the first EnvId (real cleanup, SQLite and PostgreSQL) --------

def with_token(token: str):
    """The SDK has no ClientToken field; a client passes it as an extra query parameter (signed)."""
    from darabonba.runtime import ExtendsParameters, RuntimeOptions
    return RuntimeOptions(extends_parameters=ExtendsParameters(queries={"ClientToken": token}))


def queued(store) -> list:
    import sqlalchemy as sa

    from mailcore.store import tables as t
    with store.engine.connect() as conn:
        return conn.execute(sa.select(t.queue_messages.c.id, t.queue_messages.c.subject)).all()


@pytest.mark.parametrize("v2", [False, True], ids=["v3", "rpc-sha1"])
def test_a_retried_single_send_with_its_client_token_gets_the_first_env_id(cleanup_api, ready_store, v2):
    client = cleanup_api.client(v2=v2)
    first = client.single_send_mail_with_options(single(), with_token("order-42-try")).body.env_id
    again = client.single_send_mail_with_options(single(), with_token("order-42-try")).body.env_id  # a new nonce
    assert again == first
    assert [str(m.id) for m in queued(ready_store)] == [first]
    other = client.single_send_mail_with_options(single(), with_token("order-43-try")).body.env_id
    assert other != first and len(queued(ready_store)) == 2
    assert refused(lambda: client.single_send_mail_with_options(single(subject="Changed"), with_token("order-42-try"))) \
        == ("IdempotentParameterMismatch", 400)
    assert len(queued(ready_store)) == 2


def test_a_retried_batch_send_with_its_client_token_gets_the_first_env_id(cleanup_api, ready_store):
    client = cleanup_api.client()
    req = dm.BatchSendMailRequest(account_name="newsletter@news.example.com", address_type=1, template_name="vip-offer",
                                  receivers_name="vip-customers")
    first = client.batch_send_mail_with_options(req, with_token("batch-7")).body.env_id
    assert client.batch_send_mail_with_options(req, with_token("batch-7")).body.env_id == first
    assert len(queued(ready_store)) == 1


@pytest.mark.parametrize("token", ["x" * 65, "with space", "naïve"])  # empty: as if absent, as every parameter
def test_a_malformed_client_token_is_refused(api, token):
    assert refused(lambda: api.client().single_send_mail_with_options(single(), with_token(token))) \
        == ("InvalidParameter", 400)
    assert api.submitter.submissions == []


def refusal_message(call) -> tuple[str, int, str]:
    with pytest.raises(ClientException) as exc:
        call()
    return exc.value.code, exc.value.status_code, exc.value.message


def test_the_allow_list_refusal_names_the_list_and_the_client(api, applied_store):
    """Issue 14: the 403 says which list, which address and what to change; the code is the documented one."""
    import sqlalchemy as sa

    from mailcore.store import tables as t
    with applied_store.transaction() as conn:
        conn.execute(sa.update(t.accounts).values(allowlist_enabled=True))  # the example list excludes 127.0.0.1
    code, status, message = refusal_message(lambda: api.client().single_send_mail(single()))
    assert (code, status) == ("Forbidden", 403)
    assert "Client 127.0.0.1 is not in the account's IP allow-list (config ip_allowlist); add it or set " \
           "ip_allowlist.enabled: false" in message
    assert api.submitter.submissions == []


def test_the_activation_refusal_gives_the_time_left_in_the_accounts_timezone(cleanup_api, ready_store):
    """Issue 14 (R15): the 400 says when the new sender becomes active, in the account's timezone, and how
    long that is; a send at that moment is accepted."""
    from datetime import datetime, timedelta, timezone

    import sqlalchemy as sa

    from mailcore.store import tables as t
    now = datetime(2026, 12, 4, 23, 0, 0, tzinfo=timezone.utc)
    with ready_store.transaction() as conn:
        conn.execute(sa.update(t.senders).where(t.senders.c.address == SENDER).values(
            created_at=now - timedelta(seconds=75)))
    cleanup_api.submitter.clock = lambda: now
    code, status, message = refusal_message(lambda: cleanup_api.client().single_send_mail(single()))
    assert (code, status) == ("InvalidMailAddressStatus.Malformed", 400)
    assert "new senders wait 10 min): it becomes active at 2026-12-05 07:08:45 UTC+08:00 (Asia/Shanghai), " \
           "in 8 min 45 s; try again then" in message
    assert queued(ready_store) == []
    cleanup_api.submitter.clock = lambda: now + timedelta(seconds=525)
    assert cleanup_api.client().single_send_mail(single()).body.env_id


# --- a list's alias address as ToAddress (R17), real cleanup ------------------------------------

NEWSLETTER = "newsletter@news.example.com"  # the example's batch sender
VIP = ["li.wei@example.com", "zhang.min@example.com", "chen.jing@example.net", "wang.fang@example.org"]


def queued_recipients(store) -> list[dict]:
    import sqlalchemy as sa

    from mailcore.store import tables as t
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(t.queue_recipients).order_by(t.queue_recipients.c.id)).mappings()]


def test_to_address_of_a_list_alias_sends_to_every_row_with_its_variables(cleanup_api, ready_store):
    """R17: the alias addresses the list; with a template, each row is rendered with its own variables
    (as BatchSendMail expands a list), the request's TemplateData filling what the row lacks."""
    from datetime import datetime, timezone

    import sqlalchemy as sa

    from mailcore.message.render import render
    from mailcore.store import tables as t
    client = cleanup_api.client()
    tpl = client.query_template_by_param(dm.QueryTemplateByParamRequest(key_word="vip")).body.data.template[0]
    env_id = client.single_send_mail(single(account_name=NEWSLETTER, to_address="VIP@news.example.com", text_body=None,
                                            template=dm.SingleSendMailRequestTemplate(
                                                template_id=tpl.template_id,
                                                template_data={"UserName": "Everyone", "Mobile": "1"}))).body.env_id
    rcpts = queued_recipients(ready_store)
    assert [r["rcpt"] for r in rcpts] == VIP
    assert rcpts[0]["variables"] == {"UserName": "Li Wei", "NickName": "Wei", "Gender": "Mr", "Birthday": "1988/03/14",
                                     "Mobile": "13800000001", "EAddr": "li.wei@example.com"}
    with ready_store.engine.connect() as conn:
        msg = conn.execute(sa.select(t.queue_messages).where(t.queue_messages.c.id == int(env_id))).mappings().one()
    out = render(cleanup_api.submitter.signer, dict(msg), rcpts[1], datetime.now(timezone.utc))
    assert b"Dear Zhang Min," in out and b"To: zhang.min@example.com" in out


def test_to_address_with_an_alias_and_an_address_builds_one_message_to_both(cleanup_api, ready_store):
    """Inline content: one message whose To: is what the caller wrote (the alias, not 4 rows), delivered
    to every row and the extra address once (li.wei appears in both and is sent once)."""
    import sqlalchemy as sa

    from mailcore.store import tables as t
    cleanup_api.client().single_send_mail(single(account_name=NEWSLETTER,
                                                 to_address="vip@news.example.com,extra@example.org,li.wei@example.com"))
    assert [r["rcpt"] for r in queued_recipients(ready_store)] == VIP + ["extra@example.org"]
    with ready_store.engine.connect() as conn:
        content = conn.execute(sa.select(t.queue_messages.c.content)).scalar()
    assert b"To: vip@news.example.com, extra@example.org, li.wei@example.com\r\n" in content
    assert b"zhang.min" not in content


def test_a_trigger_sender_cannot_send_to_a_list_alias(cleanup_api, ready_store):
    code, status, message = refusal_message(lambda: cleanup_api.client().single_send_mail(
        single(to_address="weekly@news.example.com")))
    assert (code, status) == ("InvalidMailAddressSendType.Malformed", 400)
    assert queued_recipients(ready_store) == []


def test_receivers_name_may_be_the_lists_alias(cleanup_api, ready_store):
    cleanup_api.client().batch_send_mail(dm.BatchSendMailRequest(
        account_name=NEWSLETTER, address_type=1, template_name="vip-offer", receivers_name="vip@news.example.com"))
    assert [r["rcpt"] for r in queued_recipients(ready_store)] == VIP
