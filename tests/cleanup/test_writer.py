"""cleanup: every refusal, message building, DKIM, quotas, batches, group commit."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import dkim
import pytest
import sqlalchemy as sa

from mailcore.cleanup.submission import REFUSALS, Recipient, Submission, SubmitRefused
from mailcore.cleanup.writer import GTUBE, Cleanup
from mailcore.message.render import render
from mailcore.store import tables as t
from mailcore.store.crypto import SecretBox

ACCOUNT = "example-shop"


@pytest.fixture
def cleanup(ready_store):
    c = Cleanup(ready_store, box=SecretBox.from_env())
    yield c
    c.close()


def api(to=("li.wei@example.com",), **kw):
    base = dict(account=ACCOUNT, sender="orders@mail.example.com", recipients=[Recipient(a) for a in to], source="api",
                subject="Your order", html_body="<p>Thanks</p>")
    base.update(kw)
    return Submission(**base)


def rows(store, table):
    with store.engine.connect() as conn:
        return conn.execute(sa.select(table)).mappings().all()


def dns_for(store):
    with store.engine.connect() as conn:
        keys = {f"{s}._domainkey.{d}.": p for d, s, p in conn.execute(
            sa.select(t.domain_keys.c.domain, t.domain_keys.c.dkim_selector, t.domain_keys.c.dkim_public))}

    def lookup(name, timeout=5):
        return f"v=DKIM1; k=rsa; p={keys[name.decode()]}".encode()
    return lookup


def test_api_send_is_queued_signed_and_committed(cleanup, ready_store):
    from mailcore.account import replyto
    now = datetime.now(timezone.utc)
    replyto.approve(ready_store, replyto.request(ready_store, ACCOUNT, now, "http://x", address="orders@mail.example.com")
                    .ticket, now)  # R13: only a confirmed reply-to is used
    result = cleanup.submit_sync(api(to=("a@example.com", "b@example.net"), from_alias="Example Shop", reply_to_sender=True))
    assert result.recipients == 2
    [msg] = rows(ready_store, t.queue_messages)
    assert str(msg["id"]) == result.env_id and msg["envelope_from"] == "orders@mail.example.com"
    rcpts = rows(ready_store, t.queue_recipients)
    assert [(r["rcpt"], r["rcpt_domain"], r["state"]) for r in rcpts] == [("a@example.com", "example.com", "incoming"),
                                                                         ("b@example.net", "example.net", "incoming")]
    content = msg["content"]
    assert b"From: Example Shop <orders@mail.example.com>" in content and b"Reply-To: support@example.com" in content
    assert dkim.verify(content, dnsfunc=dns_for(ready_store))
    assert not dkim.verify(content.replace(b"Thanks", b"Thank"), dnsfunc=dns_for(ready_store))


def test_smtp_message_keeps_its_bytes_and_loses_the_trace_header(cleanup, ready_store):
    raw = (b"From: orders@mail.example.com\r\nTo: a@example.com\r\nSubject: hi\r\n"
           b"X-AliDM-Trace: eyJPcGVuVHJhY2UiOiIxIn0=\r\n\r\nbody line\r\n")
    cleanup.submit_sync(Submission(ACCOUNT, "orders@mail.example.com", [Recipient("a@example.com")], "smtp",
                                   raw_message=raw))
    [msg] = rows(ready_store, t.queue_messages)
    assert b"X-AliDM-Trace" not in msg["content"] and b"body line\r\n" in msg["content"]
    assert b"Message-ID: <" in msg["content"] and b"Date: " in msg["content"]
    assert dkim.verify(msg["content"], dnsfunc=dns_for(ready_store))


def _set(store, table, **values):
    with store.transaction() as conn:
        conn.execute(sa.update(table).values(**values))


REFUSAL_CASES = {
    "sender-unknown": lambda s: api(sender="nobody@mail.example.com"),
    "account-unavailable": lambda s: (_set(s, t.accounts, status="restricted"), api())[1],
    "wrong-region": lambda s: api(region="ap-southeast-1"),
    "domain-unverified": lambda s: (_set(s, t.domains, status="failed"), api())[1],
    "sender-not-active": lambda s: (_set(s, t.senders, created_at=datetime.now(timezone.utc)), api())[1],
    "sender-wrong-type": lambda s: api(source="batch", template="vip-offer", receivers_list="vip-customers"),
    "tag-unknown": lambda s: api(tag="nope"),
    "tracking-unavailable": lambda s: (_set(s, t.domains, status="usable"), api(tracking=True))[1],
    "invalid-rcpt": lambda s: (_invalid(s, "bad@example.com"), api(to=("ok@example.com", "bad@example.com")))[1],
    "spam": lambda s: api(html_body="<p>" + GTUBE.decode() + "</p>"),
    "quota-daily": lambda s: (_quota(s, daily=2), _fill(s), api())[2],
    "quota-monthly": lambda s: (_quota(s, monthly=2), _fill(s), api())[2],
    "quota-insufficient": lambda s: (_quota(s, daily=3), _fill(s), api(to=("x@example.com", "y@example.com")))[2],
    "template-unusable": lambda s: (_set(s, t.templates, status="draft"),
                                    api(sender="newsletter@news.example.com", source="batch", template="vip-offer",
                                        receivers_list="vip-customers"))[1],
    "list-unknown": lambda s: api(sender="newsletter@news.example.com", source="batch", template="vip-offer",
                                  receivers_list="nope", recipients=[]),
    "from-mismatch": lambda s: smtp(b"From: Security <security@mail.example.com>\r\nSubject: hi\r\n\r\nbody\r\n"),
    "from-malformed": lambda s: smtp(b"Subject: no author\r\n\r\nbody\r\n"),
    "replayed": lambda s: _twice(api(replay=("AK1", "d" * 64, 4e9))),
    "idempotency-mismatch": lambda s: (_filled["cleanup"].submit_sync(api(client_token="t-1")),
                                       api(client_token="t-1", subject="Another order"))[1],
}


def smtp(raw: bytes, sender="orders@mail.example.com") -> Submission:
    return Submission(ACCOUNT, sender, [Recipient("a@example.com")], "smtp", raw_message=raw)


def _twice(sub: Submission) -> Submission:
    """Submit a copy of `sub` first; `sub` itself is then the repeat."""
    from copy import deepcopy
    _filled["cleanup"].submit_sync(deepcopy(sub))
    return sub


def _invalid(store, address):
    with store.transaction() as conn:
        conn.execute(sa.insert(t.invalid_addresses).values(account_id=1, address=address, reason="550 5.1.1",
                                                           added_at=datetime.now(timezone.utc)))


def _quota(store, **q):
    _set(store, t.accounts, **{f"quota_{k}": v for k, v in q.items()})


_filled = {}


def _fill(store):
    c = _filled["cleanup"]
    c.submit_sync(api(to=("f1@example.com", "f2@example.com")))


@pytest.mark.parametrize("reason", sorted(REFUSAL_CASES))
def test_each_refusal(cleanup, ready_store, reason):
    _filled["cleanup"] = cleanup
    sub = REFUSAL_CASES[reason](ready_store)
    before = len(rows(ready_store, t.queue_recipients))
    with pytest.raises(SubmitRefused) as exc:
        cleanup.submit_sync(sub)
    assert exc.value.reason == reason
    assert len(rows(ready_store, t.queue_recipients)) == before


def test_every_refusal_row_is_reachable_somewhere():
    # reasons raised by ingress rather than cleanup are covered by the smtpd and api suites
    ingress_only = {"auth-failed", "too-many-rcpts", "too-large", "ip-not-allowed", "sender-mismatch"}
    assert set(REFUSALS) - ingress_only == set(REFUSAL_CASES)


def test_batch_expands_the_list_and_renders_per_recipient(cleanup, ready_store):
    sub = Submission(ACCOUNT, "newsletter@news.example.com", [], "batch", template="vip-offer",
                     receivers_list="vip-customers", tag="newsletter_weekly", address_type="random")
    result = cleanup.submit_sync(sub)
    assert result.recipients == 4
    [msg] = rows(ready_store, t.queue_messages)
    assert msg["envelope_from"].endswith("@news.example.com") and msg["envelope_from"] != msg["sender"]
    [job] = rows(ready_store, t.batch_jobs)
    assert (job["status"], job["request_count"], job["env_id"], job["template"]) == ("queued", 4, result.env_id, "vip-offer")
    rcpts = rows(ready_store, t.queue_recipients)
    li = next(r for r in rcpts if r["rcpt"] == "li.wei@example.com")
    assert li["variables"]["UserName"] == "Li Wei"
    out = render(cleanup.signer, dict(msg), dict(li), datetime.now(timezone.utc))
    assert b"Dear Li Wei," in out and b"To: li.wei@example.com" in out
    assert f"<{msg['id']}.{li['id']}@news.example.com>".encode() in out
    assert dkim.verify(out, dnsfunc=dns_for(ready_store))


def test_group_commit_keeps_neighbours_apart(cleanup, ready_store):
    _invalid(ready_store, "bad@example.com")

    async def go():
        subs = [api(to=(f"r{i}@example.com",) if i % 5 else ("bad@example.com",)) for i in range(40)]
        return await asyncio.gather(*(cleanup.submit(s) for s in subs), return_exceptions=True)

    results = asyncio.run(go())
    refused = [r for r in results if isinstance(r, SubmitRefused)]
    ok = [r for r in results if not isinstance(r, Exception)]
    assert len(refused) == 8 and all(r.reason == "invalid-rcpt" for r in refused)
    assert len({r.env_id for r in ok}) == 32
    assert len(rows(ready_store, t.queue_recipients)) == 32


def test_quota_is_counted_atomically_under_concurrency(cleanup, ready_store):
    _quota(ready_store, daily=25)

    async def go():
        return await asyncio.gather(*(cleanup.submit(api(to=(f"q{i}@example.com",))) for i in range(40)),
                                    return_exceptions=True)
    results = asyncio.run(go())
    assert sum(not isinstance(r, Exception) for r in results) == 25
    assert len(rows(ready_store, t.queue_recipients)) == 25


HEADS = [
    b"From: a@b.c\r\nTo: d@e.f\r\nSubject: hi\r\nMessage-ID: <1@b.c>\r\nDate: Fri, 27 Nov 2026 08:00:00 +0000",
    b"subject: lower case\r\nmessage-id:<2@b.c>",
    b"Subject: folded\r\n over two\r\n\tlines\r\nX-AliDM-Trace: eyJPcGVuVHJhY2UiOiAiMSJ9\r\nTo: x@y.z",
    b"Subject: first\r\nSubject: second\r\nDate:",
    b"X-Subject: not this\r\nSubject: this one",
    b"From: a@b.c\nSubject: bare LF\nMessage-ID: <3@b.c>",
    b"Subject: =?utf-8?B?5L2g5aW9?=\r\nMessage-ID:   <spaces@b.c>  ",
    b"To: someone\r\n",
]


@pytest.mark.parametrize("head", HEADS)
def test_header_values_read_as_the_compat32_parser_reads_them(head):
    from email import policy
    from email.parser import BytesParser

    from mailcore.message.render import header_values
    parsed = BytesParser(policy=policy.compat32).parsebytes(head + b"\r\n\r\n", headersonly=True)
    ours = header_values(head)
    for name in ("Message-ID", "Date", "Subject", "X-AliDM-Trace"):
        assert ours.get(name.lower()) == parsed.get(name), name


def test_an_smtp_rcpt_of_a_list_alias_goes_to_every_row(cleanup, ready_store):
    """R17: RCPT TO the alias from a batch sender: the message, as sent (To: the alias), to each row."""
    raw = (b"From: newsletter@news.example.com\r\nTo: vip@news.example.com\r\nSubject: news\r\n\r\nbody line\r\n")
    result = cleanup.submit_sync(Submission(ACCOUNT, "newsletter@news.example.com", [Recipient("VIP@news.example.com")],
                                            "smtp", raw_message=raw))
    assert result.recipients == 4
    assert [r["rcpt"] for r in rows(ready_store, t.queue_recipients)] == [
        "li.wei@example.com", "zhang.min@example.com", "chen.jing@example.net", "wang.fang@example.org"]
    [msg] = rows(ready_store, t.queue_messages)
    assert b"To: vip@news.example.com\r\n" in msg["content"] and dkim.verify(msg["content"], dnsfunc=dns_for(ready_store))
    with pytest.raises(SubmitRefused) as exc:  # a trigger sender: refused, nothing written
        cleanup.submit_sync(Submission(ACCOUNT, "orders@mail.example.com", [Recipient("vip@news.example.com")], "smtp",
                                       raw_message=b"From: orders@mail.example.com\r\nSubject: x\r\n\r\nx\r\n"))
    assert exc.value.reason == "sender-wrong-type" and "alias address of a recipient list" in exc.value.detail
    assert len(rows(ready_store, t.queue_messages)) == 1
