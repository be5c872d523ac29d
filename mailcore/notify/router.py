"""Routing: which endpoints an event goes to (R22, R23), decided once per event.

For an event of sender S in account A:
1. the notification region is S's sender-level notification when there is one, else A's
   account-level one, else there is none and the event goes nowhere (R23);
2. the rules of that region whose `events` include the event's type and whose `senders` scope
   (absent: every sender) includes S (R22; the config refuses overlapping rules, so at most one
   rule matches, but nothing here depends on that);
3. one `notify_deliveries` row per endpoint of those rules, copying kind, target and the
   encrypted signing secret.

Routing claims unrouted events in batches and marks them `routed_at` in the same transaction as
their deliveries. PostgreSQL claims with FOR UPDATE SKIP LOCKED, so several notifiers share the
work and none routes an event twice; SQLite serialises with BEGIN IMMEDIATE.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from mailcore.store import Store
from mailcore.store import tables as t


@dataclass(frozen=True)
class Route:
    rule: str
    kind: str  # http | queue | topic
    target: str
    signing_secret_enc: str | None


class AccountRoutes:
    """One account's notification settings, loaded once per batch."""

    def __init__(self, conn, account_id: int):
        n = t.notifications
        self.regions = {scope: region for scope, region in conn.execute(
            sa.select(n.c.scope, n.c.region).where(n.c.account_id == account_id))}
        r, e = t.notification_rules, t.notification_endpoints
        self.rules: dict[str, list[tuple[dict, list[Route]]]] = {}
        rules = conn.execute(sa.select(r).where(r.c.account_id == account_id).order_by(r.c.region, r.c.name)).mappings().all()
        endpoints: dict[int, list[Route]] = {rule["id"]: [] for rule in rules}
        if rules:
            for row in conn.execute(sa.select(e).where(e.c.rule_id.in_(endpoints)).order_by(e.c.rule_id, e.c.position)).mappings():
                name = next(rule["name"] for rule in rules if rule["id"] == row["rule_id"])
                endpoints[row["rule_id"]].append(Route(name, row["kind"], row["target"], row["signing_secret_enc"]))
        for rule in rules:
            self.rules.setdefault(rule["region"], []).append((dict(rule), endpoints[rule["id"]]))

    def region_for(self, sender: str) -> str | None:
        """R23: the sender-level notification wins for its sender; the account-level one serves the rest."""
        return self.regions.get(sender.lower()) or self.regions.get("account")

    def routes(self, sender: str, event: str) -> list[Route]:
        region = self.region_for(sender)
        if region is None:
            return []
        out: list[Route] = []
        seen = set()
        for rule, endpoints in self.rules.get(region, []):
            if event not in (rule["events"] or []):
                continue
            scope = rule["senders"]
            if scope and sender.lower() not in {s.lower() for s in scope}:
                continue
            for route in endpoints:
                if (route.kind, route.target) not in seen:
                    seen.add((route.kind, route.target))
                    out.append(route)
        return out


def routes_for(conn, account_id: int, sender: str, event: str) -> list[Route]:
    return AccountRoutes(conn, account_id).routes(sender, event)


def route_pending(store: Store, now: datetime, limit: int = 500) -> tuple[int, int]:
    """Route up to `limit` unrouted events in one transaction. Returns (events, deliveries)."""
    ev = t.events
    q = sa.select(ev.c.id, ev.c.account_id, ev.c.sender, ev.c.event).where(ev.c.routed_at.is_(None)).order_by(ev.c.id).limit(limit)
    with store.transaction(immediate=True) as conn:
        if conn.dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        events = conn.execute(q).mappings().all()
        if not events:
            return 0, 0
        accounts: dict[int, AccountRoutes] = {}
        rows = []
        for e in events:
            routes = accounts.get(e["account_id"])
            if routes is None:
                routes = accounts[e["account_id"]] = AccountRoutes(conn, e["account_id"])
            for route in routes.routes(e["sender"], e["event"]):
                rows.append({"event_id": e["id"], "parent_id": None, "rule": route.rule, "kind": route.kind,
                             "target": route.target, "signing_secret_enc": route.signing_secret_enc, "state": "pending",
                             "attempts": 0, "next_attempt_at": now, "created_at": now})
        if rows:
            conn.execute(sa.insert(t.notify_deliveries), rows)
        ids = [e["id"] for e in events]
        conn.execute(sa.update(ev).where(ev.c.id.in_(ids), ev.c.routed_at.is_(None)).values(routed_at=now))
        return len(events), len(rows)
