"""What `plan`, `apply` and `verify` do about DNS: glue between provision/ (Pulumi, queries; no
store) and the store (keys, statuses). Imported by the commands only, so the running service
never loads Pulumi."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import sqlalchemy as sa

from rich.markup import escape
from rich.table import Table

from mailcore.account import domains as domain_store
from mailcore.cli.common import CommandError, console
from mailcore.plan import utcnow
from mailcore.store.crypto import SecretBox
from mailcore.store.db import state_dir


@dataclass
class DnsContext:
    dns: object  # provision.account.AccountDns
    new_keys: dict  # domain -> DomainKeyInput generated in this run
    removed: set = field(default_factory=set)  # this account's domains in the store that the config drops


@dataclass
class DnsPlan:
    steps: list  # [{"op", "name", "diffs", "old", "new"}], changed record sets only
    refusals: list  # what apply would refuse (it changes nothing then)
    warnings: list


def prepare(loaded, store, box: SecretBox, *, persist: bool = False) -> DnsContext:
    """The account's DNS. ``persist``: save the keys of new domains now, before anything is
    published (apply), so an interrupted apply reruns with the same token and DKIM key."""
    from provision.account import AccountDns, DomainKeyInput, new_keys
    from provision.embedded import EmbeddedDnsError, ensure_running
    from provision.program import DnsConfigError

    spec = loaded.spec
    stored = domain_store.load_keys(store)
    missing = [d.name for d in spec.domains if d.name not in stored]
    fresh = new_keys(missing)
    if persist and fresh:
        new = {d: (k.token, k.selector, k.dkim_private_pem, k.dkim_public) for d, k in fresh.items()}
        try:
            domain_store.persist_keys(store, box, new, utcnow())
        except sa.exc.IntegrityError:
            raise CommandError(f"another apply saved keys for {', '.join(sorted(fresh))} at the same time; "
                               "run apply again") from None
    keys = {d: DomainKeyInput(k.token, k.selector, k.dkim_public) for d, k in stored.items()}
    keys.update(fresh)
    try:
        dns = AccountDns(spec, {d.name: keys[d.name] for d in spec.domains}, state_dir(),
                         box.derived_secret("pulumi-passphrase"))
        ensure_running(spec, dns.servers, state_dir(), progress=lambda line: console.print(line, style="dim"))
    except (DnsConfigError, EmbeddedDnsError) as exc:
        raise CommandError(str(exc)) from None
    removed = domain_store.account_domains(store, spec.name) - {d.name for d in spec.domains} if spec.name else set()
    return DnsContext(dns, {} if persist else fresh, removed)


def _progress(line: str) -> None:
    console.print(f"  {line}", style="dim", markup=False)


def _live(call, *args):
    """A live-DNS read of plan/apply; a server that cannot be asked is an error, not a guess."""
    from provision.rfc2136 import DnsUpdateError
    try:
        return call(*args)
    except DnsUpdateError as exc:
        raise CommandError(f"cannot read live DNS: {exc}") from None


def plan_dns(ctx: DnsContext) -> DnsPlan:
    """The DNS changes (Pulumi preview), with old and new values, and what apply would refuse."""
    from provision.program import DnsApplyError
    stack = ctx.dns.stack
    managed = stack.managed_names()
    refusals = _live(ctx.dns.refusals, managed)
    warnings = _live(ctx.dns.foreign_mx, managed)
    try:
        summary = stack.preview(progress=None)
    except DnsApplyError as exc:
        raise CommandError(str(exc)) from None
    steps = []
    for st in summary.steps:
        if st.op in ("same", "read"):
            continue
        values = _live(ctx.dns.drift_values, st.name) if st.op != "delete" else None
        old, new = values if values else (None, None)
        steps.append({"op": st.op, "name": st.name, "diffs": st.diffs,
                      "old": old if st.op != "create" else None, "new": new})
    return DnsPlan(steps, refusals, warnings)


def fingerprint(ctx: DnsContext, plan: DnsPlan) -> str:
    """What a saved plan's DNS half was computed from: the Pulumi checkpoint and, per changed record
    set, the operation and what live DNS held (not the new values: a new domain's keys are made at
    apply). Another apply, a hand edit or a drift since the plan changes it."""
    from mailcore.plan.planfile import digest
    return digest({"checkpoint": ctx.dns.stack.checkpoint_fingerprint(),
                   "steps": sorted([st["name"], st["op"], st["old"]] for st in plan.steps),  # Pulumi's order varies
                   "refusals": sorted(plan.refusals)})


def up(ctx: DnsContext) -> None:
    """Refuse before writing anything what the provider would refuse; skip Pulumi (and its
    checkpoint) when state and live DNS already match; else ``pulumi up``."""
    from provision.program import DnsApplyError
    stack = ctx.dns.stack
    managed = stack.managed_names()
    refusals = _live(ctx.dns.refusals, managed)
    if refusals:
        raise CommandError(f"refused: {refusals[0]}; nothing was published and the store is unchanged")
    for warning in _live(ctx.dns.foreign_mx, managed):
        console.print(f"[yellow]warning: {warning}[/]")
    started = time.perf_counter()
    if stack.unchanged() is not None:
        console.print("DNS: no changes (Pulumi state and live DNS match); nothing was written", style="bold")
        return
    console.print("Applying DNS through Pulumi", style="bold")
    try:
        result = stack.up(progress=_progress)
    except DnsApplyError as exc:
        raise CommandError(f"{exc}; the store is unchanged, fix the cause and run apply again") from None
    for warning in result.warnings:
        console.print(f"[yellow]warning: {warning}[/]")
    changes = {k: v for k, v in result.changes.items() if k != "same"}
    console.print(f"DNS applied in {time.perf_counter() - started:.1f}s: "
                  + (", ".join(f"{v} {k}" for k, v in changes.items()) or "no changes"))


def also_drop_keys(ctx: DnsContext):
    def write(conn, now):
        return domain_store.drop_keys(conn, ctx.removed)
    return write


def unlock(box: SecretBox, force: bool = False) -> int:
    """``invoke dns.unlock``: clear what an interrupted apply left in the Pulumi state (stale locks,
    orphaned provider processes, pending operations); ``force`` also removes live-looking locks."""
    from provision import stackstate
    from provision.program import DnsApplyError, DnsStack

    stack = DnsStack(state_dir(), lambda: None, passphrase=box.derived_secret("pulumi-passphrase"))
    try:
        done = stack.recover(_progress, force=force)
    except DnsApplyError as exc:
        raise CommandError(str(exc)) from None
    left = stackstate.lock_files(stack.root / "backend", stack.project, stack.stack_name)
    for lock in left:
        console.print(f"[yellow]still locked by {lock.describe()}: that run is alive or ran on another host; "
                      "wait for it, or pass --force once you know it has ended[/]")
    if not done and not left:
        console.print("The DNS stack holds no lock and no pending operation; nothing to do.")
    return 2 if left else 0


def verify(ctx: DnsContext, store, now) -> int:
    """Check every record, print expected vs found, store each domain's status; exit 0 when all verified."""
    from provision.verify import VERIFIED, drift
    before = domain_store.previous_status(store)
    results, errors = ctx.dns.verify()
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
    for domain, why in errors.items():  # the server, not the domain, failed: keep the last status
        kept = before.get(domain, (None, None))[0] or "not verified yet"
        console.print(f"[bold red]error: cannot verify {escape(domain)}: {escape(why)}; its status stays {kept}[/]")
    ok = sum(v.status == VERIFIED for v in results)
    total = len(results) + len(errors)
    console.print(f"Verified {ok} of {total} domain(s)" + ("" if ok == total else
                  "; run `invoke apply` to repair what the config manages" if not errors else
                  "; fix the DNS server or its TSIG key and run verify again"), style="bold")
    return 0 if ok == total else 2
