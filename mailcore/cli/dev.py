"""`invoke dev.demo` / `mailcore dev demo`: the quick start's last step. It runs `serve --dev` in the
background on the applied account (after `secrets.init apply verify`), sends one message through
SMTP (smtplib, a sender and its password from the environment / .env) and one through the API
(the official SDK when installed, else a signed request with httpx), waits until both are delivered
to the local fake MX, prints their queue rows and what the fake MX received, and stops everything.
Exit 0 when both were delivered, 2 otherwise (with the reason and the service's last lines)."""
from __future__ import annotations

import os
import re
import signal
import smtplib
import ssl
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage

from mailcore.cli.common import EXIT_OK, CommandError, console, load_config, store_at
from mailcore.ingress.api.bench import no_proxy

RCPT_SMTP, RCPT_API = "success@dest.test", "success+sdk@dest.test"  # the fake MX accepts local part `success`
LISTEN = re.compile(r"mailcore: listening (\w+) (\S+) (\S+):(\d+)(?: tls=(\w+))?")
MESSAGES = re.compile(r"GET (http://\S+/messages)")
ENVID = re.compile(r"envid=(\d+)")
START_SECONDS = 60


@dataclass
class Plan:
    """Who sends through which listener."""
    sender: str
    password: str
    region: str
    key_id: str | None = None
    key_secret: str | None = None


@dataclass
class Background:
    """`serve --dev` as a child process, its output collected."""
    proc: subprocess.Popen
    lines: list = field(default_factory=list)
    listening: list = field(default_factory=list)  # (kind, region, host, port, tls)
    messages_url: str | None = None

    def tail(self, n: int = 15) -> str:
        return "".join(self.lines[-n:])


def demo(config: str, store_url: str | None = None, timeout="60") -> int:
    try:
        wait = float(timeout)
    except ValueError:
        wait = 0
    if wait <= 0:
        raise CommandError(f"--timeout takes seconds, more than 0, not {timeout!r}")
    loaded = load_config(config)
    plan = _plan(loaded.spec)
    store = store_at(store_url)  # the schema exists before the service starts
    store.dispose()
    bg = _start(config, store_url)
    try:
        for line in bg.lines:
            if "development mode" in line and "WARNING" not in line:
                console.print(line.rstrip(), style="yellow", markup=False)
        console.print(f"dev.demo: serve --dev is running (pid {bg.proc.pid}); sending as {plan.sender}")
        sent = {"smtp": _send_smtp(bg, plan)}
        console.print(f"dev.demo: SMTP: queued as EnvId {sent['smtp']} for {RCPT_SMTP}")
        if plan.key_id:
            sent["api"], how = _send_api(bg, plan)
            console.print(f"dev.demo: API ({how}): SingleSendMail queued as EnvId {sent['api']} for {RCPT_API}")
        else:
            console.print("dev.demo: no enabled AccessKey with a secret in the config; the API send is skipped", style="yellow")
        states = _wait_delivered(store_url, sent, wait)
        _show(store_url, sent, bg)
    finally:
        _stop(bg)
    bad = {how: s for how, s in states.items() if s != "sent"}
    if bad:
        raise CommandError("not delivered: " + ", ".join(f"the {how} message is {s or 'not queued'}" for how, s in bad.items())
                           + f" after {wait:g} s\n--- serve --dev said last:\n{bg.tail()}")
    console.print(f"dev.demo: delivered {len(sent)} message(s) to the local fake MX; run `invoke serve --dev` "
                  f"to keep it running (recipients @dest.test, see the README's Fake MX)", style="green")
    return EXIT_OK


def _plan(spec) -> Plan:
    """The first trigger sender with an SMTP password whose region has an SMTP and an API listener."""
    region_of = {d.name.lower(): d.region for d in spec.domains}
    listeners = {(li.kind, li.region) for li in spec.service.listeners}
    why = "no trigger sender with an smtp_password"
    for s in spec.senders:
        if s.type != "trigger" or s.smtp_password is None:
            continue
        region = region_of.get(s.domain)
        if ("smtp", region) not in listeners:
            why = f"no SMTP listener in {region} (the region of {s.address}) in service.listeners"
            continue
        password, problem = s.smtp_password.resolve()
        if problem:
            raise CommandError(f"{s.address}'s smtp_password: {problem}; run `invoke secrets.init` first")
        plan = Plan(s.address, password, region)
        key = next((k for k in spec.api_keys if k.enabled and k.secret is not None), None)
        if key is not None and ("api", region) in listeners:
            plan.key_id, (plan.key_secret, problem) = key.id, key.secret.resolve()
            if problem:
                raise CommandError(f"API key {key.id}'s secret: {problem}; run `invoke secrets.init` first")
        return plan
    raise CommandError(f"{spec.root}: {why}; the demo needs one")


def _start(config: str, store_url: str | None) -> Background:
    args = [sys.executable, "-m", "mailcore", "serve", "--dev", "--config", config]
    args += ["--store", store_url] if store_url else []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)  # Ctrl-C reaches us; we stop it ourselves
    bg = Background(proc)
    ready = threading.Event()

    def read():
        for line in proc.stdout:
            bg.lines.append(line)
            m = LISTEN.search(line)
            if m:
                bg.listening.append((m.group(1), m.group(2), m.group(3), int(m.group(4)), m.group(5) or ""))
            m = MESSAGES.search(line)
            if m:
                bg.messages_url = m.group(1)
            if "mailcore: ready" in line:
                ready.set()
        ready.set()

    threading.Thread(target=read, name="serve-dev-output", daemon=True).start()
    ready.wait(START_SECONDS)
    if proc.poll() is not None or not any("mailcore: ready" in x for x in bg.lines):
        _stop(bg)
        raise CommandError(f"serve --dev did not start:\n{bg.tail(30)}")
    return bg


def _listener(bg: Background, kind: str, region: str) -> tuple[str, int, str]:
    """(host, port, tls) of a listener serve reported; for SMTP one with STARTTLS or plain first."""
    found = sorted((li for li in bg.listening if li[:2] == (kind, region)), key=lambda li: li[4] == "implicit")
    if not found:
        raise CommandError(f"serve --dev reported no {kind} listener of {region}:\n{bg.tail(30)}")
    return found[0][2:]


def _stop(bg: Background) -> None:
    if bg.proc.poll() is None:
        bg.proc.send_signal(signal.SIGTERM)
        try:
            bg.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            bg.proc.kill()
            bg.proc.wait()


def _send_smtp(bg: Background, plan: Plan) -> int:
    host, port, tls = _listener(bg, "smtp", plan.region)
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = plan.sender, RCPT_SMTP, "mailcore dev.demo (SMTP)"
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@dev-demo.test>"
    msg.set_content("Sent by `invoke dev.demo` through the SMTP listener.\n")
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # the development listener's self-signed certificate
    try:
        cls = smtplib.SMTP_SSL if tls == "implicit" else smtplib.SMTP
        kwargs = {"context": ctx} if tls == "implicit" else {}
        with cls(host, port, timeout=30, **kwargs) as s:
            if tls == "starttls":
                s.starttls(context=ctx)
            s.login(plan.sender, plan.password)
            for code, reply in (s.mail(plan.sender), s.rcpt(RCPT_SMTP)):
                if code != 250:
                    raise CommandError(f"SMTP refused: {code} {reply.decode(errors='replace')} (has "
                                       f"`invoke secrets.init apply verify` run on this config and store?)")
            code, reply = s.data(msg.as_bytes())
    except smtplib.SMTPException as exc:
        raise CommandError(f"SMTP send to {host}:{port} failed: {exc}") from None
    text = reply.decode(errors="replace")
    m = ENVID.search(text)
    if code != 250 or not m:
        raise CommandError(f"SMTP DATA answered {code} {text}")
    return int(m.group(1))


def _send_api(bg: Background, plan: Plan) -> tuple[int, str]:
    host, port, _ = _listener(bg, "api", plan.region)
    fields = {"AccountName": plan.sender, "AddressType": "1", "ReplyToAddress": "false", "ToAddress": RCPT_API,
              "Subject": "mailcore dev.demo (API)", "TextBody": "Sent by `invoke dev.demo` through the API."}
    try:
        from alibabacloud_dm20151123 import models as dm
        from alibabacloud_dm20151123.client import Client
        from alibabacloud_tea_openapi.utils_models import Config
    except ImportError:
        return _send_signed(host, port, plan, fields), "httpx, signed HMAC-SHA1"
    client = Client(Config(access_key_id=plan.key_id, access_key_secret=plan.key_secret, endpoint=f"{host}:{port}",
                           protocol="http", read_timeout=30000, connect_timeout=5000))
    try:
        with no_proxy():
            resp = client.single_send_mail(dm.SingleSendMailRequest(
                account_name=plan.sender, address_type=1, reply_to_address=False, to_address=RCPT_API,
                subject=fields["Subject"], text_body=fields["TextBody"]))
    except Exception as exc:  # the SDK raises TeaException (code, message) for API errors
        raise CommandError(f"API send refused: {getattr(exc, 'code', '')} {getattr(exc, 'message', exc)}") from None
    return int(resp.body.env_id), "the official SDK"


def _send_signed(host: str, port: int, plan: Plan, fields: dict) -> int:
    """SingleSendMail as an RPC request signed with HMAC-SHA1 (what the SDK's `v2` does)."""
    import httpx

    from mailcore.ingress.api.signature import rpc_signature, rpc_string_to_sign
    params = {"Action": "SingleSendMail", "Version": "2015-11-23", "Format": "JSON", "AccessKeyId": plan.key_id,
              "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "SignatureNonce": uuid.uuid4().hex,
              "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **fields}
    params["Signature"] = rpc_signature(plan.key_secret, rpc_string_to_sign("POST", list(params.items())))
    try:
        resp = httpx.post(f"http://{host}:{port}/", data=params, timeout=30, trust_env=False)
        body = resp.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise CommandError(f"API send to {host}:{port} failed: {exc}") from None
    if resp.status_code != 200 or "EnvId" not in body:
        raise CommandError(f"API send refused: {body.get('Code')} {body.get('Message')}")
    return int(body["EnvId"])


def _wait_delivered(store_url: str | None, sent: dict, wait: float) -> dict:
    """Each send's recipient state once final (sent, bounced, expired), or its last state at the deadline."""
    from mailcore.queue import states as queue
    store = store_at(store_url)
    deadline = time.monotonic() + wait
    try:
        while True:
            states = {}
            with store.engine.connect() as conn:
                for how, env_id in sent.items():
                    rows, _ = queue.listing(conn, None, 10, env_id=env_id)
                    states[how] = rows[0].state if rows else None
            if all(s in queue.FINAL for s in states.values()) or time.monotonic() > deadline:
                return states
            time.sleep(0.2)
    finally:
        store.dispose()


def _show(store_url: str | None, sent: dict, bg: Background) -> None:
    from mailcore.cli.queue import queue_list
    for env_id in sent.values():
        console.print(f"\n$ invoke queue.list --env-id {env_id}")
        queue_list(store_url, None, 10, env_id=env_id)
    if not bg.messages_url:
        return
    import httpx
    try:
        got = httpx.get(bg.messages_url, timeout=10, trust_env=False).json()
    except (httpx.HTTPError, ValueError) as exc:
        console.print(f"fake MX: cannot read {bg.messages_url}: {exc}", style="yellow")
        return
    console.print(f"\n$ curl {bg.messages_url}   # what the fake MX received")
    for m in got:
        signed = "DKIM-signed" if "DKIM-Signature:" in m.get("data", "") else "not DKIM-signed"
        console.print(f"  from {m['mail_from']} to {', '.join(m['rcpt_tos'])}: {m.get('subject')!r}, "
                      f"{'TLS' if m.get('tls') else 'plain'}, {signed}", markup=False)
