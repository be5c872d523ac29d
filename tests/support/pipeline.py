"""The whole mail path in one test process, every part real: SMTP submission (aiosmtpd, smtplib
client) and the HTTP API (uvicorn, the official SDK) into the real cleanup and store, qmgr
delivering through the real transport to the built-in DNS server and the fake MX (`world`).

qmgr runs when the test says (`drain()`), on an injected clock, so a test decides when delivery
happens and can look at every recipient's state in between."""
from __future__ import annotations

import asyncio
import smtplib
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alibabacloud_dm20151123 import models as dm
from alibabacloud_dm20151123.client import Client as DmClient
from alibabacloud_tea_openapi.utils_models import Config

from mailcore.account.catalog import Catalog
from mailcore.cleanup.writer import Cleanup
from mailcore.delivery.invalid import InvalidBase
from mailcore.ingress.api.app import ApiServer, create_app
from mailcore.ingress.smtpd.server import SmtpServer
from mailcore.ingress.smtpd.settings import SmtpSettings
from mailcore.queue.qmgr import Qmgr, QmgrSettings
from mailcore.queue.states import FINAL
from mailcore.store import tables as t
from mailcore.store.crypto import SecretBox
from tests.support.api import ACCESS_KEY_ID, PROXY_VARS
from tests.support.smtpd import ORDERS, ORDERS_PASSWORD, LoopThread

SENDER = ORDERS


class ShiftedClock:
    """Wall time plus an offset the test moves (qmgr's clock: deferred recipients fall due)."""

    def __init__(self):
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@dataclass
class Pipeline:
    store: object
    cleanup: Cleanup
    qmgr: Qmgr
    smtp_port: int
    api: ApiServer
    secret: str
    clock: ShiftedClock
    template_ids: dict = field(default_factory=dict)

    # --- in
    def smtp(self, *, smtputf8: bool = False) -> smtplib.SMTP:
        """A logged-in SMTP session (plain AUTH is allowed from loopback on this listener)."""
        c = smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=30)
        c.ehlo("client.test")
        c.login(SENDER, ORDERS_PASSWORD)
        if smtputf8:
            c.command_encoding = "utf-8"
        return c

    def sdk(self) -> DmClient:
        return DmClient(Config(access_key_id=ACCESS_KEY_ID, access_key_secret=self.secret, endpoint=self.api.endpoint,
                               protocol="http", read_timeout=20000, connect_timeout=5000))

    def single(self, to: str, **kw) -> str:
        """SingleSendMail through the SDK; returns the EnvId (an SDK exception when refused)."""
        base = dict(account_name=SENDER, address_type=1, reply_to_address=False, subject="Your order",
                    text_body="Thanks for your order.", to_address=to)
        return self.sdk().single_send_mail(dm.SingleSendMailRequest(**{**base, **kw})).body.env_id

    def template_id(self, name: str) -> str:
        if name not in self.template_ids:
            found = self.sdk().query_template_by_param(dm.QueryTemplateByParamRequest(key_word=name)).body.data.template
            self.template_ids[name] = next(tpl.template_id for tpl in found if tpl.template_name == name)
        return self.template_ids[name]

    # --- out
    def drain(self, rounds: int = 10) -> int:
        """Run qmgr passes until one finds nothing due; returns how many recipients were handled."""
        total = 0
        for _ in range(rounds):
            n = asyncio.run(self.qmgr.run_once())
            total += n
            if not n:
                break
        return total

    def states(self, env_id: str | None = None) -> dict[str, str]:
        r, m = t.queue_recipients, t.queue_messages
        q = sa.select(r.c.rcpt, r.c.state).join(m, r.c.message_id == m.c.id)
        if env_id is not None:
            q = q.where(m.c.id == int(env_id))
        with self.store.engine.connect() as conn:
            return dict(conn.execute(q).all())

    def stuck(self) -> dict[str, str]:
        """Recipients neither final nor deferred (incoming or active after a drain: stuck)."""
        return {k: v for k, v in self.states().items() if v not in (*FINAL, "deferred")}


@pytest.fixture
def pipeline(ready_store, world, example_env, monkeypatch):
    for var in PROXY_VARS:  # the SDK sends even loopback requests through a proxy (it ignores NO_PROXY)
        monkeypatch.delenv(var, raising=False)
    store = ready_store
    with store.transaction() as conn:  # loopback clients may send; enough quota for generated traffic
        conn.execute(sa.update(t.accounts).values(allowlist_enabled=False, quota_daily=100_000, quota_monthly=1_000_000))
    box = SecretBox.from_env()
    cleanup = Cleanup(store, box=box)
    clock = ShiftedClock()
    qmgr = Qmgr(store, world.transport, cleanup.signer, clock=clock,
                settings=QmgrSettings(retry_min_seconds=60, retry_max_seconds=600, give_up_seconds=3600))
    loop = LoopThread()
    smtp = SmtpServer(SmtpSettings(region="cn-hangzhou", tls_mode="none", allow_plain_auth_on_loopback=True,
                                   activation_delay_seconds=0),
                      catalog=Catalog(store, box), submitter=cleanup, invalid_address=InvalidBase(store).check)
    loop.run(smtp.start())
    api = ApiServer(create_app(store, cleanup, region="cn-hangzhou", catalog=Catalog(store, box))).start()
    try:
        yield Pipeline(store, cleanup, qmgr, smtp.port, api, example_env["DM_ACCESS_KEY_SECRET"], clock)
    finally:
        api.stop()
        loop.run(smtp.stop())
        loop.close()
        cleanup.close()


def wait_until(fn, timeout: float = 30.0, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")
