"""The saved plan's checks (mailcore.plan.planfile) and the markdown comment (render_markdown),
each row of their tables walked."""
from __future__ import annotations

import pytest

from mailcore.plan import planfile
from mailcore.plan.planfile import STALE, StalePlan, check, digest
from mailcore.plan.render import render_markdown
from mailcore.plan.state import RowSet

FP = {"config": "c1", "store": "s1", "dns": "d1"}
DOC = {"format": planfile.FORMAT, "account": "shop", "dns": True, "fingerprints": FP}


@pytest.mark.parametrize("what, kwargs", [
    ("account", {"account": "other", "dns": True, "current": FP}),
    ("dns_mode", {"account": "shop", "dns": False, "current": FP}),
    ("config", {"account": "shop", "dns": True, "current": {**FP, "config": "c2"}}),
    ("store", {"account": "shop", "dns": True, "current": {**FP, "store": "s2"}}),
    ("dns", {"account": "shop", "dns": True, "current": {**FP, "dns": "d2"}}),
])
def test_each_stale_reason(what, kwargs):
    with pytest.raises(StalePlan) as info:
        check(DOC, "p.json", **kwargs)
    assert info.value.what == what
    assert "p.json" in str(info.value)


def test_every_stale_row_is_reachable():
    assert set(STALE) == {"format", "account", "dns_mode", "config", "store", "dns"}
    check(DOC, "p.json", account="shop", dns=True, current=FP)  # nothing moved: no exception
    check(DOC, "p.json", account="shop", dns=True, current={"store": "s1"})  # only what is known yet


@pytest.mark.parametrize("text, why", [("nope", "not JSON"), ('{"format": "x"}', "no 'mailcore-plan/1' header"),
                                       ("[]", "no 'mailcore-plan/1' header")])
def test_read_refuses_what_is_no_plan(tmp_path, text, why):
    (tmp_path / "p.json").write_text(text)
    with pytest.raises(StalePlan, match=why) as info:
        planfile.read(str(tmp_path / "p.json"))
    assert info.value.what == "format"


def test_write_then_read(tmp_path):
    path = str(tmp_path / "p.json")
    planfile.write(path, {"summary": {}}, account="shop", dns=False, fingerprints=FP)
    doc = planfile.read(path)
    assert doc["account"] == "shop" and doc["dns"] is False and doc["fingerprints"] == FP


def test_digest_is_canonical():
    a = {"x": {"b": 1, "a": RowSet(2, "abc")}, "y": [1, 2]}
    b = {"y": [1, 2], "x": {"a": RowSet(2, "abc"), "b": 1}}
    assert digest(a) == digest(b)
    assert digest(a) != digest({**a, "x": {"b": 1, "a": RowSet(2, "abd")}})


def _doc(**over):
    doc = {"account": "shop", "changes": [], "summary": {"create": 0, "update": 0, "delete": 0},
           "refusals": [], "warnings": []}
    doc.update(over)
    return doc


def test_markdown_no_changes():
    md = render_markdown(_doc(dns={"steps": [], "refusals": [], "warnings": []}))
    assert "**No changes.** The store and DNS match the config. Store: 0 to create, 0 to update, 0 to delete; " \
           "DNS: 0 record sets to change." in md
    assert "| Kind |" not in md and "#### DNS changes" not in md


def test_markdown_changes_dns_refusals_warnings():
    changes = [
        {"action": "create", "kind": "sender", "key": "a@x.example", "notes": [],
         "fields": {"type": {"old": None, "new": "trigger"}, "smtp_password": {"old": None, "new": "(sensitive)"}}},
        {"action": "update", "kind": "account", "key": "shop", "notes": [],
         "fields": {"quota_daily": {"old": 100, "new": 200}}},
        {"action": "delete", "kind": "tag", "key": "old|tag", "notes": [], "fields": {}},
        {"action": "update", "kind": "recipient_list", "key": "l", "notes": [],
         "fields": {"rows": {"old": {"rows": 2, "digest": "a"}, "new": {"rows": 3, "digest": "b"}}}},
    ]
    dns = {"steps": [{"op": "update", "name": "x.example/spf", "diffs": ["values"], "old": ["v=spf1 -all"],
                      "new": ["v=spf1 include:y -all"]},
                     {"op": "create", "name": "x.example/mx", "diffs": [], "old": None, "new": ["10 mx.y."]},
                     {"op": "delete", "name": "z.example/mx", "diffs": [], "old": ["10 mx.y."], "new": None}],
           "refusals": [], "warnings": ["z.example has another MX"]}
    md = render_markdown(_doc(changes=changes, summary={"create": 1, "update": 2, "delete": 1}, dns=dns,
                              refusals=["refused: deleting 5 senders"], warnings=["config/a.yaml:1:1: warning"]))
    assert md.splitlines()[2].startswith("**Refused**: apply would change nothing until the refusals below are fixed. "
                                         "Store: 1 to create, 2 to update, 1 to delete; DNS: 3 record sets to change.")
    for row in ("| sender | 1 | 0 | 0 |", "| account | 0 | 1 | 0 |", "| tag | 0 | 0 | 1 |",
                "| + | sender | `a@x.example` | type |  | `\"trigger\"` |",
                "| | | smtp_password |  | `\"(sensitive)\"` |",
                "| ~ | account | `shop` | quota_daily | `100` | `200` |",
                "| - | tag | `old\\|tag` | | | |",
                "| ~ | recipient_list | `l` | rows | 2 rows | 3 rows |",
                "| ~ | `x.example/spf` | `v=spf1 -all` | `v=spf1 include:y -all` |",
                "| + | `x.example/mx` |  | `10 mx.y.` |",
                "| - | `z.example/mx` | `10 mx.y.` |  |",
                "#### Refusals", "- refused: deleting 5 senders",
                "#### Warnings", "- config/a.yaml:1:1: warning", "- z.example has another MX"):
        assert row in md, row


@pytest.mark.usefixtures("example_env")
def test_store_fingerprint_checked_again_under_the_apply_lock(store, example_config):
    """Between `apply FILE`'s first check and its write another apply may land: `expect` runs under
    the lock and its refusal leaves the store as it was."""
    from mailcore.plan import apply_config, secret_box
    from tests.support.helpers import apply, dump, edit_yaml, load

    apply(store, example_config)
    loaded = load(example_config, store)
    box = secret_box(loaded)
    with store.engine.connect() as conn:
        planned = planfile.store_fingerprint(conn, loaded.spec.name, box)
    edit_yaml(example_config / "account.yaml", lambda d: d["account"]["quota"].update(daily=12345))
    apply(store, example_config)  # someone else's apply lands in between
    before = dump(store)

    def expect(conn):
        check(DOC | {"account": loaded.spec.name, "fingerprints": {**FP, "store": planned}}, "p.json",
              account=loaded.spec.name, dns=True, current={"store": planfile.store_fingerprint(conn, loaded.spec.name, box)})

    edit_yaml(example_config / "account.yaml", lambda d: d["account"]["quota"].update(daily=54321))
    loaded = load(example_config, store)
    with pytest.raises(StalePlan, match="the store changed since p.json"):
        apply_config(store, loaded, box, expect=expect)
    assert dump(store) == before
