"""Reply-to verification over the API (R13): CheckReplyToMailAddress mails the sender's reply-to a
one-time ticket; ApproveReplyMailAddress, or the link in that mail, takes it back."""
from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse

from mailcore.account import replyto
from mailcore.cleanup.submission import Recipient, Submission, SubmitRefused

from .context import ActionContext
from .errors import ApiError
from .params import Params

# mailcore.account.replyto's reasons -> API error code (a test walks every row)
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


def verification_submission(account: str, requested: replyto.Requested) -> Submission:
    """The verification mail `replyto.request()` asked for, as a submission for cleanup."""
    return Submission(account=account, sender=requested.sender, recipients=[Recipient(requested.reply_to)],
                      source="api", subject=requested.subject, text_body=requested.text_body)


async def check_reply_to_mail_address(ctx: ActionContext, p: Params) -> dict:
    sender_id = p.int("MailAddressId", required=True)
    try:
        requested = await run_in_threadpool(ctx.reply_to.request, ctx.account, sender_id, ctx.base_url)
    except replyto.ReplyToError as exc:
        raise _error(exc) from None
    try:
        await ctx.submitter.submit(verification_submission(ctx.account, requested))
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


def approve_link(desk: replyto.ReplyToDesk):
    """The page the mailed link opens (no AccessKey: the ticket is the credential)."""
    async def page(request: Request) -> PlainTextResponse:
        try:
            sender, address = await run_in_threadpool(desk.approve, request.query_params.get("ticket", ""))
        except replyto.ReplyToError as exc:
            return PlainTextResponse(f"Not confirmed: {exc}.\n", status_code=400)
        return PlainTextResponse(f"Confirmed: replies to mail from {sender} now go to {address}.\n")
    return page
