"""Recipient list files (R17, R18): TXT or CSV, one recipient per line, comma-separated fields.

The first line may be a header naming each column's template variable, e.g.
`email{EAddr},name{UserName},nick{NickName}` (text around the braces is a label and ignored).
Without a header the columns are, in order: {EAddr},{UserName},{NickName},{Gender},{Birthday},{Mobile}.
Blank lines and lines starting with '#' are skipped. Findings point at the file's own line:col.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from .emails import email_error
from .files import FileRefused, read_capped
from .issues import ERROR, WARNING, Issue, Location
from .limits import TEMPLATE_VARIABLES, describe, limit

_VAR = re.compile(r"\{([A-Za-z]+)\}")
FIELDS = TEMPLATE_VARIABLES  # row tuples follow this order


@dataclass
class RecipientFile:
    path: Path
    rows: list[tuple] = field(default_factory=list)  # (EAddr, UserName, NickName, Gender, Birthday, Mobile)
    issues: list[Issue] = field(default_factory=list)
    digest: str = ""  # sha256 of the normalised rows, what the store compares
    lines: list[int] = field(default_factory=list)  # the file's line number of each row
    columns: tuple = ()  # the variables the file has a column for (the header's, or by position)
    header: bool = False  # the columns were named by a header line

    @property
    def addresses(self) -> list[str]:
        return [r[0] for r in self.rows]

    def empty_rows(self, variable: str) -> tuple[int, int | None]:
        """(how many rows leave `variable` empty, the file line of the first one). Empty is what
        the renderer fills in as "": no value, or no column for it."""
        idx = FIELDS.index(variable)
        if variable not in self.columns:
            return len(self.rows), (self.lines[0] if self.lines else None)
        empty = [i for i, r in enumerate(self.rows) if r[idx] is None]
        return len(empty), (self.lines[empty[0]] if empty else None)


def _split(line: str) -> list[tuple[str, int]]:
    """Fields with their 1-based column; CSV quoting ("a, b" and doubled "") is honoured."""
    if '"' not in line:
        out, col = [], 1
        for part in line.split(","):
            out.append((part.strip(), col + len(part) - len(part.lstrip())))
            col += len(part) + 1
        return out
    out, i, n = [], 0, len(line)
    while True:
        while i < n and line[i] in " \t":
            i += 1
        start = i
        if i < n and line[i] == '"':
            value, i = [], i + 1
            while i < n:
                if line[i] == '"':
                    if i + 1 < n and line[i + 1] == '"':
                        value.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                value.append(line[i])
                i += 1
            end = line.find(",", i)
            text = "".join(value) + (line[i:end] if end >= 0 else line[i:]).strip()
        else:
            end = line.find(",", i)
            text = (line[i:end] if end >= 0 else line[i:]).strip()
        out.append((text, start + 1))
        if end < 0:
            return out
        i = end + 1


def load_recipients(path: Path, list_path: tuple, *, root: Path | None = None, environ=None) -> RecipientFile:
    """Read and check one list file; `root` is the config directory it must be in (mailcore.spec.files)."""
    result = RecipientFile(path=path)
    file = str(path)

    def err(line: int, col: int, message: str, vid: str, severity: str = ERROR):
        result.issues.append(Issue(list_path + ("file",), message, vid, severity, Location(file, line, col)))

    try:
        text = read_capped(path, "recipients", root, environ).decode("utf-8-sig")
    except FileNotFoundError:
        result.issues.append(Issue(list_path + ("file",), f"recipient file {path} does not exist", "list-file"))
        return result
    except FileRefused as exc:
        result.issues.append(Issue(list_path + ("file",), str(exc), "list-file"))
        return result
    except UnicodeDecodeError as exc:  # the position only: never the bytes
        err(1, 1, f"cannot read recipient file as UTF-8 (byte {exc.start}); is it a recipient list?", "list-file")
        return result
    except OSError as exc:
        err(1, 1, f"cannot read recipient file: {exc.strerror}", "list-file")
        return result

    columns = list(range(len(FIELDS)))  # column index -> field index
    seen: dict[str, int] = {}
    max_rows = limit("max-list-rows")
    username_max, nickname_max = limit("username-length"), limit("nickname-length")
    header_done = False
    rows = result.rows
    width = 0  # without a header: the most fields a row has
    for lineno, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = _split(line)
        if not header_done:
            header_done = True
            names = [_VAR.search(f) for f, _ in fields]
            if any(names):
                columns = []
                for (f, col), m in zip(fields, names):
                    if not m or m.group(1) not in FIELDS:
                        err(lineno, col, f"header column '{f}' names no template variable; use one of "
                            + ", ".join("{%s}" % v for v in FIELDS), "list-header")
                        columns.append(None)
                    else:
                        columns.append(FIELDS.index(m.group(1)))
                if 0 not in columns:
                    err(lineno, 1, "the header has no {EAddr} column; the recipient address is required", "list-header")
                    return result
                result.header = True
                result.columns = tuple(FIELDS[c] for c in columns if c is not None)
                continue
        values: list = [None] * len(FIELDS)
        for i, (value, col) in enumerate(fields):
            idx = columns[i] if i < len(columns) else None
            if idx is None:
                if i >= len(columns):
                    err(lineno, col, f"more fields than columns ({len(columns)})", "list-row")
                    break
                continue
            values[idx] = value or None
        addr = values[0]
        addr_col = fields[columns.index(0)][1] if columns.index(0) < len(fields) else 1
        if not addr:
            err(lineno, addr_col, "missing recipient address {EAddr}", "list-row-email")
            continue
        why = email_error(addr)
        if why:
            shown = addr if len(addr) <= 80 else addr[:77] + "..."
            if not rows and not seen:
                err(lineno, addr_col, f"'{shown}' is neither a header nor a recipient address ({why}); is this a "
                    "recipient list? The rest of the file was not read", "list-row-email")
                break  # a key or a binary pointed at by mistake: its content is not echoed line by line
            err(lineno, addr_col, f"'{shown}' is not a valid address: {why}", "list-row-email")
            continue
        for fidx, max_len, vid in ((1, username_max, "username-length"), (2, nickname_max, "nickname-length")):
            v = values[fidx]
            if v is not None and len(v) > max_len:
                col = fields[columns.index(fidx)][1]
                err(lineno, col, f"{describe(vid)}; this one has {len(v)}", vid)
        key = addr.lower()
        if key in seen:
            err(lineno, addr_col, f"'{addr}' repeats line {seen[key]}; the repeat is ignored", "list-row-duplicate", WARNING)
            continue
        seen[key] = lineno
        rows.append(tuple(values))
        result.lines.append(lineno)
        width = max(width, len(fields))
        if len(rows) == max_rows + 1:
            err(lineno, 1, f"{describe('max-list-rows')}; this file has more", "max-list-rows")
    if not result.header:
        result.columns = FIELDS[:min(width, len(FIELDS))]
    digest = hashlib.sha256()
    for r in rows:
        digest.update("\x1f".join(v or "" for v in r).encode())
        digest.update(b"\x1e")
    result.digest = digest.hexdigest()
    return result
