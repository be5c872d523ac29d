"""Batch send jobs (R29), the console's job as a command: list x approved template x batch sender."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from mailcore.cleanup.writer import Cleanup
from mailcore.store import Store
from mailcore.store import tables as t
from mailcore.cleanup.submission import Submission, SubmitResult


@dataclass
class JobRow:
    id: int
    receivers_list: str
    template: str
    sender: str
    tag: str | None
    status: str
    request_count: int
    env_id: str | None
    created_at: datetime


def run_batch(cleanup: Cleanup, account: str, *, receivers_list: str, template: str, sender: str, tag: str | None = None,
              address_type: str = "sender", tracking: bool = False, progress=None) -> SubmitResult:
    """Queue one batch; cleanup checks it (batch sender, approved template, quota, ...) like any send."""
    sub = Submission(account=account, sender=sender, recipients=[], source="batch", template=template,
                     receivers_list=receivers_list, tag=tag, address_type=address_type, tracking=tracking)
    return cleanup.submit_sync(sub, progress=progress)


def list_jobs(store: Store, account: str, limit: int = 50) -> list[JobRow]:
    j = t.batch_jobs.c
    q = (sa.select(j.id, j.receivers_list, j.template, j.sender, j.tag, j.status, j.request_count, j.env_id, j.created_at)
         .join(t.accounts, t.batch_jobs.c.account_id == t.accounts.c.id).where(t.accounts.c.name == account)
         .order_by(j.id.desc()).limit(limit))
    with store.engine.connect() as conn:
        return [JobRow(*row) for row in conn.execute(q)]
