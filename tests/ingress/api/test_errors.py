"""The API error table: every row as the official SDK sees it, and every submission refusal
(REFUSALS) answered by the running API with its code and HTTP status."""
from __future__ import annotations

import pytest
from alibabacloud_dm20151123 import models as dm
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException
from sqlalchemy.exc import OperationalError
from starlette.applications import Starlette
from starlette.routing import Route

from mailcore.cleanup.submission import REFUSALS
from mailcore.ingress.api.app import ApiServer, error_response
from mailcore.ingress.api.errors import API_ERRORS, HOST_ID, ApiError
from tests.support.api import RunningApi

FIELDS = {"Parameter": "ToAddress", "Action": "CreateTag", "Entity": "tags (tags)"}


@pytest.fixture(scope="module")
def mirror():
    """Answers any request with the error named in its X-Test-Code header, through the API's own
    response builder: what the SDK makes of each row, independent of what triggers it."""

    async def endpoint(request):
        return error_response(ApiError(request.headers["x-test-code"], **FIELDS), "REQ-1")

    server = ApiServer(Starlette(routes=[Route("/", endpoint, methods=["POST"])])).start()
    yield server
    server.stop()


@pytest.mark.parametrize("template", sorted(API_ERRORS))
def test_every_error_row_reaches_the_sdk_with_its_code_and_status(mirror, template, no_proxy):
    spec = API_ERRORS[template]
    client = RunningApi(mirror, None, None, "secret").client(headers={"X-Test-Code": template})
    expected = ServerException if spec.status >= 500 else ClientException
    with pytest.raises(expected) as exc:
        client.query_tag_by_param(dm.QueryTagByParamRequest())
    err = exc.value
    assert (err.code, err.status_code, err.request_id) == (template.format(**FIELDS), spec.status, "REQ-1")
    assert spec.message.format(**FIELDS) in err.message
    assert err.data["HostId"] == HOST_ID


def test_every_refusal_is_a_row_with_the_same_status_and_message():
    for reason, refusal in REFUSALS.items():
        spec = API_ERRORS[refusal.api_code]
        message = spec.message.format(Parameter="ClickTrace") if "{" in spec.message else spec.message
        assert (spec.status, message) == (refusal.http_status, refusal.api_message), reason


def test_unknown_codes_are_a_programming_error():
    with pytest.raises(ValueError, match="not in API_ERRORS"):
        ApiError("NoSuchCode")


def _send(client):
    return client.single_send_mail(dm.SingleSendMailRequest(
        account_name="orders@mail.example.com", address_type=1, reply_to_address=False, subject="Hi",
        text_body="hello", to_address="buyer@example.org"))


@pytest.mark.parametrize("v2", [False, True], ids=["v3", "rpc-sha1"])
def test_each_refusal_reason_through_the_running_api(api, v2):
    client = api.client(v2=v2)
    for reason, refusal in REFUSALS.items():
        api.submitter.refuse = reason
        with pytest.raises(ClientException) as exc:
            _send(client)
        assert (exc.value.code, exc.value.status_code) == (refusal.api_code, refusal.http_status), reason
        assert refusal.api_message in exc.value.message
    assert api.submitter.submissions == []


def test_a_submitter_bug_is_internal_error_and_a_lost_store_is_service_unavailable(api):
    api.submitter.fail = RuntimeError("boom")
    with pytest.raises(ServerException) as exc:
        _send(api.client())
    assert (exc.value.code, exc.value.status_code) == ("InternalError", 500)
    assert "boom" not in exc.value.message
    api.submitter.fail = OperationalError("INSERT", {}, Exception("database is locked"))
    with pytest.raises(ServerException) as exc:
        _send(api.client())
    assert (exc.value.code, exc.value.status_code) == ("ServiceUnavailable", 503)
