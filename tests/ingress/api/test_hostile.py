"""Hostile input: every parameter of SingleSendMail and BatchSendMail with values a client should
never send, through the real cleanup. Each gets an answer in the SDK's error shape (or is
accepted), never a 500; CRLF in one-line fields is refused with the field's own error; a
non-ASCII RPC signature is a signature mismatch; a cleanup process that is down is a
documented 503."""
from __future__ import annotations

import itertools
import json
import time
import uuid
from datetime import datetime, timezone

import httpx
import pytest
import sqlalchemy as sa

from mailcore.cleanup.process import CleanupUnavailable
from mailcore.cleanup.writer import Cleanup
from mailcore.ingress.api.app import ApiServer, create_app
from mailcore.ingress.api.errors import API_ERRORS, ApiError
from mailcore.ingress.api.params import ONE_LINE, Params
from mailcore.ingress.api.signature import rpc_signature, rpc_string_to_sign
from mailcore.store import tables as t
from mailcore.store.crypto import SecretBox
from tests.support.api import ACCESS_KEY_ID, RecordingSubmitter

SENDER = "orders@mail.example.com"
_nonce = itertools.count()

VALID = {
    "SingleSendMail": {"AccountName": SENDER, "AddressType": "1", "ReplyToAddress": "False", "ToAddress": "a@example.org",
                       "Subject": "Hello", "TextBody": "Hi", "HtmlBody": "<p>Hi</p>", "FromAlias": "Shop",
                       "TagName": "", "ClickTrace": "0", "ReplyAddress": "", "ReplyAddressAlias": "",
                       "Headers": "", "Template": "", "UnSubscribeLinkType": "", "UnSubscribeFilterLevel": "",
                       "BccAddress": ""},
    "BatchSendMail": {"AccountName": SENDER, "AddressType": "1", "TemplateName": "", "ReceiversName": "",
                      "TemplateContent": json.dumps({"Subject": "Hello", "TextBody": "Hi {UserName}", "Alias": "Shop"}),
                      "Receivers": json.dumps([{"To": ["a@example.org"], "TemplateData": {"UserName": "A"}}]),
                      "TagName": "", "ClickTrace": "0", "ReplyAddress": "", "ReplyAddressAlias": "", "Headers": "",
                      "UnSubscribeLinkType": "", "UnSubscribeFilterLevel": ""},
}

HOSTILE = ["\r\nBcc: victim@example.org", "a\nb", "a\rb", "\x00", "é" * 300, "x" * 20000, "[]", "{}", "null", "-1",
           "99999999999999999999999", '{"a":', '[{"To": 1}]', '[{"To": ["a@example.org"], "TemplateData": [1]}]',
           '{"TemplateId": "x", "TemplateData": "y"}', '{"k\\r\\nX": "v\\r\\nY"}', "True", "<script>x</script>",
           "%ZZ", "=?utf-8?q?=0D=0A?=", " ", "a@b@c", "@", "josé@example.org", "a@" + "l" * 70 + ".example.org",
           json.dumps({"Subject": "s\r\nBcc: v@example.org", "TextBody": "b", "Alias": "x\r\ny"}),
           json.dumps({"Subject": "s", "HtmlBody": 5})]


def signed(secret: str, action: str, params: dict) -> dict:
    form = {k: v for k, v in params.items() if v != ""}
    common = {"Action": action, "Version": "2015-11-23", "Format": "JSON", "AccessKeyId": ACCESS_KEY_ID,
              "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "SignatureNonce": uuid.uuid4().hex,
              "Timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    pairs = {**common, **form}
    pairs["Signature"] = rpc_signature(secret, rpc_string_to_sign("POST", list(pairs.items())))
    return pairs


@pytest.fixture
def real_api(ready_store, example_env):
    """The API over the real cleanup (in a thread), the allow-list off so loopback may send."""
    with ready_store.transaction() as conn:
        conn.execute(sa.update(t.accounts).values(allowlist_enabled=False))
    cleanup = Cleanup(ready_store, box=SecretBox.from_env(), settings=None)
    server = ApiServer(create_app(ready_store, cleanup)).start()
    yield server, example_env["DM_ACCESS_KEY_SECRET"]
    server.stop()
    cleanup.close()


@pytest.mark.parametrize("action", sorted(VALID))
def test_hostile_values_in_every_parameter_never_get_a_500(real_api, action):
    server, secret = real_api
    offenders, codes = [], set()
    with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as http:
        baseline = http.post("/", data=signed(secret, action, VALID[action]))
        assert baseline.status_code == 200, baseline.text
        for name, value in itertools.product(VALID[action], HOSTILE):
            r = http.post("/", data=signed(secret, action, {**VALID[action], name: value}))
            body = r.json()
            if r.status_code >= 500 or (r.status_code != 200 and set(body) != {"RequestId", "HostId", "Code", "Message"}):
                offenders.append((name, value[:40], r.status_code, body.get("Code")))
            codes.add(body.get("Code"))
    assert offenders == []
    assert codes - {None} <= {c.split("{")[0] for c in API_ERRORS} | {f"Missing{p}" for p in VALID[action]} \
        | {c for c in API_ERRORS}


@pytest.mark.parametrize("name, value, code", [
    ("Subject", "Hello\r\nBcc: victim@example.org", "InvalidSubject.Malformed"),
    ("Subject", "Hello\nworld", "InvalidSubject.Malformed"),
    ("FromAlias", "Shop\r\nBcc: victim@example.org", "InvalidFromAlias.Malformed"),
    ("FromAlias", "Sh\rop", "InvalidFromAlias.Malformed"),
    ("ReplyAddressAlias", "x\r\ny", "InvalidParameter"),
])
def test_crlf_in_one_line_fields_is_a_400(real_api, name, value, code):
    server, secret = real_api
    params = {**VALID["SingleSendMail"], name: value}
    if name == "ReplyAddressAlias":
        params["ReplyAddress"] = "support@example.com"
    r = httpx.post(f"{server.url}/", data=signed(secret, "SingleSendMail", params), trust_env=False)
    assert (r.status_code, r.json()["Code"]) == (400, code)


def test_crlf_in_template_content_is_a_400(real_api):
    server, secret = real_api
    for field, code in (("Subject", "InvalidSubject.Malformed"), ("Alias", "InvalidFromAlias.Malformed")):
        content = {"Subject": "s", "TextBody": "b", field: "x\r\nBcc: v@example.org"}
        r = httpx.post(f"{server.url}/", trust_env=False, data=signed(
            secret, "BatchSendMail", {**VALID["BatchSendMail"], "TemplateContent": json.dumps(content)}))
        assert (r.status_code, r.json()["Code"]) == (400, code)


def test_a_non_ascii_rpc_signature_is_a_mismatch_not_a_500(real_api):
    server, secret = real_api
    params = signed(secret, "QueryTagByParam", {})
    params["Signature"] = "sïgnature=="
    r = httpx.post(f"{server.url}/", data=params, trust_env=False)
    assert (r.status_code, r.json()["Code"]) == (400, "SignatureDoesNotMatch")


def test_a_cleanup_process_that_is_down_is_a_documented_503(applied_store, example_env):
    submitter = RecordingSubmitter(fail=CleanupUnavailable("the cleanup process exited"))
    with ApiServer(create_app(applied_store, submitter)) as server:
        r = httpx.post(f"{server.url}/", trust_env=False, data=signed(
            example_env["DM_ACCESS_KEY_SECRET"], "SingleSendMail", VALID["SingleSendMail"]))
    assert (r.status_code, r.json()["Code"]) == (503, "ServiceUnavailable.Submission")
    assert API_ERRORS["ServiceUnavailable.Submission"].status == 503


def test_signature_checked_before_a_large_v3_body_is_read(api, monkeypatch):
    """ACS3 signs x-acs-content-sha256 in the headers: a forged request is refused on its headers
    alone, before its (large) body is read; the body limit covers RPC, which signs the body."""
    from mailcore.ingress.api import app as app_module

    reads = []
    original = app_module._read_body

    async def counting(request, limit):
        reads.append(request.headers.get("content-length"))
        return await original(request, limit)

    monkeypatch.setattr(app_module, "_read_body", counting)
    body = b"x" * (app_module.PRECHECK_BYTES + 1)
    date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    headers = {"x-acs-action": "SingleSendMail", "x-acs-version": "2015-11-23", "x-acs-date": date,
               "x-acs-signature-nonce": uuid.uuid4().hex, "x-acs-content-sha256": "0" * 64,
               "content-type": "application/x-www-form-urlencoded",
               "Authorization": f"ACS3-HMAC-SHA256 Credential={ACCESS_KEY_ID},SignedHeaders=host;x-acs-action;"
                                "x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=" + "ab" * 32}
    r = httpx.post(f"http://{api.endpoint}/", content=body, headers=headers, trust_env=False)
    assert (r.status_code, r.json()["Code"]) == (400, "SignatureDoesNotMatch")
    assert reads == []


@pytest.mark.parametrize("name", sorted(ONE_LINE))
def test_every_one_line_parameter_refuses_line_breaks_with_its_error(name):
    code, fields = ONE_LINE[name]
    # every character Python's email package breaks a line on (U+2028 was a 500 once)
    for bad in ("a\r\nb", "a\nb", "a\rb", "a\x0bb", "a\x0cb", "a\x1cb", "a\x85b", "a\u2028b", "a\u2029b"):
        with pytest.raises(ApiError) as exc:
            Params({name: bad}).str(name)
        assert exc.value.code == code.format(**fields) and exc.value.status == 400
    assert Params({name: "one line"}).str(name) == "one line"
