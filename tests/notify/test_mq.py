"""Queue endpoints (R24): invisibility after a receive, reappearance, delete by receipt, delay,
retention, size limit, base64; the HTTP API and QueueClient, with long-poll."""
from __future__ import annotations

import base64
import threading

import pytest
import sqlalchemy as sa

from mailcore.ingress.api.app import ApiServer
from mailcore.notify import mq, parse_event_body
from mailcore.notify.mq import (
    QUEUE_SETTINGS,
    QueueClient,
    QueueError,
    configure_queue,
    create_queue_app,
)
from mailcore.notify.worker import Notifier
from mailcore.store import tables as t
from tests.support.notify import ACCOUNT, insert_event, run
from tests.support.store import EXAMPLE_ENV

ORDERS = "orders@mail.example.com"


def queue(store, name="q1", clock=None, **settings) -> mq.Queue:
    return configure_queue(store, ACCOUNT, name, now=clock() if clock else None, **settings)


def send(store, q, body, clock):
    with store.transaction() as conn:
        return mq.send(conn, q, body, clock())


def receive(store, q, clock, visibility=None, max_messages=1):
    with store.transaction(immediate=True) as conn:
        return mq.receive(conn, q, clock(), visibility, max_messages)


def delete(store, q, receipt, clock):
    with store.transaction() as conn:
        mq.delete(conn, q, receipt, clock())


def counts(store, q, clock):
    with store.transaction() as conn:
        return mq.counts(conn, q, clock())


def test_receive_hides_the_message_until_the_visibility_timeout(notify_store, clock):
    q = queue(notify_store, clock=clock, visibility_timeout_seconds=30)
    send(notify_store, q, "a=1", clock)
    (m,) = receive(notify_store, q, clock)
    assert m.body == "a=1" and m.receive_count == 1
    assert receive(notify_store, q, clock) == []
    assert counts(notify_store, q, clock) == {"active": 0, "inactive": 1, "delayed": 0}
    clock.advance(29)
    assert receive(notify_store, q, clock) == []
    clock.advance(1)
    (again,) = receive(notify_store, q, clock)  # not deleted: it reappears
    assert again.message_id == m.message_id and again.receive_count == 2 and again.receipt != m.receipt
    assert again.first_received_at == m.first_received_at
    with pytest.raises(QueueError, match="holds receipt handle") as exc:
        delete(notify_store, q, m.receipt, clock)  # the first handle died with the second receive
    assert exc.value.code == "ReceiptHandleError"
    delete(notify_store, q, again.receipt, clock)
    clock.advance(3600)
    assert receive(notify_store, q, clock) == []
    assert counts(notify_store, q, clock) == {"active": 0, "inactive": 0, "delayed": 0}


def test_a_receipt_expires_with_the_visibility_timeout(notify_store, clock):
    q = queue(notify_store, clock=clock)
    send(notify_store, q, "a=1", clock)
    (m,) = receive(notify_store, q, clock, visibility=5)
    clock.advance(5)
    with pytest.raises(QueueError, match="expired"):
        delete(notify_store, q, m.receipt, clock)


def test_delay_makes_a_message_visible_later(notify_store, clock):
    q = queue(notify_store, clock=clock, delay_seconds=60)
    send(notify_store, q, "a=1", clock)
    assert counts(notify_store, q, clock)["delayed"] == 1
    clock.advance(59)
    assert receive(notify_store, q, clock) == []
    clock.advance(1)
    assert [m.body for m in receive(notify_store, q, clock)] == ["a=1"]


def test_retention_removes_old_messages(notify_store, clock):
    q = queue(notify_store, clock=clock, retention_seconds=600)
    send(notify_store, q, "old", clock)
    clock.advance(300)
    send(notify_store, q, "new", clock)
    clock.advance(300)  # "old" is 600 s old now
    assert [m.body for m in receive(notify_store, q, clock, max_messages=16)] == ["new"]
    run(Notifier(notify_store, clock).run_once())  # the notifier purges expired rows
    with notify_store.transaction() as conn:
        assert conn.execute(sa.select(t.notify_queue_messages.c.body)).scalars().all() == ["new"]


def test_base64_bodies_and_the_size_limit(notify_store, clock):
    q = queue(notify_store, clock=clock, base64_bodies=True, max_message_bytes=1024)
    send(notify_store, q, "event=deliver&rcpt=a@b.example", clock)
    (m,) = receive(notify_store, q, clock)
    assert base64.b64decode(m.body) == b"event=deliver&rcpt=a@b.example"
    assert m.text(base64_bodies=True) == "event=deliver&rcpt=a@b.example"
    with pytest.raises(QueueError, match="1028 bytes exceeds queue 'q1' max_message_bytes 1024") as exc:
        send(notify_store, q, "x" * 771, clock)  # 771 bytes encode to 1028
    assert exc.value.code == "MessageTooLarge"
    send(notify_store, q, "x" * 768, clock)  # exactly 1024 once encoded


def test_receive_takes_oldest_first_up_to_max(notify_store, clock):
    q = queue(notify_store, clock=clock)
    for i in range(5):
        send(notify_store, q, f"n={i}", clock)
    assert [m.body for m in receive(notify_store, q, clock, max_messages=3)] == ["n=0", "n=1", "n=2"]
    assert [m.body for m in receive(notify_store, q, clock, max_messages=16)] == ["n=3", "n=4"]


@pytest.mark.parametrize("setting", QUEUE_SETTINGS, ids=lambda s: s.name)
def test_every_queue_setting(notify_store, setting):
    assert setting.minimum <= setting.default <= setting.maximum and setting.why
    assert getattr(queue(notify_store, "fresh"), setting.name) == setting.default
    for ok in (setting.minimum, setting.maximum):
        assert getattr(queue(notify_store, "q1", **{setting.name: ok}), setting.name) == ok
    for bad in (setting.minimum - 1, setting.maximum + 1, "10", 1.5, True):
        with pytest.raises(QueueError, match=f"{setting.name} must be an integer from {setting.minimum} to {setting.maximum}"):
            queue(notify_store, "q1", **{setting.name: bad})


def test_unknown_setting_is_refused(notify_store):
    with pytest.raises(QueueError, match="unknown queue setting 'wait'"):
        queue(notify_store, "q1", wait=3)


def test_routed_event_lands_in_the_rule_queue_once(notify_store, clock):
    eid = insert_event(notify_store, ORDERS, "Deliver:SendFailed")
    n = Notifier(notify_store, clock)
    run(n.run_once())
    run(n.run_once())
    with notify_store.transaction() as conn:
        q = mq.get_queue(conn, conn.execute(sa.select(t.accounts.c.id)).scalar(), "dm-deliveries")
        rows = conn.execute(sa.select(t.notify_queue_messages)).mappings().all()
        body = conn.execute(sa.select(t.events.c.body).where(t.events.c.id == eid)).scalar()
    assert len(rows) == 1 and rows[0]["body"] == body and q.visibility_timeout_seconds == 30


def test_an_oversized_event_fails_its_queue_delivery(notify_store, clock):
    queue(notify_store, "dm-deliveries", max_message_bytes=1024)
    eid = insert_event(notify_store, ORDERS, body="err_msg=" + "x" * 2000)
    run(Notifier(notify_store, clock).run_once())
    with notify_store.transaction() as conn:
        d = conn.execute(sa.select(t.notify_deliveries).where(t.notify_deliveries.c.event_id == eid,
                                                              t.notify_deliveries.c.kind == "queue")).mappings().one()
    assert d["state"] == "failed" and "exceeds queue 'dm-deliveries' max_message_bytes 1024" in d["last_error"]


# --- over HTTP --------------------------------------------------------------------------------

KEY_ID = "LTAI5tExampleShop0001"  # the example account's AccessKey (config/api_keys.yaml)
KEY_SECRET = EXAMPLE_ENV["DM_ACCESS_KEY_SECRET"]


@pytest.fixture
def queue_api(notify_store, clock):
    served = ApiServer(create_queue_app(notify_store, clock=clock)).start()
    yield served
    served.stop()


@pytest.fixture
def client(queue_api, clock):
    with QueueClient(queue_api.url, access_key_id=KEY_ID, access_key_secret=KEY_SECRET, clock=clock) as c:
        yield c


def test_client_receives_and_deletes_routed_events(notify_store, clock, client):
    assert client.receive("dm-deliveries") == []  # named by a rule: exists before its first message
    insert_event(notify_store, ORDERS, "Deliver:SendFailed")
    run(Notifier(notify_store, clock).run_once())
    (m,) = client.receive("dm-deliveries", visibility=60)
    assert parse_event_body(m.body)["failed_type"] == "SmtpNxBox"
    assert client.receive("dm-deliveries") == []
    attrs = client.attributes("dm-deliveries")
    assert attrs["inactive"] == 1 and attrs["visibility_timeout_seconds"] == 30
    clock.advance(60)
    (again,) = client.receive("dm-deliveries")
    with pytest.raises(QueueError) as exc:
        client.delete("dm-deliveries", m.receipt)
    assert exc.value.code == "ReceiptHandleError" and exc.value.status == 404
    client.delete("dm-deliveries", again.receipt)
    assert client.attributes("dm-deliveries")["inactive"] == 0


def test_long_poll_returns_as_soon_as_a_message_arrives(notify_store, clock, client):
    got: list = []
    waiting = threading.Thread(target=lambda: got.extend(client.receive("dm-deliveries", wait=30)))
    waiting.start()
    insert_event(notify_store, ORDERS, "Deliver:SendFailed")
    run(Notifier(notify_store, clock).run_once())
    waiting.join(20)  # a liveness bound, far below the 30 s wait: the send woke the receiver
    assert not waiting.is_alive()
    assert len(got) == 1 and "failed_type=SmtpNxBox" in got[0].body


def test_api_errors(queue_api, client, clock):
    with pytest.raises(QueueError) as exc:
        client.receive("no-such-queue")
    assert (exc.value.code, exc.value.status) == ("QueueNotExist", 404)
    with pytest.raises(QueueError, match="wait must be from 0 to 30"):
        client.receive("dm-deliveries", wait=31)
    with pytest.raises(QueueError, match="max must be from 1 to 16"):
        client.receive("dm-deliveries", max_messages=17)
    with QueueClient(queue_api.url, access_key_id=KEY_ID, access_key_secret=KEY_SECRET, account="nobody",
                     clock=clock) as other:
        with pytest.raises(QueueError) as exc:
            other.receive("dm-deliveries")
    assert (exc.value.code, exc.value.status) == ("AccessDenied", 403)
