"""The author of an SMTP submission is the authenticated sender: one From field, one mailbox,
that address. Anything else is refused before the message is signed or queued."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from mailcore.cleanup.identity import author_refusal, mailboxes
from mailcore.cleanup.submission import REFUSALS, Recipient, Submission, SubmitRefused
from mailcore.cleanup.writer import Cleanup
from mailcore.message.render import header_fields
from mailcore.store import tables as t
from mailcore.store.crypto import SecretBox

SENDER = "orders@mail.example.com"

# (From field values as the header block has them, the refusal reason or None)
AUTHORS = [
    (["orders@mail.example.com"], None),
    (["<orders@mail.example.com>"], None),
    (["Example Shop <orders@mail.example.com>"], None),
    (['"Shop, Inc." <orders@mail.example.com>'], None),
    (["=?utf-8?B?5L2g5aW9?= <orders@mail.example.com>"], None),
    (["orders@mail.example.com (Orders desk)"], None),
    (["Orders <Orders@MAIL.Example.COM>"], None),  # case: sender addresses are unique regardless of case
    (["Orders\r\n <orders@mail.example.com>"], None),  # folded
    (["security@mail.example.com"], "from-mismatch"),  # another sender of the same account
    (["Orders <orders@mail.example.com.evil.test>"], "from-mismatch"),
    (['"orders@mail.example.com" <ceo@bank.example>'], "from-mismatch"),  # the display name is not the address
    (["orders@evil.example"], "from-mismatch"),
    (None, "from-malformed"),  # no From at all
    ([], "from-malformed"),
    (["orders@mail.example.com", "orders@mail.example.com"], "from-malformed"),  # two From fields
    (["orders@mail.example.com, ceo@bank.example"], "from-malformed"),  # two mailboxes
    (["<orders@mail.example.com>, <orders@mail.example.com>"], "from-malformed"),
    (["Team: orders@mail.example.com;"], "from-malformed"),  # a group
    (["Undisclosed recipients:;"], "from-malformed"),
    ([""], "from-malformed"),
    (["not an address"], "from-malformed"),
    (["orders@mail.example.com <ceo@bank.example>"], "from-malformed"),
]


@pytest.mark.parametrize("values, reason", AUTHORS)
def test_author_rule(values, reason):
    got = author_refusal(values, SENDER)
    assert (got[0] if got else None) == reason
    if got:
        assert got[0] in REFUSALS and got[1]


def test_header_fields_keep_every_from_in_order():
    head = b"From: a@b.c\r\nSubject: s\r\nfrom: d@e.f\r\nX-From: not@this\r\n Continued: still subject"
    assert header_fields(head)["from"] == ["a@b.c", "d@e.f"]
    assert mailboxes("Name <a@b.c>") == ["a@b.c"]


def test_refusals_read_as_the_guide_writes_them():
    assert REFUSALS["from-mismatch"].smtp == "550 5.7.1 From header does not match the authenticated user"
    assert REFUSALS["from-malformed"].smtp.startswith("550 5.7.1 ")


@pytest.fixture
def cleanup(ready_store):
    c = Cleanup(ready_store, box=SecretBox.from_env())
    yield c
    c.close()


@pytest.mark.parametrize("head, reason", [
    (b"From: Security <security@mail.example.com>\r\nTo: a@example.com\r\nSubject: hi", "from-mismatch"),
    (b"From: The Bank <ceo@bank.example>\r\nSubject: hi", "from-mismatch"),
    (b"To: a@example.com\r\nSubject: no author", "from-malformed"),
    (b"From: orders@mail.example.com\r\nFrom: ceo@bank.example\r\nSubject: hi", "from-malformed"),
    (b"Subject: hi\r\nFrom: orders@mail.example.com, ceo@bank.example", "from-malformed"),
])
def test_a_forged_author_is_refused_and_nothing_is_queued(cleanup, ready_store, head, reason):
    sub = Submission("example-shop", SENDER, [Recipient("a@example.com")], "smtp", raw_message=head + b"\r\n\r\nbody\r\n")
    with pytest.raises(SubmitRefused) as exc:
        cleanup.submit_sync(sub)
    assert exc.value.reason == reason
    with ready_store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.queue_messages)).scalar() == 0


def test_the_sender_as_author_is_accepted(cleanup, ready_store):
    raw = b"Subject: hi\r\nFrom: \"Example Shop\" <Orders@Mail.Example.com>\r\nTo: a@example.com\r\n\r\nbody\r\n"
    result = cleanup.submit_sync(Submission("example-shop", SENDER, [Recipient("a@example.com")], "smtp", raw_message=raw))
    assert result.env_id
