"""The built-in DNS server: answers, RFC 2136 prerequisites, TSIG, persistence, the command line."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.update
import dns.zone
import pytest

from provision import rfc2136
from provision.dnsrunner import DnsServerProcess
from provision.rfc2136 import DnsServer, RecordSet
from provision.zonefiles import create_zone_file, load_zone, zone_path
from tests.support.dns import free_port


def ask(dns_fx, name, rtype, tcp=False):
    q = dns.message.make_query(name, rtype)
    fn = dns.query.tcp if tcp else dns.query.udp
    return fn(q, "127.0.0.1", port=dns_fx.server.port, timeout=2)


def update(dns_fx, zone="example.com", sign=True):
    if sign:
        k = dns_fx.key
        return dns.update.UpdateMessage(zone, keyring=k.keyring(), keyname=dns.name.from_text(k.name),
                                        keyalgorithm=k.algorithm)
    return dns.update.UpdateMessage(zone)


def send(dns_fx, upd):
    return dns.query.udp(upd, "127.0.0.1", port=dns_fx.server.port, timeout=2).rcode()


def serial(dns_fx, zone="example.com"):
    return rfc2136.query(dns_fx.server, zone, "SOA").values[0].split()[2]


def test_answers_nxdomain_nodata(builtin_dns):
    rfc2136.create(builtin_dns.server, "example.com", RecordSet("a.b.example.com", "TXT", 60, ('"x"',)))
    r = ask(builtin_dns, "a.b.example.com", "TXT")
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA and r.answer[0].ttl == 60
    r = ask(builtin_dns, "a.b.example.com", "MX")  # NODATA: SOA in authority
    assert r.rcode() == dns.rcode.NOERROR and not r.answer and r.authority[0].rdtype == dns.rdatatype.SOA
    r = ask(builtin_dns, "b.example.com", "A")  # empty non-terminal: NODATA, not NXDOMAIN
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    r = ask(builtin_dns, "nope.example.com", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN and r.authority[0].rdtype == dns.rdatatype.SOA
    assert ask(builtin_dns, "example.org", "A").rcode() == dns.rcode.REFUSED
    r = ask(builtin_dns, "ns1.example.com", "A", tcp=True)
    assert r.answer[0][0].address == "127.0.0.1"
    assert len(ask(builtin_dns, "example.com", "ANY").answer) == 2  # SOA and NS


def test_cname_answer(builtin_dns):
    rfc2136.create(builtin_dns.server, "example.com", RecordSet("t.example.com", "CNAME", 60, ("x.example.org.",)))
    r = ask(builtin_dns, "t.example.com", "A")
    assert r.answer[0].rdtype == dns.rdatatype.CNAME
    upd = update(builtin_dns)
    upd.add("t.example.com.", 60, "TXT", '"ignored"')  # RFC 2136 3.4.2.2: non-CNAME data at a CNAME is ignored
    assert send(builtin_dns, upd) == dns.rcode.NOERROR
    assert rfc2136.query(builtin_dns.server, "t.example.com", "TXT") is None


def test_serial_bumps_and_persists(builtin_dns):
    before = int(serial(builtin_dns))
    rfc2136.create(builtin_dns.server, "example.com", RecordSet("p.example.com", "TXT", 60, ('"kept"',)))
    assert int(serial(builtin_dns)) == before + 1
    z = load_zone(zone_path(builtin_dns.zone_dir, "example.com"))
    assert z.get_rdataset("p.example.com.", "TXT")[0].strings == (b"kept",)
    upd = update(builtin_dns)
    upd.delete("nothing.example.com.", "TXT")  # no change: no serial bump
    assert send(builtin_dns, upd) == dns.rcode.NOERROR
    assert int(serial(builtin_dns)) == before + 1


def test_restart_reloads_zone_files(builtin_dns, tsig_key):
    rfc2136.create(builtin_dns.server, "example.net", RecordSet("r.example.net", "MX", 60, ("5 mx.example.org.",)))
    with DnsServerProcess(builtin_dns.zone_dir, keys=[tsig_key]) as srv2:
        got = rfc2136.query(DnsServer("127.0.0.1", srv2.port), "r.example.net", "MX")
    assert got.values == ("5 mx.example.org.",)


# prerequisite -> rcode when it fails (RFC 2136 3.2); the zone holds a.example.com TXT "x"
PREREQS = [
    ("name in use", lambda u: u.present("zz.example.com."), dns.rcode.NXDOMAIN),
    ("rrset exists", lambda u: u.present("a.example.com.", "MX"), dns.rcode.NXRRSET),
    ("name not in use", lambda u: u.absent("a.example.com."), dns.rcode.YXDOMAIN),
    ("rrset does not exist", lambda u: u.absent("a.example.com.", "TXT"), dns.rcode.YXRRSET),
    ("rrset equals", lambda u: u.present("a.example.com.", "TXT", '"y"'), dns.rcode.NXRRSET),
    ("outside zone", lambda u: u.present("a.example.net."), dns.rcode.NOTZONE),
]


@pytest.mark.parametrize("what,add,rcode", PREREQS, ids=[p[0] for p in PREREQS])
def test_prerequisites(dns_server, what, add, rcode):
    builtin_dns = dns_server  # the same table holds for Knot: the built-in server behaves like it
    rfc2136.create(builtin_dns.server, "example.com", RecordSet("a.example.com", "TXT", 60, ('"x"',)))
    upd = update(builtin_dns)
    add(upd)
    upd.add("changed.example.com.", 60, "TXT", '"no"')
    assert send(builtin_dns, upd) == rcode
    assert rfc2136.query(builtin_dns.server, "changed.example.com", "TXT") is None


def test_prerequisite_with_ttl_is_formerr(dns_server):
    builtin_dns = dns_server
    upd = update(builtin_dns)
    upd.prerequisite.append(dns.rrset.from_text("a.example.com.", 60, "IN", "TXT", '"x"'))
    assert send(builtin_dns, upd) == dns.rcode.FORMERR


def test_deletes_and_apex_protection(dns_server):
    builtin_dns = dns_server
    s = builtin_dns.server
    rfc2136.create(s, "example.com", RecordSet("d.example.com", "TXT", 60, ('"1"', '"2"')))
    upd = update(builtin_dns)
    upd.delete("d.example.com.", "TXT", '"1"')
    upd.delete("example.com.", "NS")  # apex NS and SOA are never deleted
    upd.delete("example.com.", "SOA")
    assert send(builtin_dns, upd) == dns.rcode.NOERROR
    assert rfc2136.query(s, "d.example.com", "TXT").values == ('"2"',)
    assert rfc2136.query(s, "example.com", "NS") is not None
    upd = update(builtin_dns)
    upd.delete("d.example.com.")
    assert send(builtin_dns, upd) == dns.rcode.NOERROR
    assert ask(builtin_dns, "d.example.com", "TXT").rcode() == dns.rcode.NXDOMAIN


def test_unsigned_and_unknown_zone(dns_server):
    builtin_dns = dns_server
    upd = update(builtin_dns, sign=False)
    upd.add("u.example.com.", 60, "TXT", '"x"')
    # Knot says NOTAUTH, BIND and the built-in server REFUSED
    assert send(builtin_dns, upd) == (dns.rcode.NOTAUTH if dns_server.kind == "knot" else dns.rcode.REFUSED)
    upd = update(builtin_dns, zone="example.org")
    upd.add("u.example.org.", 60, "TXT", '"x"')
    try:
        rcode = send(builtin_dns, upd)
    except dns.exception.FormError:  # Knot answers a signed request for a foreign zone unsigned
        rcode = dns.rcode.NOTAUTH
    assert rcode == dns.rcode.NOTAUTH


def test_axfr_needs_key(builtin_dns):
    k = builtin_dns.key
    z = dns.zone.from_xfr(dns.query.xfr("127.0.0.1", "example.com", port=builtin_dns.server.port,
                                        keyring=k.keyring(), keyname=k.name, keyalgorithm=k.algorithm))
    assert z.get_rdataset("@", "SOA") is not None
    q = dns.message.make_query("example.com", "AXFR")
    assert dns.query.tcp(q, "127.0.0.1", port=builtin_dns.server.port, timeout=2).rcode() == dns.rcode.REFUSED


def test_large_answer_truncated_over_udp(builtin_dns):
    values = tuple(f'"{i:03d}-' + "x" * 200 + '"' for i in range(10))
    rfc2136.create(builtin_dns.server, "example.com", RecordSet("big.example.com", "TXT", 60, values))
    q = dns.message.make_query("big.example.com", "TXT", use_edns=False)
    r = dns.query.udp(q, "127.0.0.1", port=builtin_dns.server.port, timeout=2)
    assert r.flags & dns.flags.TC and not r.answer
    assert rfc2136.query(builtin_dns.server, "big.example.com", "TXT").values == values  # TCP fallback


def test_create_zone_file(tmp_path):
    p = create_zone_file(tmp_path, "Example.ORG.")
    z = load_zone(p)
    assert p.name == "example.org.zone"
    assert z.get_rdataset("example.org.", "NS")[0].target.to_text() == "ns1.example.org."
    assert z.get_rdataset("ns1.example.org.", "A")[0].address == "127.0.0.1"
    with pytest.raises(FileExistsError):
        create_zone_file(tmp_path, "example.org")


def test_command_line_foreground(tmp_path, tsig_key):
    port = free_port()
    zones = tmp_path / "zones"
    zones.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "provision.dnsserver", "--zones", str(zones), "--port", str(port), "--create-zone", "example.test"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "MAILCORE_DNS_KEYS": key_text(tsig_key)})
    try:
        assert tsig_key.secret_b64 not in cmdline(proc.pid)
        line = proc.stderr.readline()
        assert f"127.0.0.1:{port}" in line and "example.test." in line
        srv = DnsServer("127.0.0.1", port, tsig_key)
        rfc2136.create(srv, "example.test", RecordSet("x.example.test", "TXT", 60, ('"cli"',)))
        assert rfc2136.query(srv, "x.example.test", "TXT").values == ('"cli"',)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    assert (zones / "example.test.zone").read_text().count("cli") == 1


def test_command_line_errors(tmp_path):
    r = subprocess.run([sys.executable, "-m", "provision.dnsserver", "--zones", str(tmp_path / "none")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "bad.zone").write_text("this is not a zone\n")
    r = subprocess.run([sys.executable, "-m", "provision.dnsserver", "--zones", str(tmp_path), "--port", "0"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "bad.zone" in r.stderr and "Traceback" not in r.stderr


# --- the TSIG secret never on a command line ----------------------------------------------------

def key_text(key) -> str:
    return f"{key.name}:{key.algorithm}:{key.secret_b64}"


def cmdline(pid: int) -> str:
    """What every local user can read about a process (ps, /proc/<pid>/cmdline)."""
    return open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()


def children(pid: int) -> list[int]:
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            out += [int(c) for c in f.read().split()]
    return out


def _run_cli(args, env, tmp_path):
    return subprocess.run([sys.executable, "-m", "provision.dnsserver", "--zones", str(tmp_path), "--port", "0", *args],
                          capture_output=True, text=True, timeout=30, env={**os.environ, **env})


def test_a_key_on_the_command_line_is_refused_without_echoing_it(tmp_path, tsig_key):
    r = _run_cli(["--key", key_text(tsig_key)], {}, tmp_path)
    assert r.returncode == 2 and "MAILCORE_DNS_KEYS or --key-file" in r.stderr
    assert tsig_key.secret_b64 not in r.stderr + r.stdout and "Traceback" not in r.stderr


@pytest.mark.parametrize("file_mode, env, error", [
    (0o644, {}, "is readable by others (mode 644); chmod 600 it"),
    (None, {"MAILCORE_DNS_KEYS": "just-a-name"}, "a TSIG key must be NAME:ALGORITHM:SECRET"),
    (0o600, {"MAILCORE_DNS_KEYS": "name::secret"}, "a TSIG key must be NAME:ALGORITHM:SECRET"),
])
def test_key_errors(tmp_path, tsig_key, file_mode, env, error):
    args = []
    if file_mode is not None:
        kf = tmp_path / "keys"
        kf.write_text(key_text(tsig_key) + "\n")
        os.chmod(kf, file_mode)
        args = ["--key-file", str(kf)]
    r = _run_cli(args, env, tmp_path / "zones")
    assert r.returncode == 2 and error in r.stderr and tsig_key.secret_b64 not in r.stderr


def test_a_key_file_readable_by_its_owner_only_is_read(tmp_path, tsig_key):
    kf = tmp_path / "keys"
    kf.write_text(key_text(tsig_key) + "\n")
    os.chmod(kf, 0o600)
    from provision.dnsserver import read_keys
    assert read_keys(kf, environ={}) == [tsig_key]
    assert read_keys(None, environ={"MAILCORE_DNS_KEYS": f"{key_text(tsig_key)}  a.:hmac-sha256:c2VjcmV0"})[0] == tsig_key


def _wait_answering(server, zone, proc=None):
    from provision.embedded import answering
    deadline = time.monotonic() + 20
    while not answering(server, zone):
        assert proc is None or proc.poll() is None, "the server exited"
        assert time.monotonic() < deadline, "the server did not answer"
        time.sleep(0.05)


def test_embedded_start_passes_the_key_in_the_environment(tmp_path, tsig_key):
    from mailcore.spec.model import AccountSpec, DnsBackendSpec, DomainSpec
    from provision.embedded import ensure_running
    port = free_port()
    server = DnsServer("127.0.0.1", port, tsig_key, timeout=2.0)
    spec = AccountSpec(root=tmp_path)
    spec.dns_backends["builtin"] = DnsBackendSpec("builtin", "rfc2136", {"embedded": True, "server": f"127.0.0.1:{port}"}, ())
    spec.domains.append(DomainSpec("mail.example.test", "cn-hangzhou", "builtin", "example.test", False, None, None,
                                   "mixed", ()))
    state = tmp_path / "state"
    assert ensure_running(spec, {"builtin": server}, state, progress=lambda line: None) == ["builtin"]
    pid = int((state / "dns-builtin.pid").read_text())
    try:
        line = cmdline(pid)
        assert "provision.dnsserver" in line and tsig_key.secret_b64 not in line
        rfc2136.create(server, "example.test", RecordSet("x.example.test", "TXT", 60, ('"env"',)))  # the key works
        assert {p.name: oct(p.stat().st_mode & 0o777) for p in state.iterdir()} == {
            "zones": "0o700", "dns-builtin.log": "0o600", "dns-builtin.pid": "0o600"}
        assert oct(state.stat().st_mode & 0o777) == "0o700"
    finally:
        os.kill(pid, signal.SIGTERM)


def test_invoke_dns_serve_passes_the_key_in_the_environment(tmp_path, tsig_key):
    from tests.support.store import ROOT
    port = free_port()
    env = {**os.environ, "MAILCORE_TSIG_SECRET": tsig_key.secret_b64, "MAILCORE_ENV_FILE": ""}
    proc = subprocess.Popen([sys.executable, "-m", "invoke", "dns.serve", "--port", str(port), "--zones",
                             str(tmp_path / "zones"), "--zone", "example.test"], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        key = rfc2136.TsigKey("mailcore-key.", "hmac-sha256", tsig_key.secret_b64)
        server = DnsServer("127.0.0.1", port, key, timeout=2.0)
        _wait_answering(server, "example.test", proc)
        (child,) = children(proc.pid)
        assert "provision.dnsserver" in cmdline(child)
        assert tsig_key.secret_b64 not in cmdline(proc.pid) + cmdline(child)
        rfc2136.create(server, "example.test", RecordSet("x.example.test", "TXT", 60, ('"task"',)))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
