"""`tls: implicit` on an API listener serves HTTPS (it used to pass validate and be ignored):
httpx verifying the certificate, the official SDK over https, and `invoke serve`'s wiring."""
from __future__ import annotations

import asyncio
import ssl

import httpx
import pytest
from alibabacloud_dm20151123 import models as dm
from alibabacloud_dm20151123.client import Client as DmClient
from alibabacloud_tea_openapi.utils_models import Config
from alibabacloud_tea_util.models import RuntimeOptions

from mailcore.ingress.api.app import ApiServer, create_app
from mailcore.ingress.smtpd.tls import self_signed_certificate
from tests.support.api import ACCESS_KEY_ID, RecordingSubmitter


@pytest.fixture
def cert(tmp_path):
    cert_pem, key_pem = self_signed_certificate("localhost")
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(key_pem)
    return tmp_path / "cert.pem", tmp_path / "key.pem"


def test_the_api_over_https_with_httpx_and_the_sdk(applied_store, example_env, cert):
    submitter = RecordingSubmitter()
    with ApiServer(create_app(applied_store, submitter), tls=cert) as server:
        assert server.url.startswith("https://")
        r = httpx.post(f"https://localhost:{server.port}/", verify=ssl.create_default_context(cafile=str(cert[0])),
                       trust_env=False)
        assert (r.status_code, r.json()["Code"]) == (400, "IncompleteSignature")  # a real answer, over TLS
        with pytest.raises(httpx.TransportError):  # and no plain HTTP on that port
            httpx.post(f"http://localhost:{server.port}/", trust_env=False, timeout=5)
        client = DmClient(Config(access_key_id=ACCESS_KEY_ID, access_key_secret=example_env["DM_ACCESS_KEY_SECRET"],
                                 endpoint=f"127.0.0.1:{server.port}", protocol="https"))
        tags = client.query_tag_by_param_with_options(dm.QueryTagByParamRequest(), RuntimeOptions(ca=str(cert[0])))
        assert tags.body.total_count >= 1
        sent = client.single_send_mail_with_options(dm.SingleSendMailRequest(
            account_name="orders@mail.example.com", address_type=1, reply_to_address=False, subject="s",
            text_body="t", to_address="a@example.org"), RuntimeOptions(ca=str(cert[0])))
        assert sent.body.env_id == "1001"


def test_serve_starts_an_https_api_listener_from_config(applied_store, open_config, example_env, tmp_path, cert):
    from mailcore.service import Service
    from mailcore.spec import load_account
    from tests.support.helpers import edit_yaml

    def listeners(d):
        d["service"]["listeners"] = [{"region": "cn-hangzhou", "kind": "api", "listen": "127.0.0.1:0", "tls": "implicit",
                                      "base_url": "https://mail.example.com/"}]
        d["service"]["tls"] = {"cert_file": str(cert[0]), "key_file": str(cert[1])}
        d["service"]["cleanup"] = {"process": False}

    edit_yaml(open_config / "service.yaml", listeners)
    loaded = load_account(open_config)
    assert loaded.report.ok, loaded.report.lines()
    [li] = loaded.spec.service.listeners
    assert (li.tls, li.base_url) == ("implicit", "https://mail.example.com/")

    async def main():
        service = Service(loaded.spec, applied_store, None, stages=("api",), state_dir=tmp_path)
        await service.start()
        try:
            [listening] = service.listening
            async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(cert[0])),
                                         trust_env=False) as http:
                r = await http.post(f"https://localhost:{listening.port}/")
            return str(listening), r.json()["Code"]
        finally:
            await service.stop()

    loop = asyncio.new_event_loop()
    try:
        shown, code = loop.run_until_complete(main())
    finally:
        loop.close()
    assert shown.endswith("tls=https") and code == "IncompleteSignature"
