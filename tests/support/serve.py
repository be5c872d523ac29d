"""`python -m mailcore serve` as a real process over a real store, with the recipient world
(built-in DNS server + fake MX) on loopback."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mailcore.store import open_store
from tests.support.helpers import edit_yaml
from tests.support.store import ROOT, make_ready

LISTEN = re.compile(r"mailcore: listening (\w+) (\S+) (\S+):(\d+)")


@dataclass
class Served:
    proc: subprocess.Popen
    ports: dict = field(default_factory=dict)  # (kind, region) -> port
    lines: list = field(default_factory=list)

    def port(self, kind: str, region: str = "cn-hangzhou") -> int:
        return self.ports[(kind, region)]


class Mailcore:
    """Start, kill and restart the service process."""

    def __init__(self, config: Path, store_url: str, env: dict):
        self.config, self.store_url, self.env = config, store_url, env
        self.current: Served | None = None

    def start(self, stages: str | None = None, dev: bool = False) -> Served:
        args = [sys.executable, "-m", "mailcore", "serve", "--config", str(self.config), "--store", self.store_url]
        if stages:
            args += ["--stages", stages]
        if dev:
            args.append("--dev")
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env, cwd=ROOT)
        served = Served(proc)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError("mailcore serve exited:\n" + "".join(served.lines))
            served.lines.append(line)
            m = LISTEN.search(line)
            if m:
                served.ports[(m.group(1), m.group(2))] = int(m.group(4))
            if "mailcore: ready" in line:
                self.current = served
                # keep reading: a full pipe would block the service on its next log line
                threading.Thread(target=lambda: served.lines.extend(proc.stdout), daemon=True).start()
                return served
        raise RuntimeError("mailcore serve did not become ready:\n" + "".join(served.lines))

    def kill9(self) -> None:
        self.current.proc.send_signal(signal.SIGKILL)
        self.current.proc.wait(10)

    def stop(self) -> str:
        if self.current and self.current.proc.poll() is None:
            self.current.proc.send_signal(signal.SIGTERM)
            try:
                self.current.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.current.proc.kill()
                self.current.proc.wait()
        return "".join(self.current.lines) if self.current else ""


@pytest.fixture
def mailcore_service(tmp_path, example_env, example_config, world):
    """The example account, ready to send (allow-list off: the tests connect from loopback),
    listeners on free ports, delivery pointed at the recipient world."""
    edit_yaml(example_config / "account.yaml", lambda d: d["ip_allowlist"].__setitem__("enabled", False))

    def service(d):
        d["service"]["listeners"] = [
            {"region": "cn-hangzhou", "kind": "smtp", "listen": "127.0.0.1:0", "tls": "starttls"},
            {"region": "cn-hangzhou", "kind": "api", "listen": "127.0.0.1:0"},
            {"region": "ap-southeast-1", "kind": "smtp", "listen": "127.0.0.1:0", "tls": "starttls"}]
        d["service"]["delivery"] = {"smtp_port": world.mx.port, "nameservers": ["127.0.0.1"], "dns_port": world.dns.port}
        d["service"]["queue"] = {"retry_min_seconds": 1, "retry_max_seconds": 2}
    edit_yaml(example_config / "service.yaml", service)
    url = f"sqlite:///{tmp_path / 'mailcore.db'}"
    store = open_store(url)
    make_ready(store, example_config)
    store.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"))}
    env.update(MAILCORE_ENV_FILE="", MAILCORE_STATE_DIR=str(tmp_path / "state"))
    mc = Mailcore(example_config, url, env)
    yield mc
    mc.stop()
