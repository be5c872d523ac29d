"""Both sides of a plan in one shape: kind -> key -> {field: value}.

`desired()` derives it from the account spec, `current()` reads it from the store. Sensitive
fields are compared through values that reveal nothing when printed: SMTP passwords by their
keyed fingerprint, recoverable secrets by their plaintext (decrypted from the store) and
masked whenever they are shown.
"""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from mailcore.spec.model import AccountSpec
from mailcore.spec.recipients import FIELDS
from mailcore.store import tables as t
from mailcore.store.crypto import SecretBox


@dataclass(frozen=True)
class Kind:
    name: str
    table: sa.Table
    key_column: str
    sensitive: frozenset = frozenset()
    deletable: bool = True  # False: apply never deletes one that the config stops declaring


# Creation order: a kind comes after the kinds it refers to (a sender needs its domain, R4).
# Deletions run in the reverse order (senders go before the domain they belong to).
KINDS = [
    Kind("account", t.accounts, "name"),
    Kind("region", t.regions, "region"),
    Kind("dns_backend", t.dns_backends, "name"),
    Kind("domain", t.domains, "name"),
    Kind("sender", t.senders, "address", frozenset({"smtp_password"})),
    Kind("tag", t.tags, "name"),
    Kind("recipient_list", t.recipient_lists, "name"),
    Kind("template", t.templates, "name"),
    Kind("allowlist_entry", t.allowlist_entries, "entry"),
    Kind("notification_rule", t.notification_rules, "name"),
    Kind("notification", t.notifications, "scope"),
    Kind("api_key", t.api_keys, "access_key_id", frozenset({"secret"})),
    Kind("queue", t.notify_queues, "name", deletable=False),  # a queue holds messages: dropping it from config keeps it
    Kind("subscription", t.notify_subscriptions, "topic", frozenset({"signing_secret"})),
]
QUEUE_DEFAULTS = {"polling_wait_seconds": 0, "visibility_timeout_seconds": 30, "max_message_bytes": 65536,
                  "retention_seconds": 345600, "delay_seconds": 0, "base64_bodies": False}  # mailcore.notify.mq
KIND = {k.name: k for k in KINDS}


def rule_key(region: str, name: str) -> str:
    return f"{region}/{name}"


def desired(spec: AccountSpec, secrets: dict, box: SecretBox | None) -> dict[str, dict[str, dict]]:
    out: dict[str, dict[str, dict]] = {k.name: {} for k in KINDS}
    out["account"][spec.name] = {
        "status": spec.status, "timezone": spec.timezone, "quota_daily": spec.quota["daily"],
        "quota_monthly": spec.quota["monthly"], "quota_free_daily": spec.quota["free_daily"],
        "allowlist_enabled": spec.allowlist_enabled,
    }
    for r in spec.regions:
        out["region"][r.id] = {"mx_host": r.mx_host, "spf_include": r.spf_include, "tracking_host": r.tracking_host}
    for b in spec.dns_backends.values():
        out["dns_backend"][b.name] = {"kind": b.kind, "settings": b.settings}
    for d in spec.domains:
        out["domain"][d.name] = {"region": d.region, "zone": d.zone, "dns_backend": d.dns, "tracking": d.tracking,
                                 "ttl_seconds": d.ttl_seconds, "dmarc": d.dmarc, "purpose": d.purpose}
    for s in spec.senders:
        pw = secrets.get(("sender", s.address))
        out["sender"][s.address] = {"domain": s.domain, "type": s.type, "reply_to": s.reply_to,
                                    "smtp_password": _fingerprint(box, s.address, pw) if pw else None,
                                    "_password": pw}
    for tag in spec.tags:
        out["tag"][tag.name] = {"description": tag.description}
    for lst in spec.recipient_lists:
        rows = lst.data.rows if lst.data else []
        out["recipient_list"][lst.name] = {"alias_address": lst.alias_address, "description": lst.description,
                                           "rows": RowSet(len(rows), lst.data.digest if lst.data else "", rows)}
    for tpl in spec.templates:
        out["template"][tpl.name] = {"subject": tpl.subject, "nick_name": tpl.nick_name, "body": tpl.body or "",
                                     "content_digest": tpl.content_digest()}
    for entry, _ in spec.allowlist:
        out["allowlist_entry"][entry.strip()] = {}
    for r in spec.rules:
        endpoints = [{"kind": e.kind, "target": e.target, "signing_secret": secrets.get(("endpoint", r.region, r.name, i))}
                     for i, e in enumerate(r.endpoints)]
        out["notification_rule"][rule_key(r.region, r.name)] = {"events": sorted(r.events), "senders": r.senders,
                                                                "endpoints": endpoints}
    for n in spec.notifications:
        out["notification"][n.scope] = {"region": n.region}
    for k in spec.api_keys:
        out["api_key"][k.id] = {"secret": secrets.get(("api_key", k.id)), "description": k.description, "enabled": k.enabled}
    for q in spec.queues:
        out["queue"][q.name] = {**QUEUE_DEFAULTS, **q.settings}
    for tp in spec.topics:
        for e in tp.subscriptions:
            out["subscription"][subscription_key(tp.name, e.kind, e.target)] = {
                "signing_secret": secrets.get(("subscription", tp.name, e.kind, e.target))}
    return out


def subscription_key(topic: str, kind: str, target: str) -> str:
    return f"{topic} -> {kind}:{target}"


class RowSet:
    """A recipient list's rows, compared by digest; the rows themselves load only when needed."""

    def __init__(self, count: int, digest: str, rows=None, loader=None):
        self.count, self.digest, self._rows, self._loader = count, digest, rows, loader

    @property
    def rows(self) -> list[tuple]:
        if self._rows is None:
            self._rows = self._loader() if self._loader else []
        return self._rows

    def __eq__(self, other) -> bool:
        return isinstance(other, RowSet) and self.digest == other.digest

    def __repr__(self) -> str:
        return f"{self.count} rows"


def _fingerprint(box: SecretBox | None, address: str, password: str) -> str:
    if box is None:
        raise RuntimeError("a SecretBox is needed to fingerprint SMTP passwords")
    return box.fingerprint("smtp-password:" + address, password)


def account_id(conn, name: str) -> int | None:
    return conn.execute(sa.select(t.accounts.c.id).where(t.accounts.c.name == name)).scalar()


def current(conn, name: str, box: SecretBox | None) -> tuple[int | None, dict[str, dict[str, dict]]]:
    out: dict[str, dict[str, dict]] = {k.name: {} for k in KINDS}
    aid = account_id(conn, name)
    if aid is None:
        return None, out

    def rows(table):
        return conn.execute(sa.select(table).where(table.c.account_id == aid)).mappings().all()

    a = conn.execute(sa.select(t.accounts).where(t.accounts.c.id == aid)).mappings().one()
    out["account"][name] = {k: a[k] for k in ("status", "timezone", "quota_daily", "quota_monthly", "quota_free_daily",
                                              "allowlist_enabled")}
    for r in rows(t.regions):
        out["region"][r["region"]] = {"mx_host": r["mx_host"], "spf_include": r["spf_include"], "tracking_host": r["tracking_host"]}
    for r in rows(t.dns_backends):
        out["dns_backend"][r["name"]] = {"kind": r["kind"], "settings": r["settings"]}
    domain_names = {}
    for r in rows(t.domains):
        domain_names[r["id"]] = r["name"]
        out["domain"][r["name"]] = {"region": r["region"], "zone": r["zone"], "dns_backend": r["dns_backend"],
                                    "tracking": r["tracking"], "ttl_seconds": r["ttl_seconds"], "dmarc": r["dmarc"],
                                    "purpose": r["purpose"]}
    for r in rows(t.senders):
        out["sender"][r["address"]] = {"domain": domain_names.get(r["domain_id"]), "type": r["type"], "reply_to": r["reply_to"],
                                       "smtp_password": r["smtp_password_fingerprint"]}
    for r in rows(t.tags):
        out["tag"][r["name"]] = {"description": r["description"]}
    for r in rows(t.recipient_lists):
        list_id = r["id"]
        out["recipient_list"][r["name"]] = {"alias_address": r["alias_address"], "description": r["description"],
                                            "rows": RowSet(r["row_count"], r["digest"], loader=lambda i=list_id: stored_rows(conn, i))}
    for r in rows(t.templates):
        out["template"][r["name"]] = {"subject": r["subject"], "nick_name": r["nick_name"], "body": r["body"],
                                      "content_digest": r["content_digest"], "_status": r["status"]}
    for r in rows(t.allowlist_entries):
        out["allowlist_entry"][r["entry"]] = {}
    rule_rows = rows(t.notification_rules)
    endpoints: dict[int, list] = {r["id"]: [] for r in rule_rows}
    if rule_rows:
        q = sa.select(t.notification_endpoints).where(t.notification_endpoints.c.rule_id.in_(endpoints)).order_by(
            t.notification_endpoints.c.rule_id, t.notification_endpoints.c.position)
        for e in conn.execute(q).mappings():
            secret = box.decrypt(e["signing_secret_enc"]) if (e["signing_secret_enc"] and box) else None
            endpoints[e["rule_id"]].append({"kind": e["kind"], "target": e["target"], "signing_secret": secret})
    for r in rule_rows:
        out["notification_rule"][rule_key(r["region"], r["name"])] = {"events": sorted(r["events"]), "senders": r["senders"],
                                                                      "endpoints": endpoints[r["id"]]}
    for r in rows(t.notifications):
        out["notification"][r["scope"]] = {"region": r["region"]}
    for r in rows(t.notify_queues):
        out["queue"][r["name"]] = {k: r[k] for k in QUEUE_DEFAULTS}
    for r in rows(t.notify_subscriptions):
        secret = box.decrypt(r["signing_secret_enc"]) if (r["signing_secret_enc"] and box) else None
        out["subscription"][subscription_key(r["topic"], r["kind"], r["target"])] = {"signing_secret": secret}
    for r in rows(t.api_keys):
        out["api_key"][r["access_key_id"]] = {"secret": box.decrypt(r["secret_enc"]) if box else None,
                                              "description": r["description"], "enabled": r["enabled"]}
    return aid, out


def stored_rows(conn, list_id: int) -> list[tuple]:
    cols = [t.recipients.c.email, t.recipients.c.user_name, t.recipients.c.nick_name, t.recipients.c.gender,
            t.recipients.c.birthday, t.recipients.c.mobile]
    q = sa.select(*cols).where(t.recipients.c.list_id == list_id).order_by(t.recipients.c.position)
    return [tuple(r) for r in conn.execute(q)]


assert len(FIELDS) == 6  # recipients columns above follow mailcore.spec.recipients.FIELDS
