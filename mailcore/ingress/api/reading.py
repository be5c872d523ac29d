"""Read actions: parameters in, store rows (from `queries`) out in the shapes the SDK models parse.

Field names, nesting (`data.domain[]` ...) and JSON types follow DIRECTMAIL-API.md §7 and the
models of alibabacloud-dm20151123: ids and most statuses are strings, counts and UTC times are
ints. Values this service does not have (ICP filing, dedicated IPs, config sets) are left out
rather than invented.
"""
from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

from cryptography.hazmat.primitives.serialization import load_der_public_key

from mailcore.account import replyto

from .context import ActionContext
from .errors import ApiError
from .params import Params

# store domain status (R9) -> DirectMail DomainStatus: 0 passed, 1 not passed, 4 usable but CNAME not passed
DOMAIN_STATUS = {"verified": "0", "usable": "4", "unverified": "1", "failed": "1"}
DOMAIN_STATUS_FILTER = {"0": ("verified", "usable"), "1": ("unverified", "failed")}  # QueryDomainByParam.Status
# template review (R20) -> TemplateStatus as the console numbers it
TEMPLATE_STATUS = {"draft": "0", "submitted": "0", "approved": "1", "rejected": "2"}
# batch job -> TaskStatus, and QueryTaskByParam.Status filters
TASK_STATUS = {"queuing": "0", "queued": "1", "failed": "2"}
TASK_STATUS_FILTER = {code: (status,) for status, code in TASK_STATUS.items()}
RECEIVER_COLUMNS = (("UserName", "user_name"), ("NickName", "nick_name"), ("Gender", "gender"),
                    ("Birthday", "birthday"), ("Mobile", "mobile"))
SEND_STATUS = {0: "0", 2: "2", 3: "3", 4: "4"}  # SenderStatisticsDetailByParam.Status (R25)
DETAIL_TIME = "%Y-%m-%d %H:%M"  # SenderStatisticsDetailByParam StartTime / EndTime
DETAIL_MAX_DAYS = 30


def _aware(dt: datetime | None) -> datetime | None:
    return None if dt is None else (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc))


def console_time(dt: datetime | None) -> str | None:
    """`2026-11-27T04:26Z`, the real service's CreateTime format."""
    return None if dt is None else _aware(dt).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


def utc_seconds(dt: datetime | None) -> int | None:
    return None if dt is None else int(_aware(dt).timestamp())


def _paged(page, page_no: int, page_size: int, key: str, items: list[dict]) -> dict:
    return {"TotalCount": page.total, "PageNumber": page_no, "PageSize": page_size, "data": {key: items}}


def _host(name: str, zone: str | None) -> str:
    """The domain's labels below its zone (R7): the host part of each record."""
    if zone and name.endswith("." + zone):
        return name[: -len(zone) - 1]
    return "@" if zone == name else name


# --- domains -------------------------------------------------------------------------------------

def query_domain_by_param(ctx: ActionContext, p: Params) -> dict:
    page_no, page_size = p.page(10)
    statuses = p.choice("Status", DOMAIN_STATUS_FILTER)
    page = ctx.queries.domains(ctx.account, p.str("KeyWord"), statuses, (page_no - 1) * page_size, page_size)
    items = []
    for d in page.rows:
        status = DOMAIN_STATUS.get(d["status"], "1")
        passed = "0" if d["status"] == "verified" else "1"
        items.append({"DomainId": str(d["id"]), "DomainName": d["name"], "DomainStatus": status,
                      "ConfirmStatus": "0" if d["status"] in ("verified", "usable") else "1",
                      "SpfAuthStatus": passed, "MxAuthStatus": passed, "CnameAuthStatus": passed,
                      "DomainRecord": d["name"], "CreateTime": console_time(d["created_at"]),
                      "UtcCreateTime": utc_seconds(d["created_at"])})
    return _paged(page, page_no, page_size, "domain", items)


def _domain(ctx: ActionContext, p: Params) -> dict:
    domain_id = p.int("DomainId", required=True)
    d = ctx.queries.domain(ctx.account, domain_id)
    if d is None:
        raise ApiError("InvalidDomainId.NotFound")
    return d


def _rsa_bits(public_b64: str | None) -> int | None:
    if not public_b64:
        return None
    try:
        return load_der_public_key(base64.b64decode(public_b64)).key_size
    except (ValueError, TypeError):
        return None


def desc_domain(ctx: ActionContext, p: Params) -> dict:
    d = _domain(ctx, p)
    host = _host(d["name"], d["zone"])
    sub = "" if host == "@" else f".{host}"
    verified = d["status"] == "verified"
    passed = "0" if verified else "1"
    spf_include = d["spf_include"] or ""
    dmarc = d["dmarc"] or "v=DMARC1;p=none"
    out = {
        "DomainId": str(d["id"]), "DomainName": d["name"], "DomainStatus": DOMAIN_STATUS.get(d["status"], "1"),
        "CreateTime": console_time(d["created_at"]), "TlDomainName": d["zone"] or d["name"],
        "HostRecord": f"aliyundm{sub}", "DomainType": d["ownership_token"] or "",
        "SpfRecord": f"include:{spf_include}" if spf_include else "",
        "SpfRecordV2": f"v=spf1 include:{spf_include} -all" if spf_include else "",
        "MxRecord": d["mx_host"] or "", "CnameRecord": f"dmtrace{sub}", "TracefRecord": d["tracking_host"] or "",
        "DmarcHostRecord": f"_dmarc{sub}", "DmarcRecord": dmarc,
        "DkimRR": f"{d['dkim_selector']}._domainkey{sub}" if d["dkim_selector"] else "",
        "DkimPublicKey": f"v=DKIM1; k=rsa; p={d['dkim_public']}" if d["dkim_public"] else "",
        "SpfAuthStatus": passed, "MxAuthStatus": passed, "DkimAuthStatus": passed,
        "CnameAuthStatus": passed if d["tracking"] else "1", "CnameConfirmStatus": passed if d["tracking"] else "1",
        "DmarcAuthStatus": 0 if verified else 1, "DefaultDomain": "0",
    }
    bits = _rsa_bits(d["dkim_public"])
    if bits:
        out["DkimRsaLength"] = bits
    return out


def check_domain(ctx: ActionContext, p: Params) -> dict:
    """The status the last verification wrote (verifying DNS is `invoke dns.verify`'s job)."""
    d = _domain(ctx, p)
    return {"DomainStatus": int(DOMAIN_STATUS.get(d["status"], "1"))}


# --- sender addresses ----------------------------------------------------------------------------


def query_mail_address_by_param(ctx: ActionContext, p: Params) -> dict:
    page_no, page_size = p.page(10)
    send_type = p.choice("Sendtype", {"batch": "batch", "trigger": "trigger"})
    page = ctx.queries.senders(ctx.account, p.str("KeyWord"), send_type, (page_no - 1) * page_size, page_size)
    items = [{"MailAddressId": str(s["id"]), "AccountName": s["address"], "Sendtype": s["type"],
              "AccountStatus": "0", "ReplyAddress": s["reply_to"] or "", "ReplyStatus": "1" if replyto.is_verified(s["reply_to"], s["reply_to_verified"]) else "0",
              "DomainStatus": DOMAIN_STATUS.get(s["domain_status"], "1"),
              "CreateTime": console_time(s["created_at"])} for s in page.rows]
    return _paged(page, page_no, page_size, "mailAddress", items)


# --- tags ----------------------------------------------------------------------------------------

def query_tag_by_param(ctx: ActionContext, p: Params) -> dict:
    page_no, page_size = p.page(10)
    page = ctx.queries.tags(ctx.account, p.str("KeyWord"), (page_no - 1) * page_size, page_size)
    items = [{"TagId": str(x["id"]), "TagName": x["name"], "TagDescription": x["description"]} for x in page.rows]
    return _paged(page, page_no, page_size, "tag", items)


# --- templates -----------------------------------------------------------------------------------

def query_template_by_param(ctx: ActionContext, p: Params) -> dict:
    page_no, page_size = p.page(20)
    page = ctx.queries.templates(ctx.account, p.str("KeyWord"), (page_no - 1) * page_size, page_size)
    items = [{"TemplateId": str(x["id"]), "TemplateName": x["name"], "TemplateStatus": TEMPLATE_STATUS[x["status"]],
              "TemplateType": 0, "TemplateComment": x["review_comment"] or "",
              "CreateTime": console_time(x["created_at"]), "UtcCreatetime": utc_seconds(x["created_at"])}
             for x in page.rows]
    return _paged(page, page_no, page_size, "template", items)


# --- recipient lists -----------------------------------------------------------------------------

def query_receiver_by_param(ctx: ActionContext, p: Params) -> dict:
    page_no, page_size = p.page(100, max_size=100)
    p.int("Status", lo=0, hi=1)  # deprecated; lists loaded by apply are always complete (1)
    offset = (page_no - 1) * page_size
    page = ctx.queries.receiver_lists(ctx.account, p.str("KeyWord"), offset, page_size)
    items = [{"ReceiverId": str(x["id"]), "ReceiversName": x["name"], "ReceiversAlias": x["alias_address"],
              "Desc": x["description"], "Count": str(x["row_count"]), "ReceiversStatus": "1",
              "CreateTime": console_time(x["created_at"]), "UtcCreateTime": utc_seconds(x["created_at"])}
             for x in page.rows]
    more = offset + len(items) < page.total
    return {"TotalCount": page.total, "PageSize": page_size, "NextStart": str(offset + len(items)) if more else "",
            "data": {"receiver": items}}


def query_receiver_detail(ctx: ActionContext, p: Params) -> dict:
    list_id = p.int("ReceiverId", required=True)
    page_size = p.int("PageSize", 10, lo=1, hi=100)
    start = p.int("NextStart", 0, lo=0)
    lst = ctx.queries.receiver_list(ctx.account, list_id)
    if lst is None:
        raise ApiError("InvalidReceiver.NotFound")
    total, rows = ctx.queries.receivers(list_id, p.str("KeyWord"), start, page_size)
    present = [api for api, col in RECEIVER_COLUMNS if any(r[col] for r in rows)]
    items = [{"Email": r["email"],
              "Data": json.dumps({api: r[col] for api, col in RECEIVER_COLUMNS if r[col]}, ensure_ascii=False),
              "CreateTime": console_time(lst["created_at"]), "UtcCreateTime": utc_seconds(lst["created_at"])}
             for r in rows[:page_size]]
    return {"TotalCount": total, "DataSchema": ",".join(present),
            "NextStart": str(rows[page_size]["position"]) if len(rows) > page_size else "",
            "data": {"detail": items}}


# --- batch jobs and send details -----------------------------------------------------------------

def query_task_by_param(ctx: ActionContext, p: Params) -> dict:
    page_no, page_size = p.page(10)
    statuses = p.choice("Status", TASK_STATUS_FILTER)
    page = ctx.queries.batch_jobs(ctx.account, p.str("KeyWord"), statuses, (page_no - 1) * page_size, page_size)
    items = [{"TaskId": str(x["id"]), "TemplateName": x["template"], "ReceiversName": x["receivers_list"],
              "TagName": x["tag"] or "", "AddressType": "0" if x["address_type"] == "random" else "1",
              "TaskStatus": TASK_STATUS.get(x["status"], x["status"]), "RequestCount": str(x["request_count"]),
              "CreateTime": console_time(x["created_at"]), "UtcCreateTime": utc_seconds(x["created_at"])}
             for x in page.rows]
    return _paged(page, page_no, page_size, "task", items)


def _detail_time(p: Params, name: str) -> datetime | None:
    raw = p.str(name)
    if raw is None:
        return None
    try:
        return datetime.strptime(raw, DETAIL_TIME).replace(tzinfo=timezone.utc)
    except ValueError:
        raise ApiError.invalid(name, f"Expected yyyy-MM-dd HH:mm, got {raw!r}.") from None


def sender_statistics_detail_by_param(ctx: ActionContext, p: Params) -> dict:
    start, end = _detail_time(p, "StartTime"), _detail_time(p, "EndTime")
    if start and end and (end < start or end - start > timedelta(days=DETAIL_MAX_DAYS)):
        raise ApiError.invalid("EndTime", f"The range must be 0 to {DETAIL_MAX_DAYS} days.")
    length = p.int("Length", 100, lo=1, hi=100)
    after = p.int("NextStart", 0, lo=0)
    rows = ctx.queries.send_details(ctx.account, sender=p.str("AccountName"), tag=p.str("TagName"),
                                    rcpt=p.str("ToAddress"), status=p.choice("Status", {k: int(k) for k in SEND_STATUS.values()}),
                                    start=start, end=end, after_id=after, limit=length)
    items = []
    for r in rows[:length]:
        last = r["done_at"] or r["created_at"]
        item = {"AccountName": r["sender"], "ToAddress": r["rcpt"], "Subject": r["subject"] or "",
                "Message": r["last_text"] or r["state"], "ErrorClassification": r["failed_type"] or "",
                "LastUpdateTime": _aware(last).strftime("%Y-%m-%d %H:%M:%S"),
                "UtcLastUpdateTime": str(utc_seconds(last))}
        if r["status"] is not None:  # still queued: no delivery status yet
            item["Status"] = r["status"]
        items.append(item)
    return {"NextStart": str(rows[length]["id"]) if len(rows) > length else "", "data": {"mailDetail": items}}


READ_ACTIONS = {
    "QueryDomainByParam": query_domain_by_param,
    "DescDomain": desc_domain,
    "CheckDomain": check_domain,
    "QueryMailAddressByParam": query_mail_address_by_param,
    "QueryTagByParam": query_tag_by_param,
    "QueryTemplateByParam": query_template_by_param,
    "QueryReceiverByParam": query_receiver_by_param,
    "QueryReceiverDetail": query_receiver_detail,
    "QueryTaskByParam": query_task_by_param,
    "SenderStatisticsDetailByParam": sender_statistics_detail_by_param,
}
