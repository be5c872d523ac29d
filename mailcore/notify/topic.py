"""The topic endpoint: one event fanned out to every subscription of the topic.

A subscription is an HTTP endpoint (URL, optional signing secret) or a queue of the same
account. Fan-out happens once per topic delivery, over the subscriptions that exist at that
moment (as a message-service topic does: a later subscriber does not get earlier messages); a
topic without subscriptions drops the event, and the delivery says so.

Each subscriber gets its own child delivery (`parent_id` = the topic delivery), so an HTTP
subscriber that is down is retried on its own without holding back the others.

Until the config schema has a place for subscriptions, they are managed here:
`subscribe(store, account, topic, HttpEndpoint(url, signing_secret))` or `QueueEndpoint(name)`.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa

from mailcore.store import Store
from mailcore.store import tables as t
from mailcore.store.crypto import SecretBox


@dataclass(frozen=True)
class HttpEndpoint:
    url: str
    signing_secret: str | None = None

    kind = "http"

    @property
    def target(self) -> str:
        return self.url


@dataclass(frozen=True)
class QueueEndpoint:
    name: str

    kind = "queue"

    @property
    def target(self) -> str:
        return self.name


class TopicError(Exception):
    """A refused subscription change."""


def _account_id(conn, account: str) -> int:
    aid = conn.execute(sa.select(t.accounts.c.id).where(t.accounts.c.name == account)).scalar()
    if aid is None:
        raise TopicError(f"no account '{account}' in the store; apply its config first")
    return aid


def subscribe(store: Store, account: str, topic: str, endpoint: HttpEndpoint | QueueEndpoint, *,
              box: SecretBox | None = None, now: datetime | None = None) -> None:
    """Subscribe `endpoint` to `topic` (idempotent; a new signing secret replaces the old one).
    Signing secrets are stored encrypted under the master key (`MAILCORE_MASTER_KEY`)."""
    if not isinstance(endpoint, (HttpEndpoint, QueueEndpoint)):
        raise TopicError(f"a subscription is an HttpEndpoint or a QueueEndpoint, not {type(endpoint).__name__}")
    if isinstance(endpoint, HttpEndpoint) and not endpoint.url.startswith(("http://", "https://")):
        raise TopicError(f"subscription URL must start with http:// or https://, got '{endpoint.url}'")
    secret = getattr(endpoint, "signing_secret", None)
    enc = (box or SecretBox.from_env()).encrypt(secret) if secret else None
    s = t.notify_subscriptions
    with store.transaction(immediate=True) as conn:
        aid = _account_id(conn, account)
        key = sa.and_(s.c.account_id == aid, s.c.topic == topic, s.c.kind == endpoint.kind, s.c.target == endpoint.target)
        if conn.execute(sa.select(s.c.id).where(key)).first():
            conn.execute(sa.update(s).where(key).values(signing_secret_enc=enc))
        else:
            conn.execute(sa.insert(s).values(account_id=aid, topic=topic, kind=endpoint.kind, target=endpoint.target,
                                             signing_secret_enc=enc, created_at=now or datetime.now(timezone.utc)))


def unsubscribe(store: Store, account: str, topic: str, endpoint: HttpEndpoint | QueueEndpoint) -> bool:
    s = t.notify_subscriptions
    with store.transaction(immediate=True) as conn:
        aid = _account_id(conn, account)
        return conn.execute(sa.delete(s).where(s.c.account_id == aid, s.c.topic == topic, s.c.kind == endpoint.kind,
                                               s.c.target == endpoint.target)).rowcount > 0


def subscriptions(conn, account_id: int, topic: str) -> list[dict]:
    s = t.notify_subscriptions
    return [dict(r) for r in conn.execute(sa.select(s.c.kind, s.c.target, s.c.signing_secret_enc).where(
        s.c.account_id == account_id, s.c.topic == topic).order_by(s.c.id)).mappings()]


def fan_out(conn, delivery: dict, account_id: int, now: datetime) -> int:
    """Create one pending child delivery per subscription of the topic `delivery["target"]`.
    Runs in the caller's transaction, which also marks the topic delivery done. Returns how many."""
    subs = subscriptions(conn, account_id, delivery["target"])
    for sub in subs:
        conn.execute(sa.insert(t.notify_deliveries).values(
            event_id=delivery["event_id"], parent_id=delivery["id"], rule=delivery.get("rule"), kind=sub["kind"],
            target=sub["target"], signing_secret_enc=sub["signing_secret_enc"], state="pending", attempts=0,
            next_attempt_at=now, created_at=now))
    return len(subs)
