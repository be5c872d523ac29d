"""What the invoke tasks do. Each command returns an exit code or raises CommandError
(a message with the fix, printed without a traceback)."""
from __future__ import annotations

import base64
import json
import os
import secrets as _secrets
import string
import sys
import time
from pathlib import Path

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from mailcore import review as review_mod
from mailcore.plan import (ApplyRefused, LockBusy, apply_config, actor, foreign_domains, make_plan, secret_box, utcnow)
from mailcore.plan.render import render_text, to_json
from mailcore.spec import ERROR, WARNING, load_account
from mailcore.spec.validators import password_problems
from mailcore.store import StoreError, open_store
from mailcore.store import tables as t
from mailcore.store.crypto import MASTER_KEY_ENV, MasterKeyError, SecretBox, generate_master_key

EXIT_OK, EXIT_CHANGES, EXIT_ERROR = 0, 3, 2

# piped output (CI logs, tests) gets a wide fixed width instead of rich's 80 columns
_WIDTH = None if sys.stdout.isatty() else 200
console = Console(highlight=False, soft_wrap=True, width=_WIDTH)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


class CommandError(Exception):
    def __init__(self, message: str, code: int = EXIT_ERROR):
        super().__init__(message)
        self.code = code


def _store(url: str | None):
    try:
        return open_store(url)
    except StoreError as exc:
        raise CommandError(str(exc)) from None


def _load(config: str, store=None):
    root = Path(config)
    foreign = (lambda name: foreign_domains(store, name)) if store is not None else None
    loaded = load_account(root, foreign_domains=foreign)
    for line in loaded.report.lines(Path.cwd(), ERROR):
        err_console.print(line, markup=False)
    for line in loaded.report.lines(Path.cwd(), WARNING):
        console.print(line, style="yellow", markup=False)
    if not loaded.report.ok:
        n = len(loaded.report.errors)
        raise CommandError(f"{n} error{'s' * (n != 1)} in {root}; nothing was changed")
    return loaded


def validate(config: str) -> int:
    loaded = _load(config)
    w = len(loaded.report.warnings)
    console.print(f"{config}: valid ({len(loaded.source.files)} files" + (f", {w} warning{'s' * (w != 1)})" if w else ")"))
    return EXIT_OK


def _box(loaded):
    try:
        return secret_box(loaded)
    except MasterKeyError as exc:
        raise CommandError(str(exc)) from None


def _dns_box() -> SecretBox:
    try:
        return SecretBox.from_env()
    except MasterKeyError as exc:
        raise CommandError(f"{exc} (DNS needs it: it derives the Pulumi state passphrase)") from None


def plan(config: str, store_url: str | None = None, as_json: bool = False, dns: bool = True) -> int:
    """The store diff and (unless dns=False) the DNS diff; exit 3 when either has changes."""
    store = _store(store_url)
    loaded = _load(config, store)
    box = _box(loaded)
    try:
        with store.transaction() as conn:
            p, _ = make_plan(conn, loaded, box, utcnow())
    except MasterKeyError as exc:
        raise CommandError(str(exc)) from None
    dns_changes = False
    if as_json:
        out = to_json(p)
        if dns:
            from mailcore import dnscommands
            ctx = dnscommands.prepare(loaded, store, _dns_box())
            summary = ctx.dns.stack.preview()
            out["dns"] = {"changes": summary.changes,
                          "steps": [{"op": st.op, "name": st.name, "diffs": st.diffs} for st in summary.steps
                                    if st.op != "same"],
                          "refusals": ctx.dns.mx_conflicts()}
            dns_changes = bool(out["dns"]["steps"])
        print(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        render_text(p, console, title=f"Store plan for account {p.account} ({store!r})")
        if dns:
            from mailcore import dnscommands
            dns_changes = dnscommands.preview(dnscommands.prepare(loaded, store, _dns_box()))
    if p.refusals:
        return EXIT_ERROR
    return EXIT_CHANGES if (p.has_changes or dns_changes) else EXIT_OK


def apply(config: str, store_url: str | None = None, dns: bool = True) -> int:
    """DNS first (through Pulumi), then the store in one locked transaction. A refusal or a DNS
    failure leaves the store as it was."""
    store = _store(store_url)
    loaded = _load(config, store)
    box = _box(loaded)
    started = time.perf_counter()
    also = None
    if dns:
        from mailcore import dnscommands
        with store.transaction() as conn:  # refuse before touching DNS what the store apply would refuse
            p, _ = make_plan(conn, loaded, box, utcnow())
        if p.refusals:
            raise CommandError(f"{p.refusals[0]}; nothing was changed")
        dns_box = _dns_box()
        ctx = dnscommands.prepare(loaded, store, dns_box)
        dnscommands.up(ctx)
        also = dnscommands.also_save_keys(ctx, dns_box)
    try:
        result = apply_config(store, loaded, box, also=also)
    except (ApplyRefused, LockBusy, MasterKeyError) as exc:
        raise CommandError(f"{exc}; the store is unchanged") from None
    except sa.exc.IntegrityError as exc:
        raise CommandError(f"the store refused the change: {exc.orig}; the store is unchanged") from None
    render_text(result.plan, console, title=f"Applying account {result.plan.account} ({store!r})")
    if result.applied:
        s = result.plan.summary()
        console.print(f"Apply complete: {s['create']} created, {s['update']} updated, {s['delete']} deleted "
                      f"in {time.perf_counter() - started:.2f}s.", style="bold green")
    else:
        console.print("Nothing to apply; nothing was written.", style="bold")
    return EXIT_OK


def verify(config: str, store_url: str | None = None) -> int:
    """Query each domain's records on its DNS server; store verified / usable / failed (R9, R10)."""
    from mailcore import dnscommands
    store = _store(store_url)
    loaded = _load(config, store)
    ctx = dnscommands.prepare(loaded, store, _dns_box())
    missing = [d for d, k in ctx.new_keys.items()]
    if missing:
        raise CommandError(f"{', '.join(missing)} not applied yet (no keys in the store); run `invoke apply` first")
    return dnscommands.verify(ctx, store, utcnow())


def show_state(store_url: str | None = None, account: str | None = None) -> int:
    store = _store(store_url)
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


def template_review(action: str, name: str, config: str, store_url: str | None, by: str | None, reason: str | None) -> int:
    store = _store(store_url)
    account = load_account(Path(config)).spec.name
    if not account:
        raise CommandError(f"{config} declares no account; pass --config DIR")
    try:
        with store.transaction(immediate=True) as conn:
            r = review_mod.review(conn, account, name, action, by or actor(), utcnow(), reason)
    except review_mod.ReviewError as exc:
        raise CommandError(str(exc)) from None
    console.print(f"template {r.template}: {r.old} -> {r.new} by {r.actor} at {r.at:%Y-%m-%d %H:%M:%S %Z}")
    return EXIT_OK


def generate_password(rng=_secrets.SystemRandom()) -> str:
    """A random SMTP password that satisfies R14."""
    alphabet = string.ascii_letters + string.digits
    while True:
        pw = "".join(rng.choice(alphabet) for _ in range(16))
        if not password_problems(pw):
            return pw


def init_secrets(config: str, env_file: str = ".env") -> int:
    """Write random values for every secret the config names that is not set yet (local use)."""
    from mailcore.spec.source import load_source
    path = Path(env_file)
    existing = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                k, _, v = line.partition("=")
                existing[k.strip()] = v.strip()
    wanted: dict[str, str] = {}

    def walk(node, parent_key=None):
        if isinstance(node, dict):
            if set(node) == {"env"} and isinstance(node["env"], str):
                wanted[node["env"]] = parent_key or ""
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            for v in node:
                walk(v, parent_key)

    walk(load_source(Path(config)).data)
    added = []
    lines = []
    if MASTER_KEY_ENV not in existing and not os.environ.get(MASTER_KEY_ENV):
        lines.append(f"{MASTER_KEY_ENV}={generate_master_key()}")
        added.append(MASTER_KEY_ENV)
    for name, key in sorted(wanted.items()):
        if name in existing or os.environ.get(name):
            continue
        # an SMTP password follows R14; a `secret:` (TSIG keys among them) is standard base64, which
        # DNS servers and dnspython read; the rest take the master key's URL-safe form
        value = generate_password() if key == "smtp_password" else \
            base64.b64encode(_secrets.token_bytes(32)).decode() if key == "secret" else generate_master_key()
        lines.append(f"{name}={value}")
        added.append(name)
    if lines:
        with path.open("a") as fh:
            fh.write("# generated by `invoke secrets.init` for local use; never commit this file\n" + "\n".join(lines) + "\n")
        path.chmod(0o600)
    load_env_file(str(path))  # so the tasks that follow in this same invocation see them
    console.print(f"{env_file}: {'added ' + ', '.join(added) if added else 'every secret is already set'}")
    return EXIT_OK


def load_env_file(path: str = ".env") -> None:
    """Read KEY=VALUE lines into the environment without overriding what is already set."""
    if not path or not Path(path).exists():
        return
    p = Path(path)
    for line in p.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            k, _, v = line.partition("=")
            if not os.environ.get(k.strip()):
                os.environ[k.strip()] = v.strip().strip('"').strip("'")


def serve(config: str, store_url: str | None = None, stages: str | None = None) -> int:
    """Run the mail core until SIGINT/SIGTERM."""
    import asyncio
    import logging

    from mailcore.service import STAGES, Service
    from mailcore.store.db import state_dir

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    store = _store(store_url)
    loaded = _load(config, store)
    if not loaded.spec.service.listeners and (not stages or {"smtpd", "api"} & set(stages.split(","))):
        raise CommandError(f"{config} declares no listeners; add a `service:` section (see config/service.yaml)")
    try:
        box = SecretBox.from_env()
    except MasterKeyError as exc:
        raise CommandError(str(exc)) from None
    try:
        service = Service(loaded.spec, store, box, stages=tuple(stages.split(",")) if stages else STAGES,
                          state_dir=state_dir())
        asyncio.run(service.run_until_signalled(ready=lambda line: print(line, flush=True)))
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    except Exception as exc:
        from mailcore.cleanupd import CleanupUnavailable
        from mailcore.smtpd.server import SmtpConfigError
        if isinstance(exc, (SmtpConfigError, CleanupUnavailable, OSError)):
            raise CommandError(f"cannot start: {exc}") from None
        raise
    return EXIT_OK
