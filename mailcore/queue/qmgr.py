"""qmgr: claims due recipients under leases, delivers them per destination, records outcomes.

- Claims: `incoming` and due `deferred` recipients, and `active` ones whose lease expired (a
  crashed worker's work is retried). PostgreSQL uses FOR UPDATE SKIP LOCKED, so several qmgr
  processes share one store without claiming a recipient twice; SQLite serialises claims.
- A bounded active window, and at most `per_destination` concurrent connections per domain.
- Outcomes, classified by mailcore.bounce, are written in small batches: final state, event
  row and invalid-address entry in one transaction, guarded by the lease (a worker that lost
  its lease cannot overwrite a newer outcome).
- Retries back off exponentially from retry_min_seconds to retry_max_seconds and give up
  after give_up_seconds. The defaults are Postfix's (minimal_backoff_time 300s,
  maximal_backoff_time 4000s, maximal_queue_lifetime 5d): proven on the Internet, gentle on
  greylisting receivers (which usually accept a retry after 1 to 5 minutes).
- Time is injected (`clock`), so a whole retry schedule runs in a test in milliseconds.
- One recipient never halts the queue (issue 11): delivery classifies what it can (bad address,
  SMTPUTF8, a message that cannot be built); anything else that escapes delivery defers the
  recipients it had not reported yet (451 4.3.0 with the exception, logged once with the
  traceback); a group of outcomes the store refuses is recorded one by one, so one bad row
  cannot keep the others from their record; a pass that fails is logged at once with its
  traceback and the loop goes on after a backoff (error_backoff_seconds doubling up to
  error_backoff_max_seconds).
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from mailcore.queue import states as queue
from mailcore.delivery.bounce import Classification, classify_local_error
from mailcore.message.dkim import Signer
from mailcore.message.render import render
from mailcore.delivery.transport import Item, Outcome, Transport
from mailcore.store import Store
from mailcore.store import tables as t

log = logging.getLogger("mailcore.queue.qmgr")


@dataclass
class QmgrSettings:
    active_window: int = 2000
    # connections per destination domain. A crash can re-deliver at most the transaction each
    # connection had between the receiver's 250 and our record of it, so this bounds duplicates too;
    # 10 keeps a kill -9 well under 0.1% duplicates while delivering faster than Postfix (bench)
    per_destination: int = 10
    batch_per_connection: int = 50  # messages handed to one connection before it is closed
    lease_seconds: int = 600
    retry_min_seconds: int = 300
    retry_max_seconds: int = 4000
    give_up_seconds: int = 5 * 86400
    poll_seconds: float = 1.0
    error_backoff_seconds: float = 1.0  # after a failed pass; doubles per failure in a row
    error_backoff_max_seconds: float = 60.0


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def backoff(attempts: int, settings: QmgrSettings) -> timedelta:
    """Delay before attempt number attempts+1: min * 2**(attempts-1), capped at max."""
    return timedelta(seconds=min(settings.retry_max_seconds, settings.retry_min_seconds * 2 ** max(0, attempts - 1)))


def _dead_local_owner(owner: str, host: str) -> bool:
    parts = owner.split(":")
    if len(parts) < 3 or ":".join(parts[:-2]) != host or not parts[-2].isdigit():
        return False
    pid = int(parts[-2])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def event_body(fields: dict) -> str:
    """The guide's `key=value&...` body (R25), keys in the guide's sample order. '%' and '&'
    inside values are percent-encoded so the body always splits cleanly on '&'."""
    order = ("env_id", "msg_id", "account", "from", "rcpt", "recv_time", "end_time", "status", "event", "region",
             "err_code", "err_msg", "failed_type")
    return "&".join(f"{k}={str(fields[k]).replace('%', '%25').replace('&', '%26')}" for k in order)


_r = t.queue_recipients
# one statement for every outcome of a group (executemany); the lease was checked by the SELECT
_RECORD = (sa.update(_r).where(_r.c.id == sa.bindparam("rid"), _r.c.state == "active")
           .values(state=sa.bindparam("state"), attempts=sa.bindparam("attempts"), last_code=sa.bindparam("last_code"),
                   last_text=sa.bindparam("last_text"), next_attempt_at=sa.bindparam("next_attempt_at"),
                   status=sa.bindparam("status"), failed_type=sa.bindparam("failed_type"),
                   done_at=sa.bindparam("done_at"), lease_owner=None, lease_until=None))


class Qmgr:
    def __init__(self, store: Store, transport: Transport, signer: Signer, *, clock: Callable[[], datetime] = utcnow,
                 settings: QmgrSettings | None = None, owner: str | None = None):
        self.store, self.transport, self.signer = store, transport, signer
        self.clock = clock
        self.settings = settings or QmgrSettings()
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._tz: dict[int, object] = {}

    # --- claiming ------------------------------------------------------------------------

    def claim(self, limit: int | None = None) -> list[dict]:
        now = self.clock()
        limit = limit or self.settings.active_window
        r, m = t.queue_recipients, t.queue_messages
        due = sa.or_(sa.and_(r.c.state.in_(("incoming", "deferred")), r.c.next_attempt_at <= now),
                     sa.and_(r.c.state == "active", r.c.lease_until < now))
        q = sa.select(r.c.id, r.c.state).where(due).order_by(r.c.next_attempt_at, r.c.id).limit(limit)
        with self.store.transaction(immediate=True) as conn:
            if conn.dialect.name == "postgresql":
                q = q.with_for_update(skip_locked=True, of=r)
            picked = conn.execute(q).all()
            if not picked:
                return []
            for state in {s for _, s in picked}:
                queue.check(state, "active")
            ids = [i for i, _ in picked]
            for start in range(0, len(ids), 1000):
                conn.execute(sa.update(r).where(r.c.id.in_(ids[start:start + 1000])).values(
                    state="active", lease_owner=self.owner, lease_until=now + timedelta(seconds=self.settings.lease_seconds)))
            cols = [r.c.id, r.c.rcpt, r.c.rcpt_domain, r.c.attempts, r.c.variables, r.c.created_at,
                    m.c.id.label("message_row"), m.c.account_id, m.c.sender, m.c.envelope_from, m.c.region, m.c.message_id,
                    m.c.content, m.c.template, m.c.created_at.label("received_at")]
            rows = []
            for start in range(0, len(ids), 1000):
                rows += conn.execute(sa.select(*cols).join(m, r.c.message_id == m.c.id).where(
                    r.c.id.in_(ids[start:start + 1000]))).mappings().all()
        return [dict(row) for row in rows]

    # --- delivering ----------------------------------------------------------------------

    async def run_once(self) -> int:
        """Claim what is due, deliver it, record the outcomes. Returns how many were handled."""
        claimed = await asyncio.to_thread(self.claim)
        if not claimed:
            return 0
        by_domain: dict[str, list[dict]] = defaultdict(list)
        for row in claimed:
            by_domain[row["rcpt_domain"]].append(row)
        results: asyncio.Queue = asyncio.Queue()
        writer = asyncio.create_task(self._record_loop(results))
        try:
            await asyncio.gather(*(self._destination(domain, rows, results) for domain, rows in by_domain.items()))
        finally:  # what was reported is recorded even when a pass fails
            await results.put(None)
            await writer
        return len(claimed)

    async def _destination(self, domain: str, rows: list[dict], results: asyncio.Queue) -> None:
        n = self.settings.batch_per_connection
        chunks = [rows[i:i + n] for i in range(0, len(rows), n)]
        sem = asyncio.Semaphore(self.settings.per_destination)

        async def one(chunk):
            reported: set[int] = set()

            async def report(outcomes):
                # wait until they are recorded before the connection's next transaction: what a crash
                # can re-deliver is then at most one transaction per connection
                reported.update(o.recipient_id for o in outcomes)
                recorded = asyncio.get_running_loop().create_future()
                results.put_nowait((outcomes, recorded))
                await recorded

            async with sem:
                try:
                    now = self.clock()
                    items = [Item(r["id"], r["rcpt"], r["envelope_from"],
                                  r["content"] if r["content"] is not None else (lambda r=r: self._content(r, now)),
                                  group=r["message_row"] if r["content"] is not None else None) for r in chunk]
                    await self.transport.deliver(domain, items, report=report)
                except Exception as exc:  # contained: these recipients are deferred, the queue goes on
                    left = [r for r in chunk if r["id"] not in reported]
                    log.exception("delivery to %s failed for %d recipient(s) of queue id(s) %s; deferred", domain,
                                  len(left), ",".join(sorted({str(r["message_row"]) for r in left})))
                    result = classify_local_error(f"{type(exc).__name__}: {exc}")
                    if left:
                        await report([Outcome(r["id"], result) for r in left])

        await asyncio.gather(*(one(c) for c in chunks))

    def _content(self, row: dict, now: datetime) -> bytes:
        message = {"id": row["message_row"], "sender": row["sender"], "content": row["content"], "template": row["template"]}
        return render(self.signer, message, {"id": row["id"], "rcpt": row["rcpt"], "variables": row["variables"]}, now)

    async def _record_loop(self, results: asyncio.Queue) -> None:
        """Record whatever outcomes are waiting in one transaction (group commit), then release
        the connections that reported them."""
        done = False
        while not done:
            item = await results.get()
            if item is None:
                return
            items = [item]
            while not results.empty():
                nxt = results.get_nowait()
                if nxt is None:
                    done = True
                    break
                items.append(nxt)
            outcomes = [o for group, _ in items for o in group]
            try:
                await asyncio.to_thread(self.record, outcomes)
            except Exception:  # one bad row must not keep the others from their record: one at a time
                log.exception("recording %d outcomes failed; recording them one by one", len(outcomes))
                await asyncio.to_thread(self._record_each, outcomes)
            for _, recorded in items:
                if not recorded.done():
                    recorded.set_result(None)

    # --- recording -----------------------------------------------------------------------

    def record(self, outcomes: list[Outcome]) -> None:
        """Write a group of outcomes in one transaction: one compiled UPDATE run over all rows and
        one INSERT of their events. Rows whose lease this qmgr no longer holds are skipped (another
        worker owns them now), so an outcome is never written twice."""
        now = self.clock()
        r, m = t.queue_recipients, t.queue_messages
        with self.store.transaction(immediate=True) as conn:
            ids = [o.recipient_id for o in outcomes]
            q = (sa.select(r.c.id, r.c.rcpt, r.c.attempts, r.c.created_at, m.c.id.label("env_id"), m.c.account_id,
                           m.c.sender, m.c.region, m.c.message_id, m.c.created_at.label("received_at"), t.accounts.c.timezone)
                 .join(m, r.c.message_id == m.c.id).join(t.accounts, m.c.account_id == t.accounts.c.id)
                 .where(r.c.id.in_(ids), r.c.state == "active", r.c.lease_owner == self.owner))
            if conn.dialect.name == "postgresql":
                q = q.with_for_update(of=r)
            info = {row["id"]: row for row in conn.execute(q).mappings()}
            updates, events = [], []
            for o in outcomes:
                row = info.pop(o.recipient_id, None)
                if row is not None:
                    self._record_one(conn, o, row, now, updates, events)
            if updates:
                conn.execute(_RECORD, updates)
            if events:
                conn.execute(sa.insert(t.events), events)

    def _record_each(self, outcomes: list[Outcome]) -> None:
        """Record outcomes one transaction each; one the store still refuses is logged and left to
        its lease (the store is down: every recipient is retried when the lease expires)."""
        for o in outcomes:
            try:
                self.record([o])
            except Exception:
                log.exception("recipient id %s: recording its outcome failed; retried when its lease expires",
                              o.recipient_id)

    def _record_one(self, conn, o: Outcome, row, now: datetime, updates: list, events: list) -> None:
        c: Classification = o.result
        attempts = row["attempts"] + 1
        age = now - row["created_at"]
        if c.status == 0:
            new = "sent"
        elif not c.retry:
            new = "bounced"
        elif age + backoff(attempts, self.settings) > timedelta(seconds=self.settings.give_up_seconds):
            new = "expired"
        else:
            new = "deferred"
        queue.check("active", new)
        final = new != "deferred"
        text = _printable(c.err_msg)
        updates.append({"rid": o.recipient_id, "state": new, "attempts": attempts, "last_code": c.code,
                        "last_text": text[:2000],
                        "next_attempt_at": now if final else now + backoff(attempts, self.settings),
                        "status": c.status if final else None, "failed_type": c.failed_type if final else None,
                        "done_at": now if final else None})
        log.info("queue_id=%s rcpt=%s relay=%s delay=%.1f dsn=%s status=%s (%s)", row["env_id"], row["rcpt"], o.relay,
                 age.total_seconds(), c.enhanced or "", new, text)
        if not final:
            return
        if c.invalid_address:
            self._add_invalid(conn, row["account_id"], row["rcpt"].lower(), text, now)
        tz = self._zone(row["timezone"])
        fields = {"env_id": row["env_id"], "msg_id": (row["message_id"] or "").strip("<>"), "account": row["sender"],
                  "from": row["sender"], "rcpt": row["rcpt"],
                  "recv_time": f"{row['received_at'].astimezone(tz):%Y-%m-%d %H:%M:%S}",
                  "end_time": f"{now.astimezone(tz):%Y-%m-%d %H:%M:%S}", "status": c.status, "event": "deliver",
                  "region": row["region"], "err_code": c.code, "err_msg": text, "failed_type": c.failed_type}
        events.append({"account_id": row["account_id"], "recipient_id": o.recipient_id,
                       "event": "Deliver:SendSuccessfully" if c.status == 0 else "Deliver:SendFailed",
                       "sender": row["sender"], "region": row["region"], "body": event_body(fields), "created_at": now,
                       "routed_at": None})

    def _add_invalid(self, conn, account_id: int, address: str, reason: str, now: datetime) -> None:
        exists = conn.execute(sa.select(t.invalid_addresses.c.id).where(
            t.invalid_addresses.c.account_id == account_id, t.invalid_addresses.c.address == address)).first()
        if exists is None:
            conn.execute(sa.insert(t.invalid_addresses).values(account_id=account_id, address=address, reason=reason,
                                                               added_at=now))

    def _zone(self, name: str):
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return timezone.utc

    def recover(self) -> int:
        """Expire the leases of qmgr processes on this host that are gone (a kill -9, a crash), so
        their recipients are retried now rather than when the lease runs out. Leases held on other
        hosts, or by live processes, are left to expire on their own."""
        r = t.queue_recipients
        host = socket.gethostname()
        with self.store.transaction(immediate=True) as conn:
            owners = conn.execute(sa.select(r.c.lease_owner).where(r.c.state == "active").distinct()).scalars().all()
            dead = [o for o in owners if o and _dead_local_owner(o, host)]
            if not dead:
                return 0
            return conn.execute(sa.update(r).where(r.c.state == "active", r.c.lease_owner.in_(dead))
                                .values(lease_until=self.clock() - timedelta(seconds=1))).rowcount

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set. A pass that fails is logged at once with its traceback and the next
        one starts after a backoff (doubling, capped): the loop itself never ends on an error."""
        try:
            recovered = await asyncio.to_thread(self.recover)
        except Exception:
            log.exception("recovering leases of stopped qmgr processes failed; they expire on their own")
            recovered = 0
        if recovered:
            log.info("recovered %d recipients leased by stopped qmgr processes on this host", recovered)
        failures = 0
        while not stop.is_set():
            try:
                handled = await self.run_once()
                failures = 0
            except Exception:
                s = self.settings
                delay = min(s.error_backoff_max_seconds, s.error_backoff_seconds * 2 ** failures)
                failures += 1
                log.exception("qmgr pass failed (%d in a row); next pass in %.3gs", failures, delay)
                await self.pause(delay, stop)
                continue
            if not handled and not stop.is_set():
                await self.pause(self.settings.poll_seconds, stop)

    async def pause(self, seconds: float, stop: asyncio.Event) -> None:
        """Wait `seconds`, or less when `stop` is set meanwhile."""
        try:
            await asyncio.wait_for(stop.wait(), seconds)
        except asyncio.TimeoutError:
            pass


def _printable(text: str) -> str:
    """A reply text as the store and the event body keep it: one line, no NUL (PostgreSQL refuses it)."""
    return "".join(ch if ch.isprintable() else " " for ch in text)
