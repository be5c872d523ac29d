"""SingleSendMail and BatchSendMail: check the request as DirectMail does, build a `Submission`,
hand it to the submitter (cleanup) and answer with its EnvId only after it has been accepted.

Checks here are the ones the API reference attaches to these parameters (syntax, counts,
lengths); everything that needs the account's state (sender, quota, template approval, list,
tag, invalid-address base) is cleanup's decision, refused with a `SubmitRefused` that becomes
the REFUSALS table's API error.
"""
from __future__ import annotations

import re
from email.utils import formataddr

from starlette.concurrency import run_in_threadpool

from mailcore.spec.emails import address_error, email_error
from mailcore.cleanup.submission import Recipient, Submission, SubmitRefused, SubmitResult, ip_not_allowed

from .context import ActionContext
from .errors import ApiError
from .params import Params, one_line

MAX_TO = 100  # SingleSendMail ToAddress and BatchSendMail Receivers
MAX_SUBJECT = 256
MAX_FROM_ALIAS = 15
MAX_TEMPLATE_NAME = 30
MAX_HEADERS = 10
ADDRESS_TYPES = {"0": "random", "1": "sender"}  # R29
CLICK_TRACE = {"1": True, "0": False}
UNSUBSCRIBE_LINK_TYPES = {v: v for v in ("disabled", "default", "zh-cn", "en-us")}
UNSUBSCRIBE_FILTER_LEVELS = {v: v for v in ("disabled", "default", "mailfrom", "mailfrom_domain", "edm_id")}
STANDARD_HEADERS = {"message-id": "Message-ID", "list-unsubscribe": "List-Unsubscribe",
                    "list-unsubscribe-post": "List-Unsubscribe-Post"}
_TAG = re.compile(r"[A-Za-z0-9_-]{1,128}")
_HEADER_VALUE = re.compile(r"[^\r\n]*")
# TemplateData: a value is the recipient's data (mailcore.message.render escapes it for HTML and keeps
# it to one line in headers); these bounds keep what cannot be meant as data out of the queue
MAX_TEMPLATE_VALUE = 1000  # characters per value; mailcore.message.render.MAX_VARIABLE_CHARS
MAX_TEMPLATE_KEY = 64
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # C0 controls but TAB, CR, LF; and DEL
_CLIENT_TOKEN = re.compile(r"[!-~]{1,64}")


def _addresses(raw: str) -> list[str]:
    """ToAddress: comma-separated, at most 100, each a valid address (InvalidToAddress otherwise)."""
    out: list[str] = []
    seen: set[str] = set()
    for part in raw.split(","):
        addr = part.strip()
        if not addr:
            continue
        why = address_error(addr)  # UTF-8 addresses included (delivered over SMTPUTF8, RFC 6531)
        if why:
            raise ApiError("InvalidToAddress", f"{addr!r}: {why}")
        if addr.lower() not in seen:
            seen.add(addr.lower())
            out.append(addr)
    if not out:
        raise ApiError("InvalidToAddress", "No recipient address.")
    if len(out) > MAX_TO:
        raise ApiError("InvalidToAddress", f"{len(out)} addresses; at most {MAX_TO}.")
    return out


def _headers(p: Params) -> dict:
    """Headers: a JSON object of at most 10; Message-ID, List-Unsubscribe(-Post) or X-User-*."""
    raw = p.json("Headers", dict, {})
    if len(raw) > MAX_HEADERS:
        raise ApiError.invalid("Headers", f"{len(raw)} headers; at most {MAX_HEADERS}.")
    out = {}
    for name, value in raw.items():
        if not isinstance(value, str) or not _HEADER_VALUE.fullmatch(value):
            raise ApiError.invalid("Headers", f"The value of {name!r} must be a one-line string.")
        lowered = name.lower()
        if lowered in STANDARD_HEADERS:
            out[STANDARD_HEADERS[lowered]] = value
        elif lowered.startswith("x-user-") and re.fullmatch(r"[!-9;-~]+", name):
            out[name] = value
        else:
            raise ApiError.invalid("Headers", f"{name!r} may not be set; use Message-ID, List-Unsubscribe, "
                                              "List-Unsubscribe-Post or an X-User-* header.")
    return out


def _common(p: Params, headers: dict) -> dict:
    """Parameters SingleSendMail and BatchSendMail share."""
    tag = p.str("TagName")
    if tag is not None and not _TAG.fullmatch(tag):
        raise ApiError.invalid("TagName", "1-128 letters, digits, '_' or '-'.")
    p.choice("UnSubscribeLinkType", UNSUBSCRIBE_LINK_TYPES)
    p.choice("UnSubscribeFilterLevel", UNSUBSCRIBE_FILTER_LEVELS)
    reply = p.str("ReplyAddress")
    if reply is not None:
        why = email_error(reply)
        if why:
            raise ApiError.invalid("ReplyAddress", why)
        try:
            headers["Reply-To"] = formataddr((p.str("ReplyAddressAlias") or "", reply))
        except UnicodeEncodeError:  # formataddr writes ASCII addresses only
            raise ApiError.invalid("ReplyAddress", "The reply address must be ASCII.") from None
    return {"tag": tag, "tracking": p.choice("ClickTrace", CLICK_TRACE, False),
            "address_type": p.choice("AddressType", ADDRESS_TYPES, required=True), "headers": headers,
            "client_token": _client_token(p)}


def _client_token(p: Params) -> str | None:
    """ClientToken: a retry with the same token within 24 hours gets the first EnvId back
    (cleanup.idempotency). 1-64 printable ASCII characters, as Alibaba Cloud's ClientToken."""
    token = p.str("ClientToken")
    if token is not None and not _CLIENT_TOKEN.fullmatch(token):
        raise ApiError.invalid("ClientToken", "1-64 printable ASCII characters.")
    return token


def _unsupported(p: Params) -> None:
    if any(k.startswith("Attachments.") for k in p.values):
        raise ApiError.invalid("Attachments", "Attachments by URL are not supported by this service; send "
                                              "attachments over SMTP.")
    if "BccAddress" in p:
        raise ApiError.invalid("BccAddress", "BCC is not supported by this service yet.")


def _variables(name: str, data) -> dict:
    """Template variables: a flat object of strings (numbers are taken as their text)."""
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool)
                                             for v in data.values()):
        raise ApiError.invalid(name, "TemplateData must be an object of strings.")
    out = {str(k): str(v) for k, v in data.items()}
    for key, value in out.items():
        if len(key) > MAX_TEMPLATE_KEY or _CONTROL.search(key):
            raise ApiError.invalid(name, f"TemplateData names are at most {MAX_TEMPLATE_KEY} characters, "
                                         "without control characters.")
        if len(value) > MAX_TEMPLATE_VALUE:
            raise ApiError.invalid(name, f"TemplateData value of {key!r} is {len(value)} characters; "
                                         f"at most {MAX_TEMPLATE_VALUE}.")
        if _CONTROL.search(value):
            raise ApiError.invalid(name, f"TemplateData value of {key!r} holds a control character.")
    return out


def _alias(p: Params) -> str | None:
    alias = p.str("FromAlias")
    if alias is not None and len(alias) > MAX_FROM_ALIAS:
        raise ApiError("InvalidFromAlias.Malformed", f"{len(alias)} characters; at most {MAX_FROM_ALIAS}.")
    return alias


def single_submission(ctx: ActionContext, p: Params) -> tuple[Submission, int | None]:
    """The submission, and the id of the template it names (resolved by the caller: a store read)."""
    sender = _account_name(p)
    to = _addresses(p.str("ToAddress", required=True))
    subject = p.str("Subject", required=True)
    if len(subject) > MAX_SUBJECT:
        raise ApiError("InvalidSubject.Malformed", f"{len(subject)} characters; at most {MAX_SUBJECT}.")
    reply_to_sender = p.bool("ReplyToAddress", required=True)
    _unsupported(p)
    common = _common(p, _headers(p))
    template_id, variables = None, {}
    spec = p.json("Template", dict)
    if spec is not None:
        try:
            template_id = int(spec.get("TemplateId"))
        except (TypeError, ValueError):
            raise ApiError.invalid("Template", "TemplateId must be a template id.") from None
        variables = _variables("Template", spec.get("TemplateData"))
    html, text = p.str("HtmlBody"), p.str("TextBody")
    if template_id is None and html is None and text is None:
        raise ApiError("InvalidBody", "Give HtmlBody or TextBody.")
    return Submission(account=ctx.account, sender=sender, recipients=[Recipient(a, dict(variables)) for a in to],
                      source="api", region=ctx.region, client_ip=ctx.client_ip, subject=subject, html_body=html,
                      text_body=text, from_alias=_alias(p), reply_to_sender=reply_to_sender, **common), template_id


def _receivers(p: Params) -> list[Recipient]:
    raw = p.json("Receivers", list, [])
    out: list[Recipient] = []
    for item in raw:
        to = item.get("To") if isinstance(item, dict) else None
        to = [to] if isinstance(to, str) else to
        if not isinstance(to, list) or not all(isinstance(a, str) for a in to):
            raise ApiError.invalid("Receivers", 'Expected [{"To": ["a@example.org"], "TemplateData": {...}}].')
        data = _variables("Receivers", item.get("TemplateData"))
        out.extend(Recipient(a, dict(data)) for a in _addresses(",".join(to)))
    if len(out) > MAX_TO:
        raise ApiError("InvalidToAddress", f"{len(out)} recipients; at most {MAX_TO}.")
    return out


def _account_name(p: Params) -> str:
    """AccountName: the sender address; a malformed one is refused before any lookup."""
    sender = p.str("AccountName", required=True)
    why = address_error(sender)
    if why:
        raise ApiError.invalid("AccountName", why)
    return sender


def batch_submission(ctx: ActionContext, p: Params) -> Submission:
    sender = _account_name(p)
    common = _common(p, _headers(p))
    sub = Submission(account=ctx.account, sender=sender, recipients=[], source="api", region=ctx.region,
                     client_ip=ctx.client_ip, **common)
    # a named template wins over inline content, a named list over inline receivers (API reference)
    name = p.str("TemplateName")
    if name is not None:
        if len(name) > MAX_TEMPLATE_NAME:
            raise ApiError("InvalidTemplateName.Malformed", f"{len(name)} characters; at most {MAX_TEMPLATE_NAME}.")
        sub.template = name
    else:
        content = p.json("TemplateContent", dict)
        if content is None:
            raise ApiError.missing("TemplateName")
        fields = [content.get(k) for k in ("Subject", "HtmlBody", "TextBody", "Alias")]
        if not all(v is None or isinstance(v, str) for v in fields):
            raise ApiError.invalid("TemplateContent", "Subject, HtmlBody, TextBody and Alias are strings.")
        sub.subject, sub.html_body, sub.text_body, sub.from_alias = fields
        one_line("Subject", sub.subject), one_line("FromAlias", sub.from_alias)  # header lines: no CR/LF
        if not sub.subject or len(sub.subject) > MAX_SUBJECT:
            raise ApiError("InvalidSubject.Malformed", "TemplateContent needs a Subject of at most 256 characters.")
        if not (sub.html_body or sub.text_body):
            raise ApiError("InvalidBody", "TemplateContent needs HtmlBody or TextBody.")
        if sub.from_alias and len(sub.from_alias) > MAX_FROM_ALIAS:
            raise ApiError("InvalidFromAlias.Malformed")
    lst = p.str("ReceiversName")
    if lst is not None:
        sub.receivers_list = lst
    else:
        sub.recipients = _receivers(p)
        if not sub.recipients:
            raise ApiError("InvalidReceiverName.Malformed", "Give ReceiversName or Receivers.")
    return sub


async def _check_ip(ctx: ActionContext) -> None:
    """R28: with the account's allow-list on, only listed client addresses may send."""
    if not await ctx.ip_allowed((ctx.account, ctx.client_ip)):
        raise ApiError.from_refusal(ip_not_allowed(ctx.client_ip))


async def _submit(ctx: ActionContext, submission: Submission) -> dict:
    try:
        result: SubmitResult = await ctx.submitter.submit(submission)
    except SubmitRefused as refused:
        raise ApiError.from_refusal(refused) from None
    return {"EnvId": str(result.env_id)}


async def single_send_mail(ctx: ActionContext, p: Params) -> dict:
    await _check_ip(ctx)
    submission, template_id = single_submission(ctx, p)
    if template_id is not None:
        submission.template = await run_in_threadpool(ctx.queries.template_name, ctx.account, template_id)
        if submission.template is None:
            raise ApiError("InvalidTemplate.NotFound")
    return await _submit(ctx, submission)


async def batch_send_mail(ctx: ActionContext, p: Params) -> dict:
    await _check_ip(ctx)
    return await _submit(ctx, batch_submission(ctx, p))


SEND_ACTIONS = {"SingleSendMail": single_send_mail, "BatchSendMail": batch_send_mail}
