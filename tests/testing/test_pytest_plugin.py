"""The plugin as users load it (`pytest_plugins = [...]`), in a pytest of its own."""
from __future__ import annotations

import os
import subprocess
import sys

from tests.support.store import ROOT

USES_SERVICE = "def test_it(mailcore_service):\n    pass\n"


def run_pytest(where, env_extra=None):
    (where / "conftest.py").write_text('pytest_plugins = ["mailcore.testing.pytest_plugin"]\n')
    env = {k: v for k, v in os.environ.items() if k != "MAILCORE_CONFIG"}
    env.update(PYTHONPATH=str(ROOT), MAILCORE_ENV_FILE="", **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(where)], capture_output=True,
                          text=True, env=env, cwd=where, timeout=120)


def test_without_a_config_directory_the_test_fails_saying_how_to_name_one(tmp_path):
    (tmp_path / "test_app.py").write_text(USES_SERVICE)
    r = run_pytest(tmp_path)
    assert r.returncode == 1
    assert "mailcore_service needs a config directory: override the `mailcore_config` fixture" in r.stdout
    assert "Traceback" not in r.stdout


def test_the_config_directory_from_the_environment_and_the_fake_mx_fixtures_come_along(tmp_path):
    from tests.support.store import EXAMPLE_ENV
    (tmp_path / "test_app.py").write_text(
        "def test_it(mailcore_service, fake_mx):\n"
        "    assert mailcore_service.smtp_port and fake_mx.port != mailcore_service.fake_mx.port\n"
        "    assert mailcore_service.access_key_id == 'LTAI5tExampleShop0001'\n")
    r = run_pytest(tmp_path, {"MAILCORE_CONFIG": str(ROOT / "config"), **EXAMPLE_ENV})
    assert r.returncode == 0, r.stdout[-3000:]
