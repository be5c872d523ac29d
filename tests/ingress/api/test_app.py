"""The API server itself: raw HTTP edges (httpx), the store-answer cache, `serve_api` in an event
loop, and the benchmark function (its numbers are printed by `invoke bench`, never asserted)."""
from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
from alibabacloud_dm20151123 import models as dm
from alibabacloud_tea_openapi.exceptions import ClientException

from mailcore.ingress.api.app import TtlCache, serve_api
from mailcore.ingress.api.bench import AcceptingSubmitter, bench_single_send
from tests.support.api import ACCESS_KEY_ID, RecordingSubmitter, RunningApi, run_api


def run(coro):
    """Run a coroutine on a private loop. Not asyncio.run: that leaves the main thread with no
    current loop, which breaks later tests that call asyncio.get_event_loop()."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def test_raw_http_edges(api, applied_store):
    base = f"http://{api.endpoint}/"
    with httpx.Client(trust_env=False) as http:
        put = http.put(base)
        assert (put.status_code, put.json()["Code"]) == (400, "UnsupportedHTTPMethod")
        assert put.headers["x-acs-request-id"] == put.json()["RequestId"]
        unsigned = http.post(base, params={"Action": "QueryTagByParam", "Version": "2015-11-23"})
        assert (unsigned.status_code, unsigned.json()["Code"]) == (400, "IncompleteSignature")
        no_sig = http.post(base, params={"Action": "QueryTagByParam", "AccessKeyId": ACCESS_KEY_ID})
        assert (no_sig.status_code, no_sig.json()["Code"]) == (400, "MissingSignature")
        bad_auth = http.post(base, headers={"Authorization": "ACS3-HMAC-SHA256 nonsense"})
        assert (bad_auth.status_code, bad_auth.json()["Code"]) == (400, "IncompleteSignature")
        assert set(bad_auth.json()) == {"RequestId", "HostId", "Code", "Message"}
        rpc = {"Action": "QueryTagByParam", "Version": "2015-11-23", "AccessKeyId": ACCESS_KEY_ID, "SignatureNonce": "n1",
               "Timestamp": "yesterday", "Signature": "x"}
        assert http.post(base, params=rpc).json()["Code"] == "InvalidTimeStamp.Format"
        assert http.post(base, params={**rpc, "SignatureMethod": "HMAC-MD5"}).json()["Code"] == "InvalidSignatureMethod"
    small = run_api(applied_store, api.secret, max_body_bytes=100)  # the same store, a 100-byte body cap
    try:
        with httpx.Client(trust_env=False) as http:
            base = f"http://{small.endpoint}/"
            declared = http.post(base, content=b"x" * 101)
            streamed = http.post(base, content=iter([b"x" * 60, b"x" * 60]))  # chunked: no content-length
            assert [r.json()["Code"] for r in (declared, streamed)] == ["InvalidBody", "InvalidBody"]
    finally:
        small.server.stop()


def test_rpc_get_requests_are_verified_with_their_method(api):
    import json

    from aliyunsdkcore.client import AcsClient
    from aliyunsdkcore.request import CommonRequest

    req = CommonRequest(domain=api.endpoint, version="2015-11-23", action_name="QueryDomainByParam")
    req.set_protocol_type("http")
    req.set_method("GET")
    body = json.loads(AcsClient(ACCESS_KEY_ID, api.secret, "cn-hangzhou").do_action_with_exception(req))
    assert body["TotalCount"] == 3


def test_ttl_cache_reads_the_store_once_per_ttl():
    now = {"t": 0.0}
    loads = []
    cache = TtlCache(lambda k: loads.append(k) or f"v{len(loads)}", ttl=5, clock=lambda: now["t"])
    assert cache.fresh("a") == (False, None)
    assert cache("a") == "v1" and cache("a") == "v1" and cache.fresh("a") == (True, "v1")
    now["t"] = 5.0
    assert cache("a") == "v2" and loads == ["a", "a"]
    pair = TtlCache(lambda account, ip: (account, ip), ttl=5, clock=lambda: now["t"])
    assert run(pair.get(("acct", "1.2.3.4"))) == ("acct", "1.2.3.4")


def test_allow_list_changes_take_effect_after_the_cache_ttl(store, example_config, example_env):
    from mailcore.ingress.api.app import ApiServer, create_app
    from tests.support.api import Clock
    from tests.support.helpers import apply, edit_yaml

    apply(store, example_config)  # allow-list on, loopback not in it
    submitter = RecordingSubmitter()
    app = create_app(store, submitter, cache_seconds=0)  # no reuse: every send reads the store
    with ApiServer(app) as server:
        client = RunningApi(server, submitter, Clock(), example_env["DM_ACCESS_KEY_SECRET"]).client()
        send = dm.SingleSendMailRequest(account_name="orders@mail.example.com", address_type=1,
                                        reply_to_address=False, subject="s", text_body="t", to_address="a@example.org")
        with pytest.raises(ClientException) as exc:
            client.single_send_mail(send)
        assert exc.value.code == "Forbidden"
        edit_yaml(example_config / "account.yaml", lambda d: d["ip_allowlist"].__setitem__("enabled", False))
        apply(store, example_config)
        assert client.single_send_mail(send).body.env_id == "1001"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_api_runs_in_the_callers_event_loop(applied_store, example_env):
    port = _free_port()
    submitter = RecordingSubmitter()

    async def main():
        task = asyncio.create_task(serve_api(applied_store, submitter, "127.0.0.1", port))
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.05):
                    break
            except OSError:
                await asyncio.sleep(0.01)
        from alibabacloud_dm20151123.client import Client
        from alibabacloud_tea_openapi.utils_models import Config
        client = Client(Config(access_key_id=ACCESS_KEY_ID, access_key_secret=example_env["DM_ACCESS_KEY_SECRET"],
                               endpoint=f"127.0.0.1:{port}", protocol="http"))
        body = await client.query_tag_by_param_async(dm.QueryTagByParamRequest())
        sent = await client.single_send_mail_async(dm.SingleSendMailRequest(  # the SDK's async (aiohttp) path
            account_name="orders@mail.example.com", address_type=1, reply_to_address=False, subject="s",
            text_body="t", to_address="a@example.org"))
        assert sent.body.env_id == "1001" and submitter.submissions[0].text_body == "t"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return body.body

    assert run(main()).total_count == 3


def test_bench_function_returns_numbers(applied_store, example_env):
    submitter = AcceptingSubmitter()
    result = bench_single_send(applied_store, ACCESS_KEY_ID, example_env["DM_ACCESS_KEY_SECRET"], requests=40,
                               threads=2, submitter=submitter)
    assert (result.requests, result.errors, submitter.count) == (40, 0, 40 + 2 * 4)
    assert result.per_second > 0 and result.p99_ms >= result.p50_ms > 0
    assert "req/s" in result.line()
