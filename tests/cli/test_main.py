"""`mailcore` / `python -m mailcore`: the same commands as the invoke tasks, options from the
environment, errors as one line with exit code 2."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from invoke import Collection

from mailcore.cli.main import parser
from tests.support.cli import ROOT
from tests.support.store import EXAMPLE_ENV

# tasks that only make sense inside this repository (its tests, its benchmarks, its dev servers)
REPO_ONLY = {"test", "bench", "setup", "harness", "dns.serve", "dns.pulumi"}


def _task_names(coll: Collection, prefix: str = "") -> set[str]:
    names = {prefix + n for n in coll.tasks}
    for name, sub in coll.collections.items():
        names |= _task_names(sub, prefix + name + ".")
    return names


def _command_names(p, prefix: str = "") -> set[str]:
    out = set()
    for action in p._subparsers._group_actions if p._subparsers else ():
        for name, child in action.choices.items():
            if child._subparsers:
                out |= _command_names(child, prefix + name + ".")
            else:
                out.add(prefix + name)
    return out


def test_every_task_has_a_command():
    sys.path.insert(0, str(ROOT))
    try:
        import tasks
    finally:
        sys.path.remove(str(ROOT))
    tasks_ = {n.replace("_", "-") for n in _task_names(tasks.ns)} - REPO_ONLY
    commands = _command_names(parser())
    assert tasks_ - commands == set()


def _run(args, tmp_path, **env):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DM_", "MAILCORE_"))}
    base.update(EXAMPLE_ENV, MAILCORE_ENV_FILE="", MAILCORE_STATE_DIR=str(tmp_path / "state"), **env)
    return subprocess.run([sys.executable, "-m", "mailcore", *args], capture_output=True, text=True, env=base,
                          cwd=tmp_path, timeout=120)


def test_config_from_the_environment(tmp_path):
    r = _run(["validate"], tmp_path, MAILCORE_CONFIG=str(ROOT / "config"))
    assert r.returncode == 0, r.stderr
    assert "valid" in r.stdout
    r = _run(["validate"], tmp_path)  # ./config does not exist in tmp_path
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_operate_an_empty_store(tmp_path):
    r = _run(["queue", "list", "--state", "deferred"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "deferred 0" in r.stdout
    r = _run(["queue", "list", "--state", "nonsense"], tmp_path)
    assert r.returncode == 2 and "unknown state 'nonsense'" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("args", [["frobnicate"], ["queue"], ["template", "approve"]])
def test_usage_errors_exit_2(tmp_path, args):
    r = _run(args, tmp_path)
    assert r.returncode == 2 and "usage:" in r.stderr and "Traceback" not in r.stderr
