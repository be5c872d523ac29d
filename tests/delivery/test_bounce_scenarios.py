"""Closing the loop: every recipient-side row of mailcore.delivery.bounce, replayed by the fake MX over real
SMTP, classifies back to that row. The harness's ``bounce-<row-id>`` scenario and the classifier
are written from the same table, so this catches a reply the harness cannot send faithfully
(placeholders, enhanced codes, the phase) or a pattern that no longer matches what it documents."""
from __future__ import annotations

import pytest

from mailcore.delivery import bounce
from tests.support.harness import attempt

ROWS = bounce.RECIPIENT_ROWS


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_replayed_row_classifies_as_the_row(shared_fake_mx, row):
    rcpt = f"bounce-{row.id}@mail.example.org"
    out = attempt(shared_fake_mx, rcpt)
    assert out.phase == ("data" if row.phase == "data" else "rcpt")
    assert out.code == int(row.template[:3])
    got = bounce.classify(out.code, out.text, phase=out.phase)
    assert got.row_id == row.id, f"{out.reply!r} classified as {got.row_id}"
    assert (got.status, got.failed_type, got.retry, got.invalid_address) == (
        row.status, row.failed_type, row.retry, row.invalid_address)
    if "$EMAIL" in (row.text or ""):
        assert rcpt in out.text
    if "$IP" in (row.text or ""):
        assert "127.0.0.1" in out.text


def test_every_recipient_row_is_replayed():
    """The recipient side is every row except DirectMail's own codes and the success row."""
    assert len(ROWS) == len([r for r in bounce.TABLE if r.source != "directmail"]) - 1
    assert len(ROWS) > 140
