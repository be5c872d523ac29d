"""Read actions through the official SDK, parsed by its own response models; config-owned
mutations and unknown actions refused as documented."""
from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from alibabacloud_dm20151123 import models as dm
from alibabacloud_tea_openapi import utils_models as oa
from alibabacloud_tea_openapi.exceptions import ClientException
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from darabonba.runtime import RuntimeOptions

from mailcore.ingress.api.config_owned import CONFIG_OWNED
from mailcore.store import tables as t

NOW = datetime(2026, 11, 27, 8, 30, tzinfo=timezone.utc)


def refused(call) -> tuple[str, int, str]:
    with pytest.raises(ClientException) as exc:
        call()
    return exc.value.code, exc.value.status_code, exc.value.message


def call(client, action: str, query: dict | None = None, version: str = "2015-11-23") -> dict:
    """The SDK's generic call (what every generated method does), for actions it has no method for."""
    params = oa.Params(action=action, version=version, protocol="HTTPS", pathname="/", method="POST", auth_type="AK",
                       style="RPC", req_body_type="formData", body_type="json")
    return client.call_api(params, oa.OpenApiRequest(query=query or {}), RuntimeOptions())


@pytest.mark.parametrize("v2", [False, True], ids=["v3", "rpc-sha1"])
def test_query_domain_by_param(api, v2):
    client = api.client(v2=v2)
    body = client.query_domain_by_param(dm.QueryDomainByParamRequest()).body
    assert (body.total_count, body.page_number, body.page_size) == (3, 1, 10)
    assert [d.domain_name for d in body.data.domain] == ["mail.example.com", "news.example.com", "notice.example.net"]
    d = body.data.domain[0]
    assert d.domain_id.isdigit() and d.domain_status == "1" and isinstance(d.utc_create_time, int)
    page2 = client.query_domain_by_param(dm.QueryDomainByParamRequest(page_no=2, page_size=2)).body
    assert [d.domain_name for d in page2.data.domain] == ["notice.example.net"] and page2.total_count == 3
    kw = client.query_domain_by_param(dm.QueryDomainByParamRequest(key_word="news")).body
    assert [d.domain_name for d in kw.data.domain] == ["news.example.com"]
    assert client.query_domain_by_param(dm.QueryDomainByParamRequest(status=0)).body.data.domain == []


def _verify_mail_domain(store) -> int:
    """What DNS verification (issue 3) leaves in the store: a status and the domain's key material."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = base64.b64encode(key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).decode()
    with store.transaction() as conn:
        conn.execute(t.domains.update().where(t.domains.c.name == "mail.example.com").values(status="verified"))
        conn.execute(t.domain_keys.insert().values(domain="mail.example.com", ownership_token="tok123",
                                                   dkim_selector="dm1", dkim_private_enc="x", dkim_public=public,
                                                   created_at=NOW))
        return conn.execute(sa.select(t.domains.c.id).where(t.domains.c.name == "mail.example.com")).scalar()


def test_desc_domain_and_check_domain(api, applied_store):
    domain_id = _verify_mail_domain(applied_store)
    client = api.client()
    d = client.desc_domain(dm.DescDomainRequest(domain_id=domain_id)).body
    assert (d.domain_id, d.domain_name, d.domain_status, d.tl_domain_name) == (str(domain_id), "mail.example.com", "0",
                                                                              "example.com")
    assert (d.host_record, d.domain_type) == ("aliyundm.mail", "tok123")
    assert d.spf_record_v2 == "v=spf1 include:spf.dm.cn-hangzhou.mailcore.example.org -all"
    assert d.mx_record == "mx01.dm.cn-hangzhou.mailcore.example.org"
    assert (d.cname_record, d.tracef_record) == ("dmtrace.mail", "tracedm.cn-hangzhou.mailcore.example.org")
    assert (d.dkim_rr, d.dkim_rsa_length) == ("dm1._domainkey.mail", 2048)
    assert d.dkim_public_key.startswith("v=DKIM1; k=rsa; p=MII")
    assert (d.dmarc_host_record, d.dmarc_auth_status) == ("_dmarc.mail", 0)
    assert client.check_domain(dm.CheckDomainRequest(domain_id=domain_id)).body.domain_status == 0
    news = client.query_domain_by_param(dm.QueryDomainByParamRequest(key_word="news")).body.data.domain[0]
    n = client.desc_domain(dm.DescDomainRequest(domain_id=int(news.domain_id))).body
    assert (n.domain_status, n.dmarc_record, n.dkim_rr) == ("1", "v=DMARC1; p=none; rua=mailto:dmarc@example.com", "")
    assert client.check_domain(dm.CheckDomainRequest(domain_id=int(news.domain_id))).body.domain_status == 1
    assert refused(lambda: client.desc_domain(dm.DescDomainRequest(domain_id=999)))[:2] == ("InvalidDomainId.NotFound", 404)
    assert refused(lambda: client.check_domain(dm.CheckDomainRequest(domain_id=999)))[:2] == ("InvalidDomainId.NotFound", 404)
    assert refused(lambda: client.desc_domain(dm.DescDomainRequest()))[:2] == ("MissingDomainId", 400)


def test_query_mail_address_by_param(api):
    client = api.client()
    body = client.query_mail_address_by_param(dm.QueryMailAddressByParamRequest()).body
    assert body.total_count == 4
    by = {a.account_name: a for a in body.data.mail_address}
    assert set(by) == {"orders@mail.example.com", "security@mail.example.com", "newsletter@news.example.com",
                       "alerts@notice.example.net"}
    assert (by["orders@mail.example.com"].sendtype, by["orders@mail.example.com"].reply_address) == \
        ("trigger", "support@example.com")
    assert by["orders@mail.example.com"].mail_address_id.isdigit()
    batch = client.query_mail_address_by_param(dm.QueryMailAddressByParamRequest(sendtype="batch")).body
    assert [a.account_name for a in batch.data.mail_address] == ["newsletter@news.example.com"]
    assert refused(lambda: client.query_mail_address_by_param(
        dm.QueryMailAddressByParamRequest(sendtype="bulk")))[:2] == ("InvalidParameter", 400)


def test_query_tag_by_param(api):
    body = api.client().query_tag_by_param(dm.QueryTagByParamRequest(page_size=2)).body
    assert (body.total_count, body.page_size) == (3, 2)
    assert [(x.tag_name, x.tag_description) for x in body.data.tag] == [
        ("order_confirmation", "Order placed and paid"), ("password_reset", "")]
    # LIKE wildcards in a keyword are literal
    assert api.client().query_tag_by_param(dm.QueryTagByParamRequest(key_word="%")).body.data.tag == []
    assert [x.tag_name for x in api.client().query_tag_by_param(
        dm.QueryTagByParamRequest(key_word="_reset")).body.data.tag] == ["password_reset"]


def test_query_template_by_param(api):
    body = api.client().query_template_by_param(dm.QueryTemplateByParamRequest()).body
    assert (body.total_count, body.page_size) == (3, 20)
    assert [(x.template_name, x.template_status) for x in body.data.template] == [
        ("weekly-newsletter", "0"), ("vip-offer", "0"), ("plain-notice", "0")]
    assert all(x.template_id.isdigit() and isinstance(x.utc_createtime, int) for x in body.data.template)


def test_query_receiver_by_param_and_detail(api):
    client = api.client()
    body = client.query_receiver_by_param(dm.QueryReceiverByParamRequest()).body
    assert body.total_count == 2 and body.next_start == ""
    vip = next(r for r in body.data.receiver if r.receivers_name == "vip-customers")
    assert (vip.receivers_alias, vip.count, vip.receivers_status, vip.desc) == (
        "vip@news.example.com", "4", "1", "Customers with a loyalty card")
    first = client.query_receiver_by_param(dm.QueryReceiverByParamRequest(page_size=1)).body
    assert len(first.data.receiver) == 1 and first.next_start == "1"

    detail = client.query_receiver_detail(dm.QueryReceiverDetailRequest(receiver_id=vip.receiver_id, page_size=3)).body
    assert detail.total_count == 4 and len(detail.data.detail) == 3 and detail.next_start
    assert all("@" in d.email and isinstance(json.loads(d.data), dict) for d in detail.data.detail)
    assert "UserName" in detail.data_schema
    rest = client.query_receiver_detail(dm.QueryReceiverDetailRequest(
        receiver_id=vip.receiver_id, page_size=3, next_start=detail.next_start)).body
    assert len(rest.data.detail) == 1 and rest.next_start == ""
    emails = {d.email for d in detail.data.detail + rest.data.detail}
    assert len(emails) == 4
    assert refused(lambda: client.query_receiver_detail(dm.QueryReceiverDetailRequest(receiver_id="999")))[:2] == \
        ("InvalidReceiver.NotFound", 404)


def test_query_task_by_param(api, applied_store):
    client = api.client()
    empty = client.query_task_by_param(dm.QueryTaskByParamRequest()).body
    assert (empty.total_count, empty.data.task) == (0, [])
    with applied_store.transaction() as conn:
        account_id = conn.execute(sa.select(t.accounts.c.id)).scalar()
        conn.execute(t.batch_jobs.insert().values(
            account_id=account_id, receivers_list="weekly-readers", template="weekly-newsletter",
            sender="newsletter@news.example.com", tag="newsletter_weekly", address_type="random", tracking=True,
            status="queued", request_count=4, env_id="77", created_at=NOW))
    [task] = client.query_task_by_param(dm.QueryTaskByParamRequest(key_word="weekly")).body.data.task
    assert (task.template_name, task.receivers_name, task.tag_name, task.address_type, task.task_status,
            task.request_count, task.utc_create_time) == ("weekly-newsletter", "weekly-readers", "newsletter_weekly",
                                                          "0", "1", "4", int(NOW.timestamp()))
    assert client.query_task_by_param(dm.QueryTaskByParamRequest(status=0)).body.data.task == []


def test_sender_statistics_detail_by_param(api, applied_store):
    client = api.client()
    empty = client.sender_statistics_detail_by_param(dm.SenderStatisticsDetailByParamRequest()).body
    assert (empty.next_start, empty.data.mail_detail) == ("", [])
    with applied_store.transaction() as conn:
        account_id = conn.execute(sa.select(t.accounts.c.id)).scalar()
        mid = conn.execute(t.queue_messages.insert().values(
            account_id=account_id, sender="orders@mail.example.com", envelope_from="orders@mail.example.com",
            region="cn-hangzhou", source="api", tag="order_confirmation", tracking=False, message_id="<m1@x>",
            subject="Your order", created_at=NOW)).inserted_primary_key[0]
        for rcpt, state, status in (("a@example.org", "sent", 0), ("b@example.org", "bounced", 4),
                                    ("c@example.org", "incoming", None)):
            conn.execute(t.queue_recipients.insert().values(
                message_id=mid, rcpt=rcpt, rcpt_domain="example.org", state=state, status=status,
                next_attempt_at=NOW, created_at=NOW, done_at=NOW if status is not None else None,
                last_text="250 ok" if status == 0 else ("550 no such user" if status == 4 else None),
                failed_type="SmtpNxBox" if status == 4 else None))
    body = client.sender_statistics_detail_by_param(dm.SenderStatisticsDetailByParamRequest(
        start_time="2026-11-27 00:00", end_time="2026-11-28 00:00", length=2)).body
    assert [(d.to_address, d.status) for d in body.data.mail_detail] == [("a@example.org", 0), ("b@example.org", 4)]
    assert body.next_start and body.data.mail_detail[1].error_classification == "SmtpNxBox"
    assert body.data.mail_detail[0].subject == "Your order" and body.data.mail_detail[0].account_name == \
        "orders@mail.example.com"
    rest = client.sender_statistics_detail_by_param(dm.SenderStatisticsDetailByParamRequest(
        next_start=body.next_start, length=2)).body
    assert [(d.to_address, d.status) for d in rest.data.mail_detail] == [("c@example.org", None)]
    failed = client.sender_statistics_detail_by_param(dm.SenderStatisticsDetailByParamRequest(status=4)).body
    assert [d.to_address for d in failed.data.mail_detail] == ["b@example.org"]
    assert client.sender_statistics_detail_by_param(dm.SenderStatisticsDetailByParamRequest(
        tag_name="password_reset")).body.data.mail_detail == []
    assert refused(lambda: client.sender_statistics_detail_by_param(dm.SenderStatisticsDetailByParamRequest(
        start_time="2026-10-01 00:00", end_time="2026-11-27 00:00")))[:2] == ("InvalidParameter", 400)


def test_every_config_owned_mutation_says_it_belongs_in_git(api):
    client = api.client()
    for action, entity in CONFIG_OWNED.items():
        code, status, message = refused(lambda: call(client, action))
        assert (code, status) == ("Forbidden.ConfigAsCode", 400), action
        assert action in message and entity in message and "invoke apply" in message
    # and through the generated methods, as a user would call them
    assert refused(lambda: client.create_tag(dm.CreateTagRequest(tag_name="x")))[:2] == ("Forbidden.ConfigAsCode", 400)
    assert refused(lambda: api.client(v2=True).delete_domain(dm.DeleteDomainRequest(domain_id=1)))[:2] == \
        ("Forbidden.ConfigAsCode", 400)
    tags = client.query_tag_by_param(dm.QueryTagByParamRequest()).body
    assert tags.total_count == 3


def test_unknown_action_and_version(api):
    client = api.client()
    assert refused(lambda: call(client, "NoSuchAction"))[:2] == ("InvalidApi.NotFound", 404)
    assert refused(lambda: call(api.client(v2=True), "GetIpfilterList"))[:2] == ("InvalidApi.NotFound", 404)
    assert refused(lambda: call(client, "QueryTagByParam", version="2017-06-22"))[:2] == ("InvalidVersion", 400)


def test_every_status_mapping_row(api, applied_store):
    """DOMAIN_STATUS, TEMPLATE_STATUS and TASK_STATUS: each store value as the SDK reads it."""
    from mailcore.ingress.api.reading import DOMAIN_STATUS, TASK_STATUS, TEMPLATE_STATUS

    client = api.client()
    with applied_store.engine.connect() as conn:
        domain_id = conn.execute(sa.select(t.domains.c.id).where(t.domains.c.name == "news.example.com")).scalar()
        account_id = conn.execute(sa.select(t.accounts.c.id)).scalar()
    for status, code in DOMAIN_STATUS.items():
        with applied_store.transaction() as conn:
            conn.execute(t.domains.update().where(t.domains.c.id == domain_id).values(status=status))
        assert client.desc_domain(dm.DescDomainRequest(domain_id=domain_id)).body.domain_status == code, status
        assert client.check_domain(dm.CheckDomainRequest(domain_id=domain_id)).body.domain_status == int(code)
        listed = client.query_domain_by_param(dm.QueryDomainByParamRequest(key_word="news")).body.data.domain[0]
        assert listed.domain_status == code
    for status, code in TEMPLATE_STATUS.items():
        with applied_store.transaction() as conn:
            conn.execute(t.templates.update().where(t.templates.c.name == "vip-offer").values(status=status))
        [tpl] = client.query_template_by_param(dm.QueryTemplateByParamRequest(key_word="vip")).body.data.template
        assert tpl.template_status == code, status
    with applied_store.transaction() as conn:
        for status in TASK_STATUS:
            conn.execute(t.batch_jobs.insert().values(
                account_id=account_id, receivers_list="vip-customers", template=f"job-{status}",
                sender="newsletter@news.example.com", address_type="sender", tracking=False, status=status,
                request_count=1, created_at=NOW))
    for status, code in TASK_STATUS.items():
        [task] = client.query_task_by_param(dm.QueryTaskByParamRequest(status=int(code))).body.data.task
        assert (task.template_name, task.task_status) == (f"job-{status}", code)
