"""`python -m mailcore COMMAND`: the same commands as the invoke tasks, for places without invoke
(containers, systemd units, CI images). Exit codes: 0 ok/no changes, 3 changes (plan), 2 error."""
from __future__ import annotations

import argparse
import os
import sys

from mailcore.cli import account, common, serve, state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mailcore", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, helptext in (("validate", "check the config"), ("plan", "show what apply would change"),
                           ("apply", "apply the config to the store")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--config", default="config")
        if name != "validate":
            p.add_argument("--store", default=None)
        if name == "plan":
            p.add_argument("--json", action="store_true")
        if name != "validate":
            p.add_argument("--no-dns", dest="dns", action="store_false", help="the store only")
    p = sub.add_parser("verify", help="check every domain's DNS records and store the result")
    p.add_argument("--config", default="config")
    p.add_argument("--store", default=None)
    p = sub.add_parser("serve", help="run the mail core (all stages, or --stages smtpd,api,qmgr,notify)")
    p.add_argument("--config", default="config")
    p.add_argument("--store", default=None)
    p.add_argument("--stages", default=None)
    p = sub.add_parser("state", help="show what the store holds")
    p.add_argument("--store", default=None)
    p.add_argument("--account", default=None)
    args = parser.parse_args(argv)
    common.load_env_file(os.environ.get("MAILCORE_ENV_FILE", ".env"))
    try:
        if args.command == "validate":
            return account.validate(args.config)
        if args.command == "plan":
            return account.plan(args.config, args.store, args.json, args.dns)
        if args.command == "apply":
            return account.apply(args.config, args.store, args.dns)
        if args.command == "verify":
            return account.verify(args.config, args.store)
        if args.command == "serve":
            return serve.serve(args.config, args.store, args.stages)
        return state.show_state(args.store, args.account)
    except common.CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code


if __name__ == "__main__":
    raise SystemExit(main())
