"""Store fixtures: every store test runs against SQLite and against a real PostgreSQL."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mailcore.store import open_store
from mailcore.store.crypto import generate_master_key
from tests.support.pgserver import PostgresServer, PostgresUnavailable

ROOT = Path(__file__).resolve().parents[2]

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


def make_ready(store, config: Path, *, verified: bool = True, age_seconds: int = 3600) -> None:
    """Apply the config, then stand in for what DNS verification and time would do: domains
    verified, senders older than the activation delay, templates approved, DKIM keys stored."""
    from datetime import datetime, timedelta, timezone

    import sqlalchemy as sa
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from mailcore.plan import apply_config, foreign_domains, secret_box
    from mailcore.spec import load_account
    from mailcore.store import tables as t
    from mailcore.store.crypto import SecretBox

    loaded = load_account(config, foreign_domains=lambda n: foreign_domains(store, n))
    assert loaded.report.ok, loaded.report.lines()
    apply_config(store, loaded, secret_box(loaded))
    box = SecretBox.from_env()
    now = datetime.now(timezone.utc)
    with store.transaction() as conn:
        if verified:
            conn.execute(sa.update(t.domains).values(status="verified"))
        conn.execute(sa.update(t.senders).values(created_at=now - timedelta(seconds=age_seconds)))
        conn.execute(sa.update(t.templates).values(status="approved", approved_digest=t.templates.c.content_digest))
        for name in conn.execute(sa.select(t.domains.c.name)).scalars():
            key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # small: tests only
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption()).decode()
            pub = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
            import base64
            conn.execute(sa.insert(t.domain_keys).values(domain=name, ownership_token="tok-" + name, dkim_selector="dm",
                                                         dkim_private_enc=box.encrypt(pem),
                                                         dkim_public=base64.b64encode(pub).decode(), created_at=now))


@pytest.fixture
def ready_store(store, example_env, example_config):
    """A store holding the example account, ready to send (see make_ready)."""
    make_ready(store, example_config)
    return store
