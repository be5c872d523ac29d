"""`invoke bench`: each benchmark next to its target, measured in this invocation.

Config as code (issue 2): validate + plan of a full-size account (5 domains, 10 senders,
10 lists of 10,000 rows, 40 templates), with the share spent loading recipient files.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from mailcore.plan import apply_config, foreign_domains, make_plan, secret_box, utcnow
from mailcore.spec import load_account
from mailcore.spec.recipients import load_recipients
from mailcore.store import open_store
from mailcore.store.crypto import generate_master_key

console = Console()
REPEAT = 3


def write_full_account(root: Path) -> dict:
    env = {"MAILCORE_MASTER_KEY": generate_master_key()}
    (root / "lists").mkdir(parents=True)
    lines = ["account: {name: bench-shop}", "regions: [{id: cn-hangzhou, tracking_host: t.example.org}]",
             "dns_backends: {b: {kind: rfc2136, server: 127.0.0.1}}", "domains:"]
    lines += [f"  - {{name: m{i}.example.com, region: cn-hangzhou, dns: b, zone: example.com}}" for i in range(5)]
    lines.append("senders:")
    for i in range(10):
        lines.append(f"  - {{address: s{i}@m{i % 5}.example.com, type: {'batch' if i % 2 else 'trigger'}, "
                     f"smtp_password: {{env: PW{i}}}}}")
        env[f"PW{i}"] = f"Bench{i}Pass{i + 1}x"
    lines.append("recipient_lists:")
    for i in range(10):
        lines.append(f"  - {{name: list{i}, alias_address: l{i}@m0.example.com, file: lists/l{i}.csv}}")
        with open(root / "lists" / f"l{i}.csv", "w") as fh:
            fh.write("e{EAddr},n{UserName},k{NickName},g{Gender},b{Birthday},m{Mobile}\n")
            for r in range(10_000):
                fh.write(f"user{r}.l{i}@example{r % 97}.com,User Number {r},U{r},Mx,1990/01/{r % 28 + 1},1380000{r:04d}\n")
    lines.append("templates:")
    body = "<p>Hello {UserName} ({NickName}),</p>" + "<p>" + "lorem ipsum " * 1500 + "</p>"
    for i in range(40):
        lines.append(f"  - {{name: t{i}, subject: 'Offer {i} for {{UserName}}', body: '{body}'}}")
    (root / "account.yaml").write_text("\n".join(lines) + "\n")
    return env


def timed(fn, repeat=REPEAT):
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def bench_config() -> list[tuple]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "config"
        root.mkdir()
        env = write_full_account(root)
        os.environ.update(env)
        store = open_store(f"sqlite:///{tmp}/bench.db")
        loaded = load_account(root)
        assert loaded.report.ok, loaded.report.lines()[:5]
        box = secret_box(loaded)
        apply_config(store, loaded, box)

        def load_lists():
            for i in range(10):
                load_recipients(root / "lists" / f"l{i}.csv", ("recipient_lists", i))

        def validate_and_plan():
            lo = load_account(root, foreign_domains=lambda n: foreign_domains(store, n))
            with store.transaction() as conn:
                p, _ = make_plan(conn, lo, secret_box(lo), utcnow())
            assert not p.has_changes

        lists = timed(load_lists)
        total = timed(validate_and_plan)
        store.dispose()
        return [("validate + plan, full-size account (no changes)", total, 2.0, "s",
                 f"loading 100,000 recipient rows: {lists:.2f}s ({lists / total:.0%})")]


def main() -> int:
    table = Table(title="mailcore benchmarks", title_justify="left")
    for col in ("benchmark", "measured", "target", "ratio", "notes"):
        table.add_column(col)
    with console.status("config: validate + plan of a full-size account"):
        rows = bench_config()
    for name, value, target, unit, notes in rows:
        ratio = value / target
        table.add_row(name, f"{value:.2f}{unit}", f"< {target:.1f}{unit}", f"{ratio:.2f}x of target",
                      notes)
    console.print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
