"""Replay protection in the store: one signed request is accepted once by every listener, before
and after a restart, on SQLite and PostgreSQL; concurrent claims of one nonce have one winner;
rows expire with the request's timestamp window."""
from __future__ import annotations

import asyncio
import threading

import pytest
import sqlalchemy as sa
from alibabacloud_dm20151123 import models as dm
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.utils import Utils

from mailcore.ingress.api.nonces import StoreNonces, nonce_digest
from mailcore.store import tables as t
from tests.support.api import run_api

WINDOW = 900.0


def _send(running, v2):
    return running.client(v2=v2).single_send_mail(dm.SingleSendMailRequest(
        account_name="orders@mail.example.com", address_type=1, reply_to_address=False, subject="Once",
        text_body="Only once.", to_address="buyer@example.org"))


@pytest.mark.parametrize("v2", [False, True], ids=["v3", "rpc-sha1"])
def test_one_signed_request_is_accepted_once_by_every_listener_and_after_a_restart(applied_store, example_env,
                                                                                   monkeypatch, v2):
    # the very same signed bytes each time: a fixed nonce and a fixed timestamp
    monkeypatch.setattr(Utils, "get_nonce", staticmethod(lambda: "replayed-nonce-0001"))
    stamp = Utils.get_timestamp()
    monkeypatch.setattr(Utils, "get_timestamp", staticmethod(lambda: stamp))
    secret = example_env["DM_ACCESS_KEY_SECRET"]
    first, second = run_api(applied_store, secret), run_api(applied_store, secret)
    try:
        assert _send(first, v2).body.env_id
        for running in (first, second):  # the listener that saw it, and one that did not
            with pytest.raises(ClientException) as exc:
                _send(running, v2)
            assert (exc.value.code, exc.value.status_code) == ("SignatureNonceUsed", 400)
    finally:
        first.server.stop()
        second.server.stop()
    restarted = run_api(applied_store, secret)  # a new process's memory is empty; the store is not
    try:
        with pytest.raises(ClientException) as exc:
            _send(restarted, v2)
        assert exc.value.code == "SignatureNonceUsed"
    finally:
        restarted.server.stop()
    assert len(first.submitter.submissions) == 1
    assert not second.submitter.submissions and not restarted.submitter.submissions


def test_concurrent_claims_of_one_nonce_have_one_winner(store):
    """Listeners in different threads, each with its own memory, racing on one nonce."""
    clock = lambda: 1_000_000.0  # noqa: E731
    listeners = [StoreNonces(store, WINDOW, clock) for _ in range(8)]
    barrier, results = threading.Barrier(len(listeners)), []

    def race(nonces):
        barrier.wait()
        results.extend(nonces.claim_many([(("AK1", nonce_digest("raced")), 1_000_600.0)]))

    threads = [threading.Thread(target=race, args=(n,)) for n in listeners]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert sorted(results) == [False] * 7 + [True]


def test_a_group_claims_each_nonce_once_and_keys_are_separate(store):
    nonces = StoreNonces(store, WINDOW, lambda: 1_000_000.0)
    k = lambda ak, n: ((ak, nonce_digest(n)), 1_000_600.0)  # noqa: E731
    assert nonces.claim_many([k("AK1", "a"), k("AK1", "b"), k("AK1", "a"), k("AK2", "a")]) == [True, True, False, True]
    assert nonces.claim_many([k("AK1", "b"), k("AK1", "c")]) == [False, True]


def test_rows_expire_with_the_timestamp_window_and_are_swept(store):
    now = {"t": 1_000_000.0}
    nonces = StoreNonces(store, WINDOW, lambda: now["t"])
    key = ("AK1", nonce_digest("n"))
    assert nonces.claim_many([(key, now["t"] + WINDOW)]) == [True]
    now["t"] += WINDOW - 1
    assert nonces.claim_many([(key, now["t"] + WINDOW)]) == [False]  # still inside the request's window
    now["t"] += 2  # the first request is now refused by its timestamp: its nonce may be used again
    assert nonces.claim_many([(key, now["t"] + WINDOW)]) == [True]
    assert nonces.claim_many([(("AK1", nonce_digest("other")), now["t"] + 10)]) == [True]
    now["t"] += 10 + WINDOW + 1  # "other" is a window past its expiry: the next sweep deletes it
    nonces._next_sweep = 0.0
    nonces.claim_many([(("AK1", nonce_digest("late")), now["t"] + WINDOW)])
    with store.engine.connect() as conn:
        left = set(conn.execute(sa.select(t.api_nonces.c.nonce)).scalars())
    assert left == {nonce_digest("n"), nonce_digest("late")}


def test_the_front_cache_refuses_a_replay_without_asking_the_store(store):
    nonces = StoreNonces(store, WINDOW, lambda: 1_000_000.0)

    async def twice():
        a = await nonces.claim("AK1", "n1", 1_000_600.0)
        with store.transaction() as conn:  # the store forgets; this process still remembers
            conn.execute(sa.delete(t.api_nonces))
        b = await nonces.claim("AK1", "n1", 1_000_600.0)
        c = await asyncio.gather(*(nonces.claim("AK1", f"g{i % 3}", 1_000_600.0) for i in range(6)))
        return a, b, c

    a, b, c = asyncio.run(twice())
    assert (a, b) == (True, False)
    assert sorted(c) == [False] * 3 + [True] * 3  # concurrent claims are written as one group


@pytest.mark.parametrize("v2", [False, True], ids=["v3", "rpc-sha1"])
def test_a_replayed_send_is_refused_where_cleanup_writes_it(cleanup_api, ready_store, example_env, monkeypatch, v2):
    """Through the real cleanup the nonce of a send is claimed in the message's own transaction."""
    from mailcore.cleanup.writer import Cleanup
    from mailcore.ingress.api.app import ApiServer, create_app
    from mailcore.store.crypto import SecretBox
    from tests.support.api import Clock, RunningApi

    monkeypatch.setattr(Utils, "get_nonce", staticmethod(lambda: "replayed-send-nonce"))
    stamp = Utils.get_timestamp()
    monkeypatch.setattr(Utils, "get_timestamp", staticmethod(lambda: stamp))
    assert _send(cleanup_api, v2).body.env_id
    other_cleanup = Cleanup(ready_store, box=SecretBox.from_env())  # another listener with its own cleanup
    other = RunningApi(ApiServer(create_app(ready_store, other_cleanup, clock=Clock())).start(), other_cleanup, Clock(),
                       example_env["DM_ACCESS_KEY_SECRET"])
    try:
        for running in (cleanup_api, other):
            with pytest.raises(ClientException) as exc:
                _send(running, v2)
            assert (exc.value.code, exc.value.status_code) == ("SignatureNonceUsed", 400)
    finally:
        other.server.stop()
        other_cleanup.close()
    with ready_store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.queue_messages)).scalar() == 1
        assert conn.execute(sa.select(t.api_nonces.c.nonce)).scalars().all() == [nonce_digest("replayed-send-nonce")]
