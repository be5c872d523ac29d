"""`invoke state`: what the store holds for each account, as tables."""
from __future__ import annotations

import sqlalchemy as sa
from rich.table import Table

from mailcore.cli.common import EXIT_OK, console, store_at
from mailcore.store import tables as t


def show_state(store_url: str | None = None, account: str | None = None) -> int:
    store = store_at(store_url)
    with store.engine.connect() as conn:
        accts = conn.execute(sa.select(t.accounts).order_by(t.accounts.c.name)).mappings().all()
        if account:
            accts = [a for a in accts if a["name"] == account]
        if not accts:
            console.print(f"The store {store!r} holds no account" + (f" named '{account}'" if account else "") +
                          "; run `invoke apply`.")
            return EXIT_OK
        for a in accts:
            aid = a["id"]
            console.print(f"[bold]account {a['name']}[/]  status={a['status']} quota daily={a['quota_daily']} "
                          f"monthly={a['quota_monthly']} allow-list={'on' if a['allowlist_enabled'] else 'off'}")
            _table(conn, "Domains", ["name", "region", "status", "tracking", "dns_backend"],
                   sa.select(t.domains).where(t.domains.c.account_id == aid).order_by(t.domains.c.name))
            _table(conn, "Senders", ["address", "type", "reply_to", "smtp"],
                   sa.select(t.senders, (t.senders.c.smtp_password_hash.is_not(None)).label("smtp"))
                   .where(t.senders.c.account_id == aid).order_by(t.senders.c.address))
            _table(conn, "Tags", ["name", "description"], sa.select(t.tags).where(t.tags.c.account_id == aid).order_by(t.tags.c.name))
            _table(conn, "Recipient lists", ["name", "alias_address", "row_count"],
                   sa.select(t.recipient_lists).where(t.recipient_lists.c.account_id == aid).order_by(t.recipient_lists.c.name))
            _table(conn, "Templates", ["name", "status", "submitted_by", "reviewed_by", "reviewed_at"],
                   sa.select(t.templates).where(t.templates.c.account_id == aid).order_by(t.templates.c.name))
            _table(conn, "Notification rules", ["region", "name", "events"],
                   sa.select(t.notification_rules).where(t.notification_rules.c.account_id == aid))
            _table(conn, "API keys", ["access_key_id", "enabled", "description"],
                   sa.select(t.api_keys).where(t.api_keys.c.account_id == aid))
            n = conn.execute(sa.select(sa.func.count()).select_from(t.sender_deletions).where(
                t.sender_deletions.c.account_id == aid)).scalar()
            entries = conn.execute(sa.select(t.allowlist_entries.c.entry).where(t.allowlist_entries.c.account_id == aid)).scalars().all()
            console.print(f"IP allow-list: {', '.join(entries) or '(empty)'}; sender deletions recorded: {n}")
    return EXIT_OK


def _table(conn, title: str, columns: list[str], query) -> None:
    rows = conn.execute(query).mappings().all()
    table = Table(title=f"{title} ({len(rows)})", title_justify="left")
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*["" if r[c] is None else str(r[c]) for c in columns])
    console.print(table)
