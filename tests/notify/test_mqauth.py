"""The queue API needs the owning account's AccessKey (MNS-style signature): unauthenticated,
malformed, stale, unknown, disabled and wrong keys are refused, another account's queue is
invisible, and every row of AUTH_ERRORS is answered by a real request over HTTP."""
from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa

from mailcore.ingress.api.app import ApiServer
from mailcore.notify import mqauth
from mailcore.notify.mq import QueueClient, QueueError, configure_queue, create_queue_app
from mailcore.store import tables as t
from mailcore.store.crypto import SecretBox, generate_master_key
from tests.support.notify import ACCOUNT, START
from tests.support.store import EXAMPLE_ENV

KEY_ID, KEY_SECRET = "LTAI5tExampleShop0001", EXAMPLE_ENV["DM_ACCESS_KEY_SECRET"]
OTHER, OTHER_KEY, OTHER_SECRET = "other-shop", "LTAI5tOtherShop000001", "other-secret-value"


def add_account(store, name: str, key_id: str, secret: str, *, enabled: bool = True) -> None:
    with store.transaction(immediate=True) as conn:
        aid = conn.execute(sa.select(t.accounts.c.id).where(t.accounts.c.name == name)).scalar()
        if aid is None:
            aid = conn.execute(sa.insert(t.accounts).values(
                name=name, status="active", timezone="Asia/Shanghai", quota_daily=1, quota_monthly=1, quota_free_daily=1,
                allowlist_enabled=False, created_at=START, updated_at=START).returning(t.accounts.c.id)).scalar_one()
        conn.execute(sa.insert(t.api_keys).values(account_id=aid, access_key_id=key_id, secret_enc=SecretBox.from_env().encrypt(secret),
                                                  description="", enabled=enabled))


@pytest.fixture
def api(notify_store, clock):
    add_account(notify_store, OTHER, OTHER_KEY, OTHER_SECRET)
    add_account(notify_store, ACCOUNT, "LTAI5tDisabledKey0001", "disabled-secret", enabled=False)
    configure_queue(notify_store, OTHER, "their-events")
    served = ApiServer(create_queue_app(notify_store, clock=clock)).start()
    yield served
    served.stop()


def signed(api, clock, key_id=KEY_ID, secret=KEY_SECRET, path="/queues/dm-deliveries/messages", *, method="GET",
           headers=None, date_offset: float = 0) -> httpx.Response:
    """One request signed as MnsAuth signs, with `headers` applied after signing (to tamper)."""
    with httpx.Client(base_url=api.url, trust_env=False) as http:
        request = http.build_request(method, path)
        request.headers["Date"] = mqauth.http_date(clock() + timedelta(seconds=date_offset))
        sig = mqauth.signature(secret, method, request.headers, request.url.raw_path.decode())
        request.headers["Authorization"] = f"MNS {key_id}:{sig}"
        for k, v in (headers or {}).items():
            request.headers[k] = v
        return http.send(request)


def code(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["code"]


# request -> the refusal it gets; together they walk every row of AUTH_ERRORS
REFUSALS = {
    "MissingAuthorization": lambda api, clock, mp: httpx.get(api.url + "/queues/dm-deliveries/messages", trust_env=False),
    "InvalidAuthorization": lambda api, clock, mp: signed(api, clock, headers={"Authorization": "Bearer tok"}),
    "RequestTimeTooSkewed": lambda api, clock, mp: signed(api, clock, date_offset=-16 * 60),
    "InvalidAccessKeyId": lambda api, clock, mp: signed(api, clock, key_id="LTAI5tNoSuchKey000001"),
    "SignatureDoesNotMatch": lambda api, clock, mp: signed(api, clock, secret="wrong-secret"),
    "AccessDenied": lambda api, clock, mp: signed(api, clock, path="/queues/dm-deliveries/messages?account=other-shop"),
    "KeysUnavailable": lambda api, clock, mp: (mp.setenv("MAILCORE_MASTER_KEY", generate_master_key()), signed(api, clock))[1],
}


def test_every_refusal_has_a_request():
    assert set(REFUSALS) == set(mqauth.AUTH_ERRORS)


@pytest.mark.parametrize("name", sorted(mqauth.AUTH_ERRORS))
def test_refusal(api, clock, monkeypatch, name):
    response = REFUSALS[name](api, clock, monkeypatch)
    status, message = mqauth.AUTH_ERRORS[name]
    assert code(response) == (status, name)
    assert response.json()["message"] == message


@pytest.mark.parametrize("method, path", [("GET", "/queues/dm-deliveries"), ("GET", "/queues/dm-deliveries/messages"),
                                          ("DELETE", "/queues/dm-deliveries/messages/1-abc")])
def test_every_route_needs_a_signature(api, method, path):
    response = httpx.request(method, api.url + path, trust_env=False)
    assert code(response) == (401, "MissingAuthorization")


def test_a_stale_date_within_the_window_is_accepted(api, clock):
    assert signed(api, clock, date_offset=-14 * 60).status_code == 200
    assert code(signed(api, clock, date_offset=16 * 60)) == (403, "RequestTimeTooSkewed")


def test_the_signature_covers_path_and_query(api, clock):
    """A signature for one request does not authorise another (the query is signed too)."""
    with httpx.Client(base_url=api.url, trust_env=False) as http:
        request = http.build_request("GET", "/queues/dm-deliveries/messages")
        request.headers["Date"] = mqauth.http_date(clock())
        request.headers["Authorization"] = (f"MNS {KEY_ID}:"
                                            + mqauth.signature(KEY_SECRET, "GET", request.headers, "/queues/dm-deliveries"))
        assert code(http.send(request)) == (403, "SignatureDoesNotMatch")


def test_a_disabled_key_is_refused(api, clock):
    assert code(signed(api, clock, key_id="LTAI5tDisabledKey0001", secret="disabled-secret")) == (403, "InvalidAccessKeyId")


def test_another_accounts_queue_is_not_there(api, clock):
    """Each key sees its own account's queues only: 404, as if the queue did not exist."""
    with QueueClient(api.url, access_key_id=KEY_ID, access_key_secret=KEY_SECRET, clock=clock) as ours:
        with pytest.raises(QueueError) as exc:
            ours.receive("their-events")
        assert (exc.value.code, exc.value.status) == ("QueueNotExist", 404)
        assert ours.receive("dm-deliveries") == []
    with QueueClient(api.url, access_key_id=OTHER_KEY, access_key_secret=OTHER_SECRET, clock=clock) as theirs:
        assert theirs.attributes("their-events")["name"] == "their-events"
        with pytest.raises(QueueError) as exc:
            theirs.receive("dm-deliveries")
        assert (exc.value.code, exc.value.status) == ("QueueNotExist", 404)


def test_the_right_key_reads_its_queue(api, clock):
    with QueueClient(api.url, access_key_id=KEY_ID, access_key_secret=KEY_SECRET, account=ACCOUNT, clock=clock) as c:
        attrs = c.attributes("dm-deliveries")
    assert attrs["name"] == "dm-deliveries" and attrs["active"] == 0
