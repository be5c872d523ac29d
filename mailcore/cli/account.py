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
    err_console,
    load_config,
    store_at,
)
from mailcore.plan import ApplyRefused, LockBusy, actor, apply_config, make_plan, utcnow
from mailcore.plan import planfile
from mailcore.plan.render import render_dns_text, render_markdown, render_text, to_json
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


PLAN_FORMATS = ("text", "json", "markdown")


def plan(config: str, store_url: str | None = None, as_json: bool = False, dns: bool = True,
         out: str | None = None, fmt: str | None = None) -> int:
    """The store diff and (unless dns=False) the DNS diff; exit 3 when either has changes.
    ``fmt``: text (default), json or markdown (a pull-request comment); ``out``: also save the
    plan with the fingerprints `apply FILE` checks."""
    fmt = fmt or ("json" if as_json else "text")
    if fmt not in PLAN_FORMATS:
        raise CommandError(f"unknown plan format {fmt!r}; use one of {', '.join(PLAN_FORMATS)}")
    store = store_at(store_url)
    loaded = load_config(config, store)
    box = config_box(loaded)
    try:
        with store.transaction() as conn:
            p, _ = make_plan(conn, loaded, box, utcnow())
            store_fp = planfile.store_fingerprint(conn, loaded.spec.name, box) if out else None
    except MasterKeyError as exc:
        raise CommandError(str(exc)) from None
    dp = ctx = None
    if dns:
        from mailcore.cli import dns as dnscommands
        ctx = dnscommands.prepare(loaded, store, dns_secret_box())
        dp = dnscommands.plan_dns(ctx)
    doc = to_json(p)
    if dp is not None:
        doc["dns"] = {"changes": len(dp.steps), "steps": dp.steps, "refusals": dp.refusals, "warnings": dp.warnings}
        doc["refusals"] = doc["refusals"] + dp.refusals
    if fmt == "json":
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    elif fmt == "markdown":
        print(render_markdown(doc), end="")
    else:
        render_text(p, console, title=f"Store plan for account {p.account} ({store!r})")
        if dp is not None:
            render_dns_text(dp.steps, dp.refusals, dp.warnings, console)
    refused = bool(doc["refusals"])
    if out:
        if refused:
            err_console.print(f"not saving {out}: apply would refuse this plan", markup=False)
        else:
            fingerprints = {"config": planfile.config_fingerprint(loaded, box), "store": store_fp,
                            "dns": dnscommands.fingerprint(ctx, dp) if dp is not None else None}
            planfile.write(out, doc, account=p.account, dns=dns, fingerprints=fingerprints)
            err_console.print(f"Saved this plan to {out}; `apply {out}` applies exactly it, or refuses if "
                              "the config, the store or DNS moved since.", markup=False)
    if refused:
        return EXIT_ERROR
    dns_changes = bool(dp.steps) if dp is not None else False
    return EXIT_CHANGES if (p.has_changes or dns_changes) else EXIT_OK


def _stale(exc: planfile.StalePlan) -> CommandError:
    return CommandError(f"stale plan: {exc}; nothing was changed")


def apply(config: str, store_url: str | None = None, dns: bool = True, plan_file: str | None = None) -> int:
    """DNS first (through Pulumi), then the store in one locked transaction. A refusal or a DNS
    failure leaves the store as it was. With ``plan_file`` (from `plan --out`): apply exactly that
    plan, refused before anything is written when the config, the store or DNS moved since."""
    store = store_at(store_url)
    loaded = load_config(config, store)
    box = config_box(loaded)
    started = time.perf_counter()
    also = expect = doc = None
    if plan_file:
        try:
            doc = planfile.read(plan_file)
            with store.transaction() as conn:
                now_fp = {"config": planfile.config_fingerprint(loaded, box),
                          "store": planfile.store_fingerprint(conn, loaded.spec.name, box)}
            planfile.check(doc, plan_file, account=loaded.spec.name, dns=dns, current=now_fp)
        except planfile.StalePlan as exc:
            raise _stale(exc) from None
        except MasterKeyError as exc:
            raise CommandError(str(exc)) from None

        def expect(conn):  # again under apply's lock: nothing may slip in between check and write
            planfile.check(doc, plan_file, account=loaded.spec.name, dns=dns,
                           current={"store": planfile.store_fingerprint(conn, loaded.spec.name, box)})
    if dns:
        from mailcore.cli import dns as dnscommands
        with store.transaction() as conn:  # refuse before touching DNS what the store apply would refuse
            p, _ = make_plan(conn, loaded, box, utcnow())
        if p.refusals:
            raise CommandError(f"{p.refusals[0]}; nothing was changed")
        ctx = dnscommands.prepare(loaded, store, dns_secret_box(), persist=True)
        if doc is not None:
            try:
                planfile.check(doc, plan_file, account=loaded.spec.name, dns=dns,
                               current={"dns": dnscommands.fingerprint(ctx, dnscommands.plan_dns(ctx))})
            except planfile.StalePlan as exc:
                raise _stale(exc) from None
        dnscommands.up(ctx)
        also = dnscommands.also_drop_keys(ctx)
    try:
        result = apply_config(store, loaded, box, also=also, expect=expect)
    except planfile.StalePlan as exc:
        raise CommandError(f"stale plan: {exc}; the store is unchanged") from None
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
