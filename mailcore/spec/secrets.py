"""Secret references: `{env: NAME}` or `{file: PATH}`; values never live in git."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .files import FileRefused, read_capped


@dataclass(frozen=True)
class SecretRef:
    env: str | None = None
    file: Path | None = None
    root: Path | None = None  # the config directory a file must be in (see mailcore.spec.files)

    def describe(self) -> str:
        return f"environment variable {self.env}" if self.env else f"file {self.file}"

    def resolve(self, environ=os.environ) -> tuple[str | None, str | None]:
        """(value, None) or (None, why it could not be read, with the fix)."""
        if self.env:
            value = environ.get(self.env)
            if value is None or value == "":
                return None, f"environment variable {self.env} is not set; export it (or put it in .env) before running"
            return value, None
        try:
            value = read_capped(self.file, "secret", self.root, environ).decode("utf-8").strip()
        except FileRefused as exc:
            return None, str(exc)
        except UnicodeDecodeError:
            return None, f"secret file {self.file} is not UTF-8 text"
        except OSError as exc:
            return None, f"cannot read secret file {self.file}: {exc.strerror}; create it (outside git)"
        if not value:
            return None, f"secret file {self.file} is empty"
        return value, None


def parse_ref(raw, base_dir: Path, root: Path | None = None) -> SecretRef | None:
    """A `{env:}`/`{file:}` reference; a file is relative to `base_dir` and must be inside `root`."""
    if not isinstance(raw, dict):
        return None
    if isinstance(raw.get("env"), str):
        return SecretRef(env=raw["env"])
    if isinstance(raw.get("file"), str):
        p = Path(raw["file"]).expanduser()
        return SecretRef(file=p if p.is_absolute() else base_dir / p, root=root)
    return None
