"""DATA through the real cleanup with smtplib, on SQLite and PostgreSQL: the author must be the
authenticated sender (else the guide-style 550 and nothing queued), and a client re-sending a
message (same Message-ID, same recipients) after a lost reply gets the first queue id back."""
from __future__ import annotations

import smtplib

import pytest
import sqlalchemy as sa

from mailcore.account.catalog import Catalog
from mailcore.cleanup.submission import REFUSALS
from mailcore.cleanup.writer import Cleanup
from mailcore.ingress.smtpd.server import SmtpServer
from mailcore.ingress.smtpd.settings import SmtpSettings
from mailcore.ingress.smtpd.tls import server_context
from mailcore.store import tables as t
from mailcore.store.crypto import SecretBox
from tests.support.smtpd import HANGZHOU, ORDERS, ORDERS_PASSWORD, line, starttls_client


@pytest.fixture
def submission_server(ready_store, smtpd_loop, smtpd_cert):
    """smtpd in front of the real cleanup, on the example account ready to send."""
    with ready_store.transaction() as conn:  # loopback clients: the example allow-list excludes them
        conn.execute(sa.update(t.accounts).values(allowlist_enabled=False))
    cleanup = Cleanup(ready_store, box=SecretBox.from_env())
    settings = SmtpSettings(region=HANGZHOU, host="127.0.0.1", port=0, hostname="localhost", tls_mode="starttls")
    server = SmtpServer(settings, catalog=Catalog(ready_store), submitter=cleanup, tls_context=server_context(*smtpd_cert))
    smtpd_loop.run(server.start())
    yield server
    smtpd_loop.run(server.stop())
    cleanup.close()


def data(server, client_tls, msg: bytes, rcpts=("bob@example.org",)) -> str:
    c = starttls_client(server.port, client_tls)
    try:
        c.login(ORDERS, ORDERS_PASSWORD)
        assert c.mail(ORDERS)[0] == 250
        for r in rcpts:
            assert c.rcpt(r)[0] == 250
        return line(*c.data(msg))
    finally:
        c.quit()


def queued(store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(t.queue_messages)).scalar()


@pytest.mark.parametrize("author, reason", [
    ("From: Security <security@mail.example.com>\r\n", "from-mismatch"),  # another sender of the account
    ("From: ceo@bank.example\r\n", "from-mismatch"),  # another domain
    ("", "from-malformed"),  # no From
    ("From: orders@mail.example.com\r\nFrom: ceo@bank.example\r\n", "from-malformed"),
    ("From: orders@mail.example.com, ceo@bank.example\r\n", "from-malformed"),
])
def test_a_forged_author_gets_550_and_is_not_signed(submission_server, client_tls, ready_store, author, reason):
    msg = f"{author}To: <bob@example.org>\r\nSubject: pay this invoice\r\n\r\nHello\r\n".encode()
    assert data(submission_server, client_tls, msg) == REFUSALS[reason].smtp
    assert queued(ready_store) == 0
    ok = b"From: \"Orders\" <orders@mail.example.com>\r\nSubject: fine\r\n\r\nHello\r\n"
    assert data(submission_server, client_tls, ok).startswith("250 ")


def test_a_resent_message_gets_the_first_envid(submission_server, client_tls, ready_store):
    msg = b"From: orders@mail.example.com\r\nMessage-ID: <order-42@client.example>\r\nSubject: s\r\n\r\nHello\r\n"
    first = data(submission_server, client_tls, msg)
    assert first.startswith("250 ") and "###envid=" in first
    assert data(submission_server, client_tls, msg) == first  # the client never saw the 250 and sends again
    assert queued(ready_store) == 1
    # the same Message-ID to other recipients (a list manager's next chunk) is another message
    assert data(submission_server, client_tls, msg, rcpts=("eve@example.net",)) != first
    assert queued(ready_store) == 2


def test_smtplib_sendmail_with_a_forged_author_raises(submission_server, client_tls):
    c = starttls_client(submission_server.port, client_tls)
    c.login(ORDERS, ORDERS_PASSWORD)
    with pytest.raises(smtplib.SMTPDataError) as exc:
        c.sendmail(ORDERS, ["bob@example.org"], b"From: ceo@bank.example\r\nSubject: s\r\n\r\nx\r\n")
    assert line(exc.value.smtp_code, exc.value.smtp_error) == REFUSALS["from-mismatch"].smtp
    c.quit()
