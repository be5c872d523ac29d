"""send.batch, send.jobs and queue.* as a user runs them."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

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
