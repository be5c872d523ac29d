"""Read-side lookups for ingress (smtpd, api): who a sender or AccessKey is and what it may do.

Network-facing code asks the catalog instead of reading tables. Successful SMTP password checks
are remembered (keyed by a hash of the password and the stored hash) so a busy client does not
pay for scrypt on every AUTH; a password change in the store changes the stored hash and so
invalidates the memo.
"""
from __future__ import annotations

import hashlib
import ipaddress
import secrets
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime

import sqlalchemy as sa

from mailcore.account import replyto
from mailcore.spec.validators import parse_allow_entry
from mailcore.store import Store
from mailcore.store import tables as t
from mailcore.store.crypto import SecretBox, hash_password, verify_password

SENDABLE_DOMAIN_STATUSES = ("verified", "usable")


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """What an unknown user's password is checked against, so that a wrong user name costs the
    same scrypt work as a wrong password (no user enumeration by timing)."""
    return hash_password(secrets.token_urlsafe(16))


def normalize_ip(ip: str) -> str:
    """`::ffff:a.b.c.d` as `a.b.c.d` (dual-stack listeners report IPv4 clients that way), so the
    allow-list and the per-IP limits see one address; anything else as it came."""
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return ip
    if addr.version == 6 and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


@dataclass(frozen=True)
class SenderView:
    address: str
    account: str
    account_status: str
    region: str
    domain: str
    domain_status: str
    tracking_ready: bool  # the domain is fully verified, CNAME included (R9)
    type: str
    reply_to: str | None
    password_hash: str | None
    created_at: datetime
    reply_to_verified: bool = False  # its owner confirmed this reply-to (R13, mailcore.replyto)
    account_timezone: str = "UTC"  # the account's timezone, for times shown to it (R15's refusal)


@dataclass(frozen=True)
class AccessKeyView:
    access_key_id: str
    account: str
    secret: str
    enabled: bool


class Catalog:
    def __init__(self, store: Store, box: SecretBox | None = None):
        self.store = store
        self.box = box
        self._verified: set[bytes] = set()

    def sender(self, address: str) -> SenderView | None:
        q = (sa.select(t.senders.c.address, t.accounts.c.name, t.accounts.c.status, t.domains.c.region, t.domains.c.name,
                       t.domains.c.status, t.domains.c.status_detail, t.senders.c.type, t.senders.c.reply_to,
                       t.senders.c.smtp_password_hash, t.senders.c.created_at,
                       t.reply_to_verifications.c.verified_address, t.accounts.c.timezone)
             .join(t.domains, t.senders.c.domain_id == t.domains.c.id)
             .join(t.accounts, t.senders.c.account_id == t.accounts.c.id)
             .outerjoin(t.reply_to_verifications, t.reply_to_verifications.c.sender_id == t.senders.c.id)
             .where(t.senders.c.address == address.lower()))
        with self.store.engine.connect() as conn:
            row = conn.execute(q).first()
        if row is None:
            return None
        return SenderView(row[0], row[1], row[2], row[3], row[4], row[5], row[5] == "verified", row[7], row[8], row[9],
                          row[10], replyto.is_verified(row[8], row[11]), row[12] or "UTC")

    def verify_smtp(self, address: str, password: str) -> SenderView | None:
        """The sender when `password` is its SMTP password, else None."""
        view = self.sender(address)
        if view is None or not view.password_hash:
            verify_password(password, _dummy_hash())  # the same work as for a known user
            return None
        if self.remembered_password(view, password):
            return view
        if verify_password(password, view.password_hash):
            self._verified.add(self._memo(view, password))
            return view
        return None

    def remembered_password(self, view: SenderView, password: str) -> bool:
        """`password` was verified against this sender's current hash before (no scrypt, no store)."""
        return bool(view.password_hash) and self._memo(view, password) in self._verified

    @staticmethod
    def _memo(view: SenderView, password: str) -> bytes:
        return hashlib.sha256(f"{view.password_hash}\x00{password}".encode()).digest()

    def access_key(self, access_key_id: str) -> AccessKeyView | None:
        q = (sa.select(t.api_keys.c.access_key_id, t.accounts.c.name, t.api_keys.c.secret_enc, t.api_keys.c.enabled)
             .join(t.accounts, t.api_keys.c.account_id == t.accounts.c.id).where(t.api_keys.c.access_key_id == access_key_id))
        with self.store.engine.connect() as conn:
            row = conn.execute(q).first()
        if row is None:
            return None
        box = self.box or SecretBox.from_env()
        return AccessKeyView(row[0], row[1], box.decrypt(row[2]), row[3])

    def ip_allowed(self, account: str, ip: str) -> bool:
        """R28: with the allow-list on, only listed addresses may send."""
        q = sa.select(t.accounts.c.id, t.accounts.c.allowlist_enabled).where(t.accounts.c.name == account)
        with self.store.engine.connect() as conn:
            acct = conn.execute(q).first()
            if acct is None or not acct[1]:
                return True
            entries = conn.execute(sa.select(t.allowlist_entries.c.entry).where(
                t.allowlist_entries.c.account_id == acct[0])).scalars().all()
        try:
            addr = ipaddress.ip_address(normalize_ip(ip))
        except ValueError:
            return False
        for entry in entries:
            first, last = parse_allow_entry(entry)
            if first.version == addr.version and first <= addr <= last:
                return True
        return False
