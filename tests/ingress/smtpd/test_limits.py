"""What one client may cost the submission server: connection caps (global and per IP), idle
timeouts (commands and DATA), the memory an idle TLS session holds, AUTH backoff across
connections, and what reaches the logs (no AUTH user names or secrets at INFO)."""
from __future__ import annotations

import base64
import logging
import smtplib
import socket
import ssl
import time
import tracemalloc
from dataclasses import replace

import pytest

from mailcore.account.catalog import Catalog
from mailcore.ingress.smtpd.limits import AuthGuard, ConnectionLimits
from mailcore.ingress.smtpd.replies import REFUSALS, reply
from mailcore.ingress.smtpd.server import SmtpServer
from mailcore.ingress.smtpd.settings import SmtpConfigError, SmtpSettings
from mailcore.ingress.smtpd.tls import server_context
from tests.support.smtpd import HANGZHOU, ORDERS, ORDERS_PASSWORD, line, message, starttls_client


def greeting_or_refusal(port: int, source: str = "127.0.0.1") -> tuple[socket.socket, str]:
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    return s, s.makefile("rb").readline().decode().rstrip("\r\n")


def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


# --- connection caps -----------------------------------------------------------------------------

def test_a_client_over_its_per_ip_cap_gets_421_and_others_still_connect(start_smtpd):
    server = start_smtpd(max_connections=3, max_connections_per_ip=2)
    first, second = (greeting_or_refusal(server.port) for _ in range(2))
    assert first[1].startswith("220 ") and second[1].startswith("220 ")
    third = greeting_or_refusal(server.port)
    assert third[1] == reply("too-many-connections-ip")
    assert third[0].recv(1) == b""  # and closed
    other = greeting_or_refusal(server.port, source="127.0.0.2")  # another address still gets in
    assert other[1].startswith("220 ")
    fourth = greeting_or_refusal(server.port, source="127.0.0.3")  # the global cap
    assert fourth[1] == reply("too-many-connections")
    first[0].close()
    wait_for(lambda: server.handler.limits.total == 2)
    again = greeting_or_refusal(server.port)  # a closed connection frees its place
    assert again[1].startswith("220 ")
    for s, _ in (second, third, other, fourth, again):
        s.close()


def test_one_connection_limits_object_holds_across_listeners(smtpd_loop, smtp_store, smtpd_cert, submitter):
    shared = ConnectionLimits(max_connections=1, max_connections_per_ip=1)
    settings = SmtpSettings(region=HANGZHOU, tls_mode="starttls")
    servers = [SmtpServer(settings, catalog=Catalog(smtp_store), submitter=submitter, limits=shared,
                          tls_context=server_context(*smtpd_cert)) for _ in range(2)]
    for s in servers:
        smtpd_loop.run(s.start())
    try:
        a = greeting_or_refusal(servers[0].port)
        b = greeting_or_refusal(servers[1].port)
        assert a[1].startswith("220 ") and b[1] == reply("too-many-connections")
        a[0].close(), b[0].close()
    finally:
        for s in servers:
            smtpd_loop.run(s.stop())


@pytest.mark.parametrize("kwargs, message", [
    ({"max_connections": 10, "max_connections_per_ip": 11}, "max_connections_per_ip 11: must be 1..max_connections"),
    ({"max_connections_per_ip": 0}, "max_connections_per_ip 0"),
    ({"data_timeout_seconds": 0}, "data_timeout_seconds 0: must be more than 0"),
    ({"timeout_seconds": -1}, "timeout_seconds -1: must be more than 0"),
])
def test_limit_settings_are_checked(kwargs, message):
    with pytest.raises(SmtpConfigError, match=message):
        replace(SmtpSettings(region=HANGZHOU), **kwargs).check()


# --- idle timeouts --------------------------------------------------------------------------------

def plain_session(server) -> smtplib.SMTP:
    c = smtplib.SMTP("localhost", server.port, timeout=10)
    c.ehlo("client.test")
    c.login(ORDERS, ORDERS_PASSWORD)
    return c


def test_an_idle_data_transfer_gets_421_after_the_data_timeout(start_smtpd):
    server = start_smtpd(tls_mode="none", allow_plain_auth_on_loopback=True, timeout_seconds=30,
                         data_timeout_seconds=0.3)
    c = plain_session(server)
    c.mail(ORDERS), c.rcpt("bob@example.org")
    assert c.docmd("DATA")[0] == 354
    c.send(b"Subject: half a message\r\n")  # then nothing
    assert line(*c.getreply()) == reply("timeout")


def test_a_slow_but_steady_data_transfer_outlives_the_command_timeout(start_smtpd, submitter):
    server = start_smtpd(tls_mode="none", allow_plain_auth_on_loopback=True, timeout_seconds=0.4,
                         data_timeout_seconds=0.3)
    c = plain_session(server)
    c.mail(ORDERS), c.rcpt("bob@example.org")
    assert c.docmd("DATA")[0] == 354
    for chunk in message().split(b"\r\n"):  # over a second in all, never 0.3 s without a byte
        c.send(chunk + b"\r\n")
        time.sleep(0.15)
    c.send(b".\r\n")
    assert line(*c.getreply()) == reply("queued", env_id="148316945")


# --- memory of idle sessions --------------------------------------------------------------------

CONNECTIONS = 300


def test_idle_tls_sessions_hold_little_memory(start_smtpd, smtpd_cert, capsys):
    """300 idle implicit-TLS sessions, measured with tracemalloc (server side: the clients are
    blocking ssl sockets). asyncio gives each TLS connection a 256 KiB read buffer; the server
    shrinks it, so 3,000 idle clients cost tens of MB instead of some 800 MB."""
    server = start_smtpd(tls_mode="implicit", max_connections=CONNECTIONS + 10,
                         max_connections_per_ip=CONNECTIONS + 10)
    ctx = ssl.create_default_context(cafile=str(smtpd_cert[0]))
    clients = []
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(CONNECTIONS):
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", server.port), timeout=10),
                                server_hostname="localhost")
            assert s.recv(200).startswith(b"220 ")
            clients.append(s)
        wait_for(lambda: len(server.handler.server_sessions) == CONNECTIONS)
        per_connection = (tracemalloc.get_traced_memory()[0] - before) / CONNECTIONS
    finally:
        tracemalloc.stop()
        for s in clients:
            s.close()
    with capsys.disabled():
        print(f"\nidle implicit-TLS SMTP session: {per_connection / 1024:.1f} KiB each "
              f"({per_connection * 3000 / 2**20:.0f} MiB for 3,000)")
    assert per_connection < 64 * 1024


# --- AUTH backoff ---------------------------------------------------------------------------------

class Recorder:
    def __init__(self):
        self.now, self.slept = 0.0, []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def test_guard_slows_then_locks_per_ip_and_per_user_and_decays():
    r = Recorder()
    g = AuthGuard(free_failures=2, delay_seconds=1, max_delay_seconds=4, ip_lockout=6, user_lockout=8,
                  half_life_seconds=60, clock=r.clock)
    assert [g.failed("10.0.0.1", "a@x") for _ in range(5)] == [0, 0, 1, 2, 4]
    assert not g.locked("10.0.0.1", "a@x")
    assert g.failed("10.0.0.1", "b@x") == 4  # the IP's score counts for every user name
    assert g.locked("10.0.0.1", "anyone@x") and not g.locked("10.0.0.2", "anyone@x")
    for i in range(3):  # one user name failing from many addresses
        g.failed(f"10.0.1.{i}", "a@x")
    assert g.locked("10.0.0.9", "A@X ")  # user names compare case-insensitively
    r.now += 60  # one half-life: a@x 8 -> 4, 10.0.0.1 6 -> 3
    assert not g.locked("10.0.0.1", "a@x")
    g.succeeded("10.0.0.1", "a@x")
    r.now += 600
    assert g.failed("10.0.0.1", "a@x") == 0


def test_guard_memory_is_bounded():
    g = AuthGuard(max_entries=100)
    for i in range(500):
        g.failed(f"10.0.{i // 256}.{i % 256}", f"u{i}@x")
    assert len(g._scores) <= 100


def test_failed_auth_backs_off_across_connections_then_refuses_with_454(smtpd_loop, smtp_store, smtpd_cert,
                                                                        submitter, client_tls):
    r = Recorder()
    guard = AuthGuard(free_failures=1, delay_seconds=1, ip_lockout=3, half_life_seconds=100,
                      clock=r.clock, sleep=r.sleep)
    server = SmtpServer(SmtpSettings(region=HANGZHOU, tls_mode="starttls", hostname="localhost"),
                        catalog=Catalog(smtp_store), submitter=submitter, auth_guard=guard,
                        tls_context=server_context(*smtpd_cert))
    smtpd_loop.run(server.start())

    def attempt(password: str) -> str:
        c = starttls_client(server.port, client_tls)
        blob = base64.b64encode(f"\0{ORDERS}\0{password}".encode()).decode()
        out = line(*c.docmd("AUTH", f"PLAIN {blob}"))
        c.close()
        return out

    try:
        assert [attempt("Wrong2026Pw") for _ in range(3)] == [REFUSALS["auth-failed"].smtp] * 3
        assert r.slept == [1, 2]  # the first failure is free, then 1 s, 2 s before the 535
        assert attempt(ORDERS_PASSWORD) == reply("auth-throttled")  # locked: not even the right password
        assert reply("auth-throttled").startswith("454 ")
        r.now += 200  # two half-lives: 3 -> 0.75
        assert attempt(ORDERS_PASSWORD) == reply("auth-ok")
    finally:
        smtpd_loop.run(server.stop())


# --- logging ----------------------------------------------------------------------------------------

SECRET_USER, SECRET_PASSWORD = "typed-password-in-user-field", "Sup3rSecretPw"


def failed_logins(server, client_tls) -> None:
    c = starttls_client(server.port, client_tls)
    with pytest.raises(smtplib.SMTPAuthenticationError):
        c.login(SECRET_USER, SECRET_PASSWORD)  # smtplib tries CRAM-MD5? no: PLAIN, then LOGIN
    c.docmd("AUTH", "LOGIN")
    c.docmd(base64.b64encode(SECRET_USER.encode()).decode())
    c.docmd(base64.b64encode(SECRET_PASSWORD.encode()).decode())
    c.login(ORDERS, ORDERS_PASSWORD)
    c.mail(ORDERS)
    c.quit()


def secrets_in(records) -> list[str]:
    needles = [SECRET_USER, SECRET_PASSWORD, base64.b64encode(SECRET_USER.encode()).decode(),
               base64.b64encode(SECRET_PASSWORD.encode()).decode(), ORDERS_PASSWORD,
               base64.b64encode(f"\0{SECRET_USER}\0{SECRET_PASSWORD}".encode()).decode()]
    return [r.getMessage() for r in records if any(n in r.getMessage() for n in needles)]


def test_no_auth_user_names_or_commands_at_info(smtpd, client_tls, caplog):
    caplog.set_level(logging.INFO)
    failed_logins(smtpd, client_tls)
    infos = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert secrets_in(infos) == []
    assert not any(r.name == "mail.log" and "MAIL FROM" in r.getMessage().upper() for r in infos)
    assert any("authentication failed" in r.getMessage() for r in infos)  # the failure itself is logged


def test_commands_at_debug_without_the_auth_data(smtpd, client_tls, caplog):
    caplog.set_level(logging.DEBUG)
    failed_logins(smtpd, client_tls)
    commands = [r for r in caplog.records if r.name == "mail.log"]
    assert any("MAIL FROM" in r.getMessage().upper() for r in commands)
    assert all(r.levelno == logging.DEBUG for r in commands)
    assert [m for m in secrets_in(commands)] == []
