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
