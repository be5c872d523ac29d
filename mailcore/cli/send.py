"""`invoke send.*` and `reply-to.verify`: batch send jobs (R29) and the reply-to verification mail (R13), through cleanup."""
from __future__ import annotations

from pathlib import Path

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from mailcore.cleanup.submission import SubmitRefused
from mailcore.cleanup.writer import Cleanup
from mailcore.cli.common import (
    EXIT_OK,
    CommandError,
    account_name,
    console,
    refusal_error,
    store_at,
)
from mailcore.ingress import batch as jobs
from mailcore.spec import load_account
from mailcore.store.crypto import MasterKeyError, SecretBox


def send_batch(config: str, store_url: str | None, receivers_list: str, template: str, sender: str, tag: str | None,
               address_type: str, tracking: bool) -> int:
    if address_type not in ("random", "sender"):
        raise CommandError("--address-type is random or sender (R29)")
    account = account_name(config)
    store = store_at(store_url)
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
        raise refusal_error(exc) from None
    finally:
        cleanup.close()
    console.print(f"batch queued: env_id {result.env_id}, {result.recipients} recipients")
    return EXIT_OK


def send_jobs(config: str, store_url: str | None, limit: int) -> int:
    account = account_name(config)
    rows = jobs.list_jobs(store_at(store_url), account, limit)
    table = Table(title=f"Batch jobs of {account}", title_justify="left")
    for col in ("id", "created", "status", "requests", "list", "template", "sender", "tag", "env_id"):
        table.add_column(col)
    for j in rows:
        table.add_row(str(j.id), f"{j.created_at:%Y-%m-%d %H:%M:%S}", j.status, str(j.request_count), j.receivers_list,
                      j.template, j.sender, j.tag or "", j.env_id or "")
    console.print(table)
    return EXIT_OK


def send_details(config: str, store_url: str | None, start: str | None = None, end: str | None = None,
                 sender: str | None = None, rcpt: str | None = None, tag: str | None = None, result: str | None = None,
                 limit: int = 100, after: str | int | None = None) -> int:
    """Send details (R36) as the console shows them: each recipient of the account's accepted mail
    in a time range of at most 30 days (default: the last 30 days), oldest first, filtered by sender,
    recipient, tag and result; the same query as the API's SenderStatisticsDetailByParam."""
    from datetime import datetime, timezone

    from mailcore.account import send_details as details
    from mailcore.cli.queue import parse_time, positive_limit
    if result is not None and result not in details.SEND_RESULTS:
        raise CommandError(f"--result is one of {', '.join(details.SEND_RESULTS)}, not {result!r}")
    limit = positive_limit(limit)
    cursor = 0 if after in (None, "") else str(after).strip()  # a recipient id, from the previous page's caption
    if cursor and not cursor.isdigit():
        raise CommandError(f"--after takes the recipient id the previous page named, not {after!r}")
    cursor = int(cursor)
    hi = parse_time(end, "--end", end_of_day=True) or datetime.now(timezone.utc)
    lo = parse_time(start, "--start") or hi - details.MAX_RANGE
    if lo > hi:
        raise CommandError(f"--start ({lo:%Y-%m-%d %H:%M}) is after --end ({hi:%Y-%m-%d %H:%M})")
    if hi - lo > details.MAX_RANGE:
        raise CommandError(f"at most 30 days at a time (R36); {lo:%Y-%m-%d %H:%M} to {hi:%Y-%m-%d %H:%M} UTC is "
                           f"{(hi - lo).days} days: narrow --start/--end")
    account = account_name(config)
    with store_at(store_url).engine.connect() as conn:
        rows = details.query(conn, account, sender=sender, tag=tag, rcpt=rcpt,
                             status=None if result is None else details.SEND_RESULTS[result],
                             start=lo, end=hi, after_id=cursor, limit=limit)
    names = {code: name for name, code in details.SEND_RESULTS.items()}
    more = rows[limit]["id"] if len(rows) > limit else None
    table = Table(title=f"Send details of {account}, {lo:%Y-%m-%d %H:%M} to {hi:%Y-%m-%d %H:%M} UTC",
                  title_justify="left", caption_justify="left",
                  caption=f"{min(len(rows), limit)} recipient(s), oldest first"
                          + (f"; more with --after {more}" if more is not None else ""))
    for col in ("id", "env_id", "queued (UTC)", "sender", "rcpt", "subject", "tag", "result", "last reply"):
        table.add_column(col)
    for r in rows[:limit]:
        when = r["created_at"]
        when = when.astimezone(timezone.utc) if when.tzinfo else when
        outcome = names.get(r["status"], "") if r["status"] is not None else f"pending ({r['state']})"
        table.add_row(str(r["id"]), str(r["env_id"]), f"{when:%Y-%m-%d %H:%M:%S}", r["sender"], r["rcpt"],
                      r["subject"] or "", r["tag"] or "", outcome, r["last_text"] or "")
    console.print(table)
    return EXIT_OK


def reply_to_verify(config: str, store_url: str | None, address: str) -> int:
    """Mail a sender's reply-to its verification link (R13), through cleanup like any send."""
    from datetime import datetime, timezone

    from mailcore.account import replyto
    from mailcore.account.catalog import Catalog
    from mailcore.ingress.api.verifying import verification_submission
    spec = load_account(Path(config)).spec
    if not spec.name:
        raise CommandError(f"{config} declares no account; pass --config DIR")
    store = store_at(store_url)
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
        base = api.base_url or spec.service.base_url or \
            f"{'https' if api.tls == 'implicit' else 'http'}://{host}:{api.port}/"  # as `serve` links
        requested = replyto.request(store, spec.name, datetime.now(timezone.utc), base, address=address)
    except MasterKeyError as exc:
        raise CommandError(str(exc)) from None
    except replyto.ReplyToError as exc:
        raise CommandError(f"{exc} [{exc.reason}, R13]") from None
    cleanup = Cleanup(store, box=box)
    try:
        result = cleanup.submit_sync(verification_submission(spec.name, requested))
    except SubmitRefused as exc:
        replyto.withdraw(store, requested)
        raise refusal_error(exc) from None
    finally:
        cleanup.close()
    console.print(f"verification mail queued (env_id {result.env_id}) to {requested.reply_to}; its link works for "
                  f"10 minutes, while `invoke serve` runs the API at {api.host}:{api.port}")
    return EXIT_OK
