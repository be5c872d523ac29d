"""The notifier: routes new events and moves deliveries to their endpoints.

`run_once()` does one pass, in this order:
1. route unrouted events (mailcore.notify.router), batch by batch;
2. local deliveries (queue and topic kinds): enqueue into the account's queue, or fan out to the
   topic's subscriptions, each in one transaction with the delivery's final state, so a crash
   never enqueues twice (claims use FOR UPDATE SKIP LOCKED on PostgreSQL);
3. due HTTP deliveries: claimed under a lease (committed before any request is sent, so a slow
   receiver holds no transaction open), POSTed concurrently, and each attempt recorded with the
   delivery's new state, guarded by the lease;
4. queue messages past their retention are removed.

Time is injected (`clock`), so a whole retry schedule runs in a test in milliseconds.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

import httpx
import sqlalchemy as sa

from mailcore.store import Store
from mailcore.store import tables as t
from mailcore.store.crypto import MasterKeyError, SecretBox

from . import http, mq, router, topic
from .mq import utcnow

log = logging.getLogger("mailcore.notify")

# Delivery states: pending -> delivered | failed. Only this module (and topic.fan_out, which
# creates pending children) writes them.


@dataclass
class NotifierSettings:
    route_batch: int = 500
    local_batch: int = 500
    http_batch: int = 200
    poll_seconds: float = 1.0
    error_backoff_seconds: float = 1.0  # after a failed pass; doubles per failure in a row
    error_backoff_max_seconds: float = 60.0
    http: http.HttpSettings = field(default_factory=http.HttpSettings)


@dataclass
class PassResult:
    routed: int = 0
    deliveries_created: int = 0
    local: int = 0
    http_attempts: int = 0
    purged: int = 0

    @property
    def busy(self) -> bool:
        return bool(self.routed or self.local or self.http_attempts)


class Notifier:
    def __init__(self, store: Store, clock: Callable[[], datetime] = utcnow, http_client: httpx.AsyncClient | None = None,
                 *, settings: NotifierSettings | None = None, owner: str | None = None, box: SecretBox | None = None,
                 signals: mq.Signals = mq.SIGNALS, resolve: http.Resolver | None = None):
        self.store, self.clock = store, clock
        self.http_client = http_client
        self.settings = settings or NotifierSettings()
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._box = box
        self.signals = signals
        self.resolve = resolve  # host -> addresses; default: the system resolver (tests inject one)

    # --- one pass ------------------------------------------------------------------------

    async def run_once(self) -> PassResult:
        result = PassResult()
        while True:
            events, created = await asyncio.to_thread(router.route_pending, self.store, self.clock(), self.settings.route_batch)
            result.routed += events
            result.deliveries_created += created
            if events < self.settings.route_batch:
                break
        result.local = await asyncio.to_thread(self.local_pass)
        result.http_attempts = await self.http_pass()
        result.local += await asyncio.to_thread(self.local_pass)  # queues subscribed to topics fanned out above
        result.purged = await asyncio.to_thread(self._purge)
        return result

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set (for `invoke serve`)."""
        own = self.http_client is None
        if own:
            self.http_client = httpx.AsyncClient(trust_env=False)
        try:
            failures = 0
            while not stop.is_set():
                wait = self.settings.poll_seconds
                try:
                    busy = (await self.run_once()).busy
                    failures = 0
                except Exception:  # keep serving; the next pass, after a capped backoff, retries what failed
                    s = self.settings
                    wait = min(s.error_backoff_max_seconds, s.error_backoff_seconds * 2 ** failures)
                    failures += 1
                    log.exception("notifier pass failed (%d in a row); next pass in %.3gs", failures, wait)
                    busy = False
                if not busy:
                    try:
                        await asyncio.wait_for(stop.wait(), wait)
                    except asyncio.TimeoutError:
                        pass
        finally:
            if own:
                await self.http_client.aclose()
                self.http_client = None

    # --- queue and topic deliveries ------------------------------------------------------

    def local_pass(self) -> int:
        """Deliver pending queue and topic deliveries until none is left. Returns how many."""
        done = 0
        while True:
            handled, touched = self._local_batch()
            for queue_id in touched:
                self.signals.notify(queue_id)
            done += handled
            if handled == 0:
                return done

    def _local_batch(self) -> tuple[int, set[int]]:
        d, ev = t.notify_deliveries, t.events
        now = self.clock()
        q = (sa.select(d.c.id, d.c.event_id, d.c.rule, d.c.kind, d.c.target).where(
            d.c.state == "pending", d.c.kind.in_(("queue", "topic")), d.c.next_attempt_at <= now)
             .order_by(d.c.id).limit(self.settings.local_batch))
        touched: set[int] = set()
        with self.store.transaction(immediate=True) as conn:
            if conn.dialect.name == "postgresql":
                q = q.with_for_update(skip_locked=True)
            rows = [dict(r) for r in conn.execute(q).mappings()]
            if not rows:
                return 0, touched
            events = {r["id"]: r for r in conn.execute(sa.select(ev.c.id, ev.c.account_id, ev.c.body).where(
                ev.c.id.in_({r["event_id"] for r in rows}))).mappings()}
            queues: dict[tuple[int, str], mq.Queue] = {}
            messages, delivered, failed = [], [], []
            for row in rows:
                event = events[row["event_id"]]
                error = None
                if row["kind"] == "queue":
                    key = (event["account_id"], row["target"])
                    queue = queues.get(key) or queues.setdefault(key, mq.ensure_queue(conn, *key, now))
                    try:
                        messages.append(mq.message_values(queue, event["body"], now, delivery_id=row["id"]))
                        touched.add(queue.id)
                    except mq.QueueError as exc:
                        failed.append((row, str(exc)))
                        continue
                elif topic.fan_out(conn, row, event["account_id"], now) == 0:
                    error = f"topic '{row['target']}' has no subscriptions; the event was dropped"
                delivered.append((row, error))
            if messages:
                conn.execute(sa.insert(t.notify_queue_messages), messages)
            plain = [row["id"] for row, error in delivered if error is None]
            if plain:
                conn.execute(sa.update(d).where(d.c.id.in_(plain)).values(
                    state="delivered", attempts=d.c.attempts + 1, last_error=None, done_at=now))
            for state, items in (("delivered", [x for x in delivered if x[1]]), ("failed", failed)):
                for row, error in items:
                    conn.execute(sa.update(d).where(d.c.id == row["id"]).values(
                        state=state, attempts=d.c.attempts + 1, last_error=error, done_at=now))
            for state, items in (("delivered", delivered), ("failed", failed)):
                for row, error in items:
                    log.info("notify delivery=%s event=%s kind=%s target=%s status=%s%s", row["id"], row["event_id"],
                             row["kind"], row["target"], state, f" ({error})" if error else "")
        return len(rows), touched

    # --- HTTP deliveries -----------------------------------------------------------------

    def claim_http(self) -> list[dict]:
        d, ev = t.notify_deliveries, t.events
        now = self.clock()
        lease_free = sa.or_(d.c.lease_until.is_(None), d.c.lease_until < now)
        q = (sa.select(d.c.id).where(d.c.state == "pending", d.c.kind == "http", d.c.next_attempt_at <= now, lease_free)
             .order_by(d.c.next_attempt_at, d.c.id).limit(self.settings.http_batch))
        with self.store.transaction(immediate=True) as conn:
            if conn.dialect.name == "postgresql":
                q = q.with_for_update(skip_locked=True)
            ids = list(conn.execute(q).scalars())
            if not ids:
                return []
            conn.execute(sa.update(d).where(d.c.id.in_(ids)).values(
                lease_owner=self.owner, lease_until=now + timedelta(seconds=self.settings.http.lease_seconds)))
            cols = [d.c.id, d.c.event_id, d.c.target, d.c.signing_secret_enc, d.c.attempts, ev.c.event, ev.c.body]
            return [dict(r) for r in conn.execute(sa.select(*cols).join(ev, ev.c.id == d.c.event_id).where(
                d.c.id.in_(ids)).order_by(d.c.id)).mappings()]

    async def http_pass(self) -> int:
        claimed = await asyncio.to_thread(self.claim_http)
        if not claimed:
            return 0
        own = self.http_client is None
        client = self.http_client or httpx.AsyncClient(trust_env=False)
        limit = asyncio.Semaphore(self.settings.http.concurrency)

        async def one(row):
            async with limit:
                return row, await self._attempt(client, row)

        try:
            results = await asyncio.gather(*(one(r) for r in claimed))
        finally:
            if own:
                await client.aclose()
        await asyncio.to_thread(self._record, results)
        return len(results)

    async def _attempt(self, client: httpx.AsyncClient, row: dict) -> tuple[datetime, http.AttemptResult]:
        now = self.clock()
        attempt = row["attempts"] + 1
        try:
            secret = self.box().decrypt(row["signing_secret_enc"]) if row["signing_secret_enc"] else None
        except MasterKeyError as exc:
            return now, http.AttemptResult(False, None, f"cannot sign: {exc}", 0)
        headers = http.request_headers(row["id"], attempt, row["event"], row["body"], secret, now)
        return now, await http.post(client, row["target"], row["body"], headers, self.settings.http.timeout_seconds,
                                    allow_private=self.settings.http.allow_private_targets, resolve=self.resolve)

    def _record(self, results) -> None:
        d, a = t.notify_deliveries, t.notify_attempts
        s = self.settings.http
        now = self.clock()
        with self.store.transaction(immediate=True) as conn:
            for row, (at, res) in results:
                attempt = row["attempts"] + 1
                if res.ok:
                    outcome, values = "delivered", {"state": "delivered", "done_at": now, "last_error": None}
                elif attempt >= s.max_attempts:
                    outcome, values = "failed", {"state": "failed", "done_at": now, "last_error": res.error}
                else:
                    outcome = "retry"
                    values = {"next_attempt_at": now + http.backoff(attempt, s), "last_error": res.error}
                updated = conn.execute(sa.update(d).where(
                    d.c.id == row["id"], d.c.state == "pending", d.c.lease_owner == self.owner).values(
                    attempts=attempt, lease_owner=None, lease_until=None, **values)).rowcount
                if not updated:
                    continue  # the lease expired and another notifier took over; its attempt counts
                conn.execute(sa.insert(a).values(delivery_id=row["id"], attempt=attempt, at=at, duration_ms=res.duration_ms,
                                                 status_code=res.status_code, error=res.error, outcome=outcome))
                log.info("notify delivery=%s event=%s kind=http url=%s attempt=%d status=%s%s", row["id"], row["event_id"],
                         row["target"], attempt, outcome, f" ({res.error})" if res.error else "")

    def box(self) -> SecretBox:
        if self._box is None:
            self._box = SecretBox.from_env()
        return self._box

    def _purge(self) -> int:
        with self.store.transaction(immediate=True) as conn:
            return mq.purge_expired(conn, self.clock())


def listing(conn, state: str | None = None, limit: int = 100) -> list[dict]:
    """Deliveries, newest first, with their event type and last error (for `invoke notify.list`)."""
    d, ev = t.notify_deliveries, t.events
    q = (sa.select(d.c.id, d.c.event_id, ev.c.event, ev.c.sender, d.c.rule, d.c.kind, d.c.target, d.c.state, d.c.attempts,
                   d.c.next_attempt_at, d.c.last_error, d.c.done_at)
         .join(ev, ev.c.id == d.c.event_id).order_by(d.c.id.desc()).limit(limit))
    if state:
        q = q.where(d.c.state == state)
    return [dict(r) for r in conn.execute(q).mappings()]


def retry(store: Store, ids: list[int] | None, now: datetime) -> int:
    """Make failed deliveries (all, or `ids`) pending again with a fresh attempt budget: for an
    operator who fixed an endpoint after the notifier gave up on it. Returns how many."""
    d = t.notify_deliveries
    cond = [d.c.state == "failed"]
    if ids is not None:
        cond.append(d.c.id.in_(ids))
    with store.transaction(immediate=True) as conn:
        return conn.execute(sa.update(d).where(*cond).values(
            state="pending", attempts=0, next_attempt_at=now, done_at=None, lease_owner=None, lease_until=None)).rowcount
