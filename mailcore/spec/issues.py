"""Validation findings and how they are reported (GCC style: file:line:col: path: message [id])."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True, order=True)
class Location:
    file: str
    line: int  # 1-based
    col: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Issue:
    """One finding. `path` is the JSON path inside the merged account document."""

    path: tuple
    message: str
    validator: str
    severity: str = ERROR
    location: Location | None = None  # set directly for findings outside YAML (recipient files)

    @property
    def dotted_path(self) -> str:
        return format_path(self.path)


def format_path(path: Iterable) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<root>"


@dataclass
class Report:
    """All findings for one config directory, located and sorted."""

    issues: list[tuple[Location, Issue]] = field(default_factory=list)

    @property
    def errors(self) -> list[tuple[Location, Issue]]:
        return [(loc, i) for loc, i in self.issues if i.severity == ERROR]

    @property
    def warnings(self) -> list[tuple[Location, Issue]]:
        return [(loc, i) for loc, i in self.issues if i.severity == WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors

    def lines(self, relative_to: Path | None = None, severity: str | None = None) -> list[str]:
        """The printed findings, sorted; `severity` keeps only errors or only warnings."""
        out = []
        for loc, issue in self.issues:
            if severity is not None and issue.severity != severity:
                continue
            file = loc.file
            if relative_to is not None:
                try:
                    file = str(Path(file).resolve().relative_to(relative_to.resolve()))
                except ValueError:
                    pass
            prefix = "" if issue.severity == ERROR else "warning: "
            out.append(f"{file}:{loc.line}:{loc.col}: {prefix}{issue.dotted_path}: {issue.message} [{issue.validator}]")
        return out
