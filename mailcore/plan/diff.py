"""A plan is a value: the changes that turn the store's state into the config's, plus refusals.

Printing, JSON and apply all read the same Plan, so what `plan` shows is what `apply` does.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .state import KINDS, RowSet

CREATE, UPDATE, DELETE = "create", "update", "delete"
SENSITIVE = "(sensitive)"


@dataclass
class FieldChange:
    field: str
    old: object
    new: object
    sensitive: bool = False

    def shown(self, value):
        if self.sensitive:
            return SENSITIVE if value is not None else None
        return value


@dataclass
class Change:
    action: str
    kind: str
    key: str
    fields: list[FieldChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    desired: dict | None = None  # the desired row (create/update), used by apply

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.key}"


@dataclass
class Plan:
    account: str
    changes: list[Change] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    account_exists: bool = True

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    def summary(self) -> dict[str, int]:
        out = {CREATE: 0, UPDATE: 0, DELETE: 0}
        for c in self.changes:
            out[c.action] += 1
        return out

    def of(self, action: str, kind: str) -> list[Change]:
        return [c for c in self.changes if c.action == action and c.kind == kind]


def _visible(row: dict) -> dict:
    return {k: v for k, v in row.items() if not k.startswith("_") and k != "content_digest"}


def _endpoints_shown(endpoints):
    return [f"{e['kind']}:{e['target']}" + (" (signed)" if e.get("signing_secret") else "") for e in endpoints or []]


def _field_changes(kind, old: dict, new: dict) -> list[FieldChange]:
    out = []
    for name in new:
        if name.startswith("_") or name == "content_digest":
            continue
        o, n = old.get(name), new[name]
        if o == n:
            continue
        if name == "endpoints":
            secrets_changed = [a.get("signing_secret") for a in o or []] != [b.get("signing_secret") for b in n or []]
            if _endpoints_shown(o) == _endpoints_shown(n) and secrets_changed:
                out.append(FieldChange("endpoint signing secrets", "x", "y", sensitive=True))
            else:
                out.append(FieldChange(name, _endpoints_shown(o), _endpoints_shown(n)))
            continue
        out.append(FieldChange(name, o, n, sensitive=name in kind.sensitive))
    return out


def _template_status(change: Change, old: dict | None, new: dict) -> None:
    """R20: new templates are drafts; a content change resets any review state to draft."""
    if old is None:
        new["_status"] = "draft"
        change.notes.append("starts as a draft: `invoke template.submit` then `template.approve` before it can send (R20)")
        return
    status = old.get("_status", "draft")
    if old.get("content_digest") != new["content_digest"] and status != "draft":
        change.fields.append(FieldChange("status", status, "draft"))
        change.notes.append(f"content changed: the {status} review no longer applies; submit it for review again (R20)")
        new["_status"] = "draft"
    else:
        new["_status"] = status


def compute(account: str, want: dict[str, dict[str, dict]], have: dict[str, dict[str, dict]],
            account_exists: bool = True) -> Plan:
    plan = Plan(account=account, account_exists=account_exists)
    creates_updates, deletes = [], []
    for kind in KINDS:
        w, h = want.get(kind.name, {}), have.get(kind.name, {})
        for key in w:
            if key not in h:
                c = Change(CREATE, kind.name, key, desired=w[key])
                for name, value in _visible(w[key]).items():
                    if name == "endpoints":
                        value = _endpoints_shown(value)
                    c.fields.append(FieldChange(name, None, value, sensitive=name in kind.sensitive))
                if kind.name == "template":
                    _template_status(c, None, w[key])
                creates_updates.append(c)
                continue
            c = Change(UPDATE, kind.name, key, _field_changes(kind, h[key], w[key]), desired=w[key])
            if kind.name == "template":
                _template_status(c, h[key], w[key])
            if kind.name == "recipient_list" and w[key]["rows"] != h[key]["rows"]:
                c.notes.append(_row_delta(h[key]["rows"], w[key]["rows"]))
            if c.fields:
                creates_updates.append(c)
        for key in h:
            if key not in w and kind.deletable:
                deletes.append(Change(DELETE, kind.name, key, [FieldChange(n, v, None, sensitive=n in kind.sensitive)
                                                                for n, v in _visible(h[key]).items()]))
    plan.changes = creates_updates + list(reversed(deletes))
    return plan


def _row_delta(old: RowSet, new: RowSet) -> str:
    before, after = set(old.rows), set(new.rows)
    old_addr = {r[0].lower() for r in before}
    new_addr = {r[0].lower() for r in after}
    added = len(new_addr - old_addr)
    removed = len(old_addr - new_addr)
    changed = len({r[0].lower() for r in after - before} & old_addr)
    return f"recipients: +{added} added, -{removed} removed, ~{changed} changed ({old.count} -> {new.count} rows)"
