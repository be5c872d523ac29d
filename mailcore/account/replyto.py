"""Reply-to verification (R13).

A sender's reply-to address (config/senders.yaml `reply_to`) receives replies only once its owner
has confirmed it: `request()` mails the reply-to a link with a one-time ticket, valid for 10
minutes, and may be asked again only 10 minutes later; `approve()` takes the ticket back (the
link, or the API's ApproveReplyMailAddress) and marks that address verified. The verification
holds for that address only: a new `reply_to` in config needs a new one. Until then the API's
ReplyToAddress=true sends without a Reply-To (replies would reach nobody who confirmed them);
SMTP never adds one (the client writes its own, as the guide says).

The mail goes through cleanup like any other (the caller submits the subject and body that
`request()` returns, from the sender to the reply-to), so it is signed, counted and queued as the
sender's own. `ReplyToDesk` binds these functions to a store and a clock for the API.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

import sqlalchemy as sa

from mailcore.store import Store
from mailcore.store import tables as t

TICKET_LIFETIME = timedelta(minutes=10)
RESEND_INTERVAL = timedelta(minutes=10)
APPROVE_PATH = "/reply-to/approve"

_v, _s = t.reply_to_verifications.c, t.senders.c


class ReplyToError(Exception):
    """Why a verification cannot be requested or approved; `reason` is a key of REASONS."""

    def __init__(self, reason: str, detail: str = ""):
        if reason not in REASONS:
            raise ValueError(f"unknown reply-to reason {reason!r}")
        super().__init__(f"{REASONS[reason]}{': ' + detail if detail else ''}")
        self.reason, self.detail = reason, detail


# reason -> what it means (the API maps each to its error code in mailcore.ingress.api.verifying)
REASONS = {
    "sender-unknown": "no such sender address",
    "no-reply-to": "the sender has no reply-to address; set `reply_to` in config/senders.yaml and apply",
    "too-soon": "a verification mail was sent less than 10 minutes ago; use it, or ask again later",
    "ticket-unknown": "the ticket is not one that was sent, or it was used already",
    "ticket-expired": "the ticket is older than 10 minutes; ask for a new verification mail",
    "reply-to-changed": "the sender's reply-to changed after this ticket was sent; ask for a new one",
}


@dataclass(frozen=True)
class Requested:
    sender: str
    reply_to: str
    ticket: str
    link: str
    subject: str  # the verification mail, from `sender` to `reply_to`, for the caller's submitter
    text_body: str


def is_verified(reply_to: str | None, verified_address: str | None) -> bool:
    """The sender's current reply-to is the address its owner confirmed."""
    return bool(reply_to and verified_address) and reply_to.lower() == verified_address.lower()


def _hash(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


def _sender(conn, account: str, *, sender_id: int | None = None, address: str | None = None):
    q = (sa.select(_s.id, _s.address, _s.reply_to)
         .join(t.accounts, _s.account_id == t.accounts.c.id).where(t.accounts.c.name == account))
    q = q.where(_s.id == sender_id) if sender_id is not None else q.where(_s.address == (address or "").lower())
    row = conn.execute(q).first()
    if row is None:
        raise ReplyToError("sender-unknown", str(sender_id if sender_id is not None else address))
    return row


def request(store: Store, account: str, now: datetime, link_base: str, *, sender_id: int | None = None,
            address: str | None = None) -> Requested:
    """Start a verification of a sender's reply-to (named by id or address): record a new
    ticket and return the mail to send. Raises ReplyToError (sender-unknown, no-reply-to, too-soon)."""
    ticket = secrets.token_urlsafe(24)
    with store.transaction(immediate=True) as conn:
        sid, sender, reply_to = _sender(conn, account, sender_id=sender_id, address=address)
        if not reply_to:
            raise ReplyToError("no-reply-to", sender)
        existing = conn.execute(sa.select(_v.sent_at).where(_v.sender_id == sid)).first()
        last = existing[0] if existing else None
        if last is not None and now - last < RESEND_INTERVAL:
            raise ReplyToError("too-soon", f"sent at {last:%H:%M:%S} UTC")
        values = {"ticket_hash": _hash(ticket), "ticket_address": reply_to, "sent_at": now}
        if existing is None:
            conn.execute(sa.insert(t.reply_to_verifications).values(sender_id=sid, **values))
        else:
            conn.execute(sa.update(t.reply_to_verifications).where(_v.sender_id == sid).values(**values))
    link = f"{link_base.rstrip('/')}{APPROVE_PATH}?ticket={ticket}"
    body = (f"Someone asked that replies to mail from {sender} go to this address ({reply_to}).\n\n"
            f"To confirm, open this link within 10 minutes:\n\n{link}\n\n"
            "If you did not expect this, ignore this mail: nothing changes until the link is opened.\n")
    return Requested(sender, reply_to, ticket, link, f"Confirm {reply_to} as the reply-to address of {sender}", body)


def withdraw(store: Store, requested: Requested) -> None:
    """The verification mail was refused (by cleanup): forget its ticket so it does not count
    against the 10-minute interval."""
    with store.transaction() as conn:
        conn.execute(sa.update(t.reply_to_verifications).where(_v.ticket_hash == _hash(requested.ticket))
                     .values(ticket_hash=None, ticket_address=None, sent_at=None))


def approve(store: Store, ticket: str, now: datetime) -> tuple[str, str]:
    """Take a ticket back: mark the reply-to it was mailed to verified. Returns (sender, reply_to).
    Raises ReplyToError (ticket-unknown, ticket-expired, reply-to-changed)."""
    with store.transaction(immediate=True) as conn:
        row = conn.execute(sa.select(_v.sender_id, _v.ticket_address, _v.sent_at, _s.address, _s.reply_to)
                           .join(t.senders, _s.id == _v.sender_id)
                           .where(_v.ticket_hash == _hash(ticket or ""))).first()
        if row is None:
            raise ReplyToError("ticket-unknown")
        sid, mailed_to, sent_at, sender, reply_to = row
        if now - sent_at > TICKET_LIFETIME:
            raise ReplyToError("ticket-expired", f"sent at {sent_at:%H:%M:%S} UTC")
        if not is_verified(reply_to, mailed_to):
            raise ReplyToError("reply-to-changed", f"mailed to {mailed_to}, now {reply_to or 'none'}")
        conn.execute(sa.update(t.reply_to_verifications).where(_v.sender_id == sid).values(
            verified_address=mailed_to, verified_at=now, ticket_hash=None))
    return sender, mailed_to


class ReplyToDesk:
    """What the API may do with reply-to verification, bound to the store and the clock."""

    def __init__(self, store: Store, clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.store, self.clock = store, clock

    def request(self, account: str, sender_id: int, link_base: str) -> Requested:
        return request(self.store, account, self.clock(), link_base, sender_id=sender_id)

    def withdraw(self, requested: Requested) -> None:
        withdraw(self.store, requested)

    def approve(self, ticket: str) -> tuple[str, str]:
        return approve(self.store, ticket, self.clock())
