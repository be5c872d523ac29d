"""`mailcore COMMAND` (or `python -m mailcore COMMAND`): every command the invoke tasks offer, for
places without this repository or invoke (containers, systemd units, CI images, other projects).

Options may come from the environment: MAILCORE_CONFIG (--config), MAILCORE_STORE_URL (--store),
MAILCORE_STATE_DIR (where the SQLite store and the Pulumi state live), MAILCORE_MASTER_KEY.
Exit codes: 0 ok / no changes, 3 changes (plan), 2 error."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

from mailcore.cli import common


def _config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=os.environ.get("MAILCORE_CONFIG", "config"),
                   help="the account's config directory (default: $MAILCORE_CONFIG or ./config)")


def _store(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default=None,
                   help="store URL (default: $MAILCORE_STORE_URL or sqlite under $MAILCORE_STATE_DIR, ./state)")


def _dns(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-dns", dest="dns", action="store_false", help="the store only, not the domains' DNS records")


def _with(p: argparse.ArgumentParser, *adders) -> None:
    for add in adders:
        add(p)


def _account_commands(sub) -> None:
    from mailcore.cli import account, state
    p = sub.add_parser("validate", help="check the config against the schema and every semantic rule")
    _config(p)
    p.set_defaults(run=lambda a: account.validate(a.config))
    p = sub.add_parser("plan", help="show what apply would change (exit 0: none, 3: changes, 2: error)")
    _with(p, _config, _store, _dns)
    p.add_argument("--json", action="store_true", help="print the plan as JSON (same as --format json)")
    p.add_argument("--format", dest="fmt", default=None, choices=account.PLAN_FORMATS,
                   help="text (default), json, or markdown (a pull-request comment)")
    p.add_argument("--out", default=None, help="also save the plan to this file, for `apply FILE`")
    p.set_defaults(run=lambda a: account.plan(a.config, a.store, a.json, a.dns, a.out, a.fmt))
    p = sub.add_parser("apply", help="apply DNS through Pulumi, then the store in one transaction")
    _with(p, _config, _store, _dns)
    p.add_argument("plan_file", nargs="?", default=None, metavar="FILE",
                   help="a plan saved by `plan --out FILE`: apply exactly it, refused if the config, the store "
                        "or DNS moved since")
    p.add_argument("--plan", dest="plan_option", default=None, metavar="FILE", help="the same as FILE (as `invoke apply "
                   "--plan FILE` takes it)")
    p.set_defaults(run=lambda a: account.apply(a.config, a.store, a.dns, a.plan_file or a.plan_option))
    p = sub.add_parser("verify", help="check every domain's DNS records and store the result")
    _with(p, _config, _store)
    p.set_defaults(run=lambda a: account.verify(a.config, a.store))
    p = sub.add_parser("state", help="show what the store holds")
    _store(p)
    p.add_argument("--account", default=None, help="show only this account")
    p.set_defaults(run=lambda a: state.show_state(a.store, a.account))
    p = sub.add_parser("migrate", help="bring the store's schema to the newest migration")
    _store(p)
    p.set_defaults(run=lambda a: (common.store_at(a.store), common.EXIT_OK)[1])
    tpl = sub.add_parser("template", help="template review (R20)").add_subparsers(dest="action", required=True)
    for action, text in (("submit", "submit a draft for review"), ("approve", "approve a submitted template"),
                         ("reject", "reject a submitted template (--reason)")):
        p = tpl.add_parser(action, help=text)
        p.add_argument("name")
        p.add_argument("--by", default=None, help="who (default: $MAILCORE_ACTOR or the login)")
        p.add_argument("--reason", default=None)
        _with(p, _config, _store)
        p.set_defaults(run=lambda a: account.template_review(a.action, a.name, a.config, a.store, a.by, a.reason))
    dns = sub.add_parser("dns", help="the DNS stack").add_subparsers(dest="action", required=True)
    p = dns.add_parser("unlock", help="clear what an interrupted apply left: stale locks, pending operations")
    p.add_argument("--force", action="store_true", help="also locks of a run that looks alive or ran on another host")
    p.set_defaults(run=lambda a: account.dns_unlock(a.force))


def _local_commands(sub) -> None:
    from mailcore.cli import secrets, serve
    p = sub.add_parser("serve", help="run the mail core (all stages, or --stages smtpd,api,qmgr,notify)")
    _with(p, _config, _store)
    p.add_argument("--stages", default=None)
    p.add_argument("--dev", action="store_true", help="development mode: loopback clients skip the IP allow-list and "
                   "the activation delay; delivery goes to a local fake MX (recipients @dest.test)")
    p.set_defaults(run=lambda a: serve.serve(a.config, a.store, a.stages, a.dev))
    dev = sub.add_parser("dev", help="development helpers").add_subparsers(dest="action", required=True)
    p = dev.add_parser("demo", help="serve --dev in the background, send one message by SMTP and one by the API, "
                       "show their delivery, stop (after secrets init, apply, verify)")
    _with(p, _config, _store)
    p.add_argument("--timeout", default="60", help="seconds to wait for delivery (default 60)")
    p.set_defaults(run=_demo)
    sec = sub.add_parser("secrets", help="local secrets (development)").add_subparsers(dest="action", required=True)
    p = sec.add_parser("init", help="write local values for the secrets the config references into an env file")
    _config(p)
    p.add_argument("--env-file", default=".env")
    p.set_defaults(run=lambda a: secrets.init_secrets(a.config, a.env_file))
    keys = sub.add_parser("keys", help="the master key").add_subparsers(dest="action", required=True)
    p = keys.add_parser("generate", help="print a new MAILCORE_MASTER_KEY")
    p.set_defaults(run=_generate_key)


def _demo(a) -> int:
    from mailcore.cli import dev
    return dev.demo(a.config, a.store, a.timeout)


def _generate_key(_args) -> int:
    from mailcore.store.crypto import generate_master_key
    print(generate_master_key())
    return common.EXIT_OK


def _operate_commands(sub) -> None:
    from mailcore.cli import invalid, notify, queue, send
    q = sub.add_parser("queue", help="the durable queue").add_subparsers(dest="action", required=True)
    p = q.add_parser("list", help="queued recipients, newest first, with state, attempts and last reply")
    _store(p)
    p.add_argument("--state", default=None, help="only this state (incoming, active, deferred, hold, sent, bounced, "
                                                 "expired)")
    p.add_argument("--env-id", default=None, help="only this message (the EnvId a send returned)")
    p.add_argument("--rcpt", default=None, help="only recipients containing this (any case)")
    p.add_argument("--since", default=None, help="only recipients queued from then on: YYYY-MM-DD or an ISO time "
                                                 "(UTC unless an offset is given)")
    p.add_argument("--limit", default="100", help="rows to show (default 100)")
    p.set_defaults(run=lambda a: queue.queue_list(a.store, a.state, a.limit, a.env_id, a.rcpt, a.since))
    for action in ("hold", "release", "flush"):
        p = q.add_parser(action, help=f"{action} recipients (--ids 1,2 or ALL)")
        _store(p)
        p.add_argument("--ids", default="ALL")
        p.set_defaults(run=lambda a: queue.queue_move(a.action, a.store, a.ids))
    s = sub.add_parser("send", help="batch send jobs (R29), send details (R36)").add_subparsers(dest="action", required=True)
    p = s.add_parser("batch", help="queue a batch job: a recipient list x an approved template")
    for opt in ("--list", "--template", "--sender"):
        p.add_argument(opt, required=True)
    p.add_argument("--tag", default=None)
    p.add_argument("--address-type", default="sender", choices=("random", "sender"))
    p.add_argument("--tracking", action="store_true")
    _with(p, _config, _store)
    p.set_defaults(run=lambda a: send.send_batch(a.config, a.store, a.list, a.template, a.sender, a.tag,
                                                 a.address_type, a.tracking))
    p = s.add_parser("jobs", help="batch jobs with status and request count")
    p.add_argument("--limit", type=int, default=50)
    _with(p, _config, _store)
    p.set_defaults(run=lambda a: send.send_jobs(a.config, a.store, a.limit))
    p = s.add_parser("details", help="send details (R36): each recipient's result, at most 30 days at a time")
    p.add_argument("--start", default=None, help="from: YYYY-MM-DD or an ISO time, UTC unless an offset "
                                                 "(default: 30 days before --end)")
    p.add_argument("--end", default=None, help="to: a date (inclusive) or an ISO time (default: now)")
    p.add_argument("--sender", default=None, help="only this sender address")
    p.add_argument("--rcpt", default=None, help="only this recipient address")
    p.add_argument("--tag", default=None, help="only this tag")
    p.add_argument("--result", default=None, help="success, invalid-address, spam or failed")
    p.add_argument("--limit", default="100", help="rows to show (default 100)")
    p.add_argument("--after", default=None, help="the next page: the id the previous page named")
    _with(p, _config, _store)
    p.set_defaults(run=lambda a: send.send_details(a.config, a.store, a.start, a.end, a.sender, a.rcpt, a.tag,
                                                   a.result, a.limit, a.after))
    r = sub.add_parser("reply-to", help="reply-to verification (R13)").add_subparsers(dest="action", required=True)
    p = r.add_parser("verify", help="mail a sender's reply-to the link that confirms it")
    p.add_argument("--address", required=True)
    _with(p, _config, _store)
    p.set_defaults(run=lambda a: send.reply_to_verify(a.config, a.store, a.address))
    i = sub.add_parser("invalid", help="the invalid-address base (R37)").add_subparsers(dest="action", required=True)
    for action in ("list", "export"):
        p = i.add_parser(action, help="at most 30 days at a time" + ("; as CSV" if action == "export" else ""))
        p.add_argument("--start", default=None)
        p.add_argument("--end", default=None)
        p.add_argument("--keyword", default=None)
        if action == "export":
            p.add_argument("--output", default="invalid-addresses.csv")
        _with(p, _config, _store)
        p.set_defaults(run=lambda a: invalid.invalid_list(a.config, a.store, a.start, a.end, a.keyword,
                                                          *([a.output] if a.action == "export" else [])))
    n = sub.add_parser("notify", help="notification deliveries").add_subparsers(dest="action", required=True)
    p = n.add_parser("list", help="deliveries, newest first, with attempts and the last error")
    _store(p)
    p.add_argument("--state", default=None)
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(run=lambda a: notify.notify_list(a.store, a.state, a.limit))
    p = n.add_parser("retry", help="make failed deliveries pending again (--ids or ALL)")
    _store(p)
    p.add_argument("--ids", default="ALL")
    p.set_defaults(run=lambda a: notify.notify_retry(a.store, a.ids))


def parser() -> argparse.ArgumentParser:
    prog = "mailcore" if os.path.basename(sys.argv[0]) == "mailcore" else "python -m mailcore"
    top = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_account_commands, _local_commands, _operate_commands):
        add(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    common.load_env_file(os.environ.get("MAILCORE_ENV_FILE", ".env"))
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except common.CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code


if __name__ == "__main__":
    raise SystemExit(main())
