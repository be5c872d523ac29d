"""Reply-to verification over the API (R13): CheckReplyToMailAddress mails the sender's reply-to a
one-time ticket; ApproveReplyMailAddress, or the link in that mail, takes it back."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse

from mailcore import replyto
from mailcore.store import Store
from mailcore.submit import SubmitRefused

from .context import ActionContext
from .errors import ApiError
from .params import Params

# mailcore.replyto's reasons -> API error code (a test walks every row)
REASON_CODES = {
    "sender-unknown": "InvalidMailAddress.NotFound",
    "no-reply-to": "InvalidReplyAddress.NotFound",
    "too-soon": "Throttling.User",
    "ticket-unknown": "InvalidTicket",
    "ticket-expired": "InvalidTicket",
    "reply-to-changed": "InvalidTicket",
}


def _error(exc: replyto.ReplyToError) -> ApiError:
    return ApiError(REASON_CODES[exc.reason], str(exc))


class ReplyToDesk:
    """What the actions may do with reply-to verification, bound to the store and the clock."""

    def __init__(self, store: Store, clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.store, self.clock = store, clock

    def request(self, account: str, sender_id: int, link_base: str) -> replyto.Requested:
        return replyto.request(self.store, account, self.clock(), link_base, sender_id=sender_id)

    def withdraw(self, requested: replyto.Requested) -> None:
        replyto.withdraw(self.store, requested)

    def approve(self, ticket: str) -> tuple[str, str]:
        return replyto.approve(self.store, ticket, self.clock())


async def check_reply_to_mail_address(ctx: ActionContext, p: Params) -> dict:
    sender_id = p.int("MailAddressId", required=True)
    try:
        requested = await run_in_threadpool(ctx.reply_to.request, ctx.account, sender_id, ctx.base_url)
    except replyto.ReplyToError as exc:
        raise _error(exc) from None
    try:
        await ctx.submitter.submit(requested.submission)
    except Exception as exc:  # not sent: the ticket must not hold back the next request
        await run_in_threadpool(ctx.reply_to.withdraw, requested)
        if isinstance(exc, SubmitRefused):
            raise ApiError.from_refusal(exc) from None
        raise
    return {}


async def approve_reply_mail_address(ctx: ActionContext, p: Params) -> dict:
    ticket = p.str("Ticket", required=True)
    try:
        await run_in_threadpool(ctx.reply_to.approve, ticket)
    except replyto.ReplyToError as exc:
        raise _error(exc) from None
    return {}


REPLY_TO_ACTIONS = {"CheckReplyToMailAddress": check_reply_to_mail_address,
                    "ApproveReplyMailAddress": approve_reply_mail_address}


def approve_link(desk: ReplyToDesk):
    """The page the mailed link opens (no AccessKey: the ticket is the credential)."""
    async def page(request: Request) -> PlainTextResponse:
        try:
            sender, address = await run_in_threadpool(desk.approve, request.query_params.get("ticket", ""))
        except replyto.ReplyToError as exc:
            return PlainTextResponse(f"Not confirmed: {exc}.\n", status_code=400)
        return PlainTextResponse(f"Confirmed: replies to mail from {sender} now go to {address}.\n")
    return page
