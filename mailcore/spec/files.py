"""Files a config directory points at: where they may be and how large they may be.

Every file the loader reads (a config YAML, a template `body_file`, a recipient list, a `{file:}`
secret) is read through `read_capped`, which refuses a path outside the config directory (after
resolving symlinks) and a file larger than its kind's cap in `FILE_CAPS`, without reading it.

Files outside the config directory: `MAILCORE_ALLOW_OUTSIDE_CONFIG` lists directories (separated
by ':') that such files may also come from, e.g. `/run/secrets` for a secret manager's mount;
`/` allows any path.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

ALLOW_ENV = "MAILCORE_ALLOW_OUTSIDE_CONFIG"

# kind -> (largest file read, why)
FILE_CAPS: dict[str, tuple[int, str]] = {
    "config": (2 * 1024 * 1024, "a config YAML file; the largest real account is well under 100 KB"),
    "template": (1024 * 1024, "a template body_file; bodies may be 28 KB (R19), the cap leaves room to report by how much"),
    "recipients": (16 * 1024 * 1024, "a recipient file: 10,000 rows (R17) of six fields"),
    "secret": (64 * 1024, "a {file:} secret: a password, an AccessKey secret or a TSIG key"),
}


class FileRefused(Exception):
    """Why a file is not read; the message names the file and the fix, never its content."""


def allowed_roots(root: Path, environ: Mapping[str, str] | None = None) -> list[Path]:
    environ = os.environ if environ is None else environ
    extra = [Path(p).expanduser() for p in (environ.get(ALLOW_ENV) or "").split(os.pathsep) if p.strip()]
    return [Path(root).resolve(), *(p.resolve() for p in extra)]


def check_inside(path: Path, root: Path, environ: Mapping[str, str] | None = None) -> None:
    real = Path(path).resolve()
    for allowed in allowed_roots(root, environ):
        if real == allowed or allowed in real.parents:
            return
    raise FileRefused(f"{path} is outside the config directory {Path(root).resolve()}; move it inside, or list its "
                      f"directory in {ALLOW_ENV}")


def read_capped(path: Path, kind: str, root: Path | None = None, environ: Mapping[str, str] | None = None) -> bytes:
    """The file's bytes; raises FileRefused (outside the config directory, too large) or OSError."""
    if root is not None:
        check_inside(path, root, environ)
    cap = FILE_CAPS[kind][0]
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        data = f.read(cap + 1)
    if max(size, len(data)) > cap:
        raise FileRefused(f"{path} has {max(size, len(data))} bytes; {FILE_CAPS[kind][1]} may have at most {cap}")
    return data
