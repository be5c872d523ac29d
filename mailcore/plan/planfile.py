"""A saved plan (`plan --out FILE`, `apply FILE`): what was reviewed, and fingerprints of what it
was computed from, so that apply applies exactly that or refuses.

The file holds the plan as JSON (secrets masked) and three fingerprints:
- config: the desired state the config directory (and the secrets it resolves) describes,
- store: this account's rows in the store and its last apply,
- dns: the DNS stack's checkpoint and the DNS changes the plan showed (None for --no-dns).
`apply FILE` recomputes each and refuses, naming the first that moved, before it writes anything.
"""
from __future__ import annotations

import hashlib
import json
from datetime import date, datetime

import sqlalchemy as sa

from mailcore.store import tables as t

from . import state

FORMAT = "mailcore-plan/1"
# what moved -> what to do (one line each; the order is the order apply checks them)
STALE = {
    "format": "{path} is not a mailcore plan file ({why}); write one with `plan --out {path}`",
    "account": "{path} is the plan of account {planned}, not of {current}; run `plan --out` for this config",
    "dns_mode": "{path} was planned {planned}, apply runs {current}; plan and apply with the same --dns/--no-dns",
    "config": "the config changed since {path} was planned; run `plan --out` again and review the new plan",
    "store": "the store changed since {path} was planned (another apply or a hand edit); run `plan --out` again",
    "dns": "DNS changed since {path} was planned (live records or the Pulumi state); run `plan --out` again",
}


class StalePlan(Exception):
    """The plan file no longer describes what apply would do."""

    def __init__(self, what: str, **values):
        super().__init__(STALE[what].format(**values))
        self.what = what


def digest(value) -> str:
    """A stable sha256 of plain data (dict order, RowSets and datetimes made canonical)."""
    def plain(v):
        if isinstance(v, state.RowSet):
            return {"rows": v.count, "digest": v.digest}
        if isinstance(v, (datetime, date)):
            return v.isoformat()
        if isinstance(v, bytes):
            return hashlib.sha256(v).hexdigest()
        if isinstance(v, (set, frozenset)):
            return sorted(map(str, v))
        return str(v)

    text = json.dumps(value, sort_keys=True, default=plain, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def config_fingerprint(loaded, box) -> str:
    return digest(state.desired(loaded.spec, loaded.secrets, box))


def store_fingerprint(conn, account: str, box) -> str:
    account_id, have = state.current(conn, account, box)
    last = None
    if account_id is not None:
        last = conn.execute(sa.select(sa.func.max(t.applies.c.id)).where(t.applies.c.account_id == account_id)).scalar()
    return digest({"rows": have, "last_apply": last})


def write(path: str, plan_json: dict, *, account: str, dns: bool, fingerprints: dict) -> None:
    doc = {"format": FORMAT, "account": account, "dns": dns, "fingerprints": fingerprints, "plan": plan_json}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, ensure_ascii=False, default=str)
        f.write("\n")


def read(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as exc:
        raise StalePlan("format", path=path, why=exc.strerror or str(exc)) from None
    except ValueError:
        raise StalePlan("format", path=path, why="not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("fingerprints"), dict):
        raise StalePlan("format", path=path, why=f"no {FORMAT!r} header")
    return doc


def mode(dns: bool) -> str:
    return "with DNS" if dns else "with --no-dns"


def check(doc: dict, path: str, *, account: str, dns: bool, current: dict) -> None:
    """Refuse (StalePlan) when the file is not this account's or a fingerprint moved. ``current``
    holds the fingerprints recomputed now (only those known yet are compared)."""
    if doc.get("account") != account:
        raise StalePlan("account", path=path, planned=doc.get("account"), current=account)
    if bool(doc.get("dns")) != dns:
        raise StalePlan("dns_mode", path=path, planned=mode(bool(doc.get("dns"))), current=mode(dns))
    for what in ("config", "store", "dns"):
        if what in current and doc["fingerprints"].get(what) != current[what]:
            raise StalePlan(what, path=path)
