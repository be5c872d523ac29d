"""`plan --out FILE` / `apply FILE` (issue 14): apply exactly the reviewed plan, refused with one
line and exit 2 when the config, the store or DNS moved since; `plan --format markdown`."""
from __future__ import annotations

import json
import shutil

import pytest

from provision import rfc2136
from provision.records import txt_text, txt_value
from tests.cli.test_dns import _config, _statuses
from tests.support.cli import run
from tests.support.store import ROOT


@pytest.fixture
def cfg(tmp_path):
    shutil.copytree(ROOT / "config", tmp_path / "config")
    return str(tmp_path / "config")


def _bump_quota(cfg: str, value: int) -> None:
    path = f"{cfg}/account.yaml"
    text = open(path).read()
    assert "daily: 20000" in text
    open(path, "w").write(text.replace("daily: 20000", f"daily: {value}", 1))


def test_saved_plan_applies_once_then_the_store_moved(tmp_path, cfg, key):
    out = str(tmp_path / "plan.json")
    r = run(["plan", "--no-dns", "--config", cfg, "--out", out], key, tmp_path)
    assert r.returncode == 3, r.stdout + r.stderr
    doc = json.loads(open(out).read())
    assert doc["format"] == "mailcore-plan/1" and doc["account"] == "example-shop" and doc["dns"] is False
    assert set(doc["fingerprints"]) == {"config", "store", "dns"} and doc["plan"]["summary"]["create"] > 0
    r = run(["apply", "--no-dns", "--config", cfg, "--plan", out], key, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Apply complete" in r.stdout
    # applied: the same file is now stale (the store moved), one line, exit 2, nothing written
    r = run(["apply", "--no-dns", "--config", cfg, "--plan", out], key, tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"error: stale plan: the store changed since {out} was planned "
                                             "(another apply or a hand edit); run `plan --out` again; nothing was changed"]


def test_config_edit_or_another_apply_make_the_plan_stale(tmp_path, cfg, key):
    out = str(tmp_path / "plan.json")
    assert run(["apply", "--no-dns", "--config", cfg], key, tmp_path).returncode == 0
    _bump_quota(cfg, 20001)
    assert run(["plan", "--no-dns", "--config", cfg, "--out", out], key, tmp_path).returncode == 3
    # the config changes after the review
    _bump_quota_again = open(f"{cfg}/account.yaml").read().replace("daily: 20001", "daily: 20002", 1)
    open(f"{cfg}/account.yaml", "w").write(_bump_quota_again)
    r = run(["apply", "--no-dns", "--config", cfg, "--plan", out], key, tmp_path)
    assert r.returncode == 2 and "stale plan: the config changed since" in r.stderr
    # back to the reviewed config, but someone applies another one in between
    open(f"{cfg}/account.yaml", "w").write(_bump_quota_again.replace("daily: 20002", "daily: 20001", 1))
    other = tmp_path / "other"
    shutil.copytree(cfg, other)
    _text = open(other / "account.yaml").read().replace("daily: 20001", "daily: 30000", 1)
    open(other / "account.yaml", "w").write(_text)
    assert run(["apply", "--no-dns", "--config", str(other)], key, tmp_path).returncode == 0
    r = run(["apply", "--no-dns", "--config", cfg, "--plan", out], key, tmp_path)
    assert r.returncode == 2 and "stale plan: the store changed since" in r.stderr
    r = run(["state", "--account", "example-shop"], key, tmp_path)
    assert "30000" in r.stdout  # the refused apply wrote nothing


@pytest.mark.parametrize("content, needle", [
    ("not json", "is not a mailcore plan file (not JSON)"),
    ('{"format": "terraform"}', "is not a mailcore plan file (no 'mailcore-plan/1' header)"),
    (None, "is not a mailcore plan file (No such file or directory)"),
])
def test_a_file_that_is_no_plan_is_refused(tmp_path, cfg, key, content, needle):
    out = tmp_path / "plan.json"
    if content is not None:
        out.write_text(content)
    r = run(["apply", "--no-dns", "--config", cfg, "--plan", str(out)], key, tmp_path)
    assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "state" / "mailcore.db").exists() or "example-shop" not in run(["state"], key, tmp_path).stdout


def test_plan_made_with_no_dns_is_not_applied_with_dns(tmp_path, cfg, key):
    out = str(tmp_path / "plan.json")
    assert run(["plan", "--no-dns", "--config", cfg, "--out", out], key, tmp_path).returncode == 3
    r = run(["apply", "--config", cfg, "--plan", out], key, tmp_path)
    assert r.returncode == 2
    assert "was planned with --no-dns, apply runs with DNS" in r.stderr


def test_markdown_comment(tmp_path, cfg, key):
    r = run(["plan", "--no-dns", "--config", cfg, "--format", "markdown"], key, tmp_path)
    assert r.returncode == 3, r.stderr
    md = r.stdout
    assert md.startswith("### mailcore plan: account `example-shop`")
    assert "**Changes**: merging applies them. Store: " in md and "DNS not planned (--no-dns)" in md
    assert "| Kind | Create | Update | Delete |" in md and "| sender | 4 | 0 | 0 |" in md
    assert "DM_SMTP" not in md and "Orders2026Pw" not in md and "ak-secret-value-0001" not in md
    assert run(["apply", "--no-dns", "--config", cfg], key, tmp_path).returncode == 0
    _bump_quota(cfg, 25000)
    r = run(["plan", "--no-dns", "--config", cfg, "--format", "markdown"], key, tmp_path)
    assert "| ~ | account | `example-shop` | quota_daily | `20000` | `25000` |" in r.stdout
    assert "| account | 0 | 1 | 0 |" in r.stdout


def test_dns_moved_since_the_plan(tmp_path, builtin_dns, key):
    """The DNS half: a record edited by hand after the review makes the saved plan stale."""
    server = builtin_dns.server
    backend = {"kind": "rfc2136", "server": builtin_dns.address,
               "tsig": {"name": server.tsig.name, "algorithm": "hmac-sha256", "secret": {"env": "MAILCORE_TSIG_SECRET"}}}
    cfg = _config(tmp_path, backend)
    env = {**key, "MAILCORE_TSIG_SECRET": server.tsig.secret_b64}
    out = str(tmp_path / "plan.json")
    r = run(["plan", "--config", cfg, "--out", out, "--format", "markdown"], env, tmp_path)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "#### DNS changes" in r.stdout and "| + | `mail.example.com/spf` |" in r.stdout
    r = run(["apply", "--config", cfg, "--plan", out], env, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert _statuses(tmp_path).keys() == {"mail.example.com", "notice.example.net"}
    r = run(["plan", "--config", cfg, "--out", out], env, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    current = rfc2136.query(server, "mail.example.com", "TXT")
    spf = next(v for v in current.values if txt_text(v).startswith("v=spf1"))
    rfc2136.replace_rr(server, "example.com", current, spf, txt_value("v=spf1 include:elsewhere.example -all"))
    r = run(["apply", "--config", cfg, "--plan", out], env, tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "stale plan: DNS changed since" in r.stderr
    spf = [txt_text(v) for v in rfc2136.query(server, "mail.example.com", "TXT").values if txt_text(v).startswith("v=spf1")]
    assert spf == ["v=spf1 include:elsewhere.example -all"]  # nothing was published
