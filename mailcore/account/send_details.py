"""Send details (R36): what happened to each recipient of the account's accepted messages, as the
console's send-detail page and the API's SenderStatisticsDetailByParam show it, filtered by time,
sender, recipient, tag and result. One read query over the queue's tables, shared by the API
(mailcore.ingress.api.queries) and `mailcore send details` (mailcore.cli.send); it writes nothing.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from mailcore.store import tables as t

MAX_RANGE = timedelta(days=30)  # R36: at most 30 days at a time
# the console's send-detail results (R25's delivery status codes): name -> queue_recipients.status
SEND_RESULTS: dict[str, int] = {"success": 0, "invalid-address": 2, "spam": 3, "failed": 4}


def query(conn, account: str, *, sender: str | None = None, tag: str | None = None, rcpt: str | None = None,
          status: int | None = None, start: datetime | None = None, end: datetime | None = None,
          after_id: int = 0, limit: int = 100) -> list[dict]:
    """Send details (R36): the account's recipients of accepted messages, oldest first, from
    recipient id `after_id` on (a cursor), at most `limit + 1` rows (the extra one says there is
    more), filtered by sender, tag, recipient (exact, any case), status and creation time
    (`start` <= created_at <= `end`). One query; shared by the API's SenderStatisticsDetailByParam
    and `mailcore send details`."""
    m, r = t.queue_messages, t.queue_recipients
    account_id = sa.select(t.accounts.c.id).where(t.accounts.c.name == account).scalar_subquery()
    q = (sa.select(r.c.id, r.c.rcpt, r.c.state, r.c.status, r.c.failed_type, r.c.last_text, r.c.created_at,
                   r.c.done_at, m.c.id.label("env_id"), m.c.sender, m.c.subject, m.c.tag)
         .join(m, r.c.message_id == m.c.id)
         .where(m.c.account_id == account_id, r.c.id >= after_id))
    if sender:
        q = q.where(m.c.sender == sender.lower())
    if tag:
        q = q.where(m.c.tag == tag)
    if rcpt:
        q = q.where(r.c.rcpt == rcpt.lower())
    if status is not None:
        q = q.where(r.c.status == status)
    if start is not None:
        q = q.where(r.c.created_at >= start)
    if end is not None:
        q = q.where(r.c.created_at <= end)
    return [dict(x) for x in conn.execute(q.order_by(r.c.id).limit(limit + 1)).mappings()]
