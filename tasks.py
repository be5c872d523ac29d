"""mailcore's tasks. `invoke --list` shows them; `invoke --help TASK` shows a task's options."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from invoke import Collection, Exit, task

ROOT = Path(__file__).resolve().parent
os.chdir(ROOT)
sys.path.insert(0, str(ROOT))

from mailcore.cli import account as account_cmds  # noqa: E402
from mailcore.cli import common, invalid as invalid_cmds, notify as notify_cmds, queue as queue_cmds  # noqa: E402
from mailcore.cli import secrets as secret_cmds, send as send_cmds, serve as serve_cmds, state as state_cmds  # noqa: E402

# Local secrets (written by `invoke secrets.init`); MAILCORE_ENV_FILE= (empty) turns this off.
common.load_env_file(os.environ.get("MAILCORE_ENV_FILE", str(ROOT / ".env")))

DEFAULT_CONFIG = os.environ.get("MAILCORE_CONFIG", "config")
CONFIG_HELP = {"config": "the account's config directory (default: $MAILCORE_CONFIG or config)",
               "store": "store URL (default: $MAILCORE_STORE_URL or sqlite under $MAILCORE_STATE_DIR, ./state)"}


def _run(fn, *args, **kwargs):
    try:
        code = fn(*args, **kwargs)
    except common.CommandError as exc:
        raise Exit(f"error: {exc}", code=exc.code)
    if code:
        raise Exit(code=code)


@task(help={"config": CONFIG_HELP["config"]})
def validate(c, config=DEFAULT_CONFIG):
    """Check the config against the schema and every semantic rule; exit 2 on errors."""
    _run(account_cmds.validate, config)


DNS_HELP = {"dns": "also the domains' DNS records through Pulumi (default; --no-dns: the store only)"}


@task(help={**CONFIG_HELP, "json": "print the plan as JSON (same as --format json)", **DNS_HELP,
            "format": "text (default), json, or markdown (a pull-request comment)",
            "out": "also save the plan to this file, for `invoke apply FILE`"})
def plan(c, config=DEFAULT_CONFIG, store=None, json=False, dns=True, format=None, out=None):
    """Show what apply would change, store and DNS (exit 0: no changes, 3: changes, 2: error)."""
    _run(account_cmds.plan, config, store, json, dns, out, format)


@task(help={**CONFIG_HELP, **DNS_HELP, "plan": "a plan saved by `invoke plan --out FILE`: apply exactly it, "
                                               "refused if the config, the store or DNS moved since"})
def apply(c, config=DEFAULT_CONFIG, store=None, dns=True, plan=None):  # invoke has no optional positionals: --plan FILE
    """Apply DNS through Pulumi, then the store in one locked transaction (all or nothing); with
    --plan FILE, exactly the plan `invoke plan --out FILE` saved."""
    _run(account_cmds.apply, config, store, dns, plan)


@task(help=CONFIG_HELP)
def verify(c, config=DEFAULT_CONFIG, store=None):
    """Check every domain's records against live DNS; store verified/usable/failed and report drift."""
    _run(account_cmds.verify, config, store)


@task(help={**CONFIG_HELP, "stages": "comma-separated subset of smtpd,api,qmgr,notify (default: all)",
            "dev": "development mode: loopback clients skip the IP allow-list and the activation delay; "
                   "delivery goes to a local fake MX (recipients @dest.test)"})
def serve(c, config=DEFAULT_CONFIG, store=None, stages=None, dev=False):
    """Run the mail core: SMTP and API listeners per region, delivery, notifications."""
    _run(serve_cmds.serve, config, store, stages, dev)


@task(name="demo", help={**CONFIG_HELP, "timeout": "seconds to wait for delivery (default 60)"})
def dev_demo(c, config=DEFAULT_CONFIG, store=None, timeout="60"):
    """serve --dev in the background, one message by SMTP and one by the API, their delivery shown, stop."""
    from mailcore.cli import dev as dev_cmds
    _run(dev_cmds.demo, config, store, timeout)


@task(help={"store": CONFIG_HELP["store"], "account": "show only this account"})
def state(c, store=None, account=None):
    """Show what the store holds: domains, senders, lists, templates and their review state."""
    _run(state_cmds.show_state, store, account)


@task(help={"store": CONFIG_HELP["store"]})
def migrate(c, store=None):
    """Bring the store's schema to the newest migration."""
    _run(lambda: (common.store_at(store), 0)[1])


def _review(action):
    extra = {"reason": "why (required to reject)"} if action == "reject" else {}

    @task(name=action, help={"name": "template name", "by": "who (default: $MAILCORE_ACTOR or the login)", **CONFIG_HELP, **extra})
    def review_task(c, name, by=None, config=DEFAULT_CONFIG, store=None, reason=None):
        _run(account_cmds.template_review, action, name, config, store, by, reason)

    review_task.__doc__ = {"submit": "Submit a draft or rejected template for review (R20).",
                           "approve": "Approve a submitted template; the approval is bound to its content.",
                           "reject": "Reject a submitted template with a reason."}[action]
    return review_task


@task(help={"config": CONFIG_HELP["config"], "env_file": "where to write (default: .env)"})
def secrets_init(c, config=DEFAULT_CONFIG, env_file=".env"):
    """Generate local values for every secret the config references but the environment lacks."""
    _run(secret_cmds.init_secrets, config, env_file)


@task
def keys_generate(c):
    """Print a new master key for MAILCORE_MASTER_KEY (encrypts AccessKey secrets at rest)."""
    from mailcore.store.crypto import generate_master_key
    print(generate_master_key())


@task(help={"k": "only tests matching this pytest -k expression", "x": "stop at the first failure"})
def test(c, k=None, x=False):
    """Run the whole test suite (SQLite and PostgreSQL stores)."""
    os.environ["MAILCORE_REQUIRE_PG"] = "1"  # the suite runs every store test on PostgreSQL too
    os.environ["MAILCORE_REQUIRE_KNOT"] = "1"  # and the DNS tests on Knot as well as the built-in server
    os.environ["MAILCORE_REQUIRE_BIND"] = "1"  # and on BIND 9
    args = [sys.executable, "-m", "pytest", "-q"]
    if k:
        args += ["-k", k]
    if x:
        args.append("-x")
    raise Exit(code=subprocess.call(args))


@task
def bench(c):
    """Run the benchmarks and print each next to its target."""
    raise Exit(code=subprocess.call([sys.executable, "-m", "tests.bench"]))


NEEDED = (("initdb", "postgresql"), ("knotd", "knot"), ("kdig", "knot-dnsutils"), ("named", "bind9"),
          ("named-checkconf", "bind9-utils"))


@task
def setup(c):
    """Install what pip cannot: PostgreSQL, Knot and BIND 9 (Debian packages), and the Pulumi CLI (cached build)."""
    missing = [pkg for exe, pkg in NEEDED if not _find_pg(exe) and not shutil.which(exe) and not os.path.exists(f"/usr/sbin/{exe}")]
    if missing:
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            raise Exit(f"error: install the Debian packages {' '.join(missing)} (needs root: "
                       f"sudo apt-get install -y --no-install-recommends {' '.join(missing)})", 2)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.check_call(["apt-get", "update", "-q"], env=env)
        subprocess.check_call(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], env=env)
    print("setup: PostgreSQL, Knot and BIND present")
    from provision.pulumi_cli import PulumiCliError, ensure_pulumi
    try:
        print(f"setup: Pulumi CLI in {ensure_pulumi()}")
    except PulumiCliError as exc:
        raise Exit(f"error: {exc}", 2)


def _find_pg(exe: str) -> str | None:
    if shutil.which(exe):
        return shutil.which(exe)
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{exe}"))
    return str(found[-1]) if found else None


def _queue_task(action):
    @task(name=action, help={"ids": "comma-separated recipient ids, or ALL (default)", "store": CONFIG_HELP["store"]})
    def queue_task(c, ids="ALL", store=None):
        _run(queue_cmds.queue_move, action, store, ids)

    queue_task.__doc__ = {"hold": "Hold queued recipients (incoming or deferred) until released.",
                          "release": "Release held recipients; they are retried at once.",
                          "flush": "Retry every deferred recipient now."}[action]
    return queue_task


@task(name="list", help={"state": "only this state (incoming, active, deferred, hold, sent, bounced, expired)",
                         "env_id": "only this message (the EnvId a send returned)",
                         "rcpt": "only recipients containing this (any case)",
                         "since": "only recipients queued from then on: YYYY-MM-DD or an ISO time (UTC unless an offset)",
                         "limit": "rows to show (default 100)", "store": CONFIG_HELP["store"]})
def queue_list(c, state=None, env_id=None, rcpt=None, since=None, limit=None, store=None):
    """List queued recipients, newest first, with their state, attempts and last reply."""
    # limit=None, not 100: invoke would parse an int itself and answer a typo with a traceback
    _run(queue_cmds.queue_list, store, state, limit or 100, env_id, rcpt, since)


@task(name="batch", help={"list": "recipient list name", "template": "approved template name", "sender": "a batch sender address",
                          "tag": "tag name", "address_type": "random or sender (R29)", "tracking": "open/click tracking",
                          **CONFIG_HELP})
def send_batch(c, list, template, sender, tag=None, address_type="sender", tracking=False, config=DEFAULT_CONFIG, store=None):
    """Queue a batch send job: recipient list x approved template (R29), with a progress bar."""
    _run(send_cmds.send_batch, config, store, list, template, sender, tag, address_type, tracking)


@task(name="jobs", help={"limit": "jobs to show (default 50)", **CONFIG_HELP})
def send_jobs(c, limit=50, config=DEFAULT_CONFIG, store=None):
    """List batch send jobs with status, request count and creation time."""
    _run(send_cmds.send_jobs, config, store, int(limit))


@task(name="details", help={"start": "from: YYYY-MM-DD or an ISO time, UTC unless an offset (default: 30 days before --end)",
                            "end": "to: a date (inclusive) or an ISO time (default: now); at most 30 days after --start",
                            "sender": "only this sender address", "rcpt": "only this recipient address",
                            "tag": "only this tag", "result": "success, invalid-address, spam or failed",
                            "limit": "rows to show (default 100)", "after": "the next page: the id the last page named",
                            **CONFIG_HELP})
def send_details(c, start=None, end=None, sender=None, rcpt=None, tag=None, result=None, limit=None, after=None,
                 config=DEFAULT_CONFIG, store=None):
    """Send details (R36): each recipient's result, filtered by time (at most 30 days), sender, recipient, tag, result."""
    _run(send_cmds.send_details, config, store, start, end, sender, rcpt, tag, result, limit or 100, after)


_INVALID_HELP = {"start": "first day, YYYY-MM-DD (default: 30 days ago)", "end": "last day, YYYY-MM-DD (default: today)",
                 "keyword": "only addresses containing this", **CONFIG_HELP}


@task(name="list", help=_INVALID_HELP)
def invalid_list(c, start=None, end=None, keyword=None, config=DEFAULT_CONFIG, store=None):
    """List the invalid-address base (R37): date range of at most 30 days, keyword filter."""
    _run(invalid_cmds.invalid_list, config, store, start, end, keyword)


@task(name="export", help={**_INVALID_HELP, "output": "CSV file to write (default: invalid-addresses.csv)"})
def invalid_export(c, start=None, end=None, keyword=None, output="invalid-addresses.csv", config=DEFAULT_CONFIG, store=None):
    """Export the invalid-address base as CSV, with the same filters as invalid.list."""
    _run(invalid_cmds.invalid_list, config, store, start, end, keyword, output)


@task(name="verify", help={"address": "the sender address whose reply_to to verify", **CONFIG_HELP})
def reply_to_verify(c, address, config=DEFAULT_CONFIG, store=None):
    """Mail a sender's reply-to a link that confirms it (R13); valid 10 minutes, once per 10 minutes."""
    _run(send_cmds.reply_to_verify, config, store, address)


reply_to_ns = Collection("reply-to")
reply_to_ns.add_task(reply_to_verify)

invalid_ns = Collection("invalid")
invalid_ns.add_task(invalid_list)
invalid_ns.add_task(invalid_export)

queue_ns = Collection("queue")
queue_ns.add_task(queue_list)
for _action in ("hold", "release", "flush"):
    queue_ns.add_task(_queue_task(_action))
send_ns = Collection("send")
send_ns.add_task(send_batch)
send_ns.add_task(send_jobs)
send_ns.add_task(send_details)

@task(help={"port": "SMTP port (0 = any)", "http_port": "JSON endpoint port (0 = any)", "scenario": "YAML scenario file",
            "no_tls": "do not offer STARTTLS", "list_rows": "list the bounce-<row-id> scenarios and exit"})
def harness(c, port=2525, http_port=0, scenario=None, no_tls=False, list_rows=False):
    """Run the fake MX that replays the guide's bounce codes (address scheme: README, Fake MX)."""
    args = [sys.executable, "-m", "mailcore.harness", "--port", str(port), "--http-port", str(http_port)]
    args += ["--scenario", scenario] if scenario else []
    args += ["--no-tls"] if no_tls else []
    args += ["--list"] if list_rows else []
    raise Exit(code=subprocess.call(args))


@task(name="serve", iterable=["zone"], help={"zones": "zone directory (default: $MAILCORE_STATE_DIR/zones)",
      "port": "UDP+TCP port on 127.0.0.1", "zone": "create this zone if missing (repeatable)", "key_name": "TSIG key name"})
def dns_serve(c, zones=None, port=15353, zone=None, key_name="mailcore-key."):
    """Run the built-in authoritative DNS server in the foreground (TSIG secret: MAILCORE_TSIG_SECRET)."""
    secret = os.environ.get("MAILCORE_TSIG_SECRET")
    if not secret:
        raise Exit("error: MAILCORE_TSIG_SECRET is not set; run `invoke secrets.init` or export it", 2)
    zones = zones or os.path.join(os.environ.get("MAILCORE_STATE_DIR", "state"), "zones")
    os.makedirs(zones, mode=0o700, exist_ok=True)
    args = [sys.executable, "-m", "provision.dnsserver", "--zones", zones, "--port", str(port)]
    for z in zone or ["example.com", "example.net"]:
        args += ["--create-zone", z]
    # the secret goes through the environment, never the command line (ps and /proc show argv to every user)
    env = {**os.environ, "MAILCORE_DNS_KEYS": f"{key_name}:hmac-sha256:{secret}"}
    raise Exit(code=subprocess.call(args, env=env))


@task(name="pulumi")
def setup_pulumi(c):
    """Obtain the Pulumi CLI (PATH, installer, or a build from the Go module proxy; cached)."""
    from provision.pulumi_cli import ensure_pulumi
    print(ensure_pulumi())


@task(name="list", help={"state": "pending, delivered or failed", "limit": "rows (default 50)", "store": CONFIG_HELP["store"]})
def notify_list(c, state=None, limit=50, store=None):
    """List notification deliveries, newest first, with attempts and the last error."""
    _run(notify_cmds.notify_list, store, state, int(limit))


@task(name="retry", help={"ids": "comma-separated delivery ids, or ALL (default)", "store": CONFIG_HELP["store"]})
def notify_retry(c, ids="ALL", store=None):
    """Make failed notification deliveries pending again (after fixing an endpoint)."""
    _run(notify_cmds.notify_retry, store, ids)


notify_ns = Collection("notify")
notify_ns.add_task(notify_list)
notify_ns.add_task(notify_retry)


@task(name="unlock", help={"force": "also remove locks of a run that looks alive or ran on another host"})
def dns_unlock(c, force=False):
    """Clear what an interrupted apply left in the DNS stack: stale Pulumi locks, pending operations."""
    _run(account_cmds.dns_unlock, force)


dev_ns = Collection("dev")
dev_ns.add_task(dev_demo)

dns_ns = Collection("dns")
dns_ns.add_task(dns_serve)
dns_ns.add_task(setup_pulumi)
dns_ns.add_task(dns_unlock)

template = Collection("template")
for _action in ("submit", "approve", "reject"):
    template.add_task(_review(_action))
secrets = Collection("secrets")
secrets.add_task(secrets_init, name="init")
keys = Collection("keys")
keys.add_task(keys_generate, name="generate")

ns = Collection(validate, plan, apply, verify, serve, state, migrate, test, bench, setup, harness, template, secrets, keys, queue_ns, send_ns, invalid_ns, dns_ns, notify_ns, reply_to_ns, dev_ns)
