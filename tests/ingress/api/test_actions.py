"""The API's action table (mailcore.ingress.api.actions): every action of the official SDK has a
row, each row's status matches the app's routing, and README.md carries the generated table."""
from __future__ import annotations

import re
from pathlib import Path

import alibabacloud_dm20151123.client as sdk_client
import pytest

from mailcore.ingress.api import actions
from mailcore.ingress.api.actions import ACTIONS, IMPLEMENTED, MANAGED, NOT_OFFERED, RoutingMismatch, check_routing
from mailcore.ingress.api.config_owned import CONFIG_OWNED
from mailcore.ingress.api.reading import READ_ACTIONS
from mailcore.ingress.api.sending import SEND_ACTIONS
from mailcore.ingress.api.verifying import REPLY_TO_ACTIONS

ROOT = Path(__file__).resolve().parents[3]
HANDLERS = (SEND_ACTIONS, REPLY_TO_ACTIONS, READ_ACTIONS)
NOT_DM = {"AuthorizeFileUpload"}  # openplatform's upload for single_send_mail_advance, not a DM action


def test_every_sdk_action_has_one_row():
    source = Path(sdk_client.__file__).read_text()
    sdk = set(re.findall(r"action\s*=\s*['\"](\w+)['\"]", source)) - NOT_DM
    names = [a for _, a, _ in ACTIONS]
    assert len(names) == len(set(names)) == 81
    assert set(names) == sdk


@pytest.mark.parametrize("group, action, status", ACTIONS)
def test_each_row_matches_the_routing(group, action, status):
    served = any(action in table for table in HANDLERS)
    assert served == (status == IMPLEMENTED)
    assert (action in CONFIG_OWNED) == (status == MANAGED)
    assert status in (IMPLEMENTED, MANAGED, NOT_OFFERED)


def test_the_app_refuses_to_start_on_a_mismatch(monkeypatch):
    check_routing(HANDLERS, CONFIG_OWNED)
    with pytest.raises(RoutingMismatch, match=r"the app for \['NewAction'\]"):
        check_routing((*HANDLERS, {"NewAction": None}), CONFIG_OWNED)
    monkeypatch.setitem(actions.STATUS, "CreateTag", IMPLEMENTED)
    with pytest.raises(RoutingMismatch, match="CreateTag"):
        check_routing(HANDLERS, CONFIG_OWNED)


def test_markdown_table_rows():
    table = actions.markdown_table(CONFIG_OWNED)
    assert "| Sending | `SingleSendMail` | implemented |" in table
    assert "| Tags | `CreateTag` | managed in git: tags (tags); `Forbidden.ConfigAsCode` |" in table
    assert "| Dedicated IPs | `DedicatedIpList` | not offered: `InvalidApi.NotFound` |" in table
    assert len([line for line in table.splitlines() if line.startswith("| ") and "`" in line]) == 81
    n = {s: sum(st == s for _, _, st in ACTIONS) for s in (IMPLEMENTED, MANAGED, NOT_OFFERED)}
    assert f"81 actions: {n[IMPLEMENTED]} implemented, {n[MANAGED]} managed in git, {n[NOT_OFFERED]} not offered." in table


def test_readme_carries_the_generated_table():
    assert actions.markdown_table(CONFIG_OWNED) in (ROOT / "README.md").read_text(), \
        "README.md's API table is out of date: paste the output of `python -m mailcore.ingress.api.actions`"
