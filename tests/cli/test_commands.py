"""The tasks as a user runs them: real `invoke` processes, exit codes, no tracebacks."""
from __future__ import annotations

import json

from tests.support.cli import ROOT, run
from tests.support.store import EXAMPLE_ENV


def test_validate_example_ok(tmp_path):
    r = run(["validate", "--config", str(ROOT / "config")], tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "valid (9 files" in r.stdout


def test_validate_errors_exit_2_without_traceback(tmp_path):
    r = run(["validate", "--config", str(ROOT / "fixtures" / "invalid" / "acceptance-five-errors")], tmp_path=tmp_path)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr + r.stdout
    lines = [l for l in r.stderr.splitlines() if "[" in l and l.count(":") >= 3]
    assert len(lines) >= 5
    assert lines == sorted(lines, key=lambda l: (l.split(":")[0], int(l.split(":")[1]), int(l.split(":")[2])))
    assert "errors in" in r.stderr


def test_plan_apply_plan_exit_codes(tmp_path, key):
    cfg = str(ROOT / "config")
    r = run(["plan", "--no-dns", "--config", cfg], key, tmp_path)
    assert r.returncode == 3, r.stderr
    assert "+ domain mail.example.com" in r.stdout and "Plan: 31 to create, 0 to update, 0 to delete." in r.stdout
    r = run(["apply", "--no-dns", "--config", cfg], key, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Apply complete: 31 created" in r.stdout
    r = run(["apply", "--no-dns", "--config", cfg], key, tmp_path)
    assert r.returncode == 0 and "Nothing to apply; nothing was written." in r.stdout
    r = run(["plan", "--no-dns", "--config", cfg, "--json"], key, tmp_path)
    assert r.returncode == 0
    assert json.loads(r.stdout)["summary"] == {"create": 0, "update": 0, "delete": 0}


def test_missing_master_key_is_one_clear_line(tmp_path):
    r = run(["apply", "--no-dns", "--config", str(ROOT / "config")], {"MAILCORE_MASTER_KEY": ""}, tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "MAILCORE_MASTER_KEY is not set" in r.stderr


def test_template_review_through_tasks(tmp_path, key):
    cfg = str(ROOT / "config")
    assert run(["apply", "--no-dns", "--config", cfg], key, tmp_path).returncode == 0
    r = run(["template.approve", "vip-offer", "--config", cfg], key, tmp_path)
    assert r.returncode == 2 and "is draft and cannot be approved; it can be submitted" in r.stderr
    r = run(["template.submit", "vip-offer", "--config", cfg, "--by", "bob"], key, tmp_path)
    assert r.returncode == 0 and "draft -> submitted by bob" in r.stdout
    r = run(["template.reject", "vip-offer", "--config", cfg, "--by", "alice", "--reason", "no unsubscribe link"],
            key, tmp_path)
    assert r.returncode == 0 and "submitted -> rejected by alice" in r.stdout
    r = run(["state"], key, tmp_path)
    assert "vip-offer" in r.stdout and "rejected" in r.stdout


def test_secrets_init_writes_policy_conformant_values(tmp_path):
    env_file = tmp_path / ".env"
    r = run(["secrets.init", "--config", str(ROOT / "config"), "--env-file", str(env_file)],
            {k: "" for k in EXAMPLE_ENV}, tmp_path)
    assert r.returncode == 0, r.stderr
    values = dict(l.split("=", 1) for l in env_file.read_text().splitlines() if "=" in l and not l.startswith("#"))
    assert set(values) == set(EXAMPLE_ENV) | {"MAILCORE_MASTER_KEY"}
    from mailcore.spec.validators import password_problems
    assert all(not password_problems(values[k]) for k in values if k.startswith("DM_SMTP_PASSWORD"))
    assert oct(env_file.stat().st_mode)[-3:] == "600"


def test_secrets_init_writes_tsig_keys_dns_tools_read(tmp_path, monkeypatch):
    """A generated TSIG secret is standard base64 (URL-safe '-' and '_' break dnspython, BIND and
    Knot), and the example config validates with what secrets.init wrote."""
    import base64
    import os

    from mailcore.cli.secrets import init_secrets
    for k in EXAMPLE_ENV:
        monkeypatch.delenv(k, raising=False)
    for i in range(8):  # a URL-safe key lacks '-' and '_' only about one time in four
        env_file = tmp_path / f"{i}.env"
        init_secrets(str(ROOT / "config"), str(env_file))
        tsig = next(l.split("=", 1)[1] for l in env_file.read_text().splitlines() if l.startswith("MAILCORE_TSIG_SECRET="))
        assert len(base64.b64decode(tsig, validate=True)) == 32
        for k in EXAMPLE_ENV:  # init_secrets loaded them; the next round writes new ones (os.environ.pop:
            os.environ.pop(k, None)  # monkeypatch.delenv here would restore these values after the test)
    r = run(["validate", "--config", str(ROOT / "config")], {"MAILCORE_ENV_FILE": str(env_file), **{k: "" for k in EXAMPLE_ENV}},
            tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
