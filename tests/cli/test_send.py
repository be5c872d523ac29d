"""send.batch, send.jobs, send.details and queue.* as a user runs them."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from mailcore.store import open_store
from mailcore.store import tables as t
from tests.support.cli import ROOT, run


def test_batch_job_through_tasks(tmp_path, key):
    cfg = str(ROOT / "config")
    assert run(["apply", "--no-dns", "--config", cfg], key, tmp_path).returncode == 0
    r = run(["send.batch", "--list", "vip-customers", "--template", "vip-offer", "--sender", "newsletter@news.example.com",
             "--config", cfg], key, tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "refused:" in r.stderr and "[domain-unverified, R9]" in r.stderr
    store = open_store(f"sqlite:///{tmp_path / 'state' / 'mailcore.db'}")
    with store.transaction() as conn:  # what `invoke verify` and ten minutes would do
        conn.execute(sa.update(t.domains).values(status="verified"))
        conn.execute(sa.update(t.senders).values(created_at=datetime.now(timezone.utc) - timedelta(hours=1)))
    r = run(["send.batch", "--list", "vip-customers", "--template", "vip-offer", "--sender", "newsletter@news.example.com",
             "--config", cfg], key, tmp_path)
    assert r.returncode == 2 and "template-unusable" in r.stderr
    for action, extra in (("submit", []), ("approve", ["--by", "alice"])):
        assert run([f"template.{action}", "vip-offer", "--config", cfg, *extra], key, tmp_path).returncode == 0
    r = run(["send.batch", "--list", "vip-customers", "--template", "vip-offer", "--sender", "newsletter@news.example.com",
             "--tag", "newsletter_weekly", "--address-type", "random", "--config", cfg], key, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "batch queued: env_id 1, 4 recipients" in r.stdout
    r = run(["send.jobs", "--config", cfg], key, tmp_path)
    assert "queued" in r.stdout and "vip-customers" in r.stdout and "vip-offer" in r.stdout
    r = run(["queue.list"], key, tmp_path)
    assert "incoming 4" in r.stdout and "li.wei@example.com" in r.stdout
    r = run(["queue.hold"], key, tmp_path)
    assert "queue.hold: 4 recipient(s)" in r.stdout
    r = run(["queue.list", "--state", "hold"], key, tmp_path)
    assert "hold 4" in r.stdout
    assert "queue.release: 4" in run(["queue.release"], key, tmp_path).stdout
    r = run(["queue.list", "--state", "bogus"], key, tmp_path)
    assert r.returncode == 2 and "unknown state 'bogus'" in r.stderr


def test_reply_to_verification_through_tasks(tmp_path, key):
    cfg = str(ROOT / "config")
    assert run(["apply", "--no-dns", "--config", cfg], key, tmp_path).returncode == 0
    verify = ["reply-to.verify", "--address", "orders@mail.example.com", "--config", cfg]
    r = run(verify, key, tmp_path)
    assert r.returncode == 2 and "[domain-unverified, R9]" in r.stderr and "Traceback" not in r.stderr
    store = open_store(f"sqlite:///{tmp_path / 'state' / 'mailcore.db'}")
    with store.transaction() as conn:  # what `invoke verify` and ten minutes would do
        conn.execute(sa.update(t.domains).values(status="verified"))
        conn.execute(sa.update(t.senders).values(created_at=datetime.now(timezone.utc) - timedelta(hours=1)))
    r = run(verify, key, tmp_path)  # the refused attempt did not start the 10-minute interval
    assert r.returncode == 0, r.stderr
    assert "verification mail queued" in r.stdout and "support@example.com" in r.stdout and "127.0.0.1:8080" in r.stdout
    with store.engine.connect() as conn:
        content = conn.execute(sa.select(t.queue_messages.c.content)).scalar()
        assert conn.execute(sa.select(t.queue_recipients.c.rcpt)).scalars().all() == ["support@example.com"]
    assert b"http://127.0.0.1:8080/reply-to/approve?ticket=" in content
    r = run(verify, key, tmp_path)
    assert r.returncode == 2 and "[too-soon, R13]" in r.stderr
    r = run(["reply-to.verify", "--address", "security@mail.example.com", "--config", cfg], key, tmp_path)
    assert r.returncode == 2 and "[no-reply-to, R13]" in r.stderr


def _seed_details(tmp_path, key):
    """The example applied (no DNS) and three messages of example-shop on 2026-11-02/03/20 with results."""
    from mailcore.queue import states as queue
    assert run(["apply", "--no-dns", "--config", str(ROOT / "config")], key, tmp_path).returncode == 0
    store = open_store(f"sqlite:///{tmp_path / 'state' / 'mailcore.db'}")

    def message(sender, tag, n):
        return {"account_id": account_id, "sender": sender, "envelope_from": sender, "region": "cn-hangzhou",
                "source": "api", "tag": tag, "tracking": False, "message_id": f"<d{n}@x>", "subject": f"Subject {n}",
                "content": b"x"}

    r = t.queue_recipients
    with store.transaction() as conn:
        account_id = conn.execute(sa.select(t.accounts.c.id).where(t.accounts.c.name == "example-shop")).scalar()
        queue.enqueue(conn, message("orders@mail.example.com", "order_confirmation", 1),
                      [{"rcpt": "ann@example.org"}, {"rcpt": "gone@example.org"}],
                      datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc))
        queue.enqueue(conn, message("newsletter@news.example.com", "newsletter_weekly", 2), [{"rcpt": "ann@example.org"}],
                      datetime(2026, 11, 3, 9, 0, tzinfo=timezone.utc))
        queue.enqueue(conn, message("orders@mail.example.com", None, 3), [{"rcpt": "late@example.org"}],
                      datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc))
        conn.execute(sa.update(r).where(r.c.rcpt == "ann@example.org").values(state="sent", status=0, last_text="250 ok"))
        conn.execute(sa.update(r).where(r.c.rcpt == "gone@example.org").values(
            state="bounced", status=2, failed_type="SmtpNxBox", last_text="550 5.1.1 no such user"))


DETAIL_CASES = [  # options (with --start 2026-11-01 --end 2026-11-10 unless given) -> (env_id, rcpt, result) shown
    ([], [("1", "ann@example.org", "success"), ("1", "gone@example.org", "invalid-address"),
          ("2", "ann@example.org", "success")]),
    (["--result", "success"], [("1", "ann@example.org", "success"), ("2", "ann@example.org", "success")]),
    (["--result", "invalid-address"], [("1", "gone@example.org", "invalid-address")]),
    (["--result", "failed"], []),
    (["--sender", "Newsletter@news.example.com"], [("2", "ann@example.org", "success")]),
    (["--rcpt", "GONE@example.org"], [("1", "gone@example.org", "invalid-address")]),
    (["--tag", "order_confirmation"], [("1", "ann@example.org", "success"), ("1", "gone@example.org", "invalid-address")]),
    (["--end", "2026-11-02"], [("1", "ann@example.org", "success"), ("1", "gone@example.org", "invalid-address")]),
    (["--start", "2026-11-03T00:00+08:00", "--end", "2026-11-25"],  # 2026-11-02 16:00 UTC on
     [("2", "ann@example.org", "success"), ("3", "late@example.org", "pending (incoming)")]),
    (["--limit", "1"], [("1", "ann@example.org", "success")]),
    (["--after", "3"], [("2", "ann@example.org", "success")]),
]


def _detail_rows(stdout: str) -> list[tuple[str, str, str]]:
    out = []
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 9 and cells[0].isdigit():
            out.append((cells[1], cells[4], cells[7]))
    return out


def test_send_details_through_tasks_and_the_command(tmp_path, key):
    """R36 on the command line (issue 14): time range, sender, recipient, tag and result, as the API filters."""
    from tests.support.store import EXAMPLE_ENV
    _seed_details(tmp_path, key)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DM_", "MAILCORE_"))}
    env.update(EXAMPLE_ENV, **key, MAILCORE_ENV_FILE="", MAILCORE_STATE_DIR=str(tmp_path / "state"),
               MAILCORE_CONFIG=str(ROOT / "config"))
    for options, shown in DETAIL_CASES:
        window = [] if "--start" in options else ["--start", "2026-11-01"]
        window += [] if "--end" in options else ["--end", "2026-11-10"]
        r = run(["send.details", "--config", str(ROOT / "config"), *window, *options], key, tmp_path)
        assert r.returncode == 0, (options, r.stderr)
        assert _detail_rows(r.stdout) == shown, (options, r.stdout)
        m = subprocess.run([sys.executable, "-m", "mailcore", "send", "details", *window, *options], capture_output=True,
                           text=True, env=env, cwd=tmp_path, timeout=120)
        assert m.returncode == 0, (options, m.stderr)
        assert _detail_rows(m.stdout) == shown, (options, m.stdout)
    r = run(["send.details", "--config", str(ROOT / "config"), "--start", "2026-11-01", "--end", "2026-11-10",
             "--limit", "2"], key, tmp_path)
    assert "more with --after 3" in r.stdout and "550 5.1.1 no such user" in r.stdout and "Subject 1" in r.stdout
    assert "order_confirmation" in r.stdout and "orders@mail.example.com" in r.stdout


@pytest.mark.parametrize("options, error", [
    (["--start", "2026-10-01", "--end", "2026-11-10"], "at most 30 days at a time (R36)"),
    (["--start", "2026-11-10", "--end", "2026-11-01"], "is after --end"),
    (["--start", "last week"], "--start takes YYYY-MM-DD or an ISO time"),
    (["--result", "delivered"], "--result is one of success, invalid-address, spam, failed"),
    (["--limit", "none"], "--limit takes a number of rows"),
    (["--after", "x"], "--after takes the recipient id"),
])
def test_send_details_bad_options_are_one_line(tmp_path, key, options, error):
    r = run(["send.details", "--config", str(ROOT / "config"), *options], key, tmp_path)
    assert r.returncode == 2 and error in r.stderr and "Traceback" not in r.stderr, r.stderr
