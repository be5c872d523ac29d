"""TSIG keys for the built-in DNS server, passed without a command line: every local user can
read a process's argv (ps, /proc/<pid>/cmdline), so the secret comes from the environment
(`MAILCORE_DNS_KEYS`, readable by the same user only) or from a file readable by its owner only."""
from __future__ import annotations

import os
from pathlib import Path

from .rfc2136 import TsigKey


KEYS_ENV = "MAILCORE_DNS_KEYS"


def read_keys(key_file: Path | None, environ=None) -> list[TsigKey]:
    """The TSIG keys from --key-file and MAILCORE_DNS_KEYS; raises ValueError with the reason."""
    environ = os.environ if environ is None else environ
    texts = []
    if key_file is not None:
        try:
            mode = key_file.stat().st_mode
        except OSError as exc:
            raise ValueError(f"cannot read --key-file {key_file}: {exc.strerror}") from None
        if mode & 0o077:
            raise ValueError(f"--key-file {key_file} is readable by others (mode {mode & 0o777:o}); chmod 600 it")
        texts.append(key_file.read_text(encoding="utf-8"))
    texts.append(environ.get(KEYS_ENV, ""))
    keys = []
    for item in " ".join(texts).split():
        if item.count(":") < 2 or not all(item.split(":", 2)):
            raise ValueError(f"a TSIG key must be NAME:ALGORITHM:SECRET (in {KEYS_ENV} or --key-file)")
        keys.append(TsigKey.parse(item))
    return keys
