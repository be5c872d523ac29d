"""The API's read layer: read-only SELECTs over the store, scoped to the caller's account.

Handlers never touch tables (DESIGN.md, boundaries); they ask here and shape the answer. Every
method opens a read connection, returns plain dicts of store values and writes nothing, so the
read actions can never change config-owned state.
"""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from mailcore.account import send_details as details
from mailcore.store import Store
from mailcore.store import tables as t


@dataclass(frozen=True)
class Page:
    total: int
    rows: list[dict]


def _like(column, keyword: str | None):
    if not keyword:
        return sa.true()
    escaped = keyword.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.ilike(f"%{escaped}%", escape="\\")


class ApiQueries:
    def __init__(self, store: Store):
        self.store = store

    def _page(self, select: sa.Select, order, offset: int, limit: int) -> Page:
        with self.store.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(select.order_by(None).subquery())).scalar_one()
            rows = conn.execute(select.order_by(*order).offset(offset).limit(limit)).mappings().all()
        return Page(total, [dict(r) for r in rows])

    def _account_id(self, account: str):
        return sa.select(t.accounts.c.id).where(t.accounts.c.name == account).scalar_subquery()

    # --- domains -----------------------------------------------------------------------------
    def domains(self, account: str, keyword: str | None, statuses: tuple[str, ...] | None, offset: int, limit: int) -> Page:
        q = sa.select(t.domains).where(t.domains.c.account_id == self._account_id(account),
                                       _like(t.domains.c.name, keyword))
        if statuses is not None:
            q = q.where(t.domains.c.status.in_(statuses))
        return self._page(q, [t.domains.c.id], offset, limit)

    def domain(self, account: str, domain_id: int) -> dict | None:
        """The domain with its region's hosts and its DNS key material (None where not generated yet)."""
        q = (sa.select(t.domains, t.regions.c.mx_host, t.regions.c.spf_include, t.regions.c.tracking_host,
                       t.domain_keys.c.ownership_token, t.domain_keys.c.dkim_selector, t.domain_keys.c.dkim_public)
             .outerjoin(t.regions, sa.and_(t.regions.c.account_id == t.domains.c.account_id,
                                           t.regions.c.region == t.domains.c.region))
             .outerjoin(t.domain_keys, t.domain_keys.c.domain == t.domains.c.name)
             .where(t.domains.c.account_id == self._account_id(account), t.domains.c.id == domain_id))
        with self.store.engine.connect() as conn:
            row = conn.execute(q).mappings().first()
        return dict(row) if row else None

    # --- sender addresses ----------------------------------------------------------------------
    def senders(self, account: str, keyword: str | None, send_type: str | None, offset: int, limit: int) -> Page:
        q = (sa.select(t.senders, t.domains.c.status.label("domain_status"),
                       t.reply_to_verifications.c.verified_address.label("reply_to_verified"))
             .join(t.domains, t.senders.c.domain_id == t.domains.c.id)
             .outerjoin(t.reply_to_verifications, t.reply_to_verifications.c.sender_id == t.senders.c.id)
             .where(t.senders.c.account_id == self._account_id(account), _like(t.senders.c.address, keyword)))
        if send_type:
            q = q.where(t.senders.c.type == send_type)
        return self._page(q, [t.senders.c.id], offset, limit)

    # --- tags ----------------------------------------------------------------------------------
    def tags(self, account: str, keyword: str | None, offset: int, limit: int) -> Page:
        q = sa.select(t.tags).where(t.tags.c.account_id == self._account_id(account), _like(t.tags.c.name, keyword))
        return self._page(q, [t.tags.c.id], offset, limit)

    # --- templates -----------------------------------------------------------------------------
    def templates(self, account: str, keyword: str | None, offset: int, limit: int) -> Page:
        q = sa.select(t.templates.c.id, t.templates.c.name, t.templates.c.status, t.templates.c.review_comment,
                      t.templates.c.created_at).where(t.templates.c.account_id == self._account_id(account),
                                                      _like(t.templates.c.name, keyword))
        return self._page(q, [t.templates.c.id], offset, limit)

    def template_name(self, account: str, template_id: int) -> str | None:
        q = sa.select(t.templates.c.name).where(t.templates.c.account_id == self._account_id(account),
                                                t.templates.c.id == template_id)
        with self.store.engine.connect() as conn:
            return conn.execute(q).scalar()

    # --- recipient lists -----------------------------------------------------------------------
    def receiver_lists(self, account: str, keyword: str | None, offset: int, limit: int) -> Page:
        q = sa.select(t.recipient_lists).where(t.recipient_lists.c.account_id == self._account_id(account),
                                               sa.or_(_like(t.recipient_lists.c.name, keyword),
                                                      _like(t.recipient_lists.c.alias_address, keyword)))
        return self._page(q, [t.recipient_lists.c.id], offset, limit)

    def receiver_list(self, account: str, list_id: int) -> dict | None:
        q = sa.select(t.recipient_lists).where(t.recipient_lists.c.account_id == self._account_id(account),
                                               t.recipient_lists.c.id == list_id)
        with self.store.engine.connect() as conn:
            row = conn.execute(q).mappings().first()
        return dict(row) if row else None

    def receivers(self, list_id: int, keyword: str | None, start: int, limit: int) -> tuple[int, list[dict]]:
        """(rows matching in the list, up to `limit + 1` rows from position `start` on)."""
        where = sa.and_(t.recipients.c.list_id == list_id, _like(t.recipients.c.email, keyword))
        with self.store.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(t.recipients).where(where)).scalar_one()
            rows = conn.execute(sa.select(t.recipients).where(where, t.recipients.c.position >= start)
                                .order_by(t.recipients.c.position).limit(limit + 1)).mappings().all()
        return total, [dict(r) for r in rows]

    # --- batch jobs ----------------------------------------------------------------------------
    def batch_jobs(self, account: str, keyword: str | None, statuses: tuple[str, ...] | None, offset: int,
                   limit: int) -> Page:
        q = sa.select(t.batch_jobs).where(t.batch_jobs.c.account_id == self._account_id(account),
                                          sa.or_(_like(t.batch_jobs.c.template, keyword),
                                                 _like(t.batch_jobs.c.receivers_list, keyword),
                                                 _like(t.batch_jobs.c.tag, keyword)))
        if statuses is not None:
            q = q.where(t.batch_jobs.c.status.in_(statuses))
        return self._page(q, [t.batch_jobs.c.id.desc()], offset, limit)

    # --- send details (R36) --------------------------------------------------------------------
    def send_details(self, account: str, *, sender: str | None, tag: str | None, rcpt: str | None,
                     status: int | None, start, end, after_id: int, limit: int) -> list[dict]:
        """Recipients of accepted messages, oldest first, from recipient id `after_id` on (a cursor):
        the queue's query (`mailcore.account.send_details.query`), which `mailcore send details` shares."""
        with self.store.engine.connect() as conn:
            return details.query(conn, account, sender=sender, tag=tag, rcpt=rcpt, status=status, start=start,
                                 end=end, after_id=after_id, limit=limit)
