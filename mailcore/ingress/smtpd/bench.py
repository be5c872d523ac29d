"""SMTP submission throughput: the mail core's listener against a bare aiosmtpd server, same run.

Both servers run on this process's event loop with the same TLS mode and AUTH on every session;
the bare one accepts any credentials and discards each message. The clients (smtplib, one thread
per concurrent session) run in a separate process, so their CPU is not charged to the server.
Each concurrent worker opens sessions one after another until the run's messages are sent:
`per_session` messages in each session (1: connect + TLS + AUTH per message; 10: amortised).
A warm-up session runs first against each server (the first AUTH pays scrypt; later ones hit
the catalog's memo, as a steady-state client does).

`measure()` is the bounded function `invoke bench` calls with the real cleanup as submitter and
the RCPT check `invoke serve` installs (the invalid-address base);
`run_example()` builds a throwaway store with one sender (its domain holding a 2048-bit DKIM key,
so every message is signed as in production) so it runs anywhere.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import smtplib
import ssl
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from aiosmtpd.smtp import SMTP, AuthResult

from mailcore.account.catalog import Catalog
from mailcore.cleanup.submission import Submission, SubmitResult, Submitter

from .protocol import SubmissionSession
from .server import SmtpServer
from .settings import SmtpSettings
from .tls import self_signed_certificate, server_context

SENDER, PASSWORD, REGION = "bench@mail.bench.example", "Bench2026Pass", "cn-hangzhou"


def _message(sender: str, size: int) -> bytes:
    head = f"From: <{sender}>\r\nTo: <rcpt@example.org>\r\nSubject: bench\r\n\r\n".encode()
    line = b"x" * 76 + b"\r\n"
    body = (line * (size // len(line) + 1))[: max(0, size - len(head) - 2)]
    return head + body + b"\r\n"


# --- the client side (a child process) ---------------------------------------------------------

def _drive(port: int, tls_mode: str, cafile: str, user: str, password: str, workers: int, sessions_per_worker: int,
           per_session: int, size: int) -> dict:
    ctx = ssl.create_default_context(cafile=cafile)
    msg = _message(user, size)
    start = threading.Barrier(workers + 1)
    failures: list[str] = []

    def session() -> int:
        if tls_mode == "implicit":
            c = smtplib.SMTP_SSL("localhost", port, context=ctx, timeout=60)
        else:
            c = smtplib.SMTP("localhost", port, timeout=60)
            if tls_mode == "starttls":
                c.starttls(context=ctx)
        try:
            c.login(user, password)
            sent = 0
            for _ in range(per_session):
                refused = c.sendmail(user, ["rcpt@example.org"], msg)
                sent += not refused
            return sent
        finally:
            c.quit()

    def worker() -> int:
        start.wait()
        sent = 0
        for _ in range(sessions_per_worker):
            try:
                sent += session()
            except (smtplib.SMTPException, OSError) as exc:
                failures.append(f"{type(exc).__name__}: {exc}")
        return sent

    session()  # warm-up: the first AUTH pays for scrypt
    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(worker) for _ in range(workers)]
        start.wait()
        t0 = time.perf_counter()
        sent = sum(f.result() for f in futures)
        elapsed = time.perf_counter() - t0
    return {"sent": sent, "elapsed": elapsed, "failures": failures[:5], "failed": len(failures)}


async def _run_clients(port: int, tls_mode: str, cafile: Path, user: str, password: str, workers: int,
                       sessions_per_worker: int, per_session: int, size: int, timeout: float) -> dict:
    args = [sys.executable, "-m", "mailcore.ingress.smtpd.bench", "drive", "--port", str(port), "--tls", tls_mode,
            "--cafile", str(cafile), "--user", user, "--password", password, "--workers", str(workers),
            "--sessions-per-worker", str(sessions_per_worker), "--per-session", str(per_session), "--bytes", str(size)]
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise RuntimeError(f"smtp bench clients did not finish within {timeout:.0f}s") from None
    if proc.returncode != 0:
        raise RuntimeError(f"smtp bench clients failed: {err.decode(errors='replace').strip()[-2000:]}")
    return json.loads(out)


# --- the bare baseline ---------------------------------------------------------------------------

class _BareSMTP(SMTP):
    def _create_session(self):
        return SubmissionSession(self.loop)  # aiosmtpd's logs a deprecation warning per AUTH


class _Discard:
    async def handle_DATA(self, server, session, envelope) -> str:
        return "250 OK"


def _accept_any(server, session, envelope, mechanism, auth_data) -> AuthResult:
    return AuthResult(success=True)


async def _start_bare(tls_mode: str, ctx: ssl.SSLContext | None, max_bytes: int) -> asyncio.Server:
    loop = asyncio.get_running_loop()

    def factory() -> SMTP:
        return _BareSMTP(_Discard(), hostname="localhost", data_size_limit=max_bytes, auth_required=True,
                    auth_require_tls=tls_mode == "starttls", authenticator=_accept_any,
                    tls_context=ctx if tls_mode == "starttls" else None, loop=loop)

    return await loop.create_server(factory, "127.0.0.1", 0, ssl=ctx if tls_mode == "implicit" else None)


# --- the measurement -----------------------------------------------------------------------------

async def measure(*, catalog: Catalog, submitter: Submitter, sender: str, password: str, region: str,
                  invalid_address=None,
                  concurrency: int = 20, per_session: tuple[int, ...] = (1, 10), messages: int = 2000,
                  message_bytes: int = 2048, tls_mode: str = "starttls", repeat: int = 3,
                  timeout: float = 300) -> dict:
    """msgs/s through SmtpServer(submitter) and through a bare aiosmtpd server, for each
    messages-per-session count; `messages` per run (rounded up to whole sessions per worker).
    The two servers take turns, `repeat` runs each, and each reports its median: a machine
    busy with something else slows both rather than one."""
    if tls_mode == "none":
        raise ValueError("bench with tls_mode 'none' would compare AUTH-less sessions; use starttls or implicit")
    with tempfile.TemporaryDirectory() as tmp:
        cert_pem, key_pem = self_signed_certificate("localhost")
        cafile, keyfile = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        cafile.write_bytes(cert_pem)
        keyfile.write_bytes(key_pem)
        ctx = server_context(cafile, keyfile)
        settings = SmtpSettings(region=region, tls_mode=tls_mode, max_message_bytes=max(message_bytes * 4, 1 << 20))
        ours = SmtpServer(settings, catalog=catalog, submitter=submitter, tls_context=ctx,
                          invalid_address=invalid_address)
        await ours.start()
        bare = await _start_bare(tls_mode, ctx, settings.max_message_bytes)
        bare_port = bare.sockets[0].getsockname()[1]
        runs = []
        try:
            for k in per_session:
                sessions_per_worker = max(1, -(-messages // (concurrency * k)))
                row = {"per_session": k, "messages": concurrency * sessions_per_worker * k}
                rates: dict[str, list[float]] = {"bare": [], "mailcore": []}
                for _ in range(repeat):
                    for name, port in (("bare", bare_port), ("mailcore", ours.port)):
                        r = await _run_clients(port, tls_mode, cafile, sender, password, concurrency,
                                               sessions_per_worker, k, message_bytes, timeout)
                        if r["failed"]:
                            raise RuntimeError(f"{name} server: {r['failed']} sessions failed, e.g. {r['failures'][0]}")
                        rates[name].append(r["sent"] / r["elapsed"])
                for name, values in rates.items():
                    row[f"{name}_msgs_per_s"] = statistics.median(values)
                row["ratio"] = row["mailcore_msgs_per_s"] / row["bare_msgs_per_s"]
                runs.append(row)
        finally:
            await ours.stop()
            bare.close()
            await bare.wait_closed()
    return {"concurrency": concurrency, "message_bytes": message_bytes, "tls": tls_mode, "runs": runs}


# --- a self-contained run ------------------------------------------------------------------------

class NullSubmitter:
    """Acknowledges without writing anything: measures smtpd alone, not a durable commit."""

    def __init__(self):
        self.count = 0

    async def submit(self, submission: Submission) -> SubmitResult:
        self.count += 1
        return SubmitResult(env_id=str(self.count), recipients=len(submission.recipients))


def _example_account(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "account.yaml").write_text("\n".join([
        "account: {name: smtp-bench}",
        f"regions: [{{id: {REGION}}}]",
        "dns_backends: {b: {kind: rfc2136, server: 127.0.0.1}}",
        f"domains: [{{name: mail.bench.example, region: {REGION}, dns: b, zone: bench.example}}]",
        f"senders: [{{address: {SENDER}, type: trigger, smtp_password: {{env: MAILCORE_BENCH_SMTP_PASSWORD}}}}]",
    ]) + "\n")


def run_example(submitter_factory: Callable[[object], Submitter] | None = None, **kwargs) -> dict:
    """measure() against a throwaway SQLite store holding one ready sender.
    `submitter_factory(store)` gives the submitter (default: NullSubmitter)."""
    import sqlalchemy as sa

    from mailcore.account.domains import save_keys
    from mailcore.delivery.invalid import InvalidBase
    from mailcore.plan import apply_config, secret_box
    from mailcore.spec import load_account
    from mailcore.store import open_store
    from mailcore.store import tables as t
    from mailcore.store.crypto import SecretBox, generate_master_key
    from provision.records import generate_domain_keys

    os.environ.setdefault("MAILCORE_MASTER_KEY", generate_master_key())
    os.environ["MAILCORE_BENCH_SMTP_PASSWORD"] = PASSWORD
    with tempfile.TemporaryDirectory() as tmp:
        _example_account(Path(tmp) / "config")
        loaded = load_account(Path(tmp) / "config")
        if not loaded.report.ok:
            raise RuntimeError("bench account does not validate: " + "; ".join(loaded.report.lines()))
        store = open_store(f"sqlite:///{tmp}/bench.db")
        try:
            apply_config(store, loaded, secret_box(loaded))
            now = datetime.now(timezone.utc)
            with store.transaction() as conn:  # ready to send: verified, past the R15 delay, no allow-list
                conn.execute(sa.update(t.domains).values(status="verified"))
                conn.execute(sa.update(t.senders).values(created_at=now - timedelta(days=1)))
                conn.execute(sa.update(t.accounts).values(allowlist_enabled=False))
                # a 2048-bit DKIM key as apply stores it: every message is signed, as in production
                keys = generate_domain_keys()
                save_keys(conn, SecretBox.from_env(), {"mail.bench.example": (
                    keys.ownership_token, "dm", keys.dkim_private_pem, keys.dkim_public_b64)}, now)
            submitter = submitter_factory(store) if submitter_factory else NullSubmitter()
            try:
                # the RCPT check as `invoke serve` makes it (mailcore.service): the invalid-address base
                return asyncio.run(measure(catalog=Catalog(store), submitter=submitter, sender=SENDER,
                                           password=PASSWORD, region=REGION, invalid_address=InvalidBase(store).check,
                                           **kwargs))
            finally:
                if hasattr(submitter, "close"):
                    submitter.close()
        finally:
            store.dispose()


def serve_submitter(store, *, process: bool = True):
    """The submitter `invoke serve` gives its listeners: cleanup in its own process (the
    default, `service.cleanup.process`), or in a thread of this one."""
    from mailcore.cleanup.process import cleanup_submitter
    from mailcore.store.crypto import SecretBox
    return cleanup_submitter(store, SecretBox.from_env(), process=process)


def format_result(result: dict) -> list[str]:
    out = []
    for r in result["runs"]:
        out.append(f"smtp submission, {result['concurrency']} sessions, {result['message_bytes']} B, "
                   f"{r['per_session']}/session, {result['tls']}: mailcore {r['mailcore_msgs_per_s']:.0f} msg/s, "
                   f"bare aiosmtpd {r['bare_msgs_per_s']:.0f} msg/s, ratio {r['ratio']:.2f} (target >= 0.5)")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mailcore.smtpd.bench")
    sub = parser.add_subparsers(dest="command")
    d = sub.add_parser("drive", help="(internal) the client side of one run; prints JSON")
    for name, typ in (("--port", int), ("--tls", str), ("--cafile", str), ("--user", str), ("--password", str),
                      ("--workers", int), ("--sessions-per-worker", int), ("--per-session", int), ("--bytes", int)):
        d.add_argument(name, type=typ, required=True)
    r = sub.add_parser("run", help="measure against a throwaway store with a submitter that writes nothing")
    r.add_argument("--messages", type=int, default=2000)
    r.add_argument("--tls", default="starttls")
    r.add_argument("--per-session", default="1,10", help="messages per session, comma-separated (default 1,10)")
    r.add_argument("--cleanup", action="store_true", help="submit through mailcore's cleanup (durable commits)")
    r.add_argument("--in-process", action="store_true", help="with --cleanup: cleanup in a thread, not its own process")
    args = parser.parse_args(argv)
    if args.command == "drive":
        print(json.dumps(_drive(args.port, args.tls, args.cafile, args.user, args.password, args.workers,
                                args.sessions_per_worker, args.per_session, args.bytes)))
        return 0
    factory, label = None, "NullSubmitter (no writes)"
    if getattr(args, "cleanup", False):
        in_process = args.in_process
        factory = lambda store: serve_submitter(store, process=not in_process)  # noqa: E731
        label = f"mailcore cleanup {'in a thread' if in_process else 'process'} (durable commit before each 250)"
    result = run_example(factory, messages=args.messages, tls_mode=args.tls,
                         per_session=tuple(int(k) for k in args.per_session.split(",")))
    print(f"submitter: {label}")
    print("\n".join(format_result(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
