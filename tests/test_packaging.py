"""`pip install` from a built wheel (not editable): the `mailcore` command works outside this
repository, with the schema and migrations inside the package."""
from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import venv

from mailcore.store.crypto import generate_master_key
from tests.support.store import EXAMPLE_ENV, ROOT


def test_the_wheel_validates_and_applies_the_example_outside_the_repo(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(ROOT)],
                   check=True, capture_output=True, timeout=300, cwd=tmp_path)
    [wheel] = dist.glob("mailcore-*.whl")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True, timeout=300)
    # the dependencies come from this environment's site-packages, appended after the wheel's own
    # (a plain path in a .pth: the editable install's finder there is not activated)
    purelib = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True,
                             text=True, check=True).stdout.strip()
    with open(os.path.join(purelib, "zz-deps.pth"), "w") as fh:
        fh.write("\n".join(site.getsitepackages()) + "\n")
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
