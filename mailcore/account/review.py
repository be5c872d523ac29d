"""Template review (R20): drafts are submitted, then approved or rejected, by a named person.

An approval is bound to the content it approved (`approved_digest`); `apply` resets a template
whose content changed to draft. Transitions are one table; anything else is refused.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from mailcore.store import tables as t

# (status, action) -> new status
TRANSITIONS: dict[tuple[str, str], str] = {
    ("draft", "submit"): "submitted",
    ("rejected", "submit"): "submitted",
    ("submitted", "approve"): "approved",
    ("submitted", "reject"): "rejected",
}
ACTIONS = ("submit", "approve", "reject")
PAST = {"submit": "submitted", "approve": "approved", "reject": "rejected"}
STATUSES = ("draft", "submitted", "approved", "rejected")


class ReviewError(Exception):
    """A review step the template's state does not allow; the message says what would."""


@dataclass
class ReviewResult:
    template: str
    old: str
    new: str
    actor: str
    at: datetime


def _hint(status: str) -> str:
    allowed = [a for (s, a) in TRANSITIONS if s == status]
    if allowed:
        return "it can be " + " or ".join(PAST[a] for a in allowed)
    return "it is approved; edit it in config and apply to start a new review"


def review(conn, account: str, template: str, action: str, actor: str, now: datetime, comment: str | None = None) -> ReviewResult:
    if action not in ACTIONS:
        raise ReviewError(f"unknown review action '{action}' (one of {', '.join(ACTIONS)})")
    q = (sa.select(t.templates.c.id, t.templates.c.status, t.templates.c.content_digest)
         .join(t.accounts, t.templates.c.account_id == t.accounts.c.id)
         .where(t.accounts.c.name == account, t.templates.c.name == template))
    row = conn.execute(q.with_for_update() if conn.dialect.name == "postgresql" else q).first()
    if row is None:
        raise ReviewError(f"account '{account}' has no template '{template}' in the store; declare it in config and "
                          "run `invoke apply` first")
    new = TRANSITIONS.get((row.status, action))
    if new is None:
        raise ReviewError(f"template '{template}' is {row.status} and cannot be {PAST[action]}; {_hint(row.status)}")
    if action == "reject" and not comment:
        raise ReviewError("a rejection needs a reason: pass --reason '...' so the author knows what to change")
    values = {"status": new, "updated_at": now}
    if action == "submit":
        values.update(submitted_by=actor, submitted_at=now, reviewed_by=None, reviewed_at=None, review_comment=None)
    else:
        values.update(reviewed_by=actor, reviewed_at=now, review_comment=comment)
        values["approved_digest"] = row.content_digest if action == "approve" else None
    conn.execute(sa.update(t.templates).where(t.templates.c.id == row.id).values(**values))
    conn.execute(sa.insert(t.template_reviews).values(template_id=row.id, action=action, actor=actor, at=now,
                                                      content_digest=row.content_digest, comment=comment))
    return ReviewResult(template, row.status, new, actor, now)
