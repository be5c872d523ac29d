"""Fixtures for the HTTP API tests: a store filled by applying the example account, the API
served by uvicorn on a random loopback port, and official SDK clients pointed at it.

The submitter here records what it is given and answers with an env id. It stands in for
cleanup only while cleanup is being written; it implements the `Submitter` protocol exactly, so
swapping in the real one changes nothing else.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

import pytest
from alibabacloud_dm20151123.client import Client as DmClient
from alibabacloud_tea_openapi.utils_models import Config

from mailcore.cleanup.submission import Submission, SubmitRefused, SubmitResult
from mailcore.ingress.api.app import ApiServer, create_app
from tests.support.helpers import apply, edit_yaml

ACCESS_KEY_ID = "LTAI5tExampleShop0001"  # config/api_keys.yaml
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@dataclass
class RecordingSubmitter:
    """Accepts every submission (or refuses with `refuse`, or fails with `fail`), keeping them in order."""

    submissions: list[Submission] = field(default_factory=list)
    refuse: str | None = None  # a REFUSALS reason
    fail: BaseException | None = None
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1001))

    async def submit(self, submission: Submission) -> SubmitResult:
        if self.fail is not None:
            raise self.fail
        if self.refuse is not None:
            raise SubmitRefused(self.refuse, "refused by the test")
        self.submissions.append(submission)
        return SubmitResult(env_id=str(next(self._ids)), recipients=len(submission.recipients))


class Clock:
    """The server's clock: wall time (the SDK stamps requests with it) plus an offset tests move."""

    def __init__(self):
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class RunningApi:
    server: ApiServer
    submitter: RecordingSubmitter
    clock: Clock
    secret: str

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    def client(self, secret: str | None = None, access_key_id: str = ACCESS_KEY_ID, v2: bool = False,
               headers: dict | None = None) -> DmClient:
        """The official SDK pointed at this server; `v2` signs with the legacy RPC HMAC-SHA1."""
        config = Config(access_key_id=access_key_id, access_key_secret=self.secret if secret is None else secret,
                        endpoint=self.endpoint, protocol="http", read_timeout=10000, connect_timeout=5000)
        if v2:
            config.signature_algorithm = "v2"
        if headers:
            from alibabacloud_tea_openapi.utils_models import GlobalParameters
            config.global_parameters = GlobalParameters(headers=headers)
        return DmClient(config)


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    """The SDK sends even loopback requests through HTTP(S)_PROXY (it ignores NO_PROXY)."""
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def open_config(example_config):
    """The example account with its IP allow-list switched off, so loopback clients may send."""
    edit_yaml(example_config / "account.yaml", lambda d: d["ip_allowlist"].__setitem__("enabled", False))
    return example_config


@pytest.fixture
def applied_store(store, open_config, example_env):
    apply(store, open_config)
    return store


def run_api(store, secret, **options) -> RunningApi:
    submitter, clock = RecordingSubmitter(), Clock()
    app = create_app(store, submitter, clock=clock, **options)
    return RunningApi(ApiServer(app).start(), submitter, clock, secret)


@pytest.fixture
def api(applied_store, example_env):
    running = run_api(applied_store, example_env["DM_ACCESS_KEY_SECRET"])
    yield running
    running.server.stop()


@pytest.fixture
def cleanup_api(ready_store, example_env):
    """The API in front of the real cleanup, on the example account ready to send."""
    import sqlalchemy as sa

    from mailcore.cleanup.writer import Cleanup
    from mailcore.store import tables as t
    from mailcore.store.crypto import SecretBox

    with ready_store.transaction() as conn:  # loopback clients: the example allow-list excludes them
        conn.execute(sa.update(t.accounts).values(allowlist_enabled=False))
    cleanup = Cleanup(ready_store, box=SecretBox.from_env())
    clock = Clock()
    server = ApiServer(create_app(ready_store, cleanup, clock=clock)).start()
    yield RunningApi(server, cleanup, clock, example_env["DM_ACCESS_KEY_SECRET"])
    server.stop()
    cleanup.close()
