"""JSON Schema (draft 2020-12) validation of the merged account document."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from jsonschema import Draft202012Validator

from .issues import Issue
from .limits import LIMITS, describe

SCHEMA_PATH = Path(__file__).resolve().with_name("account.schema.json")  # config/schema/ links here (for editors)


@lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def validator() -> Draft202012Validator:
    return Draft202012Validator(schema())


def _leaves(error):
    """oneOf/anyOf/if-then wrap the useful errors; report the most specific ones."""
    if error.validator in ("oneOf", "anyOf") and error.context:
        return [error]
    if error.validator == "allOf" and error.context:
        out = []
        for sub in error.context:
            out.extend(_leaves(sub))
        return out
    return [error]


def _shown(value) -> str:
    """A value as a finding quotes it: at most one short line, whatever the file held."""
    r = repr(value)
    return r if len(r) <= 80 else f"{r[:60]}... ({len(r)} characters)"


def _message(error) -> tuple[str, str, bool]:
    """(message, validator id, points at a key?) for one jsonschema error."""
    sch = error.schema if isinstance(error.schema, dict) else {}
    limit_id = sch.get("x-limit")
    if limit_id in LIMITS and error.validator in ("maxItems", "maxLength"):
        n = len(error.instance)
        what = "declared" if isinstance(error.instance, list) else "characters"
        return f"{describe(limit_id)}; {n} {what}", limit_id, False
    if error.validator == "oneOf":
        options = [s.get("required") for s in error.validator_value if isinstance(s, dict)]
        if all(isinstance(o, list) and len(o) == 1 for o in options):
            names = " or ".join(f"'{o[0]}'" for o in options)
            return f"give exactly one of {names}", "schema", False
    if error.validator == "additionalProperties":
        allowed = ", ".join(sorted(k for k in sch.get("properties", {})))
        return f"unknown key '{{key}}' (allowed: {allowed})", "schema", True
    if error.validator == "required":
        return f"{error.message}; add it", "schema", False
    if error.validator == "enum":
        choices = ", ".join(repr(v) for v in error.validator_value)
        return f"{_shown(error.instance)} is not one of {choices}", "schema", False
    if error.validator == "pattern" and "description" in sch:
        return f"{_shown(error.instance)} does not match {error.validator_value!r}: {sch['description']}", "schema", False
    return error.message.replace(repr(error.instance), _shown(error.instance)), "schema", False


def check(data: dict) -> list[tuple[Issue, bool]]:
    """Schema findings, each with a flag saying whether the finding is about a mapping key."""
    out: list[tuple[Issue, bool]] = []
    for error in validator().iter_errors(data):
        for leaf in _leaves(error):
            message, vid, on_key = _message(leaf)
            path = tuple(leaf.absolute_path)
            if on_key and leaf.validator == "additionalProperties":
                for key in sorted(set(leaf.instance) - set(leaf.schema.get("properties", {}))):
                    out.append((Issue(path + (key,), message.format(key=key), vid), True))
                continue
            out.append((Issue(path, message, vid), on_key))
    return out
