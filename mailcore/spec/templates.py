"""Templates against the recipient lists they can be sent to (R18, R19, R29).

A batch send is a recipient list x an approved template (R29) and nothing narrows which lists go
with which template, so every template is checked against every list. Variables are found with
the renderer's own pattern (limits.VARIABLE_PATTERN, what mailcore.message.render replaces), and
"empty" is what the renderer fills in as "": no value in the row, or no column for it.

- a variable a list cannot fill at all (no column for it, or empty in every row) is an error at the
  variable in the subject or body, naming the list and its columns;
- a variable some rows leave empty is a warning with their count and the first such row.

Each list's empty counts are computed once per variable any template uses, then every template is
checked against them: a full-size account (10 lists x 10,000 rows, 40 templates) costs milliseconds.
"""
from __future__ import annotations

from pathlib import Path

from .issues import WARNING, Issue, Location
from .limits import VARIABLE_PATTERN
from .source import locate_text
from .validators import validator


def _parts(t):
    """(what, text, path, body file or None, where the YAML value starts) of a template's subject and body."""
    yield f"subject of template '{t.name}'", t.subject, t.path + ("subject",), None, t.subject_at
    if t.body is not None:
        yield (f"body of template '{t.name}'", t.body, t.path + (("body_file",) if t.body_file else ("body",)),
               str(t.body_file) if t.body_file else None, t.body_at)


def _first_uses(text: str) -> dict[str, int]:
    """Variable -> offset of its first use; {EAddr} is every row's address and always filled."""
    first: dict[str, int] = {}
    for m in VARIABLE_PATTERN.finditer(text):
        if m.group(1) != "EAddr":
            first.setdefault(m.group(1), m.start())
    return first


def _shown(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except (ValueError, OSError):
        return str(path)


def _columns(data) -> str:
    names = ", ".join("{%s}" % c for c in data.columns)
    if data.header:
        return f"its columns: {names}"
    n = len(data.columns)
    return f"no header, its rows have {n} column{'s' if n != 1 else ''}: {names}"


@validator("template-lists")
def _template_lists(spec, ctx):
    lists = [lst for lst in spec.recipient_lists if lst.data is not None and (lst.data.rows or lst.data.header)]
    if not lists:
        return
    uses = [(t, part, _first_uses(part[1])) for t in spec.templates for part in _parts(t)]
    needed = set().union(*(first for _, _, first in uses)) if uses else set()
    empty = {(i, var): lst.data.empty_rows(var) for i, lst in enumerate(lists) for var in needed}
    for t, (what, text, path, file, base), first in uses:
        for var, offset in sorted(first.items(), key=lambda kv: kv[1]):
            missing, sparse = [], []
            for i, lst in enumerate(lists):
                data, rows = lst.data, len(lst.data.rows)
                count, line = empty[(i, var)]
                if var not in data.columns:
                    missing.append(f"list '{lst.name}' has no {{{var}}} column ({_columns(data)})")
                elif rows and count == rows:
                    missing.append(f"list '{lst.name}' leaves it empty in all {rows} rows")
                elif count:
                    sparse.append(f"{count} of {rows} rows of list '{lst.name}' leave it empty "
                                  f"(first: {_shown(lst.file, spec.root)}:{line})")
            if not (missing or sparse):
                continue
            if file:
                loc = Location(file, text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1)
            else:
                loc = locate_text(base, "{%s}" % var)
            if missing:
                yield Issue(path, f"{what} uses {{{var}}}, which a batch send to these lists cannot fill: "
                            + "; ".join(missing) + " (R18, R19)", "template-list-variable", location=loc)
            if sparse:
                yield Issue(path, f"{what} uses {{{var}}}: " + "; ".join(sparse)
                            + "; those recipients get it empty (R18)", "template-list-variable-empty", WARNING,
                            location=loc)
