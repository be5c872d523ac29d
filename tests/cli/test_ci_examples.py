"""examples/ci/ (issue 14): both pipelines call one script, examples/ci/mailcore-ci.sh; this test
checks that every step of the GitHub workflow and the GitLab pipeline that runs mailcore goes
through it, then runs the script's steps as the pipelines do (`mailcore` from this checkout, a
local SQLite store, the built-in DNS server): pull request, merge, drift check, stale plan."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import yaml

from tests.cli.test_dns import _config
from tests.support.cli import run
from tests.support.store import EXAMPLE_ENV, ROOT

CI = ROOT / "examples" / "ci"
SCRIPT = CI / "mailcore-ci.sh"
STEPS = {"pr", "apply", "drift"}


def _github_runs() -> list[str]:
    wf = yaml.safe_load((CI / "github" / "mailcore.yml").read_text())
    return [s["run"] for job in wf["jobs"].values() for s in job["steps"] if "run" in s]


def _gitlab_runs() -> list[str]:
    pipe = yaml.safe_load((CI / "gitlab" / ".gitlab-ci.yml").read_text())
    return [line for job in pipe.values() if isinstance(job, dict) and "script" in job for line in job["script"]]


def test_both_pipelines_call_the_script_for_each_step():
    for runs in (_github_runs(), _gitlab_runs()):
        called = [m.group(1) for line in runs for m in [re.search(r"sh examples/ci/mailcore-ci\.sh (\w+)", line)] if m]
        assert sorted(called) == sorted(STEPS)
        # mailcore itself is only ever run through the script (what this test exercises)
        assert not [line for line in runs if re.search(r"\bmailcore (plan|apply|verify|validate)\b", line)]


def _script(step, tmp_path, env):
    full = {k: v for k, v in os.environ.items() if not k.startswith(("DM_", "MAILCORE_"))}
    full.update(EXAMPLE_ENV, MAILCORE_ENV_FILE="", MAILCORE_STATE_DIR=str(tmp_path / "state"),
                MAILCORE=f"{sys.executable} -m mailcore", PYTHONPATH=str(ROOT), **env)
    return subprocess.run(["sh", str(SCRIPT), step], capture_output=True, text=True, env=full, cwd=tmp_path, timeout=180)


def test_pull_request_merge_drift_and_a_stale_plan(tmp_path, builtin_dns, key):
    server = builtin_dns.server
    backend = {"kind": "rfc2136", "server": builtin_dns.address,
               "tsig": {"name": server.tsig.name, "algorithm": "hmac-sha256", "secret": {"env": "MAILCORE_TSIG_SECRET"}}}
    cfg = _config(tmp_path, backend)
    env = {**key, "MAILCORE_TSIG_SECRET": server.tsig.secret_b64, "MAILCORE_CONFIG": cfg}
    # the pull request: validate, plan, the comment and the plan file
    r = _script("pr", tmp_path, env)
    assert r.returncode == 0, r.stdout + r.stderr
    comment = (tmp_path / "plan.md").read_text()
    assert comment.startswith("### mailcore plan: account `example-shop`") and "#### DNS changes" in comment
    assert (tmp_path / "plan.json").exists()
    # the merge: apply the reviewed plan
    r = _script("apply", tmp_path, env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Apply complete" in r.stdout
    # the nightly check: nothing drifted
    r = _script("drift", tmp_path, env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no drift" in r.stdout and "**No changes.**" in (tmp_path / "plan.md").read_text()
    # the next pull request is planned, then someone applies by hand before it merges
    other = tmp_path / "other"
    shutil.copytree(cfg, other)
    (other / "account.yaml").write_text((other / "account.yaml").read_text().replace("daily: 20000", "daily: 30000", 1))
    assert _script("pr", tmp_path, env).returncode == 0
    assert run(["apply", "--no-dns", "--config", str(other)], env, tmp_path).returncode == 0
    r = _script("apply", tmp_path, env)
    assert r.returncode == 2 and "stale plan: the store changed since plan.json was planned" in r.stderr
    # the drift check sees the store no longer matches the config on main
    r = _script("drift", tmp_path, env)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "drift: the store or DNS no longer match the config on main" in r.stderr
    assert "| ~ | account | `example-shop` | quota_daily | `30000` | `20000` |" in (tmp_path / "plan.md").read_text()


def test_apply_without_a_reviewed_plan_fails(tmp_path, key):
    r = _script("apply", tmp_path, {**key, "MAILCORE_CONFIG": str(ROOT / "config")})
    assert r.returncode == 2 and "no reviewed plan at plan.json" in r.stderr
    r = _script("nonsense", tmp_path, key)
    assert r.returncode == 2 and "usage:" in r.stderr
