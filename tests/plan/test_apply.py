"""Plan and apply against real stores (SQLite file and PostgreSQL)."""
from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from mailcore.plan import CREATE, DELETE, UPDATE, ApplyRefused, apply_config, secret_box
from mailcore.plan.apply import acquire_lock, ensure_lock_row
from mailcore.store import tables as t
from mailcore.store.crypto import verify_password
from tests.support.helpers import apply, dump, edit_yaml, load, plan

pytestmark = pytest.mark.usefixtures("example_env")


def test_apply_twice_second_reports_no_changes_and_writes_nothing(store, example_config):
    first = apply(store, example_config)
    assert first.applied
    s = first.plan.summary()
    assert s[CREATE] > 20 and s[UPDATE] == 0 and s[DELETE] == 0
    before = dump(store)
    second = apply(store, example_config)
    assert not second.applied and second.plan.changes == []
    assert dump(store) == before


def test_store_holds_the_config(store, example_config):
    apply(store, example_config)
    with store.engine.connect() as conn:
        domains = dict(conn.execute(sa.select(t.domains.c.name, t.domains.c.region)).all())
        assert domains == {"mail.example.com": "cn-hangzhou", "news.example.com": "cn-hangzhou",
                           "notice.example.net": "ap-southeast-1"}
        counts = dict(conn.execute(sa.select(t.recipient_lists.c.name, t.recipient_lists.c.row_count)).all())
        stored = conn.execute(sa.select(sa.func.count()).select_from(t.recipients)).scalar()
        assert counts == {"vip-customers": 4, "weekly-readers": 4} and stored == 8
        statuses = set(conn.execute(sa.select(t.templates.c.status)).scalars())
        assert statuses == {"draft"}


def test_secrets_at_rest(store, example_config, example_env):
    apply(store, example_config)
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(t.senders).where(t.senders.c.address == "orders@mail.example.com")).mappings().one()
        key = conn.execute(sa.select(t.api_keys)).mappings().one()
    assert verify_password(example_env["DM_SMTP_PASSWORD_ORDERS"], row["smtp_password_hash"])
    assert not verify_password("Wrong2026Pw", row["smtp_password_hash"])
    assert example_env["DM_SMTP_PASSWORD_ORDERS"] not in str(dump(store))
    assert example_env["DM_ACCESS_KEY_SECRET"] not in key["secret_enc"]
    loaded = load(example_config)
    assert secret_box(loaded).decrypt(key["secret_enc"]) == example_env["DM_ACCESS_KEY_SECRET"]


def test_password_change_is_planned_and_rehashed(store, example_config, monkeypatch):
    apply(store, example_config)
    monkeypatch.setenv("DM_SMTP_PASSWORD_ORDERS", "Changed2027Pw")
    p = plan(store, example_config)
    [change] = p.changes
    assert (change.action, change.ref, [f.field for f in change.fields]) == (UPDATE, "sender orders@mail.example.com",
                                                                             ["smtp_password"])
    apply(store, example_config)
    with store.engine.connect() as conn:
        h = conn.execute(sa.select(t.senders.c.smtp_password_hash).where(t.senders.c.address == "orders@mail.example.com")).scalar()
    assert verify_password("Changed2027Pw", h)


def _senders(n):
    return [{"address": f"s{i}@mail.example.com", "type": "trigger"} for i in range(n)]


def test_fifth_sender_deletion_in_a_month_is_refused(store, example_config):
    edit_yaml(example_config / "senders.yaml", lambda d: d.__setitem__("senders", _senders(9)))
    edit_yaml(example_config / "notifications.yaml", lambda d: d.pop("notifications"))
    now = datetime(2026, 11, 10, 12, 0, tzinfo=timezone.utc)
    apply(store, example_config, now=now)
    for remaining in (8, 7, 6, 5):
        edit_yaml(example_config / "senders.yaml", lambda d: d.__setitem__("senders", _senders(remaining)))
        result = apply(store, example_config, now=now)
        assert [c.ref for c in result.plan.of(DELETE, "sender")] == [f"sender s{remaining}@mail.example.com"]
    before = dump(store)
    edit_yaml(example_config / "senders.yaml", lambda d: d.__setitem__("senders", _senders(4)))
    with pytest.raises(ApplyRefused) as exc:
        apply(store, example_config, now=now)
    message = str(exc.value)
    assert "s4@mail.example.com" in message and "4 already deleted in 2026-11" in message and "R11" in message
    assert "2026-12-01" in message
    assert dump(store) == before
    # a plan shows the same refusal
    assert plan(store, example_config, now=now).refusals == [message]
    # next calendar month (account time zone Asia/Shanghai) the deletion goes through
    result = apply(store, example_config, now=datetime(2026, 11, 30, 16, 0, tzinfo=timezone.utc))
    assert result.applied


def test_domain_and_its_senders_deleted_in_one_apply_senders_first(store, example_config):
    apply(store, example_config)

    def drop_news(d):
        d["domains"] = [x for x in d["domains"] if x["name"] != "news.example.com"]
    edit_yaml(example_config / "domains.yaml", drop_news)
    edit_yaml(example_config / "senders.yaml",
              lambda d: d.__setitem__("senders", [s for s in d["senders"] if not s["address"].endswith("@news.example.com")]))
    edit_yaml(example_config / "lists.yaml", lambda d: d.__setitem__("recipient_lists", [
        {**x, "alias_address": x["alias_address"].replace("news.", "mail.")} for x in d["recipient_lists"]]))
    result = apply(store, example_config)
    refs = [c.ref for c in result.plan.changes if c.action == DELETE]
    assert refs.index("sender newsletter@news.example.com") < refs.index("domain news.example.com")
    with store.engine.connect() as conn:
        assert "news.example.com" not in set(conn.execute(sa.select(t.domains.c.name)).scalars())


def test_domain_removal_refused_while_store_still_has_its_senders(store, example_config):
    apply(store, example_config)
    loaded = load(example_config, store)
    # a spec edited behind validation's back: the domain goes, its sender stays
    loaded.spec.domains = [d for d in loaded.spec.domains if d.name != "notice.example.net"]
    before = dump(store)
    with pytest.raises(ApplyRefused, match="domain notice.example.net still has sender alerts@notice.example.net"):
        apply_config(store, loaded, secret_box(loaded))
    assert dump(store) == before


def test_apply_is_all_or_nothing(store, example_config, monkeypatch):
    from mailcore.plan.apply import Writer

    def boom(self, change):
        raise RuntimeError("disk on fire")
    monkeypatch.setattr(Writer, "_api_key", boom)  # the last kind written
    before = dump(store)
    with pytest.raises(RuntimeError):
        apply(store, example_config)
    assert dump(store) == before


def test_edited_approved_template_returns_to_draft(store, example_config):
    from mailcore.account.review import review
    from mailcore.plan import utcnow
    apply(store, example_config)
    with store.transaction() as conn:
        review(conn, "example-shop", "vip-offer", "submit", "bob", utcnow())
        review(conn, "example-shop", "vip-offer", "approve", "alice", utcnow())
    assert plan(store, example_config).changes == []
    (example_config / "templates" / "vip-offer.html").write_text("<p>Dear {UserName}, 30% off.</p>")
    p = plan(store, example_config)
    [change] = p.changes
    fields = {f.field: (f.old, f.new) for f in change.fields}
    assert fields["status"] == ("approved", "draft")
    assert any("submit it for review again" in n for n in change.notes)
    apply(store, example_config)
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(t.templates).where(t.templates.c.name == "vip-offer")).mappings().one()
        actions = conn.execute(sa.select(t.template_reviews.c.action).where(t.template_reviews.c.template_id == row["id"])
                               .order_by(t.template_reviews.c.id)).scalars().all()
    assert row["status"] == "draft" and row["approved_digest"] is None
    assert actions == ["submit", "approve", "reset"]
    assert plan(store, example_config).changes == []


def test_recipient_list_change_shows_row_delta(store, example_config):
    apply(store, example_config)
    f = example_config / "lists" / "weekly-readers.txt"
    lines = f.read_text().splitlines()
    lines = [l for l in lines if not l.startswith("reader002")] + ["reader005@example.com,New Reader,New"]
    lines = [l.replace("Jo Reader", "Joanna Reader") for l in lines]
    f.write_text("\n".join(lines) + "\n")
    [change] = plan(store, example_config).changes
    assert change.ref == "recipient_list weekly-readers"
    assert change.notes == ["recipients: +1 added, -1 removed, ~1 changed (4 -> 4 rows)"]
    apply(store, example_config)
    with store.engine.connect() as conn:
        emails = conn.execute(sa.select(t.recipients.c.email).order_by(t.recipients.c.email)).scalars().all()
    assert "reader005@example.com" in emails and "reader002@example.com" not in emails


def test_domain_owned_by_another_account_is_refused(store, example_config, tmp_path):
    apply(store, example_config)
    other = tmp_path / "other"
    other.mkdir()
    (other / "account.yaml").write_text(
        "account: {name: other-shop}\nregions: [{id: cn-hangzhou}]\n"
        "dns_backends: {b: {kind: rfc2136, server: 127.0.0.1}}\n"
        "domains: [{name: eu.mail.example.com, region: cn-hangzhou, dns: b}]\n")
    from mailcore.plan import foreign_domains
    from mailcore.spec import load_account
    loaded = load_account(other, foreign_domains=lambda n: foreign_domains(store, n))
    [(loc, issue)] = loaded.report.errors
    assert issue.validator == "domain-exclusive" and (loc.line, loc.col) == (4, 18)
    assert "subdomain of 'mail.example.com', which account 'example-shop' already uses" in issue.message


def test_applies_are_serialised_by_the_lock(store, example_config):
    apply(store, example_config)
    edit_yaml(example_config / "account.yaml", lambda d: d["account"]["quota"].__setitem__("daily", 1000))
    name = "apply:example-shop"
    ensure_lock_row(store, name)
    holding, release, done = threading.Event(), threading.Event(), threading.Event()
    results = {}

    def holder():
        with store.transaction(immediate=True) as conn:
            acquire_lock(conn, store.dialect, name)
            holding.set()
            release.wait(30)

    def second():
        results["r"] = apply(store, example_config)
        done.set()

    a = threading.Thread(target=holder)
    a.start()
    assert holding.wait(10)
    b = threading.Thread(target=second)
    b.start()
    assert not done.wait(0.5), "the second apply ran while the first held the lock"
    release.set()
    a.join(10)
    b.join(30)
    assert results["r"].applied and [c.ref for c in results["r"].plan.changes] == ["account example-shop"]


def test_queues_and_topic_subscriptions_from_config(store, example_config):
    apply(store, example_config)
    with store.engine.connect() as conn:
        q = conn.execute(sa.select(t.notify_queues)).mappings().one()
        subs = conn.execute(sa.select(t.notify_subscriptions).order_by(t.notify_subscriptions.c.kind)).mappings().all()
    assert (q["name"], q["polling_wait_seconds"], q["visibility_timeout_seconds"], q["retention_seconds"]) == \
        ("dm-deliveries", 10, 60, 345600)
    assert [(s["topic"], s["kind"], s["target"]) for s in subs] == [
        ("dm-engagement", "http", "https://hooks.example.com/directmail/engagement"),
        ("dm-engagement", "queue", "dm-engagement-archive")]
    assert subs[0]["signing_secret_enc"] and "webhook-secret-value" not in subs[0]["signing_secret_enc"]
    # a queue dropped from config keeps its settings and messages; a subscription dropped is removed
    edit_yaml(example_config / "events.yaml", lambda d: (d.pop("queues"),
                                                         d["topics"][0].__setitem__("subscriptions", d["topics"][0]["subscriptions"][:1])))
    p = plan(store, example_config)
    assert [(c.action, c.ref) for c in p.changes] == [
        (DELETE, "subscription dm-engagement -> queue:dm-engagement-archive")]
    apply(store, example_config)
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.notify_queues)).scalar() == 1
        assert conn.execute(sa.select(sa.func.count()).select_from(t.notify_subscriptions)).scalar() == 1
