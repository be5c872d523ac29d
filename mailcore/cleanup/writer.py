"""cleanup: the one way into the queue.

It decides whether a submission may be sent (account, region, domain, sender, tag, tracking,
invalid addresses, content, quotas), builds the RFC 5322 message, DKIM-signs it, and writes the
message and its recipients in one transaction. The caller's success reply (SMTP 250, API
EnvId) is sent only after that commit.

Writes go through one writer thread with group commit: submissions that arrive while a commit
is in flight are written together in the next transaction, each under its own savepoint, so
one refused submission never fails its neighbours and every acknowledged message is durable.
Batch sends store the approved template once and each recipient's variables; the personalised
message is rendered and signed by `render()` when it is delivered.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import queue as _queue
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from typing import Callable

import sqlalchemy as sa

from mailcore.account.catalog import SENDABLE_DOMAIN_STATUSES, Catalog, SenderView
from mailcore.cleanup import idempotency, quota
from mailcore.cleanup.identity import author_refusal
from mailcore.cleanup.submission import Submission, SubmitRefused, SubmitResult, sender_not_active
from mailcore.message.dkim import Signer
from mailcore.message.render import TRACE_FIELD, header_fields, render_parts
from mailcore.queue import states as queue
from mailcore.store import Store
from mailcore.store import tables as t
from mailcore.store.crypto import SecretBox

log = logging.getLogger("mailcore.cleanup.writer")


GTUBE = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


DEFAULT_SPAM_PHRASES = (GTUBE.decode(),)


def default_content_check(content: bytes) -> str | None:
    """The simple default: the GTUBE test string marks a message as spam (R32 554)."""
    if GTUBE in content:
        return "GTUBE test string"
    return None


@dataclass
class CleanupSettings:
    activation_delay_seconds: int = 600  # R15: a new sender may send 10 minutes after creation
    max_recipients_api: int = 100
    content_check: Callable[[bytes], str | None] = default_content_check
    lookup_cache_seconds: float = 1.0  # how long a sender's store lookups are reused (0: every time)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class _Prepared:
    """A submission that passed the checks, with its rows ready to write."""
    sender: SenderView
    account_id: int
    timezone: str
    quota: tuple[int, int]
    message: dict
    recipients: list[dict]
    retry: tuple[str, str | None] | None = None  # (retry key, request fingerprint): see idempotency


@dataclass
class _Work:
    """One submission on its way through the writer, and how its caller is told the outcome."""
    sub: Submission
    prepared: _Prepared | None = None  # None: the writer prepares it
    future: asyncio.Future | None = None
    loop: asyncio.AbstractEventLoop | None = None
    progress: Callable[[int, int], None] | None = None  # (written, total) while recipients are written
    sink: Callable[[list["_Work"]], None] | None = None  # told instead of an event loop (write_now)
    ref: object = None  # the sink's own reference for this submission
    result: SubmitResult | None = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


class Cleanup:
    claims_nonces = True  # a submission's `replay` nonce is claimed with its message (idempotency)

    def __init__(self, store: Store, *, box: SecretBox | None = None, clock: Callable[[], datetime] = utcnow,
                 settings: CleanupSettings | None = None):
        self.store = store
        self.box = box
        self.clock = clock
        self.settings = settings or CleanupSettings()
        self.catalog = Catalog(store, box)
        self.signer = Signer(store, box)
        self._contexts: dict[str, tuple[float, object]] = {}
        self._aliases: dict[int, tuple[float, dict[str, int]]] = {}  # account id -> (when, {alias: list id})
        self._inbox: _queue.SimpleQueue[_Work | None] = _queue.SimpleQueue()
        self._writer: threading.Thread | None = None  # started by the first submit
        self._writer_lock = threading.Lock()
        self.claims = idempotency.Claims()

    def _to_writer(self, work: _Work) -> None:
        if self._writer is None:
            with self._writer_lock:
                if self._writer is None:
                    self._writer = threading.Thread(target=self._write_loop, name="cleanup-writer", daemon=True)
                    self._writer.start()
        self._inbox.put(work)

    def close(self) -> None:
        if self._writer is not None:
            self._inbox.put(None)
            self._writer.join(10)

    # --- the Submitter protocol ------------------------------------------------------------

    async def submit(self, sub: Submission) -> SubmitResult:
        loop = asyncio.get_running_loop()
        work = _Work(sub, loop=loop, future=loop.create_future())
        if sub.template is not None or not self._cached(sub.sender):
            # store reads first (the sender's context, a batch's list and template): off the
            # writer, so they never hold up the group being committed
            work.prepared = await loop.run_in_executor(None, self.prepare, sub)
        # else the writer builds and signs it: the event loop keeps serving sessions, and the
        # RSA signature (OpenSSL, outside the GIL) runs on another core
        self._to_writer(work)
        return await work.future

    def submit_sync(self, sub: Submission, progress=None) -> SubmitResult:
        """For synchronous callers (batch jobs, tests): same checks, same writer."""
        work = _Work(sub, prepared=self.prepare(sub), progress=progress)
        self._to_writer(work)
        work.done.wait()
        if work.error:
            raise work.error
        return work.result

    def write_now(self, subs: list[tuple[Submission, object]], sink: Callable[[list[_Work]], None]) -> None:
        """For a process whose one job is cleanup (mailcore.cleanupd): check, build and sign each
        (submission, ref), commit them as one group in the calling thread, then call
        `sink(works)` once with every outcome (work.ref, work.result, work.error). No writer
        thread: handing the interpreter lock to and fro at every store call cost more than the
        overlap it bought (measured with `python -m mailcore.smtpd.bench`)."""
        works = [_Work(sub, sink=sink, ref=ref) for sub, ref in subs]
        for work in works:
            self._prepare_work(work)
        self._commit_group(works)

    # --- deciding and building (any thread) ------------------------------------------------

    def _cached(self, address: str) -> bool:
        hit = self._contexts.get(address.lower())
        return bool(hit) and time.monotonic() - hit[0] < self.settings.lookup_cache_seconds

    def _sender_context(self, address: str):
        """(sender, account row, tag names, tracking on) for a sender, remembered for
        `lookup_cache_seconds` so a busy sender costs no queries per message."""
        key = address.lower()
        hit = self._contexts.get(key)
        mono = time.monotonic()
        if hit and mono - hit[0] < self.settings.lookup_cache_seconds:
            return hit[1]
        sender = self.catalog.sender(address)
        ctx = None
        if sender is not None:
            with self.store.engine.connect() as conn:
                acct = conn.execute(sa.select(t.accounts.c.id, t.accounts.c.timezone, t.accounts.c.quota_daily,
                                              t.accounts.c.quota_monthly).where(t.accounts.c.name == sender.account)).one()
                tags = frozenset(conn.execute(sa.select(t.tags.c.name).where(t.tags.c.account_id == acct[0])).scalars())
                tracking_on = conn.execute(sa.select(t.domains.c.tracking).where(t.domains.c.name == sender.domain)).scalar()
            ctx = (sender, tuple(acct), tags, bool(tracking_on))
        self._contexts[key] = (mono, ctx)
        return ctx

    def prepare(self, sub: Submission) -> _Prepared:
        now = self.clock()
        retry = idempotency.api_key(sub)  # the request as the client sent it, before a template fills it in
        ctx = self._sender_context(sub.sender)
        if ctx is None or ctx[0].account != sub.account:
            raise SubmitRefused("sender-unknown", sub.sender)
        sender, acct, tags, tracking_on = ctx
        if sender.account_status != "active":
            raise SubmitRefused("account-unavailable", sender.account)
        if sub.region and sub.region != sender.region:
            raise SubmitRefused("wrong-region", f"{sub.sender} belongs to {sender.region}, not {sub.region}")
        if sender.domain_status not in SENDABLE_DOMAIN_STATUSES:
            raise SubmitRefused("domain-unverified", f"{sender.domain} is {sender.domain_status}; run `invoke verify`")
        if now - sender.created_at < timedelta(seconds=self.settings.activation_delay_seconds):
            raise sender_not_active(sender.created_at, self.settings.activation_delay_seconds, now, acct[1])
        if sub.source == "batch" and sender.type != "batch":
            raise SubmitRefused("sender-wrong-type", f"{sub.sender} is a {sender.type} address")
        shown = self._expand_aliases(sub, sender, acct[0]) if sub.recipients else None
        if sub.template is not None:
            self._expand_batch(sub, sender)
        if not sub.recipients:
            raise SubmitRefused("list-unknown" if sub.receivers_list else "too-many-rcpts", "no recipients")
        if sub.tag and sub.tag not in tags:
            raise SubmitRefused("tag-unknown", sub.tag)
        if sub.tracking and not (sender.tracking_ready and tracking_on):
            raise SubmitRefused("tracking-unavailable", f"{sender.domain} has no verified tracking CNAME")
        envelope_from = sender.address
        if sub.address_type == "random":
            token = base64.b32encode(os.urandom(10)).decode().lower()
            envelope_from = f"{token}@{sender.domain}"
        message = {"account_id": acct[0], "sender": sender.address, "envelope_from": envelope_from,
                   "region": sender.region, "source": sub.source, "tag": sub.tag, "tracking": bool(sub.tracking)}
        if sub.template is not None:
            message.update(self._batch_content(sub, sender))
        elif sub.raw_message is not None:
            message.update(self._smtp_content(sub, sender, now))
        else:
            message.update(self._api_content(sub, sender, now, shown))
        recipients = [{"rcpt": r.address.lower() if sub.source != "smtp" else r.address,
                       "variables": {**r.variables, "EAddr": r.address} if sub.template is not None else None}
                      for r in sub.recipients]
        retry = message.pop("retry", None) or retry
        return _Prepared(sender, acct[0], acct[1], (acct[2], acct[3]), message, recipients, retry)

    def _expand_batch(self, sub: Submission, sender: SenderView) -> None:
        """A batch names an approved template and (unless it lists its recipients) a recipient list."""
        from mailcore.cleanup.submission import Recipient
        with self.store.engine.connect() as conn:
            acct = conn.execute(sa.select(t.accounts.c.id).where(t.accounts.c.name == sender.account)).scalar()
            tpl = conn.execute(sa.select(t.templates).where(t.templates.c.account_id == acct,
                                                            t.templates.c.name == sub.template)).mappings().first()
            if tpl is None or tpl["status"] != "approved" or tpl["approved_digest"] != tpl["content_digest"]:
                state = "missing" if tpl is None else tpl["status"]
                raise SubmitRefused("template-unusable", f"template '{sub.template}' is {state}; only approved templates send (R20)")
            sub.subject, sub.html_body = tpl["subject"], tpl["body"]
            sub.from_alias = sub.from_alias or tpl["nick_name"] or None
            if sub.receivers_list and not sub.recipients:
                lists = t.recipient_lists.c  # ReceiversName: the list's name, or its alias address (R17)
                lst = conn.execute(sa.select(lists.id).where(lists.account_id == acct, sa.or_(
                    lists.name == sub.receivers_list, lists.alias_address == sub.receivers_list.lower()))
                    .order_by(lists.name != sub.receivers_list)).scalars().first()
                if lst is None:
                    raise SubmitRefused("list-unknown", sub.receivers_list)
                sub.recipients = [Recipient(a, v) for a, v in _list_rows(conn, lst)]

    def _list_aliases(self, account_id: int) -> dict[str, int]:
        """{alias address: list id} of an account, remembered for `lookup_cache_seconds` like a sender's context."""
        hit, mono = self._aliases.get(account_id), time.monotonic()
        if not (hit and mono - hit[0] < self.settings.lookup_cache_seconds):
            with self.store.engine.connect() as conn:
                hit = (mono, dict(conn.execute(sa.select(t.recipient_lists.c.alias_address, t.recipient_lists.c.id)
                                               .where(t.recipient_lists.c.account_id == account_id)).all()))
            self._aliases[account_id] = hit
        return hit[1]

    def _expand_aliases(self, sub: Submission, sender: SenderView, account_id: int) -> list[str] | None:
        """R17: a list's alias address as a recipient (ToAddress, Receivers, RCPT) stands for the list's rows,
        each with its variables over the request's TemplateData; batch senders only. The addresses as given
        (the To: of a message built here), or None when no alias was used."""
        from mailcore.cleanup.submission import Recipient
        aliases = self._list_aliases(account_id)
        hits = [r.address for r in sub.recipients if r.address.lower() in aliases]
        if not hits:
            return None
        if sender.type != "batch":
            raise SubmitRefused("sender-wrong-type", f"{hits[0]} is the alias address of a recipient list; lists are "
                                                     f"sent by batch senders, {sub.sender} is a {sender.type} address")
        shown, out, seen = [r.address for r in sub.recipients], [], set()
        with self.store.engine.connect() as conn:
            for r in sub.recipients:
                list_id = aliases.get(r.address.lower())
                rows = [r] if list_id is None else [Recipient(a, {**r.variables, **v}) for a, v in _list_rows(conn, list_id)]
                out += [x for x in rows if x.address.lower() not in seen and not seen.add(x.address.lower())]
        if not out:
            raise SubmitRefused("list-unknown", f"the list of {hits[0]} has no recipients")
        sub.recipients = out
        return shown

    def _check_content(self, content: bytes) -> None:
        why = self.settings.content_check(content)
        if why:
            raise SubmitRefused("spam", why)

    def _api_content(self, sub: Submission, sender: SenderView, now: datetime, shown: list[str] | None = None) -> dict:
        msg = EmailMessage(policy=policy.SMTP)
        msg["From"] = formataddr((sub.from_alias, sender.address)) if sub.from_alias else sender.address
        msg["To"] = ", ".join(shown or [r.address for r in sub.recipients])  # a list's alias, not its rows
        msg["Subject"] = sub.subject or ""
        msg["Date"] = format_datetime(now)
        msg["Message-ID"] = sub.headers.get("Message-ID") or make_msgid(domain=sender.domain)
        if sub.reply_to_sender and sender.reply_to_verified:  # R13: only a reply-to its owner confirmed
            msg["Reply-To"] = sender.reply_to
        for name, value in sub.headers.items():
            if name.lower() != "message-id":
                msg[name] = value
        if sub.text_body:
            msg.set_content(sub.text_body)
            if sub.html_body:
                msg.add_alternative(sub.html_body, subtype="html")
        else:
            msg.set_content(sub.html_body or "", subtype="html")
        content = msg.as_bytes()
        self._check_content(content)
        return {"message_id": msg["Message-ID"], "subject": sub.subject, "content": self.signer.sign(sender.domain, content)}

    def _smtp_content(self, sub: Submission, sender: SenderView, now: datetime) -> dict:
        self._check_content(sub.raw_message)
        head, sep, body = sub.raw_message.partition(b"\r\n\r\n")
        if not sep:
            head, sep, body = sub.raw_message.partition(b"\n\n")
        fields = header_fields(head)
        headers = {name: values[0] for name, values in fields.items()}
        wrong_author = author_refusal(fields.get("from"), sender.address)
        if wrong_author:  # never sign another author's message with our domain's key
            raise SubmitRefused(*wrong_author)
        extra = b""
        message_id = headers.get("message-id")
        retry = idempotency.smtp_key(sub, message_id)
        if not message_id:
            message_id = make_msgid(domain=sender.domain)
            extra += f"Message-ID: {message_id}\r\n".encode()
        if not headers.get("date"):
            extra += f"Date: {format_datetime(now)}\r\n".encode()
        if "x-alidm-trace" in headers:  # an instruction to the service (R21), not part of the message
            head = TRACE_FIELD.sub(b"", head + b"\r\n").rstrip(b"\r\n")
        content = extra + head + b"\r\n\r\n" + body
        return {"message_id": message_id, "subject": headers.get("subject"),
                "content": self.signer.sign(sender.domain, content), "retry": retry}

    def _batch_content(self, sub: Submission, sender: SenderView) -> dict:
        template = {"subject": sub.subject or "", "html": sub.html_body or "", "text": sub.text_body,
                    "from_alias": sub.from_alias, "reply_to": sender.reply_to if sub.reply_to_sender and sender.reply_to_verified else None,
                    "headers": sub.headers}
        # every recipient's rendered message is checked, not only the first one's (issue 11): a
        # value can carry what the template alone does not
        for r in sub.recipients:
            subject, html, text = render_parts(template, r.variables)
            self._check_content("\n".join((subject, html, text or "")).encode("utf-8", "surrogateescape"))
        return {"message_id": make_msgid(domain=sender.domain), "subject": sub.subject, "content": None,
                "template": template}

    # --- writing (the writer thread) -----------------------------------------------------

    def _write_loop(self) -> None:
        """Group commit: build and sign each submission as it arrives, taking in those that
        arrive meanwhile, and commit the group once nothing more is waiting (or it is large)."""
        closing = False
        while not closing:
            work = self._inbox.get()
            if work is None:
                return
            batch: list[_Work] = []
            while work is not None:
                self._prepare_work(work)
                batch.append(work)
                if len(batch) >= 256:
                    break
                try:
                    work = self._inbox.get_nowait()
                except _queue.Empty:
                    break
                closing = work is None  # finish this group, then stop
            self._commit_group(batch)

    def _prepare_work(self, work: _Work) -> None:
        if work.prepared is None:
            try:
                work.prepared = self.prepare(work.sub)
            except Exception as exc:  # a refusal, or a failure: that submission only
                work.error = exc

    def _commit_group(self, works: list[_Work]) -> None:
        """Write the group's submissions that passed their checks, then tell every caller."""
        self._write([w for w in works if w.error is None])
        _notify(works)

    def _write(self, batch: list[_Work]) -> None:
        """One transaction for the whole group. Refusals are decided before anything of that
        submission is written (invalid addresses, then quota), so no savepoints are needed; the
        quota of a group is charged in one statement per account and period when it fits."""
        if not batch:
            return
        now = self.clock()
        try:
            with self.store.transaction(immediate=True) as conn:
                live, taken = self.claims.take(conn, batch, now)  # replays refused, retries answered
                live = self._screen_invalid(conn, live)
                live = self._charge(conn, live, now)
                self._insert(conn, live, now)
                taken.settle(conn)
        except Exception as exc:  # the commit failed: nothing in this batch was acknowledged
            for w in batch:
                w.result, w.error = None, exc

    def _screen_invalid(self, conn, batch: list[_Work]) -> list[_Work]:
        by_account: dict[int, set[str]] = {}
        for w in batch:
            by_account.setdefault(w.prepared.account_id, set()).update(r["rcpt"].lower() for r in w.prepared.recipients)
        bad: set[tuple[int, str]] = set()
        for account_id, rcpts in by_account.items():
            rcpts = sorted(rcpts)
            for i in range(0, len(rcpts), 900):
                found = conn.execute(_INVALID_AMONG, {"a": account_id, "addresses": rcpts[i:i + 900]}).scalars()
                bad.update((account_id, a) for a in found)
        if not bad:
            return batch
        live = []
        for w in batch:
            p = w.prepared
            hit = next((r["rcpt"] for r in p.recipients if (p.account_id, r["rcpt"].lower()) in bad), None)
            if hit:
                w.error = SubmitRefused("invalid-rcpt", hit)
            else:
                live.append(w)
        return live

    def _charge(self, conn, batch: list[_Work], now: datetime) -> list[_Work]:
        groups: dict[int, list[_Work]] = {}
        for w in batch:
            groups.setdefault(w.prepared.account_id, []).append(w)
        live = []
        for account_id, works in groups.items():
            p0 = works[0].prepared
            total = sum(len(w.prepared.recipients) for w in works)
            try:
                quota.charge(conn, account_id, p0.timezone, p0.quota, total, now)
                live += works
                continue
            except SubmitRefused:
                pass  # the group does not fit as a whole: charge one submission at a time, in order
            for w in works:
                try:
                    quota.charge(conn, account_id, p0.timezone, p0.quota, len(w.prepared.recipients), now)
                    live.append(w)
                except SubmitRefused as exc:
                    w.error = exc
        return live

    def _insert(self, conn, batch: list[_Work], now: datetime) -> None:
        plain = [w for w in batch if w.sub.template is None and w.progress is None]
        if plain:
            ids = queue.enqueue_many(conn, [(w.prepared.message, w.prepared.recipients) for w in plain], now)
            for w, message_id in zip(plain, ids):
                w.result = SubmitResult(env_id=str(message_id), recipients=len(w.prepared.recipients))
        for w in batch:
            if w.result is None:
                w.result = self._insert_one(conn, w, now)

    def _insert_one(self, conn, w: _Work, now: datetime) -> SubmitResult:
        """A batch job (its own row and a progress callback) or anything else written alone."""
        p, sub = w.prepared, w.sub
        n = len(p.recipients)
        if sub.template is not None:
            p.message["batch_job_id"] = conn.execute(sa.insert(t.batch_jobs).values(
                account_id=p.account_id, receivers_list=sub.receivers_list or "", template=sub.template,
                sender=p.sender.address, tag=sub.tag, address_type=sub.address_type, tracking=bool(sub.tracking),
                status="queued", request_count=n, created_at=now).returning(t.batch_jobs.c.id)).scalar()
        message_id = queue.enqueue(conn, p.message, p.recipients, now, w.progress)
        if sub.template is not None:
            conn.execute(sa.update(t.batch_jobs).where(t.batch_jobs.c.id == p.message["batch_job_id"]).values(
                env_id=str(message_id)))
        return SubmitResult(env_id=str(message_id), recipients=n)


def _list_rows(conn, list_id: int):
    """(address, {variable: value}) of a stored list's rows, in file order; empty columns left out."""
    r, cols = t.recipients.c, ("UserName", "NickName", "Gender", "Birthday", "Mobile")
    q = sa.select(r.email, r.user_name, r.nick_name, r.gender, r.birthday, r.mobile).where(r.list_id == list_id)
    return [(row[0], {k: v for k, v in zip(cols, row[1:]) if v is not None}) for row in conn.execute(q.order_by(r.position))]


_INVALID_AMONG = sa.select(t.invalid_addresses.c.address).where(
    t.invalid_addresses.c.account_id == sa.bindparam("a"),
    t.invalid_addresses.c.address.in_(sa.bindparam("addresses", expanding=True)))


def _notify(batch: list[_Work]) -> None:
    """Tell every caller of the group its outcome: one wake-up per event loop (or sink), not per
    submission."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Work]] = {}
    by_sink: dict[Callable, list[_Work]] = {}
    for w in batch:
        if w.loop is not None:
            by_loop.setdefault(w.loop, []).append(w)
        elif w.sink is not None:
            by_sink.setdefault(w.sink, []).append(w)
        w.done.set()
    for sink, works in by_sink.items():
        try:
            sink(works)
        except Exception:  # the writer thread must outlive any one caller
            log.exception("cleanup: telling %d submission(s) their outcome failed", len(works))
    for loop, works in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, works)
        except RuntimeError:  # that loop has closed: its callers are gone
            pass


def _settle(works: list[_Work]) -> None:
    for w in works:
        if w.future.done():
            continue
        if w.error is not None:
            w.future.set_exception(w.error)
        else:
            w.future.set_result(w.result)
