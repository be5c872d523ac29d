"""The tasks as a user runs them: `invoke` in a child process, with the example's secrets and a
state directory of the test's own."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .store import EXAMPLE_ENV

ROOT = Path(__file__).resolve().parents[2]
INVOKE = [sys.executable, "-m", "invoke", "--search-root", str(ROOT)]


def run(args, env_extra=None, tmp_path=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DM_", "MAILCORE_"))}
    env.update(EXAMPLE_ENV, MAILCORE_ENV_FILE="")  # a developer's .env must not leak into the tests
    if tmp_path is not None:
        env["MAILCORE_STATE_DIR"] = str(tmp_path / "state")
    env.update(env_extra or {})
    return subprocess.run(INVOKE + args, capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
def key():
    from mailcore.store.crypto import generate_master_key
    return {"MAILCORE_MASTER_KEY": generate_master_key()}
