"""Reply-to verification over the API (R13): CheckReplyToMailAddress mails the sender's reply-to a
one-time ticket; ApproveReplyMailAddress, or the link in that mail, takes it back.

CheckReplyToMailAddress sends mail, so the account's IP allow-list (R28) applies as to the send
actions. The link points at the configured base URL (`base_url` of the API listener or of
`service`), never at the Host header of the request that asked for it. Opening the link (GET)
changes nothing: the page shows a button that POSTs the ticket back, so a mail scanner or link
preview that fetches every URL cannot confirm an address on its owner's behalf."""
from __future__ import annotations

import html
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse

from mailcore.account import replyto
from mailcore.cleanup.submission import Recipient, Submission, SubmitRefused, ip_not_allowed

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
    if not await ctx.ip_allowed((ctx.account, ctx.client_ip)):  # R28: it sends mail
        raise ApiError.from_refusal(ip_not_allowed(ctx.client_ip))
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


MAX_FORM_BYTES = 4096  # the confirmation form holds one ticket

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><meta name="robots" content="noindex"><title>{title}</title></head>
<body><h1>{title}</h1><p>{text}</p>{form}</body></html>
"""
_FORM = """<form method="post" action="{action}">
<input type="hidden" name="ticket" value="{ticket}">
<button type="submit">Confirm this reply-to address</button>
</form>"""


def _page(title: str, text: str, form: str = "", status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=html.escape(title), text=html.escape(text), form=form), status_code=status,
                        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                                 "X-Frame-Options": "DENY", "Content-Security-Policy": "default-src 'none'; "
                                 "form-action 'self'"})


def approve_link(desk: replyto.ReplyToDesk):
    """The page the mailed link opens (no AccessKey: the ticket is the credential). GET shows a
    button; the POST it sends confirms."""
    async def page(request: Request) -> HTMLResponse:
        if request.method == "GET":
            ticket = request.query_params.get("ticket", "")
            form = _FORM.format(action=html.escape(replyto.APPROVE_PATH), ticket=html.escape(ticket))
            return _page("Confirm a reply-to address",
                         "Press the button to let replies to this sender's mail come to your address.", form)
        declared = request.headers.get("content-length") or "0"
        if not declared.isdigit() or int(declared) > MAX_FORM_BYTES:
            return _page("Not confirmed", "The form is too large.", status=400)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                return _page("Not confirmed", "The form is too large.", status=400)
        ticket = dict(parse_qsl(body.decode("utf-8", "replace"))).get("ticket", "")
        try:
            sender, address = await run_in_threadpool(desk.approve, ticket)
        except replyto.ReplyToError as exc:
            return _page("Not confirmed", f"Not confirmed: {exc}.", status=400)
        return _page("Confirmed", f"Confirmed: replies to mail from {sender} now go to {address}.")
    return page
