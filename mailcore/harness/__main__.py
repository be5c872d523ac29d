"""``python -m mailcore.harness``: run a fake MX in the foreground until Ctrl-C / SIGTERM.

Prints where it listens and where the JSON endpoint is; ``--list`` prints the scheme's
``bounce-<row-id>`` scenarios (one per recipient-side row of mailcore.delivery.bounce) and exits.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading

from mailcore.delivery import bounce

from .scenario import Scenario, ScenarioError
from .server import FakeMX


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mailcore.harness", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=2525, help="SMTP port (0 = any free port)")
    p.add_argument("--http-port", type=int, default=0, help="JSON endpoint port (0 = any free port)")
    p.add_argument("--scenario", help="YAML scenario file (see the mailcore.harness docstring)")
    p.add_argument("--no-tls", action="store_true", help="do not offer STARTTLS")
    p.add_argument("--list", action="store_true", help="list the bounce-<row-id> local parts and exit")
    args = p.parse_args(argv)
    if args.list:
        for row in bounce.RECIPIENT_ROWS:
            print(f"bounce-{row.id}\t{row.template}")
        return 0
    try:
        scenario = Scenario.from_yaml(args.scenario) if args.scenario else Scenario()
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.no_tls:
        scenario.tls = False
    mx = FakeMX(scenario, host=args.host, port=args.port, http=True, http_port=args.http_port)
    try:
        mx.start()
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"fake MX listening on {mx.host}:{mx.port} (STARTTLS {'on' if mx.tls else 'off'}); "
          f"messages at {mx.http_url}/messages", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        mx.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
