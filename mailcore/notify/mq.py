"""The queue endpoint (R24): a durable pull queue the mail core serves from its own store.

Semantics follow the guide's message-service queues (MNS), which is what DirectMail users
already program against:

- A message is visible `delay_seconds` after it was sent. A receive hides it for the
  visibility timeout and hands out a receipt handle; deleting with that handle removes it.
  When the timeout passes without a delete the message reappears (at-least-once), and the
  old handle stops working (a receive while it was hidden would otherwise race a delete).
- Messages older than `retention_seconds` vanish, received or not.
- A receive may long-poll: it waits up to `wait` seconds and returns as soon as a message is
  there. Within one process a send wakes waiting receivers at once; across processes they
  notice within `poll_seconds`.
- Bodies larger than `max_message_bytes` are refused; a queue may hand bodies out base64-encoded
  (the size limit applies to what receivers get).

Per-queue settings and their defaults are the table `QUEUE_SETTINGS`. A queue named by a rule
or a topic subscription is created with the defaults on first use; `configure_queue` changes them.

HTTP API (Starlette, `create_queue_app`), JSON answers:

    GET    /queues/<name>                       attributes and message counts
    GET    /queues/<name>/messages?wait=&visibility=&max=    {"messages": [...]} (possibly empty)
    DELETE /queues/<name>/messages/<receipt>    204

Every request is signed with an AccessKey of the account that owns the queue, as MNS signs
(mailcore.notify.mqauth): the key decides the account, so another account's queue is 404.
`?account=NAME` may name the key's own account. `QueueClient` is the Python client for users' tests.
"""
from __future__ import annotations

import asyncio
import base64
import secrets
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

import httpx
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mailcore.store import Store
from mailcore.store import tables as t
from mailcore.store.crypto import SecretBox

from . import mqauth


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class QueueSetting:
    name: str
    default: int
    minimum: int
    maximum: int
    why: str


# The defaults and bounds are those of the message service's queues the guide sets up
# (消息接收长轮询等待时间, 取出消息隐藏时长, 消息最大长度, 消息存活时间, 消息延时).
QUEUE_SETTINGS: tuple[QueueSetting, ...] = (
    QueueSetting("polling_wait_seconds", 0, 0, 30,
                 "default wait of a receive that names none; 0 answers at once, 30 is the long-poll ceiling"),
    QueueSetting("visibility_timeout_seconds", 30, 1, 43200,
                 "the guide's screenshot: next receive 30 s after the first; at most 12 h"),
    QueueSetting("max_message_bytes", 65536, 1024, 65536,
                 "64 KB, the service's maximum; an event body is well under 2 KB"),
    QueueSetting("retention_seconds", 345600, 60, 604800,
                 "4 days, the value in the guide's queue list; at most 7 days"),
    QueueSetting("delay_seconds", 0, 0, 604800,
                 "events are visible at once unless a queue asks otherwise; at most 7 days"),
)
SETTING_NAMES = tuple(s.name for s in QUEUE_SETTINGS)
MAX_RECEIVE = 16  # messages per receive, as the service's batch receive


class QueueError(Exception):
    """A refused queue operation; `code` names it the way the HTTP API answers."""

    status = 400

    def __init__(self, code: str, message: str, status: int | None = None):
        super().__init__(message)
        self.code = code
        if status is not None:
            self.status = status


def check_settings(values: dict) -> dict:
    """Validate queue settings against QUEUE_SETTINGS; unknown names and values out of range are errors."""
    out = {}
    known = {s.name: s for s in QUEUE_SETTINGS}
    for key, value in values.items():
        if key == "base64_bodies":
            if not isinstance(value, bool):
                raise QueueError("InvalidArgument", f"base64_bodies must be true or false, got {value!r}")
            out[key] = value
            continue
        s = known.get(key)
        if s is None:
            raise QueueError("InvalidArgument", f"unknown queue setting '{key}'; known: {', '.join(SETTING_NAMES)}, base64_bodies")
        if isinstance(value, bool) or not isinstance(value, int) or not s.minimum <= value <= s.maximum:
            raise QueueError("InvalidArgument", f"{key} must be an integer from {s.minimum} to {s.maximum}, got {value!r}")
        out[key] = value
    return out


def defaults() -> dict:
    return {**{s.name: s.default for s in QUEUE_SETTINGS}, "base64_bodies": False}


@dataclass
class Queue:
    id: int
    account_id: int
    name: str
    polling_wait_seconds: int
    visibility_timeout_seconds: int
    max_message_bytes: int
    retention_seconds: int
    delay_seconds: int
    base64_bodies: bool


@dataclass
class QueueMessage:
    """A received message. `receipt` deletes it while it is hidden."""

    message_id: int
    receipt: str
    body: str
    enqueued_at: datetime
    first_received_at: datetime
    receive_count: int
    next_visible_at: datetime

    def text(self, base64_bodies: bool = False) -> str:
        return base64.b64decode(self.body).decode() if base64_bodies else self.body

    def to_json(self) -> dict:
        return {"message_id": self.message_id, "receipt": self.receipt, "body": self.body,
                "enqueued_at": self.enqueued_at.isoformat(), "first_received_at": self.first_received_at.isoformat(),
                "receive_count": self.receive_count, "next_visible_at": self.next_visible_at.isoformat()}

    @classmethod
    def from_json(cls, d: dict) -> "QueueMessage":
        return cls(d["message_id"], d["receipt"], d["body"], datetime.fromisoformat(d["enqueued_at"]),
                   datetime.fromisoformat(d["first_received_at"]), d["receive_count"],
                   datetime.fromisoformat(d["next_visible_at"]))


def _queue(row) -> Queue:
    return Queue(**{k: row[k] for k in ("id", "account_id", "name", *SETTING_NAMES, "base64_bodies")})


# --- store operations (take a connection inside the caller's transaction) --------------------

def get_queue(conn, account_id: int, name: str) -> Queue | None:
    row = conn.execute(sa.select(t.notify_queues).where(t.notify_queues.c.account_id == account_id,
                                                        t.notify_queues.c.name == name)).mappings().first()
    return _queue(row) if row else None


def ensure_queue(conn, account_id: int, name: str, now: datetime) -> Queue:
    """The queue, created with the defaults when it does not exist yet (race-free: two
    notifiers creating it at once both end up with the one row)."""
    found = get_queue(conn, account_id, name)
    if found:
        return found
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(insert(t.notify_queues).values(account_id=account_id, name=name, created_at=now, **defaults())
                 .on_conflict_do_nothing(index_elements=["account_id", "name"]))
    return get_queue(conn, account_id, name)


def configure_queue(store: Store, account: str, name: str, now: datetime | None = None, **settings) -> Queue:
    """Change a queue's settings (creating it when needed). Settings are QUEUE_SETTINGS names
    and `base64_bodies`; until the config schema has a `queues:` section this is the way."""
    values = check_settings(settings)
    with store.transaction(immediate=True) as conn:
        account_id = account_id_of(conn, account)
        q = ensure_queue(conn, account_id, name, now or utcnow())
        if values:
            conn.execute(sa.update(t.notify_queues).where(t.notify_queues.c.id == q.id).values(**values))
        return get_queue(conn, account_id, name)


def account_id_of(conn, account: str) -> int:
    aid = conn.execute(sa.select(t.accounts.c.id).where(t.accounts.c.name == account)).scalar()
    if aid is None:
        raise QueueError("AccountNotExist", f"no account '{account}' in the store", 404)
    return aid


def encode_body(queue: Queue, body: str) -> str:
    """The body as receivers get it; refuses bodies over the queue's max_message_bytes."""
    out = base64.b64encode(body.encode()).decode() if queue.base64_bodies else body
    size = len(out.encode())
    if size > queue.max_message_bytes:
        raise QueueError("MessageTooLarge", f"message of {size} bytes exceeds queue '{queue.name}' "
                         f"max_message_bytes {queue.max_message_bytes}")
    return out


def message_values(queue: Queue, body: str, now: datetime, delivery_id: int | None = None) -> dict:
    """The row for one message: visible after the queue's delay, gone after its retention."""
    return {"queue_id": queue.id, "delivery_id": delivery_id, "body": encode_body(queue, body), "enqueued_at": now,
            "visible_at": now + timedelta(seconds=queue.delay_seconds),
            "expires_at": now + timedelta(seconds=queue.retention_seconds)}


def send(conn, queue: Queue, body: str, now: datetime, delivery_id: int | None = None) -> int:
    """Put one message on the queue. Returns its id."""
    return conn.execute(sa.insert(t.notify_queue_messages).values(**message_values(queue, body, now, delivery_id))
                        .returning(t.notify_queue_messages.c.id)).scalar()


def receive(conn, queue: Queue, now: datetime, visibility: int | None = None, max_messages: int = 1) -> list[QueueMessage]:
    """Take up to max_messages visible messages (oldest first), hiding each for `visibility`
    seconds (default: the queue's) under a fresh receipt handle."""
    m = t.notify_queue_messages
    hide = timedelta(seconds=queue.visibility_timeout_seconds if visibility is None else visibility)
    q = (sa.select(m.c.id, m.c.body, m.c.enqueued_at, m.c.first_received_at, m.c.receive_count)
         .where(m.c.queue_id == queue.id, m.c.visible_at <= now, m.c.expires_at > now)
         .order_by(m.c.visible_at, m.c.id).limit(max_messages))
    if conn.dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    out = []
    for row in conn.execute(q).mappings().all():
        receipt = f"{row['id']}-{secrets.token_urlsafe(18)}"
        first = row["first_received_at"] or now
        conn.execute(sa.update(m).where(m.c.id == row["id"]).values(
            visible_at=now + hide, receipt=receipt, receive_count=row["receive_count"] + 1, first_received_at=first))
        out.append(QueueMessage(row["id"], receipt, row["body"], row["enqueued_at"], first,
                                row["receive_count"] + 1, now + hide))
    return out


def delete(conn, queue: Queue, receipt: str, now: datetime) -> None:
    """Delete the message received under `receipt`. The handle works while the message is
    hidden by that receive; afterwards receive it again."""
    m = t.notify_queue_messages
    row = conn.execute(sa.select(m.c.id, m.c.visible_at, m.c.expires_at).where(
        m.c.queue_id == queue.id, m.c.receipt == receipt)).mappings().first()
    if row is None:
        raise QueueError("ReceiptHandleError", f"no message in queue '{queue.name}' holds receipt handle '{receipt}' "
                         "(deleted, or received again since)", 404)
    if row["visible_at"] <= now or row["expires_at"] <= now:
        raise QueueError("ReceiptHandleError", f"receipt handle '{receipt}' expired with the visibility timeout; "
                         "receive the message again", 404)
    conn.execute(sa.delete(m).where(m.c.id == row["id"]))


def purge_expired(conn, now: datetime) -> int:
    """Messages past their queue's retention vanish."""
    m = t.notify_queue_messages
    return conn.execute(sa.delete(m).where(m.c.expires_at <= now)).rowcount


def counts(conn, queue: Queue, now: datetime) -> dict[str, int]:
    """active (receivable now), inactive (hidden by a receive), delayed (not yet visible after send)."""
    m = t.notify_queue_messages
    live = sa.and_(m.c.queue_id == queue.id, m.c.expires_at > now)
    active = sa.func.sum(sa.case((m.c.visible_at <= now, 1), else_=0))
    inactive = sa.func.sum(sa.case((sa.and_(m.c.visible_at > now, m.c.receipt.is_not(None)), 1), else_=0))
    delayed = sa.func.sum(sa.case((sa.and_(m.c.visible_at > now, m.c.receipt.is_(None)), 1), else_=0))
    row = conn.execute(sa.select(active, inactive, delayed).where(live)).one()
    return {"active": int(row[0] or 0), "inactive": int(row[1] or 0), "delayed": int(row[2] or 0)}


# --- waking long-polling receivers ----------------------------------------------------------

class Signals:
    """Wakes receivers waiting on a queue in this process as soon as a send commits.
    Receivers in other processes fall back to polling the store."""

    def __init__(self):
        self._lock = threading.Lock()
        self._waiters: dict[int, set] = defaultdict(set)

    def notify(self, queue_id: int) -> None:
        with self._lock:
            waiters = list(self._waiters.get(queue_id, ()))
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that receiver's loop has closed
                pass

    def register(self, queue_id: int) -> tuple:
        item = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters[queue_id].add(item)
        return item

    def unregister(self, queue_id: int, item: tuple) -> None:
        with self._lock:
            self._waiters[queue_id].discard(item)
            if not self._waiters[queue_id]:
                del self._waiters[queue_id]


SIGNALS = Signals()


class QueueService:
    """Receive (with long-poll) and delete over the store, for the HTTP API and in-process use."""

    def __init__(self, store: Store, clock: Callable[[], datetime] = utcnow, *, poll_seconds: float = 0.2,
                 signals: Signals = SIGNALS):
        self.store, self.clock, self.poll_seconds, self.signals = store, clock, poll_seconds, signals

    def resolve(self, conn, name: str, account: str | None) -> Queue:
        """The queue `name` (of `account` when given). A queue that a rule or a subscription names
        but that has seen no message yet is created with the defaults, so consumers can start first."""
        q = t.notify_queues
        query = sa.select(q).where(q.c.name == name)
        if account is not None:
            query = query.where(q.c.account_id == account_id_of(conn, account))
        rows = conn.execute(query).mappings().all()
        if len(rows) == 1:
            return _queue(rows[0])
        if len(rows) > 1:
            raise QueueError("InvalidArgument", f"several accounts have a queue '{name}'; pass account=NAME")
        owners = self._declared_owners(conn, name)
        if account is not None:
            aid = account_id_of(conn, account)
            owners = [o for o in owners if o == aid]
        if len(owners) == 1:
            return ensure_queue(conn, owners[0], name, self.clock())
        if len(owners) > 1:
            raise QueueError("InvalidArgument", f"several accounts have a queue '{name}'; pass account=NAME")
        raise QueueError("QueueNotExist", f"no queue '{name}': no notification rule or topic subscription names it", 404)

    @staticmethod
    def _declared_owners(conn, name: str) -> list[int]:
        r, e, s = t.notification_rules, t.notification_endpoints, t.notify_subscriptions
        by_rule = sa.select(r.c.account_id).join(e, e.c.rule_id == r.c.id).where(e.c.kind == "queue", e.c.target == name)
        by_sub = sa.select(s.c.account_id).where(s.c.kind == "queue", s.c.target == name)
        return sorted(set(conn.execute(by_rule).scalars()) | set(conn.execute(by_sub).scalars()))

    def attributes(self, name: str, account: str | None = None) -> dict:
        with self.store.transaction(immediate=True) as conn:  # resolve may create the queue
            queue = self.resolve(conn, name, account)
            return {"name": queue.name, **{k: getattr(queue, k) for k in (*SETTING_NAMES, "base64_bodies")},
                    **counts(conn, queue, self.clock())}

    def receive_now(self, name: str, account: str | None = None, visibility: int | None = None,
                    max_messages: int = 1) -> tuple[Queue, list[QueueMessage]]:
        with self.store.transaction(immediate=True) as conn:
            queue = self.resolve(conn, name, account)
            return queue, receive(conn, queue, self.clock(), visibility, max_messages)

    async def receive(self, name: str, account: str | None = None, wait: int | None = None,
                      visibility: int | None = None, max_messages: int = 1) -> list[QueueMessage]:
        """Long-poll: return as soon as a message is there, or empty after `wait` seconds
        (default: the queue's polling_wait_seconds). The wait is real time; visibility is the clock's."""
        _check_range("max", max_messages, 1, MAX_RECEIVE)
        if visibility is not None:
            _check_range("visibility", visibility, 1, 43200)
        if wait is not None:
            _check_range("wait", wait, 0, 30)
        queue, got = await run_in_threadpool(self.receive_now, name, account, visibility, max_messages)
        deadline = time.monotonic() + (queue.polling_wait_seconds if wait is None else wait)
        while not got:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            item = self.signals.register(queue.id)
            try:  # look again after registering, so a send in between is not missed
                queue, got = await run_in_threadpool(self.receive_now, name, account, visibility, max_messages)
                if not got:
                    try:
                        await asyncio.wait_for(item[1].wait(), min(self.poll_seconds, remaining))
                    except asyncio.TimeoutError:
                        pass
            finally:
                self.signals.unregister(queue.id, item)
        return got

    def delete(self, name: str, receipt: str, account: str | None = None) -> None:
        with self.store.transaction(immediate=True) as conn:
            delete(conn, self.resolve(conn, name, account), receipt, self.clock())


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise QueueError("InvalidArgument", f"{name} must be from {low} to {high}, got {value}")


# --- HTTP API ---------------------------------------------------------------------------------

def create_queue_app(store: Store, *, clock: Callable[[], datetime] = utcnow, box: SecretBox | None = None,
                     poll_seconds: float = 0.2, signals: Signals = SIGNALS) -> Starlette:
    """The queue API. Every request must be signed with an AccessKey of the queue's account
    (mqauth); `box` decrypts the stored AccessKey secrets (default: from MAILCORE_MASTER_KEY)."""
    service = QueueService(store, clock, poll_seconds=poll_seconds, signals=signals)

    def _int(request: Request, name: str) -> int | None:
        raw = request.query_params.get(name)
        if raw is None or raw == "":
            return None
        try:
            return int(raw)
        except ValueError:
            raise QueueError("InvalidArgument", f"{name} must be an integer, got {raw!r}") from None

    def guarded(handler):
        async def endpoint(request: Request):
            try:
                caller = await run_in_threadpool(
                    mqauth.authenticate, store, box, request.method, request.headers, mqauth.resource_of(request.scope),
                    clock(), request.query_params.get("account"))
            except mqauth.AuthError as exc:
                return JSONResponse({"code": exc.code, "message": str(exc)}, status_code=exc.status)
            request.state.account = caller.account
            try:
                return await handler(request)
            except QueueError as exc:
                return JSONResponse({"code": exc.code, "message": str(exc)}, status_code=exc.status)
        return endpoint

    async def attributes(request: Request):
        return JSONResponse(await run_in_threadpool(service.attributes, request.path_params["name"], request.state.account))

    async def messages(request: Request):
        got = await service.receive(request.path_params["name"], request.state.account,
                                    wait=_int(request, "wait"), visibility=_int(request, "visibility"),
                                    max_messages=_int(request, "max") or 1)
        return JSONResponse({"messages": [m.to_json() for m in got]})

    async def remove(request: Request):
        await run_in_threadpool(service.delete, request.path_params["name"], request.path_params["receipt"],
                                request.state.account)
        return Response(status_code=204)

    return Starlette(routes=[
        Route("/queues/{name}", guarded(attributes), methods=["GET"]),
        Route("/queues/{name}/messages", guarded(messages), methods=["GET"]),
        Route("/queues/{name}/messages/{receipt}", guarded(remove), methods=["DELETE"]),
    ])


async def serve_queue_api(store: Store, host: str = "127.0.0.1", port: int = 8081, **options) -> None:
    """Serve the queue API in the running event loop until cancelled (for `invoke serve`).
    `options` go to `create_queue_app` (clock, box, poll_seconds)."""
    import uvicorn

    config = uvicorn.Config(create_queue_app(store, **options), host=host, port=port, log_level="warning",
                            access_log=False, lifespan="off")
    await uvicorn.Server(config).serve()


class QueueClient:
    """Receive and delete over the HTTP API, for users' own tests and scripts. Requests are
    signed with an AccessKey of the account that owns the queues (mqauth).

    >>> client = QueueClient("http://127.0.0.1:8090", access_key_id="LTAI...", access_key_secret=secret)
    >>> for m in client.receive("dm-deliveries", wait=10):
    ...     handle(parse_event_body(m.body)); client.delete("dm-deliveries", m.receipt)
    """

    def __init__(self, base_url: str, *, access_key_id: str, access_key_secret: str, account: str | None = None,
                 timeout: float = 40.0, client: httpx.Client | None = None, clock: Callable[[], datetime] | None = None):
        self.account = account
        self._own = client is None
        self.http = client or httpx.Client(base_url=base_url, timeout=timeout, trust_env=False)
        self.http.auth = mqauth.MnsAuth(access_key_id, access_key_secret, clock)

    def _params(self, **values) -> dict:
        values["account"] = self.account
        return {k: v for k, v in values.items() if v is not None}

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.status_code >= 400:
            try:
                d = response.json()
                raise QueueError(d.get("code", "Error"), d.get("message", response.text), response.status_code)
            except ValueError:
                raise QueueError("Error", f"HTTP {response.status_code}: {response.text}", response.status_code) from None
        return response

    def receive(self, queue: str, *, wait: int | None = None, visibility: int | None = None,
                max_messages: int = 1) -> list[QueueMessage]:
        r = self._check(self.http.get(f"/queues/{queue}/messages",
                                      params=self._params(wait=wait, visibility=visibility, max=max_messages)))
        return [QueueMessage.from_json(d) for d in r.json()["messages"]]

    def delete(self, queue: str, receipt: str) -> None:
        self._check(self.http.delete(f"/queues/{queue}/messages/{receipt}", params=self._params()))

    def attributes(self, queue: str) -> dict:
        return self._check(self.http.get(f"/queues/{queue}", params=self._params())).json()

    def close(self) -> None:
        if self._own:
            self.http.close()

    def __enter__(self) -> "QueueClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
