"""cleanup in its own process (mailcore.cleanup.process): the same outcomes as in a thread, over a socket;
a child that dies fails only what it had not answered, and is replaced."""
from __future__ import annotations

import asyncio
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import dkim
import pytest
import sqlalchemy as sa

from mailcore.cleanup.process import (
    CleanupProcess,
    CleanupUnavailable,
    FrameBuffer,
    frame,
)
from mailcore.cleanup.submission import SubmitRefused
from mailcore.cleanup.writer import GTUBE
from mailcore.store import open_store
from mailcore.store import tables as t
from mailcore.store.crypto import SecretBox, generate_master_key
from tests.cleanup.test_writer import _invalid, api, dns_for, rows

REPO = Path(__file__).resolve().parents[2]


def _process(store) -> CleanupProcess:
    return CleanupProcess(store.url, box=SecretBox.from_env())


def test_frames_come_out_whole_however_the_stream_is_cut():
    objs = [("ready", None), (7, api(to=("a@example.com",))), {"big": b"x" * 70_000}]
    stream = b"".join(frame(o) for o in objs)
    whole = FrameBuffer().feed(stream)
    buf, byte_by_byte = FrameBuffer(), []
    for i in range(len(stream)):
        byte_by_byte += buf.feed(stream[i:i + 1])
    assert whole == byte_by_byte == objs
    with pytest.raises(ValueError):
        FrameBuffer().feed(b"\xff\xff\xff\xff")


def test_a_secret_box_travels_as_its_key():
    box = SecretBox(generate_master_key())
    token = box.encrypt("dkim private key")
    assert pickle.loads(pickle.dumps(box)).decrypt(token) == "dkim private key"


def test_submissions_are_committed_and_refusals_come_back_as_refusals(ready_store):
    _invalid(ready_store, "bad@example.com")

    async def go():
        p = _process(ready_store)
        try:
            subs = [api(to=(f"r{i}@example.com",) if i % 5 else ("bad@example.com",)) for i in range(30)]
            subs += [api(html_body="<p>" + GTUBE.decode() + "</p>"), api(sender="nobody@mail.example.com")]
            return await asyncio.gather(*(p.submit(s) for s in subs), return_exceptions=True)
        finally:
            await p.aclose()

    results = asyncio.run(go())
    refused = [r.reason for r in results if isinstance(r, SubmitRefused)]
    assert sorted(refused) == ["invalid-rcpt"] * 6 + ["sender-unknown", "spam"]
    ok = [r for r in results if not isinstance(r, Exception)]
    assert len(ok) == 24 and all(r.recipients == 1 for r in ok)
    stored = rows(ready_store, t.queue_messages)
    assert sorted(str(m["id"]) for m in stored) == sorted(r.env_id for r in ok)
    assert all(dkim.verify(m["content"], dnsfunc=dns_for(ready_store)) for m in stored)


def test_closing_answers_everything_already_handed_over(ready_store):
    async def go():
        p = _process(ready_store)
        await p.start()
        tasks = [asyncio.ensure_future(p.submit(api(to=(f"c{i}@example.com",)))) for i in range(50)]
        await asyncio.sleep(0)  # every frame written
        await p.aclose()
        return await asyncio.gather(*tasks), p._proc.returncode

    results, code = asyncio.run(go())
    assert code == 0 and len({r.env_id for r in results}) == 50
    assert len(rows(ready_store, t.queue_recipients)) == 50


def test_a_child_that_dies_fails_only_what_it_had_not_answered_and_is_replaced(ready_store):
    async def go():
        p = _process(ready_store)
        try:
            first = await p.submit(api(to=("one@example.com",)))
            old = p._proc
            old.send_signal(signal.SIGSTOP)  # the next frame waits, unread, in the socket
            pending = asyncio.ensure_future(p.submit(api(to=("two@example.com",))))
            await asyncio.sleep(0.1)
            old.kill()
            with pytest.raises(CleanupUnavailable, match="exited"):
                await pending
            second = await p.submit(api(to=("three@example.com",)))
            return first, second, old.pid, p._proc.pid
        finally:
            await p.aclose()

    first, second, old_pid, new_pid = asyncio.run(go())
    assert old_pid != new_pid and first.env_id != second.env_id
    assert sorted(r["rcpt"] for r in rows(ready_store, t.queue_recipients)) == ["one@example.com", "three@example.com"]


def test_a_child_that_cannot_use_the_store_fails_start_with_the_reason(tmp_path):
    empty = open_store(f"sqlite:///{tmp_path / 'empty.db'}", migrate=False)  # never migrated

    async def go():
        p = CleanupProcess(empty.url, box=None)
        try:
            await p.start()
        finally:
            await p.aclose()

    with pytest.raises(CleanupUnavailable, match="invoke migrate"):
        asyncio.run(go())


def test_the_child_leaves_when_its_parent_does(ready_store):
    """The parent's end closing (as when it is killed) makes the child finish and exit."""
    async def go():
        p = _process(ready_store)
        await p.submit(api(to=("x@example.com",)))
        p._channel.transport.abort()  # the socket closes as it would if this process died
        return await asyncio.to_thread(p._proc.wait, 30)

    assert asyncio.run(go()) == 0
    with ready_store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.queue_recipients)).scalar() == 1


_PARENT = r'''
import asyncio, signal, sys
from mailcore.cleanup.process import CleanupProcess
from mailcore.store.crypto import SecretBox
from tests.cleanup.test_writer import api

async def main():
    p = CleanupProcess(sys.argv[1], box=SecretBox.from_env())
    await p.submit(api(to=("answered@example.com",)))
    p._proc.send_signal(signal.SIGSTOP)  # what follows waits, unread, in the child's socket
    for i in range(5):
        asyncio.ensure_future(p.submit(api(to=(f"unanswered{i}@example.com",))))
    await asyncio.sleep(0.2)
    print(p._proc.pid, flush=True)
    await asyncio.sleep(120)

asyncio.run(main())
'''


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_a_child_whose_parent_was_killed_commits_nothing_more(ready_store, tmp_path):
    """kill -9 of the service: what its cleanup process had not yet committed stays uncommitted,
    since no client could be told (they got no 250 and send again)."""
    script = tmp_path / "parent.py"
    script.write_text(_PARENT)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    parent = subprocess.Popen([sys.executable, str(script), ready_store.url], stdout=subprocess.PIPE, text=True, env=env)
    try:
        child = int(parent.stdout.readline())
    finally:
        parent.kill()
        parent.wait()
    os.kill(child, signal.SIGCONT)
    deadline = time.monotonic() + 30
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(child)
    assert [r["rcpt"] for r in rows(ready_store, t.queue_recipients)] == ["answered@example.com"]


def test_a_retry_reaching_a_new_child_gets_the_first_env_id(ready_store):
    """Retry keys and replayed nonces are decided by the store, not by the child's memory."""
    async def go():
        p = _process(ready_store)
        try:
            first = await p.submit(api(client_token="order-42"))
            replay = ("AK1", "ab" * 32, time.time() + 900)
            await p.submit(api(to=("n@example.com",), replay=replay))
            p._proc.kill()  # the child goes; the next submission starts another
            p._proc.wait()
            await asyncio.sleep(0.1)
            again = await p.submit(api(client_token="order-42"))
            replayed = await asyncio.gather(p.submit(api(to=("n@example.com",), replay=replay)), return_exceptions=True)
            return first, again, replayed[0]
        finally:
            await p.aclose()

    first, again, replayed = asyncio.run(go())
    assert again.env_id == first.env_id
    assert isinstance(replayed, SubmitRefused) and replayed.reason == "replayed"
    assert len(rows(ready_store, t.queue_messages)) == 2
