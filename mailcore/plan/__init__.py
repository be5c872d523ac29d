"""Plan and apply: the store's state against one account's config (R1-R20, R22-R24, R28).

- state: the config and the store as comparable row sets
- diff: the Plan, a value (creates, updates, deletes per kind)
- apply: refusals (R4 domain with senders, R11 sender deletions per month, ...), the lock, and
  the writes in dependency order, in one transaction
- render: the plan as text, JSON and markdown (a pull-request comment)
- planfile: a saved plan (`plan --out`) and the fingerprints `apply FILE` checks (config, store, DNS)

May import: spec, store.
"""
from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa

from mailcore.spec import WARNING, Loaded
from mailcore.store import Store
from mailcore.store import tables as t
from mailcore.store.crypto import MasterKeyError, SecretBox

from . import state
from .apply import ApplyRefused, LockBusy, Writer, acquire_lock, check_refusals, ensure_lock_row
from .diff import CREATE, DELETE, UPDATE, Change, FieldChange, Plan, compute

__all__ = ["ApplyRefused", "ApplyResult", "LockBusy", "Plan", "Change", "FieldChange", "CREATE", "UPDATE", "DELETE",
           "foreign_domains", "make_plan", "apply_config", "secret_box", "actor"]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def actor() -> str:
    return os.environ.get("MAILCORE_ACTOR") or getpass.getuser()


def foreign_domains(store: Store, account_name: str | None) -> dict[str, str]:
    """Domains held by every other account in the store (for R6)."""
    q = sa.select(t.domains.c.name, t.accounts.c.name).join(t.accounts, t.domains.c.account_id == t.accounts.c.id)
    if account_name:
        q = q.where(t.accounts.c.name != account_name)
    with store.engine.connect() as conn:
        return {d: a for d, a in conn.execute(q)}


def secret_box(loaded: Loaded) -> SecretBox | None:
    """The master-key box, or None when neither the config nor the store needs one."""
    try:
        return SecretBox.from_env()
    except MasterKeyError:
        spec = loaded.spec
        needs = any(s.smtp_password for s in spec.senders) or spec.api_keys or any(
            e.signing_secret for r in spec.rules for e in r.endpoints)
        if needs:
            raise
        return None


def make_plan(conn, loaded: Loaded, box: SecretBox | None, now: datetime) -> tuple[Plan, int | None]:
    spec = loaded.spec
    want = state.desired(spec, loaded.secrets, box)
    account_id, have = state.current(conn, spec.name, box)
    plan = compute(spec.name, want, have, account_exists=account_id is not None)
    plan.warnings = loaded.report.lines(spec.root.parent, WARNING)
    check_refusals(conn, plan, account_id, spec.timezone, now)
    return plan, account_id


@dataclass
class ApplyResult:
    plan: Plan
    applied: bool


def apply_config(store: Store, loaded: Loaded, box: SecretBox | None, *, now: datetime | None = None,
                 who: str | None = None, also=None, expect=None) -> ApplyResult:
    """All or nothing: plan and apply inside one locked transaction. A plan without changes
    writes nothing; a refused plan raises ApplyRefused and leaves the store as it was.
    `also(conn, now) -> int` writes what travels with this apply (new domain keys) in the same
    transaction and says how many rows it wrote. `expect(conn)` runs once the lock is held, before
    anything is written, and raises to refuse (a saved plan whose store fingerprint moved)."""
    now = now or utcnow()
    name = f"apply:{loaded.spec.name}"
    ensure_lock_row(store, name)
    with store.transaction(immediate=True) as conn:
        acquire_lock(conn, store.dialect, name)
        if expect is not None:
            expect(conn)
        plan, account_id = make_plan(conn, loaded, box, now)
        if plan.refusals:
            raise ApplyRefused(plan.refusals[0])
        if plan.has_changes:
            account_id = Writer(conn, plan, box, now).run(account_id)
        extra = also(conn, now) if also else 0
        if not plan.has_changes and not extra:
            conn.rollback()
            return ApplyResult(plan, applied=False)
        conn.execute(sa.insert(t.applies).values(account_id=account_id, actor=who or actor(), at=now,
                                                 summary=plan.summary()))
    return ApplyResult(plan, applied=True)
