"""The account as code: validate, plan, apply and verify a config directory (R1..R20 through spec/, plan/ and provision/), and template review (R20)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import sqlalchemy as sa

from mailcore.account import review as review_mod
from mailcore.cli.common import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_OK,
    CommandError,
    config_box,
    console,
    load_config,
    store_at,
)
from mailcore.plan import ApplyRefused, LockBusy, actor, apply_config, make_plan, utcnow
from mailcore.plan.render import render_text, to_json
from mailcore.spec import load_account
from mailcore.store.crypto import MasterKeyError, SecretBox


def validate(config: str) -> int:
    loaded = load_config(config)
    w = len(loaded.report.warnings)
    console.print(f"{config}: valid ({len(loaded.source.files)} files" + (f", {w} warning{'s' * (w != 1)})" if w else ")"))
    return EXIT_OK


def dns_secret_box() -> SecretBox:
    try:
        return SecretBox.from_env()
    except MasterKeyError as exc:
        raise CommandError(f"{exc} (DNS needs it: it derives the Pulumi state passphrase)") from None


def plan(config: str, store_url: str | None = None, as_json: bool = False, dns: bool = True) -> int:
    """The store diff and (unless dns=False) the DNS diff; exit 3 when either has changes."""
    store = store_at(store_url)
    loaded = load_config(config, store)
    box = config_box(loaded)
    try:
        with store.transaction() as conn:
            p, _ = make_plan(conn, loaded, box, utcnow())
    except MasterKeyError as exc:
        raise CommandError(str(exc)) from None
    dns_changes = False
    dns_refusals: list[str] = []
    if as_json:
        out = to_json(p)
        if dns:
            from mailcore.cli import dns as dnscommands
            dp = dnscommands.plan_dns(dnscommands.prepare(loaded, store, dns_secret_box()))
            out["dns"] = {"changes": len(dp.steps), "steps": dp.steps, "refusals": dp.refusals, "warnings": dp.warnings}
            out["refusals"] = out["refusals"] + dp.refusals
            dns_changes, dns_refusals = bool(dp.steps), dp.refusals
        print(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        render_text(p, console, title=f"Store plan for account {p.account} ({store!r})")
        if dns:
            from mailcore.cli import dns as dnscommands
            dns_changes, dns_refusals = dnscommands.preview(dnscommands.prepare(loaded, store, dns_secret_box()))
    if p.refusals or dns_refusals:
        return EXIT_ERROR
    return EXIT_CHANGES if (p.has_changes or dns_changes) else EXIT_OK


def apply(config: str, store_url: str | None = None, dns: bool = True) -> int:
    """DNS first (through Pulumi), then the store in one locked transaction. A refusal or a DNS
    failure leaves the store as it was."""
    store = store_at(store_url)
    loaded = load_config(config, store)
    box = config_box(loaded)
    started = time.perf_counter()
    also = None
    if dns:
        from mailcore.cli import dns as dnscommands
        with store.transaction() as conn:  # refuse before touching DNS what the store apply would refuse
            p, _ = make_plan(conn, loaded, box, utcnow())
        if p.refusals:
            raise CommandError(f"{p.refusals[0]}; nothing was changed")
        ctx = dnscommands.prepare(loaded, store, dns_secret_box(), persist=True)
        dnscommands.up(ctx)
        also = dnscommands.also_drop_keys(ctx)
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
    from mailcore.cli import dns as dnscommands
    store = store_at(store_url)
    loaded = load_config(config, store)
    ctx = dnscommands.prepare(loaded, store, dns_secret_box())
    missing = list(ctx.new_keys)
    if missing:
        raise CommandError(f"{', '.join(missing)} not applied yet (no keys in the store); run `invoke apply` first")
    return dnscommands.verify(ctx, store, utcnow())


def dns_unlock(force: bool = False) -> int:
    """Clear what an interrupted apply left in the DNS stack's Pulumi state (`invoke dns.unlock`)."""
    from mailcore.cli import dns as dnscommands
    return dnscommands.unlock(dns_secret_box(), force)


def template_review(action: str, name: str, config: str, store_url: str | None, by: str | None, reason: str | None) -> int:
    store = store_at(store_url)
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
