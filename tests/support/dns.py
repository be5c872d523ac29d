"""DNS server fixtures: the built-in server and a real Knot DNS, both on loopback random ports.

Each yields a :class:`DnsFixture` holding a :class:`provision.rfc2136.DnsServer` (with the TSIG
key) for zones ``example.com`` and ``example.net``.  ``dns_server`` is parametrized over both so a
test proves the client/provider on the built-in server and on Knot.  Without ``knotd`` the Knot
cases skip, unless ``MAILCORE_REQUIRE_KNOT`` is set (CI), where they fail.
"""
from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from provision import rfc2136
from provision.dnsrunner import DnsServerProcess
from provision.rfc2136 import DnsServer, TsigKey
from provision.zonefiles import create_zone_file

__all__ = ["DnsFixture", "builtin_dns", "knot_dns", "dns_server", "tsig_key", "free_port"]

ZONES = ("example.com", "example.net")
KEY_NAME = "mailcore-test-key."


@dataclass
class DnsFixture:
    kind: str  # "builtin" or "knot"
    server: DnsServer
    zone_dir: Path
    zones: tuple[str, ...] = ZONES

    @property
    def key(self) -> TsigKey:
        assert self.server.tsig
        return self.server.tsig

    @property
    def address(self) -> str:
        return f"{self.server.host}:{self.server.port}"


def free_port() -> int:
    """A port free for both UDP and TCP right now (Knot binds by itself)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


@pytest.fixture
def tsig_key() -> TsigKey:
    return TsigKey(KEY_NAME, "hmac-sha256", base64.b64encode(os.urandom(32)).decode())


@pytest.fixture
def builtin_dns(tmp_path, tsig_key):
    zone_dir = tmp_path / "builtin-zones"
    for z in ZONES:
        create_zone_file(zone_dir, z)
    srv = DnsServerProcess(zone_dir, keys=[tsig_key]).start()
    try:
        yield DnsFixture("builtin", DnsServer("127.0.0.1", srv.port, tsig_key, timeout=2.0), zone_dir)
    finally:
        srv.stop()


def _knotd() -> str | None:
    return shutil.which("knotd") or next((p for p in ("/usr/sbin/knotd",) if os.path.exists(p)), None)


@pytest.fixture
def knot_dns(tmp_path, tsig_key):
    knotd = _knotd()
    if not knotd:
        msg = "knotd not installed (apt-get install -y --no-install-recommends knot knot-dnsutils)"
        if os.environ.get("MAILCORE_REQUIRE_KNOT"):
            pytest.fail(msg + " and MAILCORE_REQUIRE_KNOT is set")
        pytest.skip(msg)
    d = tmp_path / "knot"
    d.mkdir()
    for z in ZONES:
        create_zone_file(d, z)
    port = free_port()
    zones = "".join(
        f'  - domain: {z}.\n    storage: "{d}"\n    file: "{z}.zone"\n    acl: ddns\n' for z in ZONES)
    (d / "knot.conf").write_text(
        f'server:\n  rundir: "{d}"\n  listen: 127.0.0.1@{port}\n'
        "log:\n  - target: stderr\n    any: info\n"
        f'database:\n  storage: "{d}"\n'
        f"key:\n  - id: {tsig_key.name}\n    algorithm: {tsig_key.algorithm}\n    secret: {tsig_key.secret_b64}\n"
        f"acl:\n  - id: ddns\n    address: 127.0.0.0/8\n    key: {tsig_key.name}\n    action: [update, transfer]\n"
        f"zone:\n{zones}"
    )
    log = open(d / "knotd.log", "w")
    proc = subprocess.Popen([knotd, "-c", str(d / "knot.conf")], stdout=log, stderr=subprocess.STDOUT)
    server = DnsServer("127.0.0.1", port, tsig_key, timeout=2.0)
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                pytest.fail(f"knotd exited {proc.returncode}: {(d / 'knotd.log').read_text()[-2000:]}")
            try:
                if all(rfc2136.query(DnsServer("127.0.0.1", port, None, 0.2), z, "SOA") for z in ZONES):
                    break
            except rfc2136.DnsUpdateError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"knotd did not answer on port {port}: {(d / 'knotd.log').read_text()[-2000:]}")
            time.sleep(0.02)
        yield DnsFixture("knot", server, d)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(params=["builtin", "knot"])
def dns_server(request) -> DnsFixture:
    return request.getfixturevalue(f"{request.param}_dns")
