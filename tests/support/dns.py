"""DNS server fixtures: the built-in server, a real Knot DNS and a real BIND 9, all on loopback
random ports.

Each yields a :class:`DnsFixture` holding a :class:`provision.rfc2136.DnsServer` (with the TSIG
key) for zones ``example.com`` and ``example.net``.  ``dns_server`` is parametrized over the three
so a test proves the client/provider on each.  Without ``knotd`` (``named``) the Knot (BIND) cases
skip, unless ``MAILCORE_REQUIRE_KNOT`` (``MAILCORE_REQUIRE_BIND``) is set (CI), where they fail.
``DnsProxy`` forwards UDP to a server and can be paused (a server that stops answering).
"""
from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from provision import rfc2136
from provision.dnsrunner import DnsServerProcess
from provision.rfc2136 import DnsServer, TsigKey
from provision.zonefiles import create_zone_file

__all__ = ["DnsFixture", "DnsProxy", "builtin_dns", "knot_dns", "bind_dns", "dns_server", "tsig_key", "free_port",
           "pulumi_bin"]

ZONES = ("example.com", "example.net")
KEY_NAME = "mailcore-test-key."


@dataclass
class DnsFixture:
    kind: str  # "builtin", "knot" or "bind"
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


def _wait_ready(proc, port: int, log: Path, what: str) -> None:
    deadline = time.monotonic() + 10
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if all(rfc2136.query(DnsServer("127.0.0.1", port, None, 0.2), z, "SOA") for z in ZONES):
                return
        except rfc2136.DnsUpdateError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not answer on port {port}: {log.read_text()[-2000:]}")
        time.sleep(0.02)


def _stop(proc) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _named() -> str | None:
    return shutil.which("named") or next((p for p in ("/usr/sbin/named",) if os.path.exists(p)), None)


@pytest.fixture
def bind_dns(tmp_path, tsig_key):
    named = _named()
    if not named:
        msg = "named not installed (apt-get install -y --no-install-recommends bind9 bind9-utils)"
        if os.environ.get("MAILCORE_REQUIRE_BIND"):
            pytest.fail(msg + " and MAILCORE_REQUIRE_BIND is set")
        pytest.skip(msg)
    d = tmp_path / "bind"
    d.mkdir()
    for z in ZONES:
        create_zone_file(d, z)
    port = free_port()
    key = tsig_key.name.rstrip(".") + "."
    zones = "".join(f'zone "{z}" {{ type primary; file "{d}/{z}.zone"; '
                    f"update-policy {{ grant {key} zonesub ANY; }}; allow-transfer {{ key {key}; }}; }};\n"
                    for z in ZONES)
    (d / "named.conf").write_text(
        f'options {{ directory "{d}"; pid-file "{d}/named.pid"; session-keyfile "{d}/session.key";\n'
        f'  managed-keys-directory "{d}"; listen-on port {port} {{ 127.0.0.1; }}; listen-on-v6 {{ none; }};\n'
        "  recursion no; notify no; dnssec-validation no; };\n"
        "controls { };\n"
        f'key "{key}" {{ algorithm {tsig_key.algorithm}; secret "{tsig_key.secret_b64}"; }};\n' + zones)
    log = open(d / "named.log", "w")
    proc = subprocess.Popen([named, "-g", "-4", "-c", str(d / "named.conf")], stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_ready(proc, port, d / "named.log", "named")
        yield DnsFixture("bind", DnsServer("127.0.0.1", port, tsig_key, timeout=2.0), d)
    finally:
        _stop(proc)
        log.close()


class DnsProxy:
    """A UDP forwarder in front of a DNS server; ``paused`` drops every query (a server that hangs)."""

    def __init__(self, upstream: DnsServer) -> None:
        self.upstream = upstream
        self.paused = threading.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, client = self.sock.recvfrom(65535)
            except (socket.timeout, OSError):
                continue
            if self.paused.is_set():
                continue
            threading.Thread(target=self._forward, args=(data, client), daemon=True).start()

    def _forward(self, data: bytes, client) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as up:
            up.settimeout(3)
            try:
                up.sendto(data, (self.upstream.host, self.upstream.port))
                reply = up.recv(65535)
            except OSError:
                return
        if not self.paused.is_set():
            try:
                self.sock.sendto(reply, client)
            except OSError:  # closed meanwhile
                pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture(scope="session")
def pulumi_bin():
    """The Pulumi CLI's bin directory (obtained once; see provision.pulumi_cli)."""
    from provision.pulumi_cli import PulumiCliError, ensure_pulumi

    try:
        return ensure_pulumi(progress=lambda _m: None)
    except PulumiCliError as e:  # pragma: no cover - depends on the machine
        pytest.skip(str(e))


@pytest.fixture(params=["builtin", "knot", "bind"])
def dns_server(request) -> DnsFixture:
    return request.getfixturevalue(f"{request.param}_dns")
