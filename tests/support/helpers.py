"""Small helpers shared by store tests."""
from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
import yaml

from mailcore.plan import apply_config, foreign_domains, make_plan, secret_box, utcnow
from mailcore.spec import load_account
from mailcore.store import tables as t


def edit_yaml(path: Path, fn) -> None:
    data = yaml.safe_load(path.read_text())
    fn(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def load(config: Path, store=None):
    loaded = load_account(config, foreign_domains=(lambda n: foreign_domains(store, n)) if store else None)
    assert loaded.report.ok, loaded.report.lines()
    return loaded


def apply(store, config: Path, now=None):
    loaded = load(config, store)
    return apply_config(store, loaded, secret_box(loaded), now=now)


def plan(store, config: Path, now=None):
    loaded = load(config, store)
    with store.transaction() as conn:
        p, _ = make_plan(conn, loaded, secret_box(loaded), now or utcnow())
    return p


def dump(store) -> dict:
    """Every row of every state table, for 'nothing changed' assertions (the apply lock's
    own row, created once per account, is not state)."""
    out = {}
    with store.engine.connect() as conn:
        for table in t.metadata.sorted_tables:
            if table is t.apply_locks:
                continue
            rows = conn.execute(sa.select(table).order_by(*table.primary_key.columns)).all()
            out[table.name] = [tuple(r) for r in rows]
    return out
