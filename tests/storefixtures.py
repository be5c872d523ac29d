"""Store fixtures: every store test runs against SQLite and against a real PostgreSQL."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mailcore.store import open_store
from mailcore.store.crypto import generate_master_key

from .pgserver import PostgresServer, PostgresUnavailable

ROOT = Path(__file__).resolve().parents[1]

# The secrets the example account (config/) references, with values that satisfy the policies.
EXAMPLE_ENV = {
    "MAILCORE_TSIG_SECRET": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=",
    "DM_SMTP_PASSWORD_ORDERS": "Orders2026Pw",
    "DM_SMTP_PASSWORD_SECURITY": "Secur1ty9Pw",
    "DM_SMTP_PASSWORD_ALERTS": "Alerts78Pwd",
    "DM_WEBHOOK_SECRET": "webhook-secret-value",
    "DM_ACCESS_KEY_SECRET": "ak-secret-value-0001",
}


@pytest.fixture(scope="session")
def pg_server():
    server = PostgresServer()
    try:
        server.start()
    except PostgresUnavailable as exc:
        if os.environ.get("MAILCORE_REQUIRE_PG"):
            pytest.fail(f"PostgreSQL is required here: {exc}")
        pytest.skip(str(exc))
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("pg_server").new_database()


@pytest.fixture
def store(store_url):
    s = open_store(store_url)
    yield s
    s.dispose()


@pytest.fixture
def example_env(monkeypatch):
    """The example account's secrets and a master key, in the process environment."""
    for k, v in {**EXAMPLE_ENV, "MAILCORE_MASTER_KEY": generate_master_key()}.items():
        monkeypatch.setenv(k, v)
    return dict(os.environ)


@pytest.fixture
def example_config(tmp_path) -> Path:
    """A private copy of the example account that a test may edit."""
    dest = tmp_path / "config"
    shutil.copytree(ROOT / "config", dest, ignore=shutil.ignore_patterns("schema"))
    # keep the schema modelines resolvable from the copy
    shutil.copytree(ROOT / "config" / "schema", dest / "schema")
    return dest
