"""SingleSendMail throughput and latency through the official SDK's V3 signing (issue 4: target at
least 300 requests/s). The numbers cover the SDK client, HTTP, signature verification,
parameter checks and the allow-list read; the submitter is whatever the caller passes (by
default one that accepts without writing, so the API is measured alone)."""
from __future__ import annotations

import itertools
import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from mailcore.cleanup.submission import Submission, SubmitResult, Submitter
from mailcore.store import Store

from .app import ApiServer, create_app

TARGET_PER_SECOND = 300
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@contextmanager
def no_proxy():
    """The SDK sends loopback requests through HTTP(S)_PROXY too (it ignores NO_PROXY)."""
    saved = {k: os.environ.pop(k) for k in PROXY_VARS if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


class AcceptingSubmitter:
    """Accepts every submission without storing it: isolates the API's own cost."""

    def __init__(self):
        self._ids = itertools.count(1)
        self.count = 0

    async def submit(self, submission: Submission) -> SubmitResult:
        self.count += 1
        return SubmitResult(env_id=str(next(self._ids)), recipients=len(submission.recipients))


@dataclass(frozen=True)
class ApiBenchResult:
    requests: int
    threads: int
    seconds: float
    per_second: float
    p50_ms: float
    p99_ms: float
    errors: int

    def line(self) -> str:
        verdict = "ok" if self.per_second >= TARGET_PER_SECOND and not self.errors else "BELOW TARGET"
        return (f"api SingleSendMail: {self.per_second:.0f} req/s (target >= {TARGET_PER_SECOND}) {verdict}; "
                f"p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms; {self.requests} requests, {self.threads} "
                f"threads, {self.errors} errors")


def bench_single_send(store: Store, access_key_id: str, secret: str, *, sender: str = "orders@mail.example.com",
                      requests: int = 2000, threads: int = 8, submitter: Submitter | None = None,
                      client_ip: str | None = None) -> ApiBenchResult:
    """Serve the API on a loopback port and send `requests` SingleSendMail calls from `threads`
    SDK clients (one per thread, as an application would keep one). With `client_ip`, the server
    trusts loopback as a proxy and each request names that client (for an account whose IP
    allow-list is on)."""
    from alibabacloud_dm20151123 import models as dm
    from alibabacloud_dm20151123.client import Client
    from alibabacloud_tea_openapi.utils_models import Config, GlobalParameters

    submitter = submitter or AcceptingSubmitter()
    app = create_app(store, submitter, trusted_proxies=["127.0.0.1"] if client_ip else ())
    local = threading.local()
    errors = 0
    lock = threading.Lock()

    def client(endpoint: str) -> Client:
        if not hasattr(local, "client"):
            config = Config(access_key_id=access_key_id, access_key_secret=secret, endpoint=endpoint, protocol="http")
            if client_ip:
                config.global_parameters = GlobalParameters(headers={"X-Forwarded-For": client_ip})
            local.client = Client(config)
        return local.client

    def one(endpoint: str, i: int) -> float:
        nonlocal errors
        req = dm.SingleSendMailRequest(account_name=sender, address_type=1, reply_to_address=False,
                                       subject=f"Order {i}", text_body="Thanks for your order.",
                                       to_address=f"buyer{i}@example.org", tag_name="order_confirmation")
        start = time.perf_counter()
        try:
            client(endpoint).single_send_mail(req)
        except Exception:
            with lock:
                errors += 1
        return time.perf_counter() - start

    with no_proxy(), ApiServer(app) as server:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda i: one(server.endpoint, i), range(threads * 4)))  # warm up: connections, caches
            errors = 0
            start = time.perf_counter()
            latencies = list(pool.map(lambda i: one(server.endpoint, i), range(requests)))
            seconds = time.perf_counter() - start
    latencies.sort()
    return ApiBenchResult(requests=requests, threads=threads, seconds=seconds, per_second=requests / seconds,
                          p50_ms=statistics.median(latencies) * 1000,
                          p99_ms=latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, errors=errors)
