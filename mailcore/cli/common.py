"""What every command shares: exit codes, the consoles, CommandError (a message with the fix, printed without a traceback), opening the store and loading the config."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from rich.console import Console

from mailcore.cleanup.submission import SubmitRefused
from mailcore.plan import foreign_domains, secret_box
from mailcore.spec import ERROR, WARNING, load_account
from mailcore.store import StoreError, open_store
from mailcore.store.crypto import MasterKeyError

EXIT_OK, EXIT_CHANGES, EXIT_ERROR = 0, 3, 2


# piped output (CI logs, tests) gets a wide fixed width instead of rich's 80 columns
_WIDTH = None if sys.stdout.isatty() else 200


console = Console(highlight=False, soft_wrap=True, width=_WIDTH)


err_console = Console(stderr=True, highlight=False, soft_wrap=True)


class CommandError(Exception):
    def __init__(self, message: str, code: int = EXIT_ERROR):
        super().__init__(message)
        self.code = code


def store_at(url: str | None):
    try:
        return open_store(url)
    except StoreError as exc:
        raise CommandError(str(exc)) from None


def load_config(config: str, store=None):
    root = Path(config)
    foreign = (lambda name: foreign_domains(store, name)) if store is not None else None
    loaded = load_account(root, foreign_domains=foreign)
    for line in loaded.report.lines(Path.cwd(), ERROR):
        err_console.print(line, markup=False)
    for line in loaded.report.lines(Path.cwd(), WARNING):
        console.print(line, style="yellow", markup=False)
    if not loaded.report.ok:
        n = len(loaded.report.errors)
        raise CommandError(f"{n} error{'s' * (n != 1)} in {root}; nothing was changed")
    return loaded


def config_box(loaded):
    try:
        return secret_box(loaded)
    except MasterKeyError as exc:
        raise CommandError(str(exc)) from None


def load_env_file(path: str = ".env") -> None:
    """Read KEY=VALUE lines into the environment without overriding what is already set."""
    if not path or not Path(path).exists():
        return
    p = Path(path)
    for line in p.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            k, _, v = line.partition("=")
            if not os.environ.get(k.strip()):
                os.environ[k.strip()] = v.strip().strip('"').strip("'")


def account_name(config: str) -> str:
    name = load_account(Path(config)).spec.name
    if not name:
        raise CommandError(f"{config} declares no account; pass --config DIR")
    return name


def refusal_error(exc: SubmitRefused) -> CommandError:
    r = exc.refusal
    return CommandError(f"refused: {r.smtp[4:]} ({exc.detail}) [{exc.reason}, {r.requirement}]")


def parse_ids(ids: str | None) -> list[int] | None:
    if not ids or ids == "ALL":
        return None
    try:
        return [int(x) for x in ids.split(",")]
    except ValueError:
        raise CommandError(f"--ids takes comma-separated recipient ids or ALL, not {ids!r}") from None
