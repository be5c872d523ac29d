"""The store: migrations, crypto."""
from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from mailcore.store import StoreError, open_store
from mailcore.store.crypto import (
    MasterKeyError,
    SecretBox,
    generate_master_key,
    hash_password,
    verify_password,
)
from mailcore.store.tables import metadata


def test_migrations_build_exactly_the_declared_tables(store):
    assert store.current_revision() == store.head_revision()
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert diff == []


def test_migrate_is_idempotent(store_url):
    a = open_store(store_url)
    b = open_store(store_url)
    assert a.current_revision() == b.current_revision() == a.head_revision()


def test_unreachable_store_is_a_clear_error():
    with pytest.raises(StoreError, match="cannot"):
        open_store("postgresql://nobody@127.0.0.1:1/none")


def test_password_hash_is_salted_and_verifies():
    a, b = hash_password("Orders2026Pw"), hash_password("Orders2026Pw")
    assert a != b and a.startswith("scrypt$")
    assert verify_password("Orders2026Pw", a) and verify_password("Orders2026Pw", b)
    assert not verify_password("orders2026pw", a)
    assert not verify_password("x", None) and not verify_password("x", "md5$abc")


def test_secret_box_round_trip_and_wrong_key():
    box = SecretBox(generate_master_key())
    token = box.encrypt("ak-secret")
    assert "ak-secret" not in token and box.decrypt(token) == "ak-secret"
    with pytest.raises(MasterKeyError, match="differs from the key"):
        SecretBox(generate_master_key()).decrypt(token)
    assert box.fingerprint("p", "v") == box.fingerprint("p", "v") != box.fingerprint("p", "w")


@pytest.mark.parametrize("key, message", [(None, "is not set"), ("", "is not set"), ("YWJj", "32 bytes"),
                                          ("!!!notbase64", "32 bytes|base64")])
def test_master_key_errors(key, message):
    env = {} if key is None else {"MAILCORE_MASTER_KEY": key}
    with pytest.raises(MasterKeyError, match=message):
        SecretBox.from_env(env)
