"""`queue.list` (invoke) and `mailcore queue list`: newest first, filtered by state, EnvId,
recipient and time, as an operator runs them (issue 14)."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from mailcore.queue import states as queue
from mailcore.store import open_store
from mailcore.store import tables as t
from tests.support.cli import ROOT, run
from tests.support.store import EXAMPLE_ENV

DAY1 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
DAY2 = datetime(2026, 11, 3, 9, 0, tzinfo=timezone.utc)


def _message(account_id: int, n: int) -> dict:
    return {"account_id": account_id, "sender": "orders@mail.example.com", "envelope_from": "orders@mail.example.com",
            "region": "cn-hangzhou", "source": "api", "tag": None, "tracking": False, "message_id": f"<m{n}@x>",
            "subject": f"Order {n}", "content": b"x"}


@pytest.fixture
def queued(tmp_path, key):
    """The example applied (no DNS) and two messages: #1 on DAY1 to two recipients, #2 on DAY2 to two more."""
    assert run(["apply", "--no-dns", "--config", str(ROOT / "config")], key, tmp_path).returncode == 0
    store = open_store(f"sqlite:///{tmp_path / 'state' / 'mailcore.db'}")
    with store.transaction() as conn:
        account_id = conn.execute(sa.select(t.accounts.c.id)).scalar()
        first = queue.enqueue(conn, _message(account_id, 1), [{"rcpt": "ann@example.org"},
                                                               {"rcpt": "Bob.Smith@Example.org"}], DAY1)
        second = queue.enqueue(conn, _message(account_id, 2), [{"rcpt": "carol@example.net"},
                                                                {"rcpt": "bob@example.net"}], DAY2)
        conn.execute(sa.update(t.queue_recipients).where(t.queue_recipients.c.rcpt == "carol@example.net")
                     .values(state="deferred", last_text="451 4.7.1 Greylisted"))
    return first, second


def _mailcore(args, tmp_path, key):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DM_", "MAILCORE_"))}
    env.update(EXAMPLE_ENV, **key, MAILCORE_ENV_FILE="", MAILCORE_STATE_DIR=str(tmp_path / "state"))
    return subprocess.run([sys.executable, "-m", "mailcore", *args], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)


def _rcpts(stdout: str) -> list[str]:
    """The recipient column, top to bottom."""
    known = ["ann@example.org", "Bob.Smith@Example.org", "carol@example.net", "bob@example.net"]
    return [word for line in stdout.splitlines() for word in line.replace("│", " ").split() if word in known]


CASES = [  # options -> the recipients shown, top to bottom (the same through invoke and mailcore)
    ([], ["bob@example.net", "carol@example.net", "Bob.Smith@Example.org", "ann@example.org"]),
    (["--limit", "2"], ["bob@example.net", "carol@example.net"]),
    (["--state", "deferred"], ["carol@example.net"]),
    (["--env-id", "1"], ["Bob.Smith@Example.org", "ann@example.org"]),
    (["--env-id", "###envid=2", "--state", "incoming"], ["bob@example.net"]),
    (["--rcpt", "BOB"], ["bob@example.net", "Bob.Smith@Example.org"]),
    (["--rcpt", "example.org", "--since", "2026-11-03"], []),
    (["--since", "2026-11-03"], ["bob@example.net", "carol@example.net"]),
    (["--since", "2026-11-02T17:30+08:00"], ["bob@example.net", "carol@example.net"]),  # 09:30 UTC
    (["--since", "2026-11-02T09:00Z", "--rcpt", "ann"], ["ann@example.org"]),
]


def test_queue_list_newest_first_with_filters(queued, tmp_path, key):
    for options, shown in CASES:
        r = run(["queue.list", *options], key, tmp_path)
        assert r.returncode == 0, (options, r.stderr)
        assert _rcpts(r.stdout) == shown, (options, r.stdout)
        m = _mailcore(["queue", "list", *options], tmp_path, key)
        assert m.returncode == 0, (options, m.stderr)
        assert _rcpts(m.stdout) == shown, (options, m.stdout)
    r = run(["queue.list", "--env-id", "2"], key, tmp_path)
    assert "incoming 3, active 0, deferred 1" in r.stdout  # the counts are the whole queue's
    assert "451 4.7.1 Greylisted" in r.stdout and "2026-11-03 09:00:00" in r.stdout


@pytest.mark.parametrize("options, error", [
    (["--since", "yesterday"], "--since takes YYYY-MM-DD or an ISO time"),
    (["--env-id", "abc"], "--env-id takes the number a send returned"),
    (["--limit", "0"], "--limit takes a number of rows, 1 or more"),
    (["--limit", "ten"], "--limit takes a number of rows, 1 or more"),  # invoke's own int parsing was a traceback
    (["--state", "lost"], "unknown state 'lost'"),
])
def test_queue_list_bad_options_are_one_line(tmp_path, key, options, error):
    m = _mailcore(["queue", "list", *options], tmp_path, key)
    assert m.returncode == 2 and error in m.stderr and "Traceback" not in m.stderr, m.stderr
    r = run(["queue.list", *options], key, tmp_path)
    assert r.returncode == 2 and error in r.stderr and "Traceback" not in r.stderr, r.stderr
