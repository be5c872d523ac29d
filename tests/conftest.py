"""Fixtures every test may use: stores (each store test runs on SQLite and on PostgreSQL, from
tests/support/store.py) and the example account's secrets."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.store import *  # noqa: F401,F403

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures"

# Values for the secrets config/ names; the SMTP passwords satisfy R14.
CONFIG_ENVIRON = {
    "MAILCORE_TSIG_SECRET": "c2VjcmV0LXRzaWcta2V5LWZvci10ZXN0cw==",
    "DM_SMTP_PASSWORD_ORDERS": "Orders2024Mail",
    "DM_SMTP_PASSWORD_SECURITY": "Secure42pwX",
    "DM_SMTP_PASSWORD_ALERTS": "Alert9Pass7",
    "DM_WEBHOOK_SECRET": "whsec-test-0001",
    "DM_ACCESS_KEY_SECRET": "ak-secret-test-0001",
}


@pytest.fixture
def config_environ() -> dict[str, str]:
    return dict(CONFIG_ENVIRON)


@pytest.fixture
def minimal_account(tmp_path) -> Path:
    """A writable copy of fixtures/valid/minimal, for cases generated at test time (10k-row lists, 28 KB bodies)."""
    dest = tmp_path / "account"
    shutil.copytree(FIXTURES / "valid" / "minimal", dest)
    return dest
