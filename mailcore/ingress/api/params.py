"""Reading business parameters the way the SDKs encode them (DIRECTMAIL-API.md §0.5, §2.2).

Every value arrives as a string: ints as digits, booleans as Python's `True`/`False`, structured
values as JSON strings. Where an action puts a parameter (query or form body) varies by action
and SDK version, so a request's parameters are the union of both.
"""
from __future__ import annotations

import json
from typing import Any, Mapping

from .errors import ApiError

_BOOLS = {"true": True, "false": False}

# parameters that become one header line of the message: a line break (or NUL) in them could add
# headers, so they are refused with the parameter's own error (a test walks every row)
ONE_LINE: dict[str, tuple[str, dict]] = {
    "Subject": ("InvalidSubject.Malformed", {}),
    "FromAlias": ("InvalidFromAlias.Malformed", {}),
    "ReplyAddressAlias": ("InvalidParameter", {"Parameter": "ReplyAddressAlias"}),
    "AccountName": ("InvalidParameter", {"Parameter": "AccountName"}),
    "ReplyAddress": ("InvalidParameter", {"Parameter": "ReplyAddress"}),
    "TagName": ("InvalidParameter", {"Parameter": "TagName"}),
}


# what str.splitlines() (and so Python's email package) treats as a line break, and NUL
_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\x00")


def one_line(name: str, value: str | None) -> str | None:
    """`value`, refused with `name`'s ONE_LINE error when it holds a line break or NUL."""
    if value is not None and name in ONE_LINE and not _BREAKS.isdisjoint(value):
        code, fields = ONE_LINE[name]
        raise ApiError(code, "It must be one line: no line break (CR, LF, U+2028, ...) or NUL.", **fields)
    return value


class Params:
    def __init__(self, values: Mapping[str, str]):
        self.values = dict(values)

    def __contains__(self, name: str) -> bool:
        return self.values.get(name, "") != ""

    def str(self, name: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                raise ApiError.missing(name)
            return default
        if "\x00" in value:  # never meaningful, and PostgreSQL text cannot hold it
            raise ApiError.invalid(name, "It must not contain NUL characters.")
        return one_line(name, value)

    def int(self, name: str, default: int | None = None, *, required: bool = False, lo: int | None = None,
            hi: int | None = None) -> int | None:
        raw = self.str(name, required=required)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ApiError.invalid(name, f"Expected an integer, got {raw!r}.") from None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ApiError.invalid(name, f"Expected {lo}..{hi}, got {value}.")
        return value

    def bool(self, name: str, default: bool | None = None, *, required: bool = False) -> bool | None:
        raw = self.str(name, required=required)
        if raw is None:
            return default
        try:
            return _BOOLS[raw.strip().lower()]
        except KeyError:
            raise ApiError.invalid(name, f"Expected True or False, got {raw!r}.") from None

    def choice(self, name: str, choices: Mapping[str, Any], default: Any = None, *, required: bool = False) -> Any:
        raw = self.str(name, required=required)
        if raw is None:
            return default
        if raw not in choices:
            raise ApiError.invalid(name, f"Expected one of {', '.join(choices)}, got {raw!r}.")
        return choices[raw]

    def json(self, name: str, kind: type, default: Any = None) -> Any:
        raw = self.str(name)
        if raw is None:
            return default
        try:
            value = json.loads(raw)
        except ValueError:
            raise ApiError.invalid(name, "Expected a JSON string.") from None
        if not isinstance(value, kind):
            raise ApiError.invalid(name, f"Expected a JSON {'array' if kind is list else 'object'}.")
        return value

    def page(self, default_size: int, max_size: int = 100) -> tuple[int, int]:
        """(PageNo, PageSize), 1-based, validated."""
        return self.int("PageNo", 1, lo=1), self.int("PageSize", default_size, lo=1, hi=max_size)
