"""The submission server's reply table, walked row by row, and the pieces that need no socket:
aiosmtpd's literal replies all map onto the tables, X-AliDM-Trace parsing, DSN parameters,
listener settings, and the self-signed certificate."""
from __future__ import annotations

import ast
import base64
import datetime as dt
import json
import re
import ssl
import string
from pathlib import Path

import aiosmtpd.smtp
import pytest
from cryptography import x509

from mailcore.cleanup.submission import REFUSALS
from mailcore.ingress.smtpd.parsing import (
    MAIL_DSN,
    RCPT_DSN,
    Trace,
    TraceHeaderError,
    parse_trace,
    take_dsn_params,
)
from mailcore.ingress.smtpd.replies import (
    AIOSMTPD_LINES,
    REPLIES,
    Reply,
    refusal,
    reply,
    translate,
)
from mailcore.ingress.smtpd.settings import SmtpConfigError, SmtpSettings
from mailcore.ingress.smtpd.tls import (
    ensure_self_signed,
    self_signed_certificate,
    server_context,
)

ENHANCED = re.compile(r"[245]\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})")
# RFC 2034: no enhanced code on the greeting and EHLO/HELO lines; 3xx continuations have none either
EXEMPT = {"greeting", "helo", "auth-login-username", "auth-login-password", "data-start"}


def fields(text: str) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(text) if f]


@pytest.mark.parametrize("name", sorted(REPLIES))
def test_every_reply_row_is_a_well_formed_line(name):
    row = REPLIES[name]
    assert 200 <= row.code <= 599
    if name in EXEMPT:
        assert row.enhanced is None
    else:
        assert ENHANCED.fullmatch(row.enhanced), row
        assert row.enhanced[0] == str(row.code)[0], "the enhanced class follows the reply code"
    text = row.line(**{f: "X" for f in fields(row.text)})
    assert re.fullmatch(r"\d{3} [ -~]+", text), text
    assert "{" not in text.replace("{{", "") or name == "trace-header"


def test_the_guides_texts():
    assert reply("queued", env_id="148316944") == "250 2.0.0 Data Ok: queued as freedom ###envid=148316944"
    assert reply("mail-ok").endswith("Mail Ok") and reply("rcpt-ok").endswith("Rcpt Ok")
    assert reply("auth-ok") == "235 2.7.0 Authentication successful"
    assert base64.b64encode(REPLIES["auth-login-username"].text.encode()) == b"dXNlcm5hbWU6"
    assert base64.b64encode(REPLIES["auth-login-password"].text.encode()) == b"UGFzc3dvcmQ6"
    assert reply("trace-header").count("{") == 1  # escaped braces come out single
    assert refusal("auth-failed") == REFUSALS["auth-failed"].smtp


@pytest.mark.parametrize("row", AIOSMTPD_LINES, ids=lambda r: r[0].pattern[:40])
def test_every_translation_row_names_a_table_row(row):
    _, kind, name = row
    assert name in (REPLIES if kind == "reply" else REFUSALS)


def _aiosmtpd_literals() -> list[str]:
    """Every reply text aiosmtpd's smtp.py can push, with '{...}' holes filled with 'X'."""
    tree = ast.parse(Path(aiosmtpd.smtp.__file__).read_text())

    def text(node) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.JoinedStr):
            return "".join(v.value if isinstance(v, ast.Constant) else "X" for v in node.values)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"):
            inner = text(node.func.value)
            return re.sub(r"\{[^}]*\}", "X", inner) if inner is not None else None
        if isinstance(node, ast.IfExp):
            return text(node.body)
        if isinstance(node, ast.BinOp):  # "..." + "..."
            left, right = text(node.left), text(node.right)
            return left + right if left is not None and right is not None else None
        return None

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "push" and node.args:
            found.append(text(node.args[0]))
        elif isinstance(node, ast.Assign) and isinstance(node.value, (ast.Constant, ast.JoinedStr, ast.Call)):
            # status = '...' / CODE_SUCCESS = "..." lines later pushed through a variable
            t = text(node.value)
            if t and re.match(r"\d{3} ", t):
                found.append(t)
    return [f for f in found if f is not None and re.match(r"\d{3}[ -]", f)]


def test_every_aiosmtpd_literal_reply_is_translated():
    literals = _aiosmtpd_literals()
    assert len(literals) > 40  # the scan did find aiosmtpd's replies
    greeting = "220 X X"  # replaced by the greeting row in SubmissionSMTP.push
    untranslated = [lit for lit in literals if lit != greeting and translate(lit) is None
                    and not lit.startswith(("250 X", "250-"))]  # HELO/EHLO: our hooks answer those
    assert untranslated == []


def test_translated_lines_are_table_lines():
    all_lines = {r.line(**{f: "X" for f in fields(r.text)}) for r in REPLIES.values()} | {r.smtp for r in REFUSALS.values()}
    for lit in _aiosmtpd_literals():
        out = translate(lit)
        if out is not None:
            code = out.split()[0]
            assert any(x.startswith(code) for x in all_lines), out


# --- X-AliDM-Trace (R21) ---------------------------------------------------------------------------

def _msg(header: str | None) -> bytes:
    h = f"X-AliDM-Trace: {header}\r\n" if header is not None else ""
    return f"From: a@b\r\n{h}Subject: s\r\n\r\nbody X-AliDM-Trace: ignored\r\n".encode()


def _b64(obj) -> str:
    return base64.b64encode(json.dumps(obj).encode()).decode()


@pytest.mark.parametrize("header,expected", [
    (None, Trace()),
    (_b64({"OpenTrace": "1"}), Trace(None, True)),
    (_b64({"OpenTrace": "0", "TagName": "newsletter_weekly"}), Trace("newsletter_weekly", False)),
    (_b64({"OpenTrace": "1", "LinkTrace": "1", "TagName": "t"}), Trace("t", True)),
    (_b64({"OpenTrace": 1}), Trace(None, True)),
    (_b64({}), Trace()),
])
def test_trace_header(header, expected):
    assert parse_trace(_msg(header)) == expected


def test_trace_header_folded_over_lines():
    value = _b64({"OpenTrace": "1", "TagName": "order_confirmation"})
    raw = f"From: a@b\r\nX-AliDM-Trace: {value[:20]}\r\n {value[20:]}\r\n\r\nbody\r\n".encode()
    assert parse_trace(raw) == Trace("order_confirmation", True)


@pytest.mark.parametrize("header", ["not base64", _b64([1, 2]), base64.b64encode(b"{oops").decode(),
                                    _b64({"TagName": 5})])
def test_malformed_trace_header(header):
    with pytest.raises(TraceHeaderError):
        parse_trace(_msg(header))


def test_trace_only_in_the_header_block():
    assert parse_trace(b"From: a@b\r\n\r\nX-AliDM-Trace: " + _b64({"OpenTrace": "1"}).encode() + b"\r\n") == Trace()


# --- DSN parameters ----------------------------------------------------------------------------

@pytest.mark.parametrize("arg,names,rest,found,bad", [
    ("FROM:<a@b> RET=HDRS ENVID=Q+2B1 SIZE=10", MAIL_DSN, "FROM:<a@b> SIZE=10", {"RET": "HDRS", "ENVID": "Q+2B1"}, None),
    ("FROM:<a@b>", MAIL_DSN, "FROM:<a@b>", {}, None),
    ("FROM:a@b ret=full", MAIL_DSN, "FROM:a@b", {"RET": "full"}, None),
    ("FROM:<a@b> RET=NEVER", MAIL_DSN, None, {}, "RET"),
    ("FROM:<a@b> RET=FULL RET=HDRS", MAIL_DSN, None, {}, "RET"),
    ("TO:<c@d> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;c@d", RCPT_DSN, "TO:<c@d>",
     {"NOTIFY": "SUCCESS,DELAY", "ORCPT": "rfc822;c@d"}, None),
    ("TO:<c@d> NOTIFY=NEVER", RCPT_DSN, "TO:<c@d>", {"NOTIFY": "NEVER"}, None),
    ("TO:<c@d> NOTIFY=", RCPT_DSN, None, {}, "NOTIFY"),
    ("TO:<c@d> ORCPT=c@d", RCPT_DSN, None, {}, "ORCPT"),
])
def test_dsn_params(arg, names, rest, found, bad):
    got_rest, got_found, got_bad = take_dsn_params(arg, names)
    assert (got_found, got_bad) == (found, bad)
    if rest is not None:
        assert got_rest == rest


# --- settings -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,message", [
    ({"tls_mode": "ssl"}, "tls_mode 'ssl'"),
    ({"cert_file": Path("c.pem")}, "set both or neither"),
    ({"max_rcpts": 0}, "max_rcpts 0"),
    ({"max_message_bytes": 10}, "max_message_bytes 10"),
    ({"tls_mode": "none"}, "allow_plain_auth_on_loopback"),
])
def test_settings_refused_with_a_clear_message(kwargs, message):
    with pytest.raises(SmtpConfigError, match=re.escape(message)):
        SmtpSettings(region="cn-hangzhou", **kwargs).check()


def test_defaults_follow_the_guide():
    s = SmtpSettings(region="cn-hangzhou")
    s.check()
    assert (s.max_rcpts, s.activation_delay_seconds, s.allow_plain_auth_on_loopback, s.tls_mode) == (30, 600, False, "starttls")


# --- the self-signed certificate ---------------------------------------------------------------

def test_self_signed_certificate_names_and_key():
    cert_pem, key_pem = self_signed_certificate("smtp.local.test")
    cert = x509.load_pem_x509_certificate(cert_pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"smtp.local.test", "localhost"}
    assert {str(a) for a in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    assert b"PRIVATE KEY" in key_pem


def test_ensure_self_signed_reuses_then_renews(tmp_path):
    now = dt.datetime(2026, 11, 27, tzinfo=dt.timezone.utc)
    cert, key = ensure_self_signed(tmp_path, "localhost", now=now)
    first = cert.read_bytes()
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert ensure_self_signed(tmp_path, "localhost", now=now + dt.timedelta(days=100))[0].read_bytes() == first
    assert ensure_self_signed(tmp_path, "localhost", now=now + dt.timedelta(days=360))[0].read_bytes() != first
    renewed = cert.read_bytes()
    assert ensure_self_signed(tmp_path, "other.test", now=now + dt.timedelta(days=360))[0].read_bytes() != renewed
    assert isinstance(server_context(cert, key), ssl.SSLContext)


def test_unloadable_certificate_is_a_clear_error(tmp_path):
    from mailcore.ingress.smtpd.tls import TlsError
    (tmp_path / "c.pem").write_text("not a certificate")
    with pytest.raises(TlsError, match="cannot load TLS certificate"):
        server_context(tmp_path / "c.pem", tmp_path / "c.pem")


def test_reply_type():
    assert Reply(250, "2.0.0", "OK").line() == "250 2.0.0 OK"
    assert Reply(220, None, "{hostname} ready").line(hostname="h") == "220 h ready"


def test_settings_from_a_config_mapping(tmp_path):
    s = SmtpSettings.from_mapping({"region": "cn-hangzhou", "port": 465, "tls_mode": "implicit",
                                   "cert_file": "tls/c.pem", "key_file": "/etc/k.pem"}, base_dir=tmp_path)
    assert (s.port, s.cert_file, s.key_file) == (465, tmp_path / "tls/c.pem", Path("/etc/k.pem"))
    with pytest.raises(SmtpConfigError, match="unknown setting max_rcpt;"):
        SmtpSettings.from_mapping({"region": "cn-hangzhou", "max_rcpt": 3})
    with pytest.raises(SmtpConfigError, match="'region' is required"):
        SmtpSettings.from_mapping({"port": 25})


# --- MAIL FROM / RCPT TO paths: the fast path answers exactly as aiosmtpd's parser -------------

PATHS = ["<a@b.c>", "<a@b.c> SIZE=100", " <a@b.c>", "<a.b@c-d.e>  BODY=8BITMIME", "<A@B.C>", "<a@b.c>x",
         "<a..b@c>", '<"q x"@b.c>', "<@r:a@b.c>", "<>", "<a@[1.2.3.4]>", "<a@b.c.>", "<a@-b.c>", "<a@b.c>\t SIZE=1",
         "<a@b.c> (comment) SIZE=1", "<a@b.c> SIZE=1 (c)", "a@b.c", "<a@b.c", "a@b.c>", "<a b@c.d>", "<.a@b.c>",
         "<a.@b.c>", "<a@b..c>", "<user+tag@mail.example.com> NOTIFY=NEVER", "<" + "x" * 70 + "@b.c>", "", "<a@b.c> ",
         "<a@b.c>  SIZE=1  ", "<üser@b.c>", "<a@bü.c>", "<a@b.c> BODY=8BITMIME SMTPUTF8"]


@pytest.mark.parametrize("arg", PATHS)
@pytest.mark.parametrize("local_part_limit", [0, 64])
def test_getaddr_matches_aiosmtpd(arg, local_part_limit):
    from aiosmtpd.smtp import SMTP

    from mailcore.ingress.smtpd.parsing import _SIMPLE_PATH
    from mailcore.ingress.smtpd.protocol import SubmissionSMTP
    ours, theirs = SubmissionSMTP.__new__(SubmissionSMTP), SMTP.__new__(SMTP)
    ours.local_part_limit = theirs.local_part_limit = local_part_limit
    assert ours._getaddr(arg) == theirs._getaddr(arg)
    assert sum(bool(_SIMPLE_PATH.fullmatch(a)) for a in PATHS) >= 12  # the fast path is taken for the common forms


EXPLAIN_FACTS = {  # every REFUSALS row that says what to change, with facts to fill it
    "ip-not-allowed": {"client_ip": "203.0.113.9"},
    "sender-not-active": {"delay": "10 min", "active_at": "2026-12-05 00:10:00 UTC+08:00",
                          "timezone": "Asia/Shanghai", "left": "5 min"},
}


def test_every_explained_refusal_keeps_the_guides_code_and_says_what_to_change():
    from mailcore.cleanup.submission import SubmitRefused
    assert {r for r, row in REFUSALS.items() if row.explain} == set(EXPLAIN_FACTS)
    for reason, facts in EXPLAIN_FACTS.items():
        refused = SubmitRefused.explained(reason, **facts)
        line = refused.smtp
        assert line.split(" ", 2)[:2] == REFUSALS[reason].smtp.split(" ", 2)[:2], reason
        assert all(str(v) in line for v in facts.values()) and line.isascii() and "\n" not in line, line
        assert SubmitRefused(reason, refused.detail).smtp == line  # what crosses the cleanup process boundary
        assert SubmitRefused(reason).smtp == REFUSALS[reason].smtp  # no facts: the row's short text


def test_the_allowlist_refusal_text():
    from mailcore.cleanup.submission import ip_not_allowed
    assert ip_not_allowed("203.0.113.9").smtp == ("554 5.7.1 Client 203.0.113.9 is not in the account's IP allow-list "
                                                  "(config ip_allowlist); add it or set ip_allowlist.enabled: false")


@pytest.mark.parametrize("seconds, text", [(0, "0 s"), (0.2, "1 s"), (59, "59 s"), (60, "1 min"), (570, "9 min 30 s"),
                                           (3600, "1 h"), (7500, "2 h 5 min"), (-5, "0 s")])
def test_durations_read_as_people_say_them(seconds, text):
    from mailcore.cleanup.submission import duration
    assert duration(seconds) == text


def test_activation_time_in_the_accounts_timezone_or_utc():
    from mailcore.cleanup.submission import sender_not_active
    created = dt.datetime(2026, 12, 4, 16, 0, tzinfo=dt.timezone.utc)
    now = created + dt.timedelta(seconds=100)
    ny = sender_not_active(created, 600, now, "America/New_York").smtp
    assert "active at 2026-12-04 11:10:00 UTC-05:00 (America/New_York), in 8 min 20 s" in ny
    assert "active at 2026-12-04 16:10:00 UTC+00:00 (UTC)" in sender_not_active(created, 600, now, "Nowhere/Else").smtp
    naive = sender_not_active(created.replace(tzinfo=None), 600, now, None).smtp  # SQLite hands back naive UTC
    assert "2026-12-04 16:10:00 UTC+00:00 (UTC), in 8 min 20 s" in naive
