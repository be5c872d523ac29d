"""The built-in DNS server as the embedded default: `embedded: true` on an rfc2136 backend whose
server is on loopback makes mailcore start it (zones under the state directory) when nothing
answers there, and leave it running in the background for later `verify` runs."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import dns.message
import dns.query

from mailcore.spec.model import AccountSpec
from mailcore.store.db import private_dir, private_file

from .zonefiles import create_zone_file, zone_path
from .records import zone_of
from .rfc2136 import DnsServer
from .tsigkeys import KEYS_ENV


class EmbeddedDnsError(Exception):
    pass


def answering(server: DnsServer, zone: str) -> bool:
    try:
        q = dns.message.make_query(zone + ".", "SOA")
        dns.query.udp(q, server.host, port=server.port, timeout=0.5)
        return True
    except (OSError, dns.exception.Timeout):
        return False


def ensure_running(spec: AccountSpec, servers: dict[str, DnsServer], state_dir: Path, progress=print) -> list[str]:
    """Start the built-in server for every embedded backend that is not answering. Returns what it started."""
    started = []
    for name, backend in spec.dns_backends.items():
        if backend.kind != "rfc2136" or not backend.settings.get("embedded"):
            continue
        server = servers[name]
        zones = sorted({zone_of(d) for d in spec.domains if d.dns == name})
        zone_dir = state_dir / "zones"
        private_dir(state_dir, tighten=True)
        private_dir(zone_dir)
        for z in zones:
            if not zone_path(zone_dir, z).exists():
                create_zone_file(zone_dir, z)
        if zones and answering(server, zones[0]):
            continue
        key = server.tsig
        args = [sys.executable, "-m", "provision.dnsserver", "--zones", str(zone_dir), "--host", server.host,
                "--port", str(server.port)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop(KEYS_ENV, None)
        if key:  # through the environment (readable by this user only), never on the command line
            env[KEYS_ENV] = f"{key.name}:{key.algorithm}:{key.secret_b64}"
        log = open(private_file(state_dir / f"dns-{name}.log"), "ab")
        proc = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True, env=env)
        private_file(state_dir / f"dns-{name}.pid").write_text(str(proc.pid))
        deadline = time.monotonic() + 10
        while not answering(server, zones[0] if zones else "."):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise EmbeddedDnsError(f"the built-in DNS server for backend '{name}' did not start on "
                                       f"{server.describe()}; see {state_dir / f'dns-{name}.log'}")
            time.sleep(0.05)
        progress(f"dns: started the built-in DNS server on {server.describe()} (pid {proc.pid}, zones in {zone_dir})")
        started.append(name)
    return started
