"""Read a config directory's YAML files into one document, keeping file:line:col for every node.

Every `*.yaml`/`*.yml` file directly inside the directory is a mapping of top-level sections
(`account`, `domains`, ...); the files are merged into one account document. A section may
appear in one file only. Positions are kept per JSON path so findings can point at the source.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .files import FileRefused, read_capped
from .issues import Issue, Location

try:  # the C composer is several times faster on large files
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader

_constructor = yaml.SafeLoader("")


@dataclass
class SourceDoc:
    root: Path
    data: dict = field(default_factory=dict)
    value_at: dict[tuple, Location] = field(default_factory=dict)
    key_at: dict[tuple, Location] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)

    def locate(self, path: tuple, *, key: bool = False) -> Location:
        """The closest recorded position for `path` (walking up to the parent when needed)."""
        p = tuple(path)
        if key and p in self.key_at:
            return self.key_at[p]
        while p:
            if p in self.value_at:
                return self.value_at[p]
            p = p[:-1]
        first = self.files[0] if self.files else self.root
        return Location(str(first), 1, 1)

    def section_file(self, section: str) -> Path:
        loc = self.value_at.get((section,))
        return Path(loc.file) if loc else self.root

    def resolve_path(self, section: str, relative: str) -> Path:
        """A path written in a section's file, relative to that file's directory."""
        p = Path(relative).expanduser()
        return p if p.is_absolute() else self.section_file(section).parent / p


def locate_text(start: Location | None, needle: str) -> Location | None:
    """Where `needle` (text inside a scalar, e.g. a template variable) first occurs in the YAML file
    at or after `start`, the scalar's own position; `start` when the file no longer holds it."""
    if start is None:
        return None
    try:
        text = Path(start.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return start
    lines = text.split("\n")
    if start.line > len(lines):
        return start
    offset = sum(len(line) + 1 for line in lines[:start.line - 1]) + start.col - 1
    found = text.find(needle, offset)
    if found < 0:
        return start
    line = text.count("\n", 0, found) + 1
    return Location(start.file, line, found - (text.rfind("\n", 0, found) + 1) + 1)


def _loc(mark, file: str) -> Location:
    return Location(file, mark.line + 1, mark.column + 1)


def _convert(node, path: tuple, file: str, doc: SourceDoc):
    doc.value_at[path] = _loc(node.start_mark, file)
    if isinstance(node, yaml.MappingNode):
        out = {}
        for key_node, value_node in node.value:
            key = _constructor.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                key = str(key)
            child = path + (key,)
            if key in out:
                doc.issues.append(Issue(child, f"duplicate key '{key}' (first at line {doc.key_at[child].line})", "yaml-duplicate-key",
                                        location=_loc(key_node.start_mark, file)))
                continue
            doc.key_at[child] = _loc(key_node.start_mark, file)
            out[key] = _convert(value_node, child, file, doc)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, path + (i,), file, doc) for i, item in enumerate(node.value)]
    return _constructor.construct_object(node, deep=True)


ALIAS_MESSAGE = ("YAML anchors and aliases (&name, *name) are not accepted: a few lines of them can expand into a "
                 "huge or endless document; write the value out")


def _first_alias(text: str):
    """The mark of the first anchor or alias in `text`, or None (events only: nothing is expanded)."""
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            return event.start_mark
    return None


def config_files(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def load_source(root: Path) -> SourceDoc:
    root = Path(root)
    doc = SourceDoc(root=root)
    if not root.is_dir():
        doc.issues.append(Issue((), f"config directory '{root}' does not exist", "config-dir", location=Location(str(root), 1, 1)))
        return doc
    doc.files = config_files(root)
    if not doc.files:
        doc.issues.append(Issue((), f"no *.yaml files in '{root}'", "config-dir", location=Location(str(root), 1, 1)))
    for path in doc.files:
        file = str(path)
        try:
            text = read_capped(path, "config", root).decode("utf-8")
            alias = _first_alias(text)
            if alias is not None:
                doc.issues.append(Issue((), ALIAS_MESSAGE, "yaml-alias", location=_loc(alias, file)))
                continue
            node = yaml.compose(text, Loader=_Loader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            loc = _loc(mark, file) if mark else Location(file, 1, 1)
            problem = (exc.problem or "not YAML").splitlines()[0][:200]  # never the file's lines
            doc.issues.append(Issue((), f"YAML syntax: {problem}", "yaml-syntax", location=loc))
            continue
        except UnicodeDecodeError as exc:
            doc.issues.append(Issue((), f"cannot read file as UTF-8 (byte {exc.start}); is it a config file?", "yaml-syntax",
                                    location=Location(file, 1, 1)))
            continue
        except (OSError, FileRefused) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            doc.issues.append(Issue((), f"cannot read file: {why}", "yaml-syntax", location=Location(file, 1, 1)))
            continue
        if node is None:
            continue
        if not isinstance(node, yaml.MappingNode):
            doc.issues.append(Issue((), "a config file must be a mapping of sections (account:, domains:, ...)", "yaml-structure",
                                    location=_loc(node.start_mark, file)))
            continue
        for key_node, value_node in node.value:
            key = str(_constructor.construct_object(key_node, deep=True))
            if key in doc.data:
                first = doc.key_at[(key,)]
                doc.issues.append(Issue((key,), f"section '{key}' is already defined at {first}; keep each section in one file",
                                        "yaml-duplicate-section", location=_loc(key_node.start_mark, file)))
                continue
            doc.key_at[(key,)] = _loc(key_node.start_mark, file)
            doc.data[key] = _convert(value_node, (key,), file, doc)
    return doc
