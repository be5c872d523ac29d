"""`invoke bench`: each benchmark next to its target, measured in this invocation.

Config as code (issue 2): validate + plan of a full-size account (5 domains, 10 senders,
10 lists of 10,000 rows, 40 templates), with the share spent loading recipient files.
DNS (issue 3): a no-change plan of 5 domains next to a bare Pulumi preview. Ingress (issue 4): SMTP
submission next to a bare aiosmtpd; SingleSendMail through the official SDK.
Delivery (issue 5): 10,000 queued messages to smtp-sink, mailcore vs Postfix in the same run,
and one BatchSendMail over 10,000 rows to the last delivery (tests/bench_delivery.py).
"""
from __future__ import annotations

import json
import os
import statistics
import sys
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

# piped (CI logs, `| tee`): a wide fixed width instead of wrapping every cell at 80 columns
console = Console(width=None if sys.stdout.isatty() else 220)
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


def bench_dns() -> list[tuple]:
    """Issue 3: a no-change `invoke plan` for 5 domains next to a bare `pulumi preview` of an empty inline
    program, in this process; and the time spent outside Pulumi."""
    import shutil
    import subprocess
    import sys

    import yaml

    from mailcore.account import domains as domain_store
    from provision.account import AccountDns, DomainKeyInput
    from provision.program import DnsStack, empty_program
    from provision.pulumi_cli import ensure_pulumi
    from tests.support.dns import free_port
    from tests.support.store import EXAMPLE_ENV, ROOT

    t0 = time.perf_counter()
    bin_dir = ensure_pulumi(progress=lambda _m: None)
    warm_cli = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cfg = tmp / "config"
        shutil.copytree(ROOT / "config", cfg)
        d = yaml.safe_load((cfg / "domains.yaml").read_text())
        port = free_port()
        d["dns_backends"]["builtin"]["server"] = f"127.0.0.1:{port}"
        d["domains"] += [{"name": "shop.example.com", "region": "cn-hangzhou", "zone": "example.com", "dns": "builtin"},
                         {"name": "info.example.net", "region": "ap-southeast-1", "zone": "example.net", "dns": "builtin"}]
        (cfg / "domains.yaml").write_text(yaml.safe_dump(d, sort_keys=False))
        env = {**os.environ, **EXAMPLE_ENV, "MAILCORE_MASTER_KEY": generate_master_key(), "MAILCORE_ENV_FILE": "",
               "MAILCORE_STATE_DIR": str(tmp / "state")}
        url = f"sqlite:///{tmp}/bench.db"
        r = subprocess.run([sys.executable, "-m", "mailcore", "apply", "--config", str(cfg), "--store", url],
                           capture_output=True, text=True, env=env)
        if r.returncode:
            raise RuntimeError(r.stdout + r.stderr)
        saved = dict(os.environ)
        os.environ.update(env)
        try:
            store = open_store(url)
            box = __import__("mailcore.store.crypto", fromlist=["SecretBox"]).SecretBox.from_env()

            def plan_no_change():
                lo = load_account(cfg, foreign_domains=lambda n: foreign_domains(store, n))
                with store.transaction() as conn:
                    p, _ = make_plan(conn, lo, secret_box(lo), utcnow())
                keys = {k: DomainKeyInput(v.token, v.selector, v.dkim_public) for k, v in domain_store.load_keys(store).items()}
                dns = AccountDns(lo.spec, keys, tmp / "state", box.derived_secret("pulumi-passphrase"))
                summary = dns.stack.preview()
                assert not p.has_changes and all(st.op == "same" for st in summary.steps), summary.changes
                return dns

            dns = plan_no_change()
            bare = DnsStack(tmp / "bare", empty_program, passphrase="p", env={}, bin_dir=bin_dir)
            bare.up()
            plan = timed(plan_no_change, 5)
            bare_t = timed(lambda: bare.preview(shortcut=False), 5)
            through = timed(lambda: dns.stack.preview(shortcut=False), 3)
            store.dispose()
        finally:
            os.environ.clear()
            os.environ.update(saved)
            pid = tmp / "state" / "dns-builtin.pid"
            if pid.exists():
                subprocess.run(["kill", pid.read_text().strip()])
    return [("no-change invoke plan, 5 domains (store + DNS)", plan / bare_t, 1.5, "x bare preview",
             f"plan {plan:.2f}s vs bare `pulumi preview` of an empty program {bare_t:.2f}s; all of it outside Pulumi "
             f"(< 0.5s target); forcing the Pulumi preview: {through:.2f}s ({through / bare_t:.1f}x); "
             f"Pulumi CLI warm: {warm_cli:.2f}s")]


def bench_smtp() -> list[tuple]:
    """Issue 4: SMTP submission against mailcore (durable commit before each 250) and a bare aiosmtpd, same run."""
    from mailcore.ingress.smtpd.bench import run_example, serve_submitter
    os.environ.setdefault("MAILCORE_MASTER_KEY", generate_master_key())
    res = run_example(serve_submitter)  # as `invoke serve` runs it: cleanup in its own process
    return [(f"SMTP submission, {r['per_session']} msg/session, {res['concurrency']} sessions, 2 KB, {res['tls']}",
             r["ratio"], 0.5, "x of bare (at least)", f"mailcore {r['mailcore_msgs_per_s']:.0f} msg/s, "
             f"bare aiosmtpd {r['bare_msgs_per_s']:.0f} msg/s") for r in res["runs"]]


def bench_api() -> list[tuple]:
    """Issue 4: SingleSendMail through the official SDK's signing against the API, each request
    checked, DKIM-signed (2048-bit) and committed by the cleanup process before its answer, as
    `invoke serve` runs it; the API alone (a submitter that stores nothing) alongside."""
    import shutil

    import sqlalchemy as sa

    from mailcore.ingress.api.bench import bench_single_send
    from mailcore.ingress.smtpd.bench import serve_submitter
    from mailcore.store import tables as t
    from mailcore.store.crypto import SecretBox
    from provision.records import generate_domain_keys
    from tests.support.store import EXAMPLE_ENV, ROOT, make_ready
    saved = dict(os.environ)
    os.environ.update({**EXAMPLE_ENV, "MAILCORE_MASTER_KEY": generate_master_key()})
    try:
        with tempfile.TemporaryDirectory() as d:
            shutil.copytree(ROOT / "config", Path(d) / "config")
            store = open_store(f"sqlite:///{d}/store.db")
            make_ready(store, Path(d) / "config")
            keys = generate_domain_keys()
            with store.transaction() as conn:  # production-size DKIM keys
                conn.execute(sa.update(t.domain_keys).values(
                    dkim_private_enc=SecretBox.from_env().encrypt(keys.dkim_private_pem), dkim_public=keys.dkim_public_b64))
            args = (store, "LTAI5tExampleShop0001", EXAMPLE_ENV["DM_ACCESS_KEY_SECRET"])
            alone = bench_single_send(*args, client_ip="203.0.113.10")
            submitter = serve_submitter(store)
            try:
                result = bench_single_send(*args, client_ip="203.0.113.10", submitter=submitter)
            finally:
                submitter.close()
            store.dispose()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return [("SingleSendMail via the SDK, committed by cleanup (requests/s)", result.per_second, 300,
             "req/s (at least)", f"{result.line()}; the API alone (nothing stored): {alone.per_second:.0f} req/s, "
             f"p99 {alone.p99_ms:.1f} ms")]


def bench_delivery() -> list[tuple]:
    from tests.bench.delivery import BenchError, rows
    try:
        return rows()
    except BenchError as exc:
        console.print(f"[red]delivery: {exc}[/red]")
        return []


BENCHES = (("config: validate + plan of a full-size account", bench_config),
           ("DNS: no-change plan vs bare Pulumi preview", bench_dns),
           ("SMTP submission vs bare aiosmtpd", bench_smtp),
           ("API: SingleSendMail through the SDK", bench_api),
           ("delivery: 10,000 messages to smtp-sink vs Postfix; BatchSendMail over 10,000 rows", bench_delivery))


def main() -> int:
    table = Table(title="mailcore benchmarks", title_justify="left")
    for col in ("benchmark", "measured", "target", "verdict", "notes"):
        table.add_column(col)
    figures = []  # what --json / MAILCORE_BENCH_JSON writes, so runs can be compared
    only = os.environ.get("MAILCORE_BENCH")  # e.g. MAILCORE_BENCH=smtp runs the benchmarks whose name has "smtp"
    for title, fn in BENCHES:
        if only and only.lower() not in title.lower():
            continue
        with console.status(title):
            rows = fn()
        for name, value, target, unit, notes in rows:
            figures.append({"benchmark": title, "name": name, "value": value, "target": target, "unit": unit,
                            "met": None if target is None else _met(value, target, unit), "notes": notes})
            if target is None:  # reported only: the issue sets no target
                table.add_row(name, f"{value:.2f}{unit}", "-", "reported", notes)
            elif unit == "s":
                table.add_row(name, f"{value:.2f}s", f"< {target:.1f}s", f"{value / target:.2f} of target", notes)
            else:
                table.add_row(name, f"{value:.2f}", f"{target} {unit}", "met" if _met(value, target, unit) else "NOT met",
                              notes)
    console.print(table)
    out = Path(os.environ.get("MAILCORE_BENCH_JSON") or f"state/bench-{time.strftime('%Y%m%dT%H%M%S')}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cpus": os.cpu_count(),
                               "figures": figures}, indent=2) + "\n")
    console.print(f"figures written to {out}")
    return 0


def _met(value: float, target: float, unit: str) -> bool:
    return value >= target if "at least" in unit else value <= target


if __name__ == "__main__":
    raise SystemExit(main())
