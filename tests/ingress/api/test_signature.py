"""Signature verification: the reference's test vectors, the verifier's refusals, and the official
SDKs (V3 ACS3-HMAC-SHA256, legacy RPC HMAC-SHA1 through tea-openapi and aliyun-python-sdk-core)
against the running API."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

import pytest
from alibabacloud_dm20151123 import models as dm
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.utils import Utils

from mailcore.ingress.api.errors import ApiError
from mailcore.ingress.api.signature import (
    Credential,
    NonceCache,
    SignatureVerifier,
    SignedRequest,
    headers_of,
    rpc_signature,
    rpc_string_to_sign,
    v3_signature,
    v3_string_to_sign,
)
from tests.support.api import ACCESS_KEY_ID, run_api
from tests.support.helpers import apply, edit_yaml

# --- DIRECTMAIL-API.md §3.4 test vectors -----------------------------------------------------

V3_BODY = (b"AccountName=noreply%40example.com&AddressType=1&ReplyToAddress=False&Subject=Hello+World&TagName=t1"
           b"&TextBody=Hi+%2A~&ToAddress=rcpt%40example.org")
V3_SHA = "dfd515841e7a60aad30ff106fa2aa9e1496a86102661cae9516411db64f0f6b9"
V3_SIG = "51cab88554dde2a1b4886591ed0c6b92c1daa2fc293fc6c4930c500f67a83ab0"
V3_HEADERS = {
    "accept": "application/json", "content-type": "application/x-www-form-urlencoded", "host": "127.0.0.1:8080",
    "user-agent": "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2", "x-acs-action": "SingleSendMail",
    "x-acs-content-sha256": V3_SHA, "x-acs-credentials-provider": "static_ak", "x-acs-date": "2025-01-01T00:00:00Z",
    "x-acs-signature-nonce": "0123456789abcdef0123456789abcdef", "x-acs-version": "2015-11-23",
}
V3_AUTH = f"ACS3-HMAC-SHA256 Credential=testAK,SignedHeaders={';'.join(sorted(V3_HEADERS))},Signature={V3_SIG}"
RPC_PARAMS = {"AccessKeyId": "testAK", "Action": "QueryTagByParam", "Format": "json", "KeyWord": "t1",
              "SignatureMethod": "HMAC-SHA1", "SignatureNonce": "0123456789abcdef0123456789abcdef",
              "SignatureVersion": "1.0", "Timestamp": "2025-01-01T00:00:00Z", "Version": "2015-11-23"}
RPC_STS = ("POST&%2F&AccessKeyId%3DtestAK%26Action%3DQueryTagByParam%26Format%3Djson%26KeyWord%3Dt1%26SignatureMethod"
           "%3DHMAC-SHA1%26SignatureNonce%3D0123456789abcdef0123456789abcdef%26SignatureVersion%3D1.0%26Timestamp%3D"
           "2025-01-01T00%253A00%253A00Z%26Version%3D2015-11-23")
RPC_SIG = "Bi5YXU3A/SWUJiM+u2Y3FLozNC0="
VECTOR_TIME = datetime(2025, 1, 1, tzinfo=timezone.utc).timestamp()


def _v3_request(headers=None, body=V3_BODY, auth=V3_AUTH, query=""):
    h = {**V3_HEADERS, **(headers or {})}
    if auth is not None:
        h["authorization"] = auth
    return SignedRequest("POST", "/", query, headers_of({k: v for k, v in h.items() if v is not None}), body, [])


def _verifier(now=VECTOR_TIME, enabled=True):
    clock = {"now": now}
    keys = {"testAK": Credential("testAK", "acct", "testSecret", enabled)}
    return SignatureVerifier(keys.get, clock=lambda: clock["now"]), clock


def test_v3_vector():
    assert hashlib.sha256(V3_BODY).hexdigest() == V3_SHA
    sts = v3_string_to_sign(_v3_request(), sorted(V3_HEADERS), V3_SHA)
    assert sts == "ACS3-HMAC-SHA256\n273a1b99090a49a63d1f7d549eac2c29ee5a84a65ad7b505d3f72a65d465b1ce"
    assert v3_signature("testSecret", sts) == V3_SIG
    verified = _verifier()[0].verify(_v3_request())
    assert (verified.credential.account, verified.action, verified.version, verified.style) == \
        ("acct", "SingleSendMail", "2015-11-23", "v3")


def test_rpc_vector():
    sts = rpc_string_to_sign("POST", list(RPC_PARAMS.items()))
    assert sts == RPC_STS and rpc_signature("testSecret", sts) == RPC_SIG
    query = "&".join(f"{k}={v}" for k, v in RPC_PARAMS.items()).replace(":", "%3A")
    req = SignedRequest("POST", "/", f"{query}&Signature={RPC_SIG.replace('+', '%2B').replace('/', '%2F')}", [], b"", [])
    verified = _verifier()[0].verify(req)
    assert (verified.action, verified.style) == ("QueryTagByParam", "rpc")


def _code(verifier, req) -> str:
    with pytest.raises(ApiError) as exc:
        verifier.verify(req)
    return exc.value.code


@pytest.mark.parametrize("change, code", [
    ({"auth": "ACS3-HMAC-SHA256 Credential=testAK"}, "IncompleteSignature"),
    ({"auth": V3_AUTH.replace("ACS3-HMAC-SHA256", "ACS3-HMAC-SM3")}, "InvalidSignatureMethod"),
    ({"auth": V3_AUTH.replace("Credential=testAK", "Credential=otherAK")}, "InvalidAccessKeyId.NotFound"),
    ({"auth": V3_AUTH.replace("accept;content-type;host;", "accept;content-type;")}, "IncompleteSignature"),
    ({"auth": V3_AUTH.replace(V3_SIG, "0" * 64)}, "SignatureDoesNotMatch"),
    ({"headers": {"x-acs-date": "2025-01-01 00:00:00"}}, "InvalidTimeStamp.Format"),
    ({"headers": {"x-acs-date": "2025-01-01T00:15:01Z"}}, "InvalidTimeStamp.Expired"),
    ({"headers": {"user-agent": "other"}}, "SignatureDoesNotMatch"),
    ({"headers": {"host": "127.0.0.1:8081"}}, "SignatureDoesNotMatch"),
    ({"headers": {"accept": None}}, "IncompleteSignature"),
    ({"auth": V3_AUTH.replace("x-acs-date;", "")}, "IncompleteSignature"),
    ({"body": V3_BODY + b"&x=1"}, "SignatureDoesNotMatch"),
    ({"query": "KeyWord=t1"}, "SignatureDoesNotMatch"),
    ({"auth": None}, "IncompleteSignature"),
])
def test_v3_refusals(change, code):
    kw = {k: v for k, v in change.items()}
    assert _code(_verifier()[0], _v3_request(**kw)) == code


def test_timestamp_window_is_fifteen_minutes_either_way():
    verifier, clock = _verifier()
    for offset, ok in ((900, True), (-900, True), (901, False), (-901, False)):
        clock["now"] = VECTOR_TIME + offset
        req = _v3_request(headers={"x-acs-signature-nonce": f"n{offset}"})
        req_ok = True
        try:
            verifier.verify(req)
        except ApiError as exc:
            req_ok = exc.code != "InvalidTimeStamp.Expired"
        assert req_ok is ok, offset


def test_disabled_key_is_inactive():
    assert _code(_verifier(enabled=False)[0], _v3_request()) == "InvalidAccessKeyId.Inactive"


def test_nonce_is_accepted_once_then_forgotten_after_the_window():
    verifier, clock = _verifier()
    verifier.verify(_v3_request())
    assert _code(verifier, _v3_request()) == "SignatureNonceUsed"
    clock["now"] += 2 * 900 + 1  # the request is now refused by its timestamp, so the nonce may go
    verifier.nonces.claim("other", "sweep")
    assert len(verifier.nonces) == 1


def test_nonce_cache_is_bounded_by_its_ttl():
    now = {"t": 0.0}
    cache = NonceCache(ttl=60, clock=lambda: now["t"])
    for i in range(1000):
        assert cache.claim("ak", str(i))
        now["t"] += 1
    assert len(cache) <= 60 + 60 / 10 + 1
    assert not cache.claim("ak", "999") and cache.claim("other-ak", "999")


def test_rpc_refusals():
    verifier, _ = _verifier()

    def req(**change):
        params = {**RPC_PARAMS, **change}
        params = {k: v for k, v in params.items() if v is not None}
        params["Signature"] = rpc_signature("testSecret", rpc_string_to_sign("POST", list(params.items())))
        return SignedRequest("POST", "/", "", [], b"", list(params.items()))

    assert verifier.verify(req()).style == "rpc"  # tolerated in the form body too
    assert _code(verifier, req()) == "SignatureNonceUsed"
    assert _code(verifier, req(SignatureMethod="HMAC-SHA256", SignatureNonce="a")) == "InvalidSignatureMethod"
    assert _code(verifier, req(Timestamp="2024-12-31T23:44:59Z", SignatureNonce="b")) == "InvalidTimeStamp.Expired"
    assert _code(verifier, req(Timestamp=None, SignatureNonce="c")) == "MissingTimestamp"
    tampered = req(SignatureNonce="d")
    tampered = SignedRequest("POST", "/", "", [], b"", [(k, "t2" if k == "KeyWord" else v) for k, v in tampered.form])
    assert _code(verifier, tampered) == "SignatureDoesNotMatch"
    assert _code(verifier, SignedRequest("POST", "/", "Action=QueryTagByParam", [], b"", [])) == "IncompleteSignature"


# --- the official SDK against the running API -----------------------------------------------------

def _err(call) -> ClientException:
    with pytest.raises(ClientException) as exc:
        call()
    return exc.value


@pytest.mark.parametrize("v2", [False, True], ids=["v3", "rpc-sha1"])
def test_sdk_signatures_are_accepted(api, v2):
    body = api.client(v2=v2).query_tag_by_param(dm.QueryTagByParamRequest(key_word="order")).body
    assert [t.tag_name for t in body.data.tag] == ["order_confirmation"]


@pytest.mark.parametrize("v2", [False, True], ids=["v3", "rpc-sha1"])
def test_sdk_wrong_secret_is_signature_does_not_match(api, v2):
    err = _err(lambda: api.client(secret="not-the-secret", v2=v2).query_tag_by_param(dm.QueryTagByParamRequest()))
    assert (err.code, err.status_code) == ("SignatureDoesNotMatch", 400)
    assert "server string to sign is:" in err.message


@pytest.mark.parametrize("v2", [False, True], ids=["v3", "rpc-sha1"])
def test_sdk_unknown_access_key(api, v2):
    err = _err(lambda: api.client(access_key_id="LTAI5tNobody", v2=v2).query_tag_by_param(dm.QueryTagByParamRequest()))
    assert (err.code, err.status_code) == ("InvalidAccessKeyId.NotFound", 404)


@pytest.mark.parametrize("v2", [False, True], ids=["v3", "rpc-sha1"])
def test_sdk_expired_timestamp(api, v2):
    api.clock.offset = 16 * 60  # the server is 16 minutes ahead of the client
    err = _err(lambda: api.client(v2=v2).query_tag_by_param(dm.QueryTagByParamRequest()))
    assert (err.code, err.status_code) == ("InvalidTimeStamp.Expired", 400)
    api.clock.offset = -14 * 60
    api.client(v2=v2).query_tag_by_param(dm.QueryTagByParamRequest())


@pytest.mark.parametrize("v2", [False, True], ids=["v3", "rpc-sha1"])
def test_sdk_replayed_nonce(api, v2, monkeypatch):
    monkeypatch.setattr(Utils, "get_nonce", staticmethod(lambda: "fixed-nonce-for-the-replay-test"))
    client = api.client(v2=v2)
    client.query_tag_by_param(dm.QueryTagByParamRequest())
    err = _err(lambda: client.query_tag_by_param(dm.QueryTagByParamRequest()))
    assert (err.code, err.status_code) == ("SignatureNonceUsed", 400)


def test_sdk_disabled_key_is_inactive(store, open_config, example_env):
    edit_yaml(open_config / "api_keys.yaml", lambda d: d["api_keys"][0].__setitem__("enabled", False))
    apply(store, open_config)
    running = run_api(store, example_env["DM_ACCESS_KEY_SECRET"])
    try:
        err = _err(lambda: running.client().query_tag_by_param(dm.QueryTagByParamRequest()))
        assert (err.code, err.status_code) == ("InvalidAccessKeyId.Inactive", 400)
    finally:
        running.server.stop()


def test_aliyun_python_sdk_core_common_request(api):
    """The older SDK family (aliyunsdkcore CommonRequest: Format=JSON, empty SignatureType)."""
    from aliyunsdkcore.acs_exception.exceptions import ServerException
    from aliyunsdkcore.client import AcsClient
    from aliyunsdkcore.request import CommonRequest

    def request(action, **params):
        req = CommonRequest(domain=api.endpoint, version="2015-11-23", action_name=action)
        req.set_protocol_type("http")
        req.set_method("POST")
        for k, v in params.items():
            req.add_query_param(k, v)
        return req

    client = AcsClient(ACCESS_KEY_ID, api.secret, "cn-hangzhou")
    body = json.loads(client.do_action_with_exception(request("QueryTagByParam", KeyWord="password")))
    assert [t["TagName"] for t in body["data"]["tag"]] == ["password_reset"]
    sent = json.loads(client.do_action_with_exception(request(
        "SingleSendMail", AccountName="orders@mail.example.com", AddressType="1", ReplyToAddress="false",
        Subject="Hi", TextBody="hello", ToAddress="buyer@example.org")))
    assert sent["EnvId"] == "1001" and api.submitter.submissions[0].recipients[0].address == "buyer@example.org"
    bad = AcsClient(ACCESS_KEY_ID, "wrong", "cn-hangzhou")
    with pytest.raises(ServerException) as exc:
        bad.do_action_with_exception(request("QueryTagByParam"))
    assert (exc.value.get_error_code(), exc.value.get_http_status()) == ("SignatureDoesNotMatch", 400)
