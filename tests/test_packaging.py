"""`pip install` from a built wheel (not editable): the `mailcore` command works outside this
repository, with the schema and migrations inside the package."""
from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import venv

import pytest

from mailcore.store.crypto import generate_master_key
from tests.support.store import EXAMPLE_ENV, ROOT


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory):
    """A fresh virtualenv with the built wheel installed (one build for this module's tests)."""
    tmp_path = tmp_path_factory.mktemp("wheel")
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(ROOT)],
                   check=True, capture_output=True, timeout=300, cwd=tmp_path)
    [wheel] = dist.glob("mailcore-*.whl")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    # without PYTHONPATH: a checkout on it (its mailcore.egg-info) makes pip think the wheel is installed
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True, timeout=300,
                   env=clean)
    # the dependencies come from this environment's site-packages, appended after the wheel's own
    # (a plain path in a .pth: the editable install's finder there is not activated)
    purelib = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True,
                             text=True, check=True, env=clean).stdout.strip()
    with open(os.path.join(purelib, "zz-deps.pth"), "w") as fh:
        fh.write("\n".join(site.getsitepackages()) + "\n")
    return env_dir, py


def test_the_wheel_validates_and_applies_the_example_outside_the_repo(tmp_path, wheel_venv):
    env_dir, py = wheel_venv
    work = tmp_path / "work"
    shutil.copytree(ROOT / "config", work / "cfg", symlinks=False)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "MAILCORE_ENV_FILE": "", "MAILCORE_STATE_DIR": str(tmp_path / "state"),
           "MAILCORE_CONFIG": str(work / "cfg"), "MAILCORE_MASTER_KEY": generate_master_key(), **EXAMPLE_ENV}
    mailcore = str(env_dir / "bin" / "mailcore")

    def run(*args):
        return subprocess.run([mailcore, *args], capture_output=True, text=True, env=env, cwd=work, timeout=300)

    r = run("--help")
    assert r.returncode == 0 and "validate" in r.stdout
    where = subprocess.run([py, "-c", "import mailcore; print(mailcore.__file__)"], capture_output=True, text=True, env=env,
                           cwd=work).stdout
    assert str(env_dir) in where  # the wheel's copy, not this checkout
    r = run("validate")
    assert r.returncode == 0, r.stdout + r.stderr
    r = run("apply", "--no-dns")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Apply complete" in r.stdout
    r = run("plan", "--no-dns")
    assert r.returncode == 0 and "No changes" in r.stdout, r.stdout + r.stderr


def test_the_example_apps_tests_pass_from_the_wheel(tmp_path, wheel_venv):
    """examples/welcome-app, copied out of this repository, runs its own tests with only the
    installed package's pytest plugin (mailcore.testing.pytest_plugin)."""
    env_dir, py = wheel_venv
    app = tmp_path / "welcome-app"
    shutil.copytree(ROOT / "examples" / "welcome-app", app, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "MAILCORE_ENV_FILE": ""}
    r = subprocess.run([py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error::pytest.PytestConfigWarning",
                        "-o", "addopts="],
                       capture_output=True, text=True, env=env, cwd=app, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "3 passed" in r.stdout
    where = subprocess.run([py, "-c", "import mailcore.testing; print(mailcore.testing.__file__)"], capture_output=True,
                           text=True, env=env, cwd=app).stdout
    assert str(env_dir) in where  # the plugin came from the wheel
