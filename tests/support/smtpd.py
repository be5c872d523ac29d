"""Fixtures for the SMTP submission tests: a store holding the example account, a running
SmtpServer on a loopback port (its event loop in a thread, so the blocking smtplib client can
talk to it from the test), a recording submitter, and clients over STARTTLS and implicit TLS."""
from __future__ import annotations

import asyncio
import smtplib
import ssl
import threading
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from mailcore.account.catalog import Catalog
from mailcore.cleanup.submission import Submission, SubmitResult
from mailcore.ingress.smtpd.server import SmtpServer
from mailcore.ingress.smtpd.settings import SmtpSettings
from mailcore.ingress.smtpd.tls import self_signed_certificate, server_context
from mailcore.store import open_store
from mailcore.store import tables as t
from tests.support.helpers import apply

ORDERS = "orders@mail.example.com"
ORDERS_PASSWORD = "Orders2026Pw"  # tests/storefixtures.py EXAMPLE_ENV
ALERTS = "alerts@notice.example.net"
ALERTS_PASSWORD = "Alerts78Pwd"
HANGZHOU = "cn-hangzhou"


class LoopThread:
    """An event loop in a daemon thread; `run(coro)` runs a coroutine there and returns its result."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self):
        async def finish_tasks():
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(finish_tasks())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class RecordingSubmitter:
    """Implements the Submitter protocol and records what it was given (the real cleanup is
    written concurrently). `fail_with` makes the next submissions raise that exception."""

    submissions: list[Submission] = field(default_factory=list)
    fail_with: BaseException | None = None

    async def submit(self, submission: Submission) -> SubmitResult:
        if self.fail_with is not None:
            raise self.fail_with
        self.submissions.append(submission)
        return SubmitResult(env_id=str(148316944 + len(self.submissions)), recipients=len(submission.recipients))


@dataclass
class FakeClock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="session")
def smtpd_cert(tmp_path_factory):
    """A self-signed certificate for 'localhost' (also 127.0.0.1): (cert file, key file)."""
    d = tmp_path_factory.mktemp("smtpd-tls")
    cert_pem, key_pem = self_signed_certificate("localhost")
    (d / "cert.pem").write_bytes(cert_pem)
    (d / "key.pem").write_bytes(key_pem)
    return d / "cert.pem", d / "key.pem"


@pytest.fixture
def client_tls(smtpd_cert) -> ssl.SSLContext:
    """A client context that verifies the server against the self-signed certificate."""
    return ssl.create_default_context(cafile=str(smtpd_cert[0]))


def set_rows(store, table, where, **values) -> None:
    with store.transaction() as conn:
        conn.execute(sa.update(table).where(where).values(**values))


@pytest.fixture
def smtp_store(tmp_path, example_env, example_config):
    """The example account applied to a SQLite store, then made ready to send: domains verified
    (the DNS work sets this in production), senders created a day ago (past the R15 delay), and
    the IP allow-list switched off (its entries exclude 127.0.0.1; the config validator refuses
    loopback entries, so tests that need the allow-list switch it back on)."""
    store = open_store(f"sqlite:///{tmp_path / 'smtpd.db'}")
    apply(store, example_config)
    day_ago = datetime.now(timezone.utc) - timedelta(days=1)
    set_rows(store, t.domains, sa.true(), status="verified")
    set_rows(store, t.senders, sa.true(), created_at=day_ago)
    set_rows(store, t.accounts, sa.true(), allowlist_enabled=False)
    yield store
    store.dispose()


@pytest.fixture
def smtpd_loop():
    lt = LoopThread()
    yield lt
    lt.close()


@pytest.fixture
def submitter() -> RecordingSubmitter:
    return RecordingSubmitter()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(timezone.utc))


@pytest.fixture
def start_smtpd(smtpd_loop, smtp_store, smtpd_cert, submitter, clock):
    """start_smtpd(**settings, invalid_address=None) -> a running SmtpServer on 127.0.0.1."""
    started = []
    ctx = server_context(*smtpd_cert)
    base = SmtpSettings(region=HANGZHOU, host="127.0.0.1", port=0, hostname="localhost", tls_mode="starttls")

    def start(invalid_address=None, **settings) -> SmtpServer:
        server = SmtpServer(replace(base, **settings), catalog=Catalog(smtp_store), submitter=submitter,
                            invalid_address=invalid_address, clock=clock, tls_context=ctx)
        smtpd_loop.run(server.start())
        started.append(server)
        return server

    yield start
    for server in started:
        smtpd_loop.run(server.stop())


@pytest.fixture
def smtpd(start_smtpd) -> SmtpServer:
    """The default listener: cn-hangzhou, STARTTLS."""
    return start_smtpd()


def starttls_client(port: int, context: ssl.SSLContext) -> smtplib.SMTP:
    c = smtplib.SMTP("localhost", port, timeout=10)
    c.ehlo("client.test")
    c.starttls(context=context)
    c.ehlo("client.test")
    return c


def implicit_client(port: int, context: ssl.SSLContext) -> smtplib.SMTP_SSL:
    c = smtplib.SMTP_SSL("localhost", port, timeout=10, context=context)
    c.ehlo("client.test")
    return c


def line(code: int, text: bytes) -> str:
    """smtplib's (code, text) back as the reply line the server wrote (the last line of it)."""
    return f"{code} {text.decode().splitlines()[-1]}"


def message(sender: str = ORDERS, to: str = "bob@example.org", extra_headers: str = "", body: str = "Hello") -> bytes:
    return (f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: test\r\n{extra_headers}\r\n{body}\r\n").encode()
