"""The catalog as ingress checks it: the IP allow-list with IPv4-mapped IPv6 clients (R28), and
SMTP password checks that cost the same scrypt work for unknown users as for known ones."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from mailcore.account import catalog as catalog_module
from mailcore.account.catalog import Catalog, normalize_ip
from mailcore.store import tables as t
from tests.support.smtpd import ORDERS, ORDERS_PASSWORD

ACCOUNT = "example-shop"


def allow_only(store, *entries: str) -> None:
    with store.transaction() as conn:
        conn.execute(sa.update(t.accounts).values(allowlist_enabled=True))
        conn.execute(sa.delete(t.allowlist_entries))
        account_id = conn.execute(sa.select(t.accounts.c.id)).scalars().first()
        for entry in entries:
            conn.execute(sa.insert(t.allowlist_entries).values(account_id=account_id, entry=entry))


@pytest.mark.parametrize("given, expected", [
    ("::ffff:203.0.113.7", "203.0.113.7"),
    ("::FFFF:cb00:7107", "203.0.113.7"),
    ("203.0.113.7", "203.0.113.7"),
    ("2001:db8::1", "2001:db8::1"),
    ("::1", "::1"),
    ("not an address", "not an address"),
])
def test_normalize_ip(given, expected):
    assert normalize_ip(given) == expected


def test_an_ipv4_mapped_client_matches_its_ipv4_entry(ready_store):
    allow_only(ready_store, "203.0.113.7", "198.51.100.0/24")
    account = Catalog(ready_store).sender(ORDERS).account
    catalog = Catalog(ready_store)
    assert catalog.ip_allowed(account, "::ffff:203.0.113.7")
    assert catalog.ip_allowed(account, "::ffff:198.51.100.20")
    assert not catalog.ip_allowed(account, "::ffff:203.0.113.8")
    assert not catalog.ip_allowed(account, "2001:db8::1")


def test_the_api_on_a_dual_stack_socket_sees_ipv4_clients_as_ipv4(ready_store, example_env):
    """A listener on '::' reports an IPv4 client as ::ffff:127.0.0.1; the allow-list entry is 127.0.0.1."""
    from alibabacloud_dm20151123 import models as dm

    from mailcore.ingress.api.app import ApiServer, create_app
    from tests.support.api import Clock, RecordingSubmitter, RunningApi

    allow_only(ready_store, "127.0.0.1")
    submitter = RecordingSubmitter()
    with ApiServer(create_app(ready_store, submitter, cache_seconds=0), host="::") as server:
        running = RunningApi(server, submitter, Clock(), example_env["DM_ACCESS_KEY_SECRET"])
        server.host = "127.0.0.1"  # the SDK connects over IPv4
        sent = running.client().single_send_mail(dm.SingleSendMailRequest(
            account_name=ORDERS, address_type=1, reply_to_address=False, subject="s", text_body="t",
            to_address="a@example.org"))
    assert sent.body.env_id == "1001" and submitter.submissions[0].client_ip == "127.0.0.1"


@pytest.fixture
def kdf_calls(monkeypatch):
    calls = []
    real = catalog_module.verify_password

    def counting(password, stored):
        calls.append(stored)
        return real(password, stored)

    monkeypatch.setattr(catalog_module, "verify_password", counting)
    return calls


def test_unknown_users_cost_one_kdf_like_known_ones(ready_store, kdf_calls):
    catalog = Catalog(ready_store)
    assert catalog.verify_smtp("nobody@mail.example.com", "Whatever2026") is None
    assert len(kdf_calls) == 1  # the same scrypt work as a wrong password of a real sender
    assert catalog.verify_smtp(ORDERS, "Wrong2026Pw") is None
    assert len(kdf_calls) == 2
    assert catalog.verify_smtp(ORDERS, ORDERS_PASSWORD) is not None
    assert len(kdf_calls) == 3
    known, unknown = kdf_calls[1], kdf_calls[0]
    assert known.split("$")[:4] == unknown.split("$")[:4]  # same scheme and cost parameters


def test_a_sender_without_a_password_costs_one_kdf_too(ready_store, kdf_calls):
    with ready_store.transaction() as conn:
        conn.execute(sa.update(t.senders).where(t.senders.c.address == ORDERS).values(smtp_password_hash=None))
    assert Catalog(ready_store).verify_smtp(ORDERS, "Anything2026") is None
    assert len(kdf_calls) == 1
