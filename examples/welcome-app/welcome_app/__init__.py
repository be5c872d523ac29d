"""A tiny app built on mailcore: every sign-up gets a welcome mail; an address that bounces with a
550 (the recipient does not exist) is marked bad and never mailed again.

It talks to the mail core as any DirectMail client does: SMTP to send (the reply to DATA carries the
EnvId), and the official SDK's SenderStatisticsDetailByParam to learn what became of each message.
"""
from __future__ import annotations

import re
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage

ENVID = re.compile(r"envid=(\d+)")
INVALID_ADDRESS = 2  # SenderStatisticsDetailByParam Status: the address does not exist (a 550 user unknown)


@dataclass
class Settings:
    smtp_host: str
    smtp_port: int
    sender: str
    password: str
    api_endpoint: str  # host:port of the DirectMail API
    access_key_id: str
    access_key_secret: str


@dataclass
class User:
    email: str
    state: str = "new"  # new | welcomed | bad
    env_id: int | None = None
    reason: str = ""


class WelcomeApp:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.users: dict[str, User] = {}

    def sign_up(self, email: str) -> User:
        """Register `email` and send it the welcome mail (not to an address already marked bad)."""
        user = self.users.setdefault(email.lower(), User(email))
        if user.state != "bad":
            self._welcome(user)
        return user

    def _welcome(self, user: User) -> None:
        s = self.settings
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = s.sender, user.email, "Welcome aboard"
        msg.set_content(f"Hello {user.email}, thanks for signing up.\n")
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=30) as smtp:
            smtp.login(s.sender, s.password)
            smtp.mail(s.sender)
            code, reply = smtp.rcpt(user.email)
            if code >= 500:  # refused at once (e.g. an address already known to be invalid)
                user.state, user.reason = "bad", f"{code} {reply.decode(errors='replace')}"
                smtp.rset()
                return
            code, reply = smtp.data(msg.as_bytes())
        m = ENVID.search(reply.decode(errors="replace"))
        user.state, user.env_id = "welcomed", int(m.group(1)) if m else None

    def check_bounces(self) -> list[User]:
        """Ask the mail core what became of each welcome mail; mark addresses that do not exist bad."""
        from alibabacloud_dm20151123 import models as dm
        from alibabacloud_dm20151123.client import Client
        from alibabacloud_tea_openapi.utils_models import Config

        s = self.settings
        client = Client(Config(access_key_id=s.access_key_id, access_key_secret=s.access_key_secret,
                               endpoint=s.api_endpoint, protocol="http"))
        marked = []
        for user in self.users.values():
            if user.state != "welcomed":
                continue
            body = client.sender_statistics_detail_by_param(dm.SenderStatisticsDetailByParamRequest(
                account_name=s.sender, to_address=user.email)).body
            bounced = [d for d in body.data.mail_detail if d.status == INVALID_ADDRESS]
            if bounced:
                user.state, user.reason = "bad", bounced[-1].message
                marked.append(user)
        return marked
