"""Fake-MX fixtures for the suite: the plugin's own fixtures (so the plugin is what gets tested) and a
small SMTP client helper that reports the first refusal of one attempt."""
from __future__ import annotations

import smtplib
from dataclasses import dataclass

import pytest

from mailcore.harness import FakeMX, ManualClock
from mailcore.harness.pytest_plugin import fake_mx, fake_mx_clock, fake_mx_factory  # noqa: F401

__all__ = ["fake_mx", "fake_mx_clock", "fake_mx_factory", "shared_fake_mx", "Outcome", "attempt"]


@pytest.fixture(scope="module")
def shared_fake_mx():
    """One fake MX for a module whose tests use distinct recipients (the bounce-row walk)."""
    with FakeMX(clock=ManualClock()) as mx:
        yield mx


@dataclass(frozen=True)
class Outcome:
    """Where one SMTP attempt ended: the phase, and the reply there (code 0 = connection dropped)."""

    phase: str
    code: int
    text: str

    @property
    def reply(self) -> str:
        return f"{self.code} {self.text}"


def attempt(mx, rcpt: str, *, mail_from: str = "orders@shop.test", message_id: str = "<m1@shop.test>",
            starttls: bool = False, body: str = "hello") -> Outcome:
    """One delivery attempt on a new connection, as an MTA makes it: EHLO, [STARTTLS], MAIL, RCPT, DATA."""
    phase = "connect"
    try:
        with smtplib.SMTP(mx.host, mx.port, timeout=10) as s:
            s.ehlo("client.test")
            if starttls:
                s.starttls()
                s.ehlo("client.test")
            phase = "mail"
            code, text = s.mail(mail_from)
            if code >= 300:
                return Outcome(phase, code, text.decode())
            phase = "rcpt"
            code, text = s.rcpt(rcpt)
            if code >= 300:
                return Outcome(phase, code, text.decode())
            phase = "data"
            msg = (f"From: {mail_from}\r\nTo: {rcpt}\r\nSubject: test\r\nMessage-ID: {message_id}\r\n\r\n"
                   f"{body}\r\n")
            code, text = s.data(msg.encode())
            return Outcome(phase, code, text.decode())
    except smtplib.SMTPConnectError as exc:
        return Outcome("connect", exc.smtp_code, exc.smtp_error.decode())
    except smtplib.SMTPResponseException as exc:
        return Outcome(phase, exc.smtp_code, exc.smtp_error.decode())
    except smtplib.SMTPServerDisconnected:
        return Outcome(phase, 0, "connection dropped")
