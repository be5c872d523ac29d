"""What the queue.* and send.* tasks do (operating the mail flow, as opposed to configuring it)."""
from __future__ import annotations

from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mailcore import jobs, queue
from mailcore.cleanup import Cleanup, utcnow
from mailcore.commands import EXIT_OK, CommandError, _store, console
from mailcore.spec import load_account
from mailcore.store.crypto import MasterKeyError, SecretBox
from mailcore.submit import SubmitRefused


def _account(config: str) -> str:
    name = load_account(Path(config)).spec.name
    if not name:
        raise CommandError(f"{config} declares no account; pass --config DIR")
    return name


def _refused(exc: SubmitRefused) -> CommandError:
    r = exc.refusal
    return CommandError(f"refused: {r.smtp[4:]} ({exc.detail}) [{exc.reason}, {r.requirement}]")


def _ids(ids: str | None) -> list[int] | None:
    if not ids or ids == "ALL":
        return None
    try:
        return [int(x) for x in ids.split(",")]
    except ValueError:
        raise CommandError(f"--ids takes comma-separated recipient ids or ALL, not {ids!r}") from None


def queue_list(store_url: str | None, state: str | None, limit: int) -> int:
    if state and state not in queue.STATES:
        raise CommandError(f"unknown state {state!r}; one of {', '.join(queue.STATES)}")
    store = _store(store_url)
    with store.engine.connect() as conn:
        rows, counts = queue.listing(conn, state, limit)
    table = Table(title="Queue: " + ", ".join(f"{s} {counts.get(s, 0)}" for s in queue.STATES), title_justify="left")
    for col in ("id", "env_id", "sender", "rcpt", "state", "attempts", "next attempt", "last reply"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r.id), r.env_id, r.sender, r.rcpt, r.state, str(r.attempts), f"{r.next_attempt_at:%Y-%m-%d %H:%M:%S}",
                      r.last_text or "")
    console.print(table)
    return EXIT_OK


def queue_move(action: str, store_url: str | None, ids: str | None) -> int:
    store = _store(store_url)
    fn = {"hold": queue.hold, "release": queue.release, "flush": queue.flush}[action]
    with store.transaction(immediate=True) as conn:
        n = fn(conn, _ids(ids), utcnow())
    console.print(f"queue.{action}: {n} recipient(s)")
    return EXIT_OK


def send_batch(config: str, store_url: str | None, receivers_list: str, template: str, sender: str, tag: str | None,
               address_type: str, tracking: bool) -> int:
    if address_type not in ("random", "sender"):
        raise CommandError("--address-type is random or sender (R29)")
    account = _account(config)
    store = _store(store_url)
    try:
        box = SecretBox.from_env()
    except MasterKeyError as exc:
        raise CommandError(str(exc)) from None
    cleanup = Cleanup(store, box=box)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task(f"queueing {receivers_list} x {template}", total=None)
            result = jobs.run_batch(cleanup, account, receivers_list=receivers_list, template=template, sender=sender,
                                    tag=tag, address_type=address_type, tracking=tracking,
                                    progress=lambda done, total: progress.update(task, completed=done, total=total))
    except SubmitRefused as exc:
        raise _refused(exc) from None
    finally:
        cleanup.close()
    console.print(f"batch queued: env_id {result.env_id}, {result.recipients} recipients")
    return EXIT_OK


def send_jobs(config: str, store_url: str | None, limit: int) -> int:
    account = _account(config)
    rows = jobs.list_jobs(_store(store_url), account, limit)
    table = Table(title=f"Batch jobs of {account}", title_justify="left")
    for col in ("id", "created", "status", "requests", "list", "template", "sender", "tag", "env_id"):
        table.add_column(col)
    for j in rows:
        table.add_row(str(j.id), f"{j.created_at:%Y-%m-%d %H:%M:%S}", j.status, str(j.request_count), j.receivers_list,
                      j.template, j.sender, j.tag or "", j.env_id or "")
    console.print(table)
    return EXIT_OK


def invalid_list(config: str, store_url: str | None, start: str | None, end: str | None, keyword: str | None,
                 export: str | None = None) -> int:
    from mailcore import invalid
    account = _account(config)
    try:
        lo, hi = invalid.parse_range(start, end, utcnow())
    except invalid.RangeError as exc:
        raise CommandError(str(exc)) from None
    rows = invalid.query(_store(store_url), account, lo, hi, keyword)
    if export:
        Path(export).write_text(invalid.to_csv(rows), encoding="utf-8")
        console.print(f"exported {len(rows)} invalid address(es) to {export}")
        return EXIT_OK
    table = Table(title=f"Invalid addresses of {account}, {lo:%Y-%m-%d} to {hi:%Y-%m-%d %H:%M} ({len(rows)})",
                  title_justify="left")
    for col in ("address", "added", "reason"):
        table.add_column(col)
    for r in rows:
        table.add_row(r.address, f"{r.added_at:%Y-%m-%d %H:%M:%S}", r.reason or "")
    console.print(table)
    return EXIT_OK


def notify_list(store_url: str | None, state: str | None, limit: int) -> int:
    from mailcore.notify.worker import listing
    store = _store(store_url)
    with store.transaction() as conn:
        rows = listing(conn, state, limit)
    table = Table(title=f"Notification deliveries ({len(rows)})", title_justify="left")
    for col in ("id", "state", "kind", "target", "event", "sender", "attempts", "last error"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["id"]), r["state"], r["kind"], r["target"], r["event"], r["sender"], str(r["attempts"]),
                      r["last_error"] or "")
    console.print(table)
    return EXIT_OK


def notify_retry(store_url: str | None, ids: str | None) -> int:
    from mailcore.notify.worker import retry
    store = _store(store_url)
    n = retry(store, _ids(ids), utcnow())
    console.print(f"notify.retry: {n} deliveries pending again")
    return EXIT_OK


def reply_to_verify(config: str, store_url: str | None, address: str) -> int:
    """Mail a sender's reply-to its verification link (R13), through cleanup like any send."""
    from datetime import datetime, timezone

    from mailcore import replyto
    from mailcore.catalog import Catalog
    spec = load_account(Path(config)).spec
    if not spec.name:
        raise CommandError(f"{config} declares no account; pass --config DIR")
    store = _store(store_url)
    sender = Catalog(store).sender(address)
    if sender is None or sender.account != spec.name:
        raise CommandError(f"{address} is not a sender of {spec.name}")
    api = next((li for li in spec.service.listeners if li.kind == "api" and li.region == sender.region), None)
    if api is None:
        raise CommandError(f"the link must point at the API, and {config} declares no api listener for {sender.region} "
                           "(service.listeners)")
    host = f"[{api.host}]" if ":" in api.host else api.host
    try:
        box = SecretBox.from_env()
        requested = replyto.request(store, spec.name, datetime.now(timezone.utc), f"http://{host}:{api.port}/",
                                    address=address)
    except MasterKeyError as exc:
        raise CommandError(str(exc)) from None
    except replyto.ReplyToError as exc:
        raise CommandError(f"{exc} [{exc.reason}, R13]") from None
    cleanup = Cleanup(store, box=box)
    try:
        result = cleanup.submit_sync(requested.submission)
    except SubmitRefused as exc:
        replyto.withdraw(store, requested)
        raise _refused(exc) from None
    finally:
        cleanup.close()
    console.print(f"verification mail queued (env_id {result.env_id}) to {requested.reply_to}; its link works for "
                  f"10 minutes, while `invoke serve` runs the API at {api.host}:{api.port}")
    return EXIT_OK
