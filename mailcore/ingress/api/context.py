"""What an action handler gets: the verified caller and the services it may use (never tables)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable

from mailcore.account.replyto import ReplyToDesk
from mailcore.cleanup.submission import Submitter

from .queries import ApiQueries


@dataclass(frozen=True)
class ActionContext:
    account: str  # the account owning the AccessKey that signed the request
    access_key_id: str
    client_ip: str
    region: str | None  # the region this endpoint serves (R1); None: any
    queries: ApiQueries
    submitter: Submitter
    ip_allowed: Callable[[tuple[str, str]], Awaitable[bool]]  # (account, ip) -> R28 verdict (cached)
    reply_to: ReplyToDesk | None = None  # reply-to verification (R13)
    base_url: str = ""  # how the caller reached this endpoint (links in mail point back here)
