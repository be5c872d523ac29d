"""What `plan`, `apply` and `verify` do about DNS: glue between provision/ (Pulumi, queries; no
store) and the store (keys, statuses). Imported by the commands only, so the running service
never loads Pulumi."""
from __future__ import annotations

import time
from dataclasses import dataclass

from rich.table import Table

from mailcore.account import domains as domain_store
from mailcore.cli.common import CommandError, console
from mailcore.store.crypto import SecretBox
from mailcore.store.db import state_dir


@dataclass
class DnsContext:
    dns: object  # provision.account.AccountDns
    new_keys: dict  # domain -> DomainKeyInput generated in this run


def prepare(loaded, store, box: SecretBox) -> DnsContext:
    from provision.account import AccountDns, DomainKeyInput, new_keys
    from provision.embedded import EmbeddedDnsError, ensure_running
    from provision.program import DnsConfigError

    spec = loaded.spec
    stored = domain_store.load_keys(store)
    missing = [d.name for d in spec.domains if d.name not in stored]
    fresh = new_keys(missing)
    keys = {d: DomainKeyInput(k.token, k.selector, k.dkim_public) for d, k in stored.items()}
    keys.update(fresh)
    try:
        dns = AccountDns(spec, {d.name: keys[d.name] for d in spec.domains}, state_dir(),
                         box.derived_secret("pulumi-passphrase"))
        ensure_running(spec, dns.servers, state_dir(), progress=lambda line: console.print(line, style="dim"))
    except (DnsConfigError, EmbeddedDnsError) as exc:
        raise CommandError(str(exc)) from None
    return DnsContext(dns, fresh)


def _progress(line: str) -> None:
    console.print(f"  {line}", style="dim", markup=False)


def preview(ctx: DnsContext) -> bool:
    """Print the DNS changes; True when there are some."""
    from provision.program import DnsApplyError
    try:
        summary = ctx.dns.stack.preview(progress=None)
    except DnsApplyError as exc:
        raise CommandError(str(exc)) from None
    changed = [s for s in summary.steps if s.op not in ("same", "read")]
    console.print(f"DNS plan ({len(summary.steps)} record sets)", style="bold")
    if not changed:
        console.print("  No DNS changes. Live DNS matches the config.")
    symbol = {"create": "[green]+", "update": "[yellow]~", "delete": "[red]-", "replace": "[yellow]-/+"}
    for step in changed:
        console.print(f"  {symbol.get(step.op, '~')} dns {step.name}[/]" + (f"  ({', '.join(step.diffs)})" if step.diffs else ""))
    for conflict in ctx.dns.mx_conflicts():
        console.print(f"[bold red]refused: {conflict}[/]")
    return bool(changed)


def up(ctx: DnsContext) -> None:
    from provision.program import DnsApplyError
    conflicts = ctx.dns.mx_conflicts()
    if conflicts:
        raise CommandError(f"refused: {conflicts[0]}; nothing was changed")
    console.print("Applying DNS through Pulumi", style="bold")
    started = time.perf_counter()
    try:
        result = ctx.dns.stack.up(progress=_progress)
    except DnsApplyError as exc:
        raise CommandError(f"{exc}; the store is unchanged, fix the cause and run apply again") from None
    for warning in result.warnings:
        console.print(f"[yellow]warning: {warning}[/]")
    changes = {k: v for k, v in result.changes.items() if k != "same"}
    console.print(f"DNS applied in {time.perf_counter() - started:.1f}s: "
                  + (", ".join(f"{v} {k}" for k, v in changes.items()) or "no changes"))


def also_save_keys(ctx: DnsContext, box: SecretBox):
    def write(conn, now):
        new = {d: (k.token, k.selector, k.dkim_private_pem, k.dkim_public) for d, k in ctx.new_keys.items()}
        return domain_store.save_keys(conn, box, new, now)
    return write


def verify(ctx: DnsContext, store, now) -> int:
    """Check every record, print expected vs found, store each domain's status; exit 0 when all verified."""
    from provision.verify import VERIFIED, drift
    before = domain_store.previous_status(store)
    results = ctx.dns.verify()
    drifts = {}
    for v in results:
        prev = before.get(v.domain, (None, None))
        line = drift(prev[0], prev[1], v)
        if line:
            drifts[v.domain] = line
        table = Table(title=f"{v.domain}: {v.label}", title_justify="left")
        for col in ("record", "name", "type", "expected", "found", "ok"):
            table.add_column(col)
        for c in v.checks:
            table.add_row(c.kind, c.name, c.rtype, c.expected, "\n".join(c.found) or "(nothing)",
                          "yes" if c.ok else f"NO{': ' + c.note if c.note else ''}")
        console.print(table)
    domain_store.record_verification(store, [(v.domain, v.status, v.detail) for v in results], drifts, now)
    for line in drifts.values():
        console.print(f"[bold red]drift: {line}[/]")
    ok = sum(v.status == VERIFIED for v in results)
    console.print(f"Verified {ok} of {len(results)} domain(s)" + ("" if ok == len(results) else
                  "; run `invoke apply` to repair what the config manages"), style="bold")
    return 0 if ok == len(results) else 2
