"""Retries get the first EnvId back (API ClientToken; SMTP sender + Message-ID + recipients), decided
in the transaction that writes the message; replayed API nonces are refused there too."""
from __future__ import annotations

import asyncio
import threading
from copy import deepcopy
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from mailcore.cleanup import idempotency
from mailcore.cleanup.submission import Recipient, Submission, SubmitRefused
from mailcore.cleanup.writer import Cleanup
from mailcore.store import tables as t
from mailcore.store.crypto import SecretBox

ACCOUNT, SENDER = "example-shop", "orders@mail.example.com"


class Clock:
    def __init__(self):
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def cleanup(ready_store, clock):
    c = Cleanup(ready_store, box=SecretBox.from_env(), clock=clock)
    yield c
    c.close()


def api(token="order-42", to=("li.wei@example.com",), **kw) -> Submission:
    base = dict(account=ACCOUNT, sender=SENDER, recipients=[Recipient(a) for a in to], source="api",
                subject="Your order", html_body="<p>Thanks</p>", client_token=token)
    return Submission(**{**base, **kw})


def smtp(message_id="<m1@client.example>", to=("li.wei@example.com",)) -> Submission:
    head = "From: orders@mail.example.com\r\nSubject: hi\r\n" + (f"Message-ID: {message_id}\r\n" if message_id else "")
    return Submission(ACCOUNT, SENDER, [Recipient(a) for a in to], "smtp", raw_message=(head + "\r\nbody\r\n").encode())


def count(store, table) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()


def used_quota(store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.max(t.quota_counters.c.used))).scalar() or 0


def test_a_retry_with_the_same_client_token_gets_the_first_env_id(cleanup, ready_store):
    first = cleanup.submit_sync(api())
    again = cleanup.submit_sync(api())
    assert again.env_id == first.env_id
    assert count(ready_store, t.queue_messages) == 1 and count(ready_store, t.queue_recipients) == 1
    assert used_quota(ready_store) == 1  # the retry is not charged either
    assert cleanup.submit_sync(api(token="order-43")).env_id != first.env_id  # another token: another send
    assert cleanup.submit_sync(api(token=None)).env_id != cleanup.submit_sync(api(token=None)).env_id


def test_a_token_reused_for_a_different_request_is_refused(cleanup, ready_store):
    cleanup.submit_sync(api())
    for changed in (api(subject="Other"), api(to=("someone@example.com",)), api(tag="order_confirmation")):
        with pytest.raises(SubmitRefused) as exc:
            cleanup.submit_sync(changed)
        assert exc.value.reason == "idempotency-mismatch"
    assert count(ready_store, t.queue_messages) == 1 and used_quota(ready_store) == 1


def test_tokens_expire_after_the_window(cleanup, ready_store, clock):
    first = cleanup.submit_sync(api())
    clock.now += idempotency.WINDOW - timedelta(seconds=1)
    assert cleanup.submit_sync(api()).env_id == first.env_id
    clock.now += timedelta(seconds=2)
    assert cleanup.submit_sync(api()).env_id != first.env_id
    cleanup.claims._next_sweep = None  # the next group sweeps: the expired key is gone, the new one stays
    clock.now += idempotency.WINDOW + timedelta(seconds=1)
    cleanup.submit_sync(api(token="late"))
    with ready_store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.idempotency_keys)).scalar() == 1


def test_a_refused_send_does_not_keep_its_token(cleanup, ready_store):
    with ready_store.transaction() as conn:
        conn.execute(sa.insert(t.invalid_addresses).values(account_id=1, address="li.wei@example.com", reason="550",
                                                           added_at=datetime.now(timezone.utc)))
    with pytest.raises(SubmitRefused) as exc:
        cleanup.submit_sync(api())
    assert exc.value.reason == "invalid-rcpt"
    assert count(ready_store, t.idempotency_keys) == 0
    with ready_store.transaction() as conn:
        conn.execute(sa.delete(t.invalid_addresses))
    assert cleanup.submit_sync(api()).env_id  # the retry is judged again, and sent


def test_retries_at_once_share_the_first_env_id(cleanup, ready_store):
    async def burst():
        return await asyncio.gather(*(cleanup.submit(api()) for _ in range(6)))

    assert len({r.env_id for r in asyncio.run(burst())}) == 1
    assert count(ready_store, t.queue_messages) == 1


def test_one_group_with_a_retry_and_a_reused_token(cleanup, ready_store):
    outcomes = {}
    cleanup.write_now([(api(), "a"), (api(), "b"), (api(subject="Different"), "c")],
                      lambda works: outcomes.update({w.ref: w.result or w.error for w in works}))
    assert outcomes["a"].env_id == outcomes["b"].env_id
    assert isinstance(outcomes["c"], SubmitRefused) and outcomes["c"].reason == "idempotency-mismatch"
    assert count(ready_store, t.queue_messages) == 1


def test_a_lost_reply_after_the_commit_is_answered_on_retry(ready_store):
    """The commit happened, the reply never left (the process died): a new cleanup answers the
    client's retry with the EnvId it never heard."""
    box = SecretBox.from_env()
    first = Cleanup(ready_store, box=box)
    first.write_now([(api(), "lost")], lambda works: None)  # committed; nobody is told
    first.close()
    [msg_id] = [m.id for m in _messages(ready_store)]
    restarted = Cleanup(ready_store, box=box)
    try:
        assert restarted.submit_sync(api()).env_id == str(msg_id)
    finally:
        restarted.close()
    assert count(ready_store, t.queue_messages) == 1


def test_writers_racing_with_one_token_send_once(ready_store):
    """Two cleanup processes (two writers on one store) given the same retry at once."""
    box = SecretBox.from_env()
    writers = [Cleanup(ready_store, box=box) for _ in range(4)]
    barrier, results = threading.Barrier(len(writers)), []

    def race(c):
        barrier.wait()
        results.append(c.submit_sync(api()).env_id)

    threads = [threading.Thread(target=race, args=(c,)) for c in writers]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    for c in writers:
        c.close()
    assert len(results) == 4 and len(set(results)) == 1
    assert count(ready_store, t.queue_messages) == 1


def test_smtp_retry_of_one_message_id_to_the_same_recipients(cleanup, ready_store):
    first = cleanup.submit_sync(smtp())
    assert cleanup.submit_sync(smtp()).env_id == first.env_id
    # one Message-ID sent to other recipients in another transaction (a list manager's chunks) is a send
    assert cleanup.submit_sync(smtp(to=("someone@example.com",))).env_id != first.env_id
    # without a Message-ID from the client there is nothing to recognise a retry by
    assert cleanup.submit_sync(smtp(None)).env_id != cleanup.submit_sync(smtp(None)).env_id
    assert count(ready_store, t.queue_messages) == 4


def test_a_replayed_nonce_is_refused_with_its_message_unwritten(cleanup, ready_store):
    sub = api(token=None, replay=("AK1", "ab" * 32, datetime.now(timezone.utc).timestamp() + 900))
    cleanup.submit_sync(deepcopy(sub))
    with pytest.raises(SubmitRefused) as exc:
        cleanup.submit_sync(deepcopy(sub))
    assert exc.value.reason == "replayed"
    assert count(ready_store, t.queue_messages) == 1 and count(ready_store, t.api_nonces) == 1


def _messages(store):
    with store.engine.connect() as conn:
        return conn.execute(sa.select(t.queue_messages.c.id)).all()
