"""Issue 11 as an operator meets it, with `invoke` against the built-in server, Knot and BIND:
plan refuses (exit 2, `refusals` in --json) what apply would refuse, and apply publishes nothing
then; a new domain's keys are saved before publishing, so a rerun adopts its own records; a
hand-changed MX of a managed domain is drift (old and new values shown) that apply repairs; a
no-change apply writes nothing, the Pulumi checkpoint included, and leaves no provider process;
verify against a server that refuses the TSIG key keeps every status."""
from __future__ import annotations

import json
import os

import sqlalchemy as sa

from mailcore.store import open_store
from mailcore.store import tables as t
from provision import rfc2136
from tests.cli.test_dns import _config, _statuses
from tests.support.cli import run


def _keys(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'state' / 'mailcore.db'}")
    with store.engine.connect() as conn:
        out = dict(conn.execute(sa.select(t.domain_keys.c.domain, t.domain_keys.c.ownership_token)).all())
        events = conn.execute(sa.select(sa.func.count()).select_from(t.events)).scalar()
    store.dispose()
    return out, events


def _snapshot(root):
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in root.rglob("*") if p.is_file()}


def _providers(tmp_path):
    want = f"PULUMI_BACKEND_URL={(tmp_path / 'state' / 'pulumi' / 'backend').absolute().as_uri()}".encode()
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if b"pulumi.dynamic" in open(f"/proc/{pid}/cmdline", "rb").read() and \
                    want in open(f"/proc/{pid}/environ", "rb").read().split(b"\0"):
                found.append(pid)
        except OSError:
            pass
    return found


def test_refuse_adopt_repair_and_write_nothing(tmp_path, dns_server, key):
    s = dns_server.server
    backend = {"kind": "rfc2136", "server": dns_server.address,
               "tsig": {"name": s.tsig.name, "algorithm": "hmac-sha256", "secret": {"env": "MAILCORE_TSIG_SECRET"}}}
    cfg = _config(tmp_path, backend)
    env = {**key, "MAILCORE_TSIG_SECRET": s.tsig.secret_b64}
    theirs = rfc2136.RecordSet("aliyundm.notice.example.net", "TXT", 300, ('"not yours"',))
    rfc2136.create(s, "example.net", theirs)

    # plan says what apply would refuse: exit 2, under refusals in --json
    r = run(["plan", "--config", cfg, "--json"], env, tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert any("aliyundm.notice.example.net" in x and "unmanaged" in x for x in out["refusals"])
    assert out["dns"]["refusals"] == [x for x in out["refusals"] if "aliyundm" in x]

    # apply refuses before publishing anything, but the new domains' keys are already saved
    r = run(["apply", "--config", cfg], env, tmp_path)
    assert r.returncode == 2 and "refused: create aliyundm.notice.example.net. TXT" in r.stderr, r.stdout + r.stderr
    assert rfc2136.query(s, "aliyundm.mail.example.com", "TXT") is None
    keys, _ = _keys(tmp_path)
    assert set(keys) == {"mail.example.com", "notice.example.net"}

    # an earlier run got as far as publishing one record, then died: the rerun adopts it
    rfc2136.delete(s, "example.net", theirs)
    rfc2136.create(s, "example.com", rfc2136.RecordSet("aliyundm.mail.example.com", "TXT", 600,
                                                       (f'"{keys["mail.example.com"]}"',)))
    r = run(["apply", "--config", cfg], env, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert _keys(tmp_path)[0] == keys  # the same token and key as before, nothing regenerated
    assert rfc2136.query(s, "aliyundm.notice.example.net", "TXT").values == (f'"{keys["notice.example.net"]}"',)
    assert run(["verify", "--config", cfg], env, tmp_path).returncode == 0

    # a hand-changed MX of a managed domain: drift with old and new values, not the R5 refusal
    mx = rfc2136.query(s, "mail.example.com", "MX")
    rfc2136.replace(s, "example.com", mx, rfc2136.RecordSet("mail.example.com", "MX", 600, ("10 elsewhere.example.",)))
    r = run(["plan", "--config", cfg, "--json"], env, tmp_path)
    assert r.returncode == 3, r.stdout + r.stderr
    step = next(st for st in json.loads(r.stdout)["dns"]["steps"] if st["name"] == "mail.example.com/mx")
    assert (step["op"], step["old"], step["new"]) == ("update", ["10 elsewhere.example."], list(mx.values))
    r = run(["plan", "--config", cfg], env, tmp_path)
    assert r.returncode == 3 and "10 elsewhere.example. -> " + mx.values[0] in r.stdout, r.stdout
    r = run(["apply", "--config", cfg], env, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert rfc2136.query(s, "mail.example.com", "MX").values == mx.values

    # a no-change apply writes nothing: not the store, not the Pulumi checkpoint
    before = _snapshot(tmp_path / "state")
    r = run(["apply", "--config", cfg], env, tmp_path)
    assert r.returncode == 0 and "Nothing to apply; nothing was written." in r.stdout, r.stdout + r.stderr
    assert _snapshot(tmp_path / "state") == before
    assert _providers(tmp_path) == []  # and no provider plugin outlives an apply

    # verify with a key the server refuses: an error, and every status stays as it was
    r = run(["verify", "--config", cfg], {**env, "MAILCORE_TSIG_SECRET": "d3JvbmctdHNpZy1zZWNyZXQtd3Jvbmctc2VjcmV0IQ=="},
            tmp_path)
    assert r.returncode == 2 and "cannot verify mail.example.com" in r.stdout, r.stdout + r.stderr
    assert _statuses(tmp_path) == {"mail.example.com": "verified", "notice.example.net": "verified"}
    assert _keys(tmp_path)[1] == 0  # and no drift event


def test_verify_with_the_server_down_keeps_the_status(tmp_path, builtin_dns, key):
    s = builtin_dns.server
    backend = {"kind": "rfc2136", "server": builtin_dns.address,
               "tsig": {"name": s.tsig.name, "algorithm": "hmac-sha256", "secret": {"env": "MAILCORE_TSIG_SECRET"}}}
    cfg = _config(tmp_path, backend)
    env = {**key, "MAILCORE_TSIG_SECRET": s.tsig.secret_b64}
    assert run(["apply", "--config", cfg], env, tmp_path).returncode == 0
    assert run(["verify", "--config", cfg], env, tmp_path).returncode == 0
    from tests.support.dns import free_port
    down = _config(tmp_path / "down", {**backend, "server": f"127.0.0.1:{free_port()}"})
    r = run(["verify", "--config", down], env, tmp_path)
    assert r.returncode == 2 and "cannot verify notice.example.net" in r.stdout and "its status stays verified" in r.stdout
    assert _statuses(tmp_path) == {"mail.example.com": "verified", "notice.example.net": "verified"}


def test_dns_unlock(tmp_path, key):
    import subprocess
    import sys
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    locks = tmp_path / "state" / "pulumi" / "backend" / ".pulumi" / "locks" / "organization" / "mailcore-dns" / "dns"
    locks.mkdir(parents=True)
    import socket
    (locks / "a.json").write_text(json.dumps({"pid": dead.pid, "username": "me", "hostname": socket.gethostname(),
                                              "timestamp": "2026-01-01T00:00:00Z"}))
    (locks / "b.json").write_text(json.dumps({"pid": 1, "username": "ci", "hostname": "elsewhere", "timestamp": "t"}))
    r = run(["dns.unlock"], key, tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"removed the Pulumi lock of me@{socket.gethostname()} (pid {dead.pid})" in r.stdout
    assert "still locked by ci@elsewhere (pid 1)" in r.stdout and "--force" in r.stdout
    assert [p.name for p in locks.iterdir()] == ["b.json"]
    r = run(["dns.unlock", "--force"], key, tmp_path)
    assert r.returncode == 0 and not list(locks.iterdir()), r.stdout + r.stderr
    r = run(["dns.unlock"], key, tmp_path)
    assert r.returncode == 0 and "nothing to do" in r.stdout
