"""The service's documented limits, one table. Schema keywords and semantic validators read it.

Each row: validator id -> (limit, unit, requirement id, what it bounds). The JSON Schema marks the
keyword that enforces a row with `"x-limit": "<id>"`; a test checks the two agree.
"""
from __future__ import annotations

import re
from typing import NamedTuple


class Limit(NamedTuple):
    value: int
    requirement: str
    text: str  # "at most {value} ..."


LIMITS: dict[str, Limit] = {
    "max-domains": Limit(5, "R4", "at most {value} sending domains per account"),
    "max-senders": Limit(10, "R11", "at most {value} sender addresses per account"),
    "max-sender-deletions-per-month": Limit(4, "R11", "at most {value} sender deletions per calendar month"),
    "max-tags": Limit(10, "R16", "at most {value} tags per account"),
    "max-lists": Limit(10, "R17", "at most {value} recipient lists per account"),
    "max-list-rows": Limit(10_000, "R17", "at most {value} addresses per recipient list"),
    "list-name-length": Limit(30, "R17", "a list name has at most {value} characters"),
    "list-alias-length": Limit(30, "R17", "a list alias address has fewer than {value} characters"),
    "list-description-length": Limit(50, "R17", "a list description has at most {value} characters"),
    "username-length": Limit(75, "R18", "{{UserName}} has at most {value} characters"),
    "nickname-length": Limit(25, "R18", "{{NickName}} has at most {value} characters"),
    "max-templates": Limit(40, "R19", "at most {value} templates per account"),
    "template-name-length": Limit(30, "R19", "a template name has at most {value} characters"),
    "template-subject-length": Limit(100, "R19", "a template subject has at most {value} characters"),
    "template-body-bytes": Limit(28 * 1024, "R19", "a template body has at most {value} bytes (28 KB)"),
    "template-nick-name-length": Limit(15, "R19", "a template sender name (FromAlias) has at most {value} characters"),
    "tag-name-length": Limit(50, "R16", "a tag name has at most {value} characters"),
    "max-rules-per-region": Limit(10, "R22", "at most {value} notification rules per region"),
    "max-endpoints-per-rule": Limit(5, "R22", "at most {value} endpoints per notification rule"),
    "max-allowlist-entries": Limit(10, "R28", "at most {value} IP allow-list entries"),
    "smtp-password-min-length": Limit(10, "R14", "an SMTP password has at least {value} characters"),
    "smtp-password-max-length": Limit(20, "R14", "an SMTP password has at most {value} characters"),
}

# The template variables a recipient list column or a template may use (R18, R19).
TEMPLATE_VARIABLES = ("EAddr", "UserName", "NickName", "Gender", "Birthday", "Mobile")
# A variable as the renderer replaces it (mailcore.message.render uses this pattern, so what
# validate checks against the recipient lists is what a send fills in): group 1 is its name.
VARIABLE_PATTERN = re.compile(r"\{(" + "|".join(TEMPLATE_VARIABLES) + r")\}")

EVENT_TYPES = ("Deliver:SendSuccessfully", "Deliver:SendFailed", "Deliver:Open", "Deliver:Click")


def limit(validator_id: str) -> int:
    return LIMITS[validator_id].value


def describe(validator_id: str) -> str:
    row = LIMITS[validator_id]
    return f"{row.text.format(value=row.value)} ({row.requirement})"
