"""Files at rest: the state directory and the SQLite files are the owner's only (0700/0600),
whatever the umask, and an existing store left open by an older version is tightened."""
from __future__ import annotations

import os
import stat

import pytest
import sqlalchemy as sa

from mailcore.store import open_store
from mailcore.store import tables as t
from mailcore.store.db import default_url, private_dir, private_file


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask():
    old = os.umask(0o022)  # what most shells have: files 0644, directories 0755
    yield
    os.umask(old)


def test_default_store_in_a_new_state_dir(tmp_path, open_umask):
    state = tmp_path / "deep" / "state"
    store = open_store(default_url({"MAILCORE_STATE_DIR": str(state)}))
    try:
        with store.transaction() as conn:  # a write: WAL and shared-memory files appear
            conn.execute(sa.insert(t.apply_locks).values(name="x"))
        files = sorted(p.name for p in state.iterdir())
        assert "mailcore.db-wal" in files and "mailcore.db-shm" in files
        assert {name: mode(state / name) for name in files} == {name: 0o600 for name in files}
        assert mode(state) == 0o700 and mode(tmp_path / "deep") == 0o700
    finally:
        store.dispose()


def test_an_existing_open_state_dir_and_store_are_tightened(tmp_path, monkeypatch, open_umask):
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    db = state / "mailcore.db"
    monkeypatch.setenv("MAILCORE_STATE_DIR", str(state))
    open_store(f"sqlite:///{db}").dispose()
    os.chmod(state, 0o755)
    os.chmod(db, 0o644)
    open_store(f"sqlite:///{db}").dispose()
    assert (mode(state), mode(db)) == (0o700, 0o600)


def test_a_store_elsewhere_leaves_its_existing_directory_alone(tmp_path, open_umask):
    """Only directories mailcore creates (or its state dir) are changed: a store in /srv keeps /srv's mode."""
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    open_store(f"sqlite:///{shared / 'm.db'}").dispose()
    assert mode(shared) == 0o755 and mode(shared / "m.db") == 0o600


def test_helpers(tmp_path, open_umask):
    d = private_dir(tmp_path / "a" / "b")
    assert mode(tmp_path / "a") == mode(d) == 0o700
    f = private_file(d / "pid")
    assert mode(f) == 0o600 and f.read_text() == ""
    f.write_text("42")
    private_file(f)
    assert f.read_text() == "42"  # an existing file keeps its content
