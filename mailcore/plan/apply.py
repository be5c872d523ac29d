"""Apply a plan to the store: one transaction, under the apply lock, in dependency order."""
from __future__ import annotations

import os
import socket
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from mailcore.spec.limits import limit
from mailcore.store import tables as t
from mailcore.store.crypto import SecretBox, hash_password

from .diff import CREATE, DELETE, UPDATE, Change, Plan
from .state import KIND, rule_key

LOCK_WAIT_SECONDS = 30


class ApplyRefused(Exception):
    """The service would refuse this change; the message is one line saying what and what to do."""


class LockBusy(Exception):
    """Another apply holds the lock."""


def month_start(now: datetime, tz_name: str) -> datetime:
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        tz = timezone.utc
    local = now.astimezone(tz)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(start: datetime) -> datetime:
    return start.replace(year=start.year + (start.month == 12), month=start.month % 12 + 1)


def check_refusals(conn, plan: Plan, account_id: int | None, tz_name: str, now: datetime) -> None:
    """Add a line to plan.refusals for every change the service would refuse."""
    deleted_senders = [c.key for c in plan.of(DELETE, "sender")]
    if deleted_senders and account_id is not None:
        start = month_start(now, tz_name)
        earlier = conn.execute(sa.select(t.sender_deletions.c.address).where(
            t.sender_deletions.c.account_id == account_id, t.sender_deletions.c.deleted_at >= start.astimezone(timezone.utc))
            .order_by(t.sender_deletions.c.deleted_at)).scalars().all()
        cap = limit("max-sender-deletions-per-month")
        if len(earlier) + len(deleted_senders) > cap:
            month = start.strftime("%Y-%m")
            already = f"{len(earlier)} already deleted in {month}" + (f" ({', '.join(earlier)})" if earlier else "")
            plan.refusals.append(
                f"refused: deleting {len(deleted_senders)} sender(s) ({', '.join(deleted_senders)}) with {already} exceeds "
                f"{cap} sender deletions per calendar month (R11); keep them in config until "
                f"{_next_month(start).strftime('%Y-%m-%d')}")
    deleted_domains = {c.key for c in plan.of(DELETE, "domain")}
    if deleted_domains and account_id is not None:
        q = sa.select(t.senders.c.address, t.domains.c.name).join(t.domains, t.senders.c.domain_id == t.domains.c.id).where(
            t.domains.c.name.in_(deleted_domains))
        remaining = [(a, d) for a, d in conn.execute(q) if a not in deleted_senders]
        for address, domain in remaining:
            plan.refusals.append(f"refused: domain {domain} still has sender {address} in the store; delete the sender in "
                                 "the same apply or first (R4)")


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def acquire_lock(conn, dialect: str, name: str) -> None:
    """Serialise applies. SQLite: the transaction began with BEGIN IMMEDIATE, which already holds
    the database's write lock. PostgreSQL: a row lock on apply_locks, waited for at most
    LOCK_WAIT_SECONDS. A no-change apply therefore writes nothing."""
    if dialect != "postgresql":
        return
    conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_WAIT_SECONDS}s'")
    try:
        row = conn.execute(sa.select(t.apply_locks.c.name).where(t.apply_locks.c.name == name).with_for_update()).first()
    except sa.exc.OperationalError:
        raise LockBusy(f"another apply has held the lock on account '{name}' for over {LOCK_WAIT_SECONDS}s; "
                       "wait for it to finish and run apply again") from None
    if row is None:
        raise RuntimeError("lock row missing")


def ensure_lock_row(store, name: str) -> None:
    if store.dialect != "postgresql":
        return
    from sqlalchemy.dialects.postgresql import insert
    with store.transaction(immediate=True) as conn:
        conn.execute(insert(t.apply_locks).values(name=name).on_conflict_do_nothing())


class Writer:
    """Carries out one plan's changes inside the caller's transaction."""

    def __init__(self, conn, plan: Plan, box: SecretBox | None, now: datetime):
        self.conn, self.plan, self.box, self.now = conn, plan, box, now
        self.account_id: int | None = None

    def _id(self, kind: str, key: str) -> int | None:
        k = KIND[kind]
        q = sa.select(k.table.c.id).where(k.table.c[k.key_column] == key)
        if kind != "account":
            q = q.where(k.table.c.account_id == self.account_id)
        return self.conn.execute(q).scalar()

    def run(self, account_id: int | None) -> int:
        self.account_id = account_id
        for change in self.plan.changes:
            getattr(self, f"_{change.kind}")(change)
        return self.account_id

    # simple kinds: columns named like the fields
    def _simple(self, change: Change, extra: dict | None = None, key_value=None):
        kind = KIND[change.kind]
        table = kind.table
        if change.action == DELETE:
            self.conn.execute(sa.delete(table).where(table.c.account_id == self.account_id,
                                                     table.c[kind.key_column] == (key_value or change.key)))
            return None
        values = {k: v for k, v in change.desired.items() if not k.startswith("_") and k in table.c}
        values.update(extra or {})
        if change.action == CREATE:
            values[kind.key_column] = key_value or change.key
            values["account_id"] = self.account_id
            for col in ("created_at", "updated_at"):
                if col in table.c:
                    values[col] = self.now
            return self.conn.execute(sa.insert(table).values(**values).returning(table.c.id)).scalar()
        if "updated_at" in table.c:
            values["updated_at"] = self.now
        row_id = self._id(change.kind, key_value or change.key)
        self.conn.execute(sa.update(table).where(table.c.id == row_id).values(**values))
        return row_id

    def _account(self, change: Change):
        values = {k: v for k, v in change.desired.items()}
        if change.action == CREATE:
            self.account_id = self.conn.execute(sa.insert(t.accounts).values(
                name=change.key, created_at=self.now, updated_at=self.now, **values).returning(t.accounts.c.id)).scalar()
        elif change.action == UPDATE:
            self.conn.execute(sa.update(t.accounts).where(t.accounts.c.id == self.account_id).values(updated_at=self.now, **values))
        else:  # pragma: no cover - an account is never absent from its own config
            raise ApplyRefused("refused: deleting an account is not done by apply")

    _region = _dns_backend = _tag = _allowlist_entry = _notification = _simple

    def _domain(self, change: Change):
        self._simple(change)

    def _sender(self, change: Change):
        if change.action == DELETE:
            self.conn.execute(sa.insert(t.sender_deletions).values(account_id=self.account_id, address=change.key,
                                                                    deleted_at=self.now))
            self._simple(change)
            return
        d = change.desired
        extra = {"domain_id": self._id("domain", d["domain"])}
        if any(f.field == "smtp_password" for f in change.fields):
            pw = d.get("_password")
            extra["smtp_password_hash"] = hash_password(pw) if pw else None
            extra["smtp_password_fingerprint"] = d["smtp_password"]
        self._simple(change, extra)

    def _recipient_list(self, change: Change):
        if change.action == DELETE:
            self._simple(change)
            return
        rows = change.desired["rows"]
        list_id = self._simple(change, {"row_count": rows.count, "digest": rows.digest})
        if change.action == UPDATE and not any(f.field == "rows" for f in change.fields):
            return
        self.conn.execute(sa.delete(t.recipients).where(t.recipients.c.list_id == list_id))
        cols = ("email", "user_name", "nick_name", "gender", "birthday", "mobile")
        batch = [dict(zip(cols, r), list_id=list_id, position=i) for i, r in enumerate(rows.rows)]
        for start in range(0, len(batch), 5000):
            self.conn.execute(sa.insert(t.recipients), batch[start:start + 5000])

    def _template(self, change: Change):
        if change.action == DELETE:
            self._simple(change)
            return
        d = change.desired
        status = d.get("_status", "draft")
        extra = {"status": status}
        if status == "draft":
            extra["approved_digest"] = None
        row_id = self._simple(change, extra)
        if change.action == UPDATE and any(f.field == "status" for f in change.fields):
            self.conn.execute(sa.insert(t.template_reviews).values(template_id=row_id, action="reset", actor="apply",
                                                                    at=self.now, content_digest=d["content_digest"],
                                                                    comment="content changed in config"))

    def _notification_rule(self, change: Change):
        region, _, name = change.key.partition("/")
        table = t.notification_rules
        if change.action == DELETE:
            self.conn.execute(sa.delete(table).where(table.c.account_id == self.account_id, table.c.region == region,
                                                     table.c.name == name))
            return
        d = change.desired
        values = {"events": d["events"], "senders": d["senders"]}
        if change.action == CREATE:
            rule_id = self.conn.execute(sa.insert(table).values(account_id=self.account_id, region=region, name=name, **values)
                                        .returning(table.c.id)).scalar()
        else:
            rule_id = self.conn.execute(sa.select(table.c.id).where(table.c.account_id == self.account_id,
                                                                    table.c.region == region, table.c.name == name)).scalar()
            self.conn.execute(sa.update(table).where(table.c.id == rule_id).values(**values))
            self.conn.execute(sa.delete(t.notification_endpoints).where(t.notification_endpoints.c.rule_id == rule_id))
        for i, e in enumerate(d["endpoints"]):
            secret = e.get("signing_secret")
            self.conn.execute(sa.insert(t.notification_endpoints).values(
                rule_id=rule_id, position=i, kind=e["kind"], target=e["target"],
                signing_secret_enc=self._box().encrypt(secret) if secret else None))

    _queue = _simple

    def _subscription(self, change: Change):
        topic, _, rest = change.key.partition(" -> ")
        kind, _, target = rest.partition(":")
        s = t.notify_subscriptions
        where = (s.c.account_id == self.account_id, s.c.topic == topic, s.c.kind == kind, s.c.target == target)
        if change.action == DELETE:
            self.conn.execute(sa.delete(s).where(*where))
            return
        secret = change.desired.get("signing_secret")
        enc = self._box().encrypt(secret) if secret else None
        if change.action == CREATE:
            self.conn.execute(sa.insert(s).values(account_id=self.account_id, topic=topic, kind=kind, target=target,
                                                  signing_secret_enc=enc, created_at=self.now))
        else:
            self.conn.execute(sa.update(s).where(*where).values(signing_secret_enc=enc))

    def _api_key(self, change: Change):
        if change.action == DELETE:
            self._simple(change)
            return
        d = change.desired
        extra = {"secret_enc": self._box().encrypt(d["secret"])} if any(f.field == "secret" for f in change.fields) else {}
        values = {"description": d["description"], "enabled": d["enabled"], **extra}
        if change.action == CREATE:
            self.conn.execute(sa.insert(t.api_keys).values(account_id=self.account_id, access_key_id=change.key, **values))
        else:
            self.conn.execute(sa.update(t.api_keys).where(t.api_keys.c.access_key_id == change.key).values(**values))

    def _box(self) -> SecretBox:
        if self.box is None:
            return SecretBox.from_env()
        return self.box


__all__ = ["ApplyRefused", "LockBusy", "Writer", "acquire_lock", "check_refusals", "ensure_lock_row", "month_start",
           "rule_key"]
