"""The account's desired state: load a config directory, validate it, report every finding at once.

- source: YAML with file:line:col on every node; schema: the JSON Schema; model: the typed spec
- validators: the semantic checks (limits R4, R11, R16-R19, R22, R28; R5/R6 domain rules; R14)
- limits: every numeric limit of the guide as one table; recipients: list files (R17, R18)
- templates: every template against every recipient list it can be sent to (R18, R19, R29)
- emails, secrets, issues: addresses, `{env:}`/`{file:}` references, the error report

Imports nothing of mailcore's: every other package may import it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from . import schema
from .issues import ERROR, WARNING, Issue, Location, Report
from .model import AccountSpec, build_spec
from .source import SourceDoc, load_source
from .validators import Context, run_all
from . import webhooks  # noqa: E402,F401  (registers the webhook-target validator)
from . import templates  # noqa: E402,F401  (registers the template-lists validator)

__all__ = ["Loaded", "load_account", "AccountSpec", "Issue", "Location", "Report", "ERROR", "WARNING"]


@dataclass
class Loaded:
    spec: AccountSpec
    report: Report
    source: SourceDoc
    secrets: dict  # ("sender", address) / ("api_key", id) -> resolved secret value


def load_account(root: Path | str, *, environ: Mapping[str, str] | None = None,
                 foreign_domains: Mapping[str, str] | Callable[[str | None], Mapping[str, str]] | None = None) -> Loaded:
    """Load and validate one account's config directory. Never raises for bad input.

    `foreign_domains` maps the domains of every other account to its owner (R6); pass a callable
    to have it computed once the account's name is known."""
    environ = os.environ if environ is None else environ
    doc = load_source(Path(root))
    issues: list[tuple[Issue, bool]] = [(i, False) for i in doc.issues]
    issues += schema.check(doc.data)
    spec = build_spec(doc, environ)
    if callable(foreign_domains):
        foreign_domains = foreign_domains(spec.name)
    ctx = Context(environ=environ, foreign_domains=foreign_domains or {})
    issues += [(i, False) for i in run_all(spec, ctx)]
    located = []
    seen = set()
    for issue, on_key in issues:
        loc = issue.location or doc.locate(issue.path, key=on_key)
        key = (loc, issue.message, issue.validator)
        if key not in seen:
            seen.add(key)
            located.append((loc, issue))
    located.sort(key=lambda pair: (pair[0].file, pair[0].line, pair[0].col, pair[1].validator, pair[1].message))
    return Loaded(spec, Report(located), doc, ctx.secrets)
