"""What the store keeps about a domain's DNS: its generated keys (ownership token, DKIM key pair)
and the result of the last verification (R9, R10). Plain values in and out: the DNS work itself
(Pulumi, queries) lives in provision/, which never touches the store."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from mailcore.store import Store
from mailcore.store import tables as t
from mailcore.store.crypto import SecretBox

DNS_EVENT = "Domain:DnsChanged"


@dataclass
class StoredKeys:
    token: str
    selector: str
    dkim_public: str


def load_keys(store: Store) -> dict[str, StoredKeys]:
    k = t.domain_keys.c
    with store.engine.connect() as conn:
        return {d: StoredKeys(tok, sel, pub) for d, tok, sel, pub in
                conn.execute(sa.select(k.domain, k.ownership_token, k.dkim_selector, k.dkim_public))}


def save_keys(conn, box: SecretBox, new: dict[str, tuple[str, str, str, str]], now: datetime) -> int:
    """Insert keys generated in this run ({domain: (token, selector, private_pem, public)}), the
    private key encrypted under the master key."""
    k = t.domain_keys
    for domain, (token, selector, pem, public) in new.items():
        conn.execute(sa.insert(k).values(domain=domain, ownership_token=token, dkim_selector=selector,
                                         dkim_private_enc=box.encrypt(pem), dkim_public=public, created_at=now))
    return len(new)


def persist_keys(store: Store, box: SecretBox, new: dict[str, tuple[str, str, str, str]], now: datetime) -> None:
    """Save a new domain's keys on their own, before its records are published: an apply that
    stops after publishing (a DNS failure, a refused store apply, a crash) finds the same token and
    DKIM key on the next run and adopts its own records instead of refusing them."""
    if new:
        with store.transaction(immediate=True) as conn:
            save_keys(conn, box, new, now)


def account_domains(store: Store, account: str) -> set[str]:
    d, a = t.domains.c, t.accounts.c
    with store.engine.connect() as conn:
        return set(conn.scalars(sa.select(d.name).join(t.accounts, a.id == d.account_id).where(a.name == account)))


def drop_keys(conn, domains: set[str]) -> int:
    """Drop the keys of ``domains`` (removed from the account) once the store no longer holds them.
    Runs inside apply's transaction, after its writes. Keys of domains never applied to the store
    stay: they are a new domain's, saved before publishing (``persist_keys``)."""
    if not domains:
        return 0
    k = t.domain_keys
    return conn.execute(sa.delete(k).where(k.c.domain.in_(sorted(domains)),
                                           k.c.domain.not_in(sa.select(t.domains.c.name)))).rowcount


def previous_status(store: Store) -> dict[str, tuple[str, str | None]]:
    with store.engine.connect() as conn:
        return {n: (s, d) for n, s, d in conn.execute(sa.select(t.domains.c.name, t.domains.c.status,
                                                                t.domains.c.status_detail))}


def record_verification(store: Store, results: list[tuple[str, str, str]], drifts: dict[str, str], now: datetime) -> None:
    """Write each domain's status; a drift also becomes a domain DNS event for notifications (R10)."""
    d = t.domains
    with store.transaction(immediate=True) as conn:
        for domain, status, detail in results:
            row = conn.execute(sa.select(d.c.id, d.c.account_id, d.c.region).where(d.c.name == domain)).first()
            if row is None:
                continue
            values = {"status": status, "status_detail": detail}
            if status == "verified":
                values["verified_at"] = now
            conn.execute(sa.update(d).where(d.c.id == row[0]).values(**values))
            if domain in drifts:
                body = f"event=DnsChanged&region={row[2]}&domain={domain}&status={status}&detail={drifts[domain]}"
                conn.execute(sa.insert(t.events).values(account_id=row[1], event=DNS_EVENT, sender="", region=row[2],
                                                        body=body.replace("%", "%25"), created_at=now))
