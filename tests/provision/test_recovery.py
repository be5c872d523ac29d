"""An interrupted `pulumi up` converges on the next run (issue 11): the stale lock of a dead run is
cleared, its pending operations resolved, its orphaned provider process ended; Pulumi's own error
text is kept; a domain is published whole or rolled back; removing a domain takes our SPF include
out in every case; an MX someone added beside ours stays. Real Pulumi CLI, file backend, and the
built-in server, Knot and BIND."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from mailcore.spec.model import DnsBackendSpec
from provision import rfc2136, stackstate
from provision.dynamic import RecordSetProvider
from provision.program import DnsApplyError, DnsStack, backend_environment, make_program, summarize_failure
from provision.records import txt_text, txt_value
from provision.rfc2136 import RecordSet
from tests.provision.test_pulumi import REGION, _domain, _keys, _stack
from tests.support.dns import DnsProxy

CHILD = """
import sys
from mailcore.spec.model import DnsBackendSpec, DomainSpec, RegionSpec
from provision.program import DnsStack, backend_environment, make_program
state, server, key_name, secret, token, pub, bin_dir = sys.argv[1:]
region = RegionSpec("r1", "mx01.dm.example.org", "spf.dm.example.org", "tracedm.example.org", ())
backend = DnsBackendSpec("test", "rfc2136", {"server": server, "tsig": {"name": key_name, "algorithm": "hmac-sha256",
                                                                    "secret": {"env": "TEST_TSIG"}}}, ())
d = DomainSpec(name="mail.example.com", region="r1", dns="test", zone="example.com", tracking=False, ttl_seconds=None,
               dmarc=None, purpose="trigger", path=())
program = make_program([d], {"r1": region}, {"test": backend}, {"mail.example.com": (token, "sel1", pub)})
env = backend_environment({"test": backend}, {"TEST_TSIG": secret})
DnsStack(state, program, passphrase="test-passphrase", env=env, bin_dir=__import__("pathlib").Path(bin_dir)).up()
"""


def _providers(stack: DnsStack) -> list[int]:
    want = f"PULUMI_BACKEND_URL={(stack.root / 'backend').as_uri()}".encode()
    out = []
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and b"pulumi.dynamic" in open(f"/proc/{pid}/cmdline", "rb").read() \
                    and want in open(f"/proc/{pid}/environ", "rb").read().split(b"\0"):
                out.append(int(pid))
        except OSError:
            continue
    return out


def test_killed_up_converges_on_rerun(tmp_path, dns_server, pulumi_bin):
    s = dns_server.server
    proxy = DnsProxy(s)
    try:
        proxy.paused.set()  # the server stops answering: the provider hangs inside create
        token, sel, pub = _keys("mail.example.com")["mail.example.com"]
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "state"), proxy.address, s.tsig.name,
                                  s.tsig.secret_b64, token, pub, str(pulumi_bin)], start_new_session=True,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        state = tmp_path / "state" / "pulumi" / "backend" / ".pulumi" / "stacks" / "mailcore-dns" / "dns.json"
        deadline = time.monotonic() + 60
        while not stackstate.pending_operations(state):
            assert time.monotonic() < deadline and child.poll() is None, "the up never started its creates"
            time.sleep(0.05)
        os.killpg(child.pid, signal.SIGKILL)  # kill -9 of the whole run (invoke, the Pulumi CLI)
        child.wait()
        proxy.paused.clear()
        backend = _backend(proxy.address, s)
        stack = DnsStack(tmp_path / "state", make_program([_domain("mail.example.com", "example.com")], {"r1": REGION},
                                                          {"test": backend}, _keys("mail.example.com")),
                         passphrase="test-passphrase", bin_dir=pulumi_bin,
                         env=backend_environment({"test": backend}, {"TEST_TSIG": s.tsig.secret_b64}))
        locks = stackstate.lock_files(stack.root / "backend", stack.project, stack.stack_name)
        assert len(locks) == 1
        while stackstate.process_alive(locks[0].pid):  # SIGKILL lands asynchronously
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert stackstate.is_stale(locks[0])
        orphans = _providers(stack)  # usually the killed run's provider lives on (it has its own process
        # group); under load the kill can land before Pulumi started it: then there is nothing to end

        said: list[str] = []
        up = stack.up(progress=said.append)  # converges with no manual step
        assert up.changes.get("create") == 4
        assert any("removed the Pulumi lock" in line for line in said)
        assert any("pending operation" in line for line in said)
        assert not orphans or any("provider" in line for line in said), said
        assert rfc2136.query(s, "mail.example.com", "MX").values == ("10 mx01.dm.example.org.",)
        assert rfc2136.query(s, "aliyundm.mail.example.com", "TXT").values == (f'"{token}"',)
        assert not stackstate.lock_files(stack.root / "backend", stack.project, stack.stack_name)
        assert not stackstate.pending_operations(state)
        assert not _providers(stack)  # neither the orphan nor this run's provider lives on
        assert not stack.preview().has_changes
    finally:
        proxy.close()


def _backend(address, server):
    return DnsBackendSpec("test", "rfc2136", {
        "server": address,
        "tsig": {"name": server.tsig.name, "algorithm": server.tsig.algorithm, "secret": {"env": "TEST_TSIG"}},
    }, ())


def test_live_lock_keeps_pulumis_message_and_unlock_force_clears_it(tmp_path, builtin_dns, pulumi_bin):
    stack, _ = _stack(tmp_path, builtin_dns, pulumi_bin, [_domain("mail.example.com", "example.com")])
    stack.up()
    lock_dir = stack.root / "backend" / ".pulumi" / "locks" / "organization" / stack.project / stack.stack_name
    lock_dir.mkdir(parents=True, exist_ok=True)
    (lock_dir / "0c6c3d4e-aaaa-bbbb-cccc-000000000001.json").write_text(json.dumps(
        {"pid": 4242, "username": "ci", "hostname": "build-host-7", "timestamp": "2026-01-01T00:00:00Z"}))
    stack.program = make_program([], {"r1": REGION}, {"test": _backend(builtin_dns.address, builtin_dns.server)}, {})
    with pytest.raises(DnsApplyError) as e:
        stack.up()  # another host's lock: not ours to judge
    msg = str(e.value)
    assert "the stack is currently locked by 1 lock(s)" in msg and "ci@build-host-7 (pid 4242)" in msg
    assert "invoke dns.unlock --force" in msg and "\n" not in msg
    assert stack.recover(force=True) == ["removed the Pulumi lock of ci@build-host-7 (pid 4242) at 2026-01-01T00:00:00Z"]
    stack.up()
    assert rfc2136.query(builtin_dns.server, "mail.example.com", "MX") is None


def test_summarize_failure_keeps_pulumis_own_error():
    text = ("\n code: 255\n stdout: \n stderr: error: could not deserialize deployment: unexpected EOF\n"
            "  while reading file:///state/.pulumi/stacks/mailcore-dns/dns.json\n")
    assert summarize_failure(text, "up") == ("dns up failed: error: could not deserialize deployment: unexpected EOF "
                                             "while reading file:///state/.pulumi/stacks/mailcore-dns/dns.json")


def test_failed_create_of_a_new_domain_is_rolled_back(tmp_path, dns_server, pulumi_bin):
    s = dns_server.server
    stack, backend = _stack(tmp_path, dns_server, pulumi_bin, [_domain("mail.example.com", "example.com")])
    stack.up()
    # shop's DKIM name holds a record set of someone else's: its create fails after the others ran
    rfc2136.create(s, "example.com", RecordSet("sel1._domainkey.shop.example.com", "TXT", 600, ('"v=DKIM1; p=theirs"',)))
    stack.program = make_program([_domain("mail.example.com", "example.com"), _domain("shop.example.com", "example.com")],
                                 {"r1": REGION}, {"test": backend}, _keys("mail.example.com", "shop.example.com"))
    with pytest.raises(DnsApplyError) as e:
        stack.up()
    assert "rolled back the record sets published for shop.example.com" in str(e.value)
    for name, rtype in (("aliyundm.shop.example.com", "TXT"), ("shop.example.com", "MX"), ("shop.example.com", "TXT")):
        assert rfc2136.query(s, name, rtype) is None, name
    assert rfc2136.query(s, "sel1._domainkey.shop.example.com", "TXT").values == ('"v=DKIM1; p=theirs"',)
    assert rfc2136.query(s, "mail.example.com", "MX") is not None  # the managed domain is untouched
    assert {n.split("/")[0] for n in stack.managed_names()} == {"mail.example.com"}


# ---- the provider's delete and update against live DNS (no Pulumi needed to reach them)


def _spf_props(server, **kw):
    props = {"server": f"{server.host}:{server.port}", "zone": "example.com", "name": "mail.example.com.",
             "rtype": "TXT", "ttl": 600, "values": [], "mode": "spf", "spf_include": "spf.dm.example.org",
             "tsig_name": server.tsig.name, "tsig_algorithm": "hmac-sha256", "tsig_secret_env": "TEST_TSIG"}
    props.update(kw)
    return props


def _spf(server):
    live = rfc2136.query(server, "mail.example.com", "TXT")
    return sorted(txt_text(v) for v in (live.values if live else ()))


def test_removing_a_domain_takes_our_spf_include_out_in_every_case(dns_server, monkeypatch):
    s = dns_server.server
    monkeypatch.setenv("TEST_TSIG", s.tsig.secret_b64)
    p = RecordSetProvider()
    # 1. the domain's SPF already included us when we came: adopted; removing the domain takes it out
    rfc2136.create(s, "example.com", RecordSet("mail.example.com", "TXT", 600, (
        txt_value("v=spf1 include:spf.dm.example.org include:_spf.corp.example ~all"), '"site-verification=1"')))
    created = p.create(_spf_props(s)).outs
    assert created["spf_replaced"] == created["spf_value"]
    p.delete("id", created)
    assert _spf(s) == ["site-verification=1", "v=spf1 include:_spf.corp.example ~all"]
    # 2. we added the SPF, then someone added a mechanism by hand: ours goes, theirs stays
    rfc2136.delete(s, "example.com", rfc2136.query(s, "mail.example.com", "TXT"))
    created = p.create(_spf_props(s)).outs
    live = rfc2136.query(s, "mail.example.com", "TXT")
    rfc2136.replace_rr(s, "example.com", live, created["spf_value"], txt_value("v=spf1 ip4:192.0.2.1 include:spf.dm.example.org -all"))
    p.delete("id", created)
    assert _spf(s) == ["v=spf1 ip4:192.0.2.1 -all"]
    # 3. we added the SPF and nobody touched it: the record goes entirely
    rfc2136.delete(s, "example.com", rfc2136.query(s, "mail.example.com", "TXT"))
    p.delete("id", p.create(_spf_props(s)).outs)
    assert _spf(s) == []


def test_foreign_extra_mx_is_kept_changed_mx_is_repaired(dns_server, monkeypatch):
    s = dns_server.server
    monkeypatch.setenv("TEST_TSIG", s.tsig.secret_b64)
    p = RecordSetProvider()
    props = _spf_props(s, rtype="MX", mode="rrset", values=["10 mx01.dm.example.org."], name="mail.example.com.")
    outs = p.create(props).outs
    live = rfc2136.query(s, "mail.example.com", "MX")
    rfc2136.add_rr(s, "example.com", live, "mail.example.com", "MX", 600, "20 backup.other.example.")
    assert not p.diff("id", outs, props).changes  # an extra MX beside ours is not drift to "repair" away
    p.update("id", outs, {**props, "ttl": 300})
    assert rfc2136.query(s, "mail.example.com", "MX").values == ("10 mx01.dm.example.org.", "20 backup.other.example.")
    outs = {**props, "ttl": 300}
    p.delete("id", outs)
    assert rfc2136.query(s, "mail.example.com", "MX").values == ("20 backup.other.example.",)
    # ours replaced by hand: drift, and the update puts ours back
    rfc2136.delete(s, "example.com", rfc2136.query(s, "mail.example.com", "MX"))
    outs = p.create(props).outs
    rfc2136.replace(s, "example.com", rfc2136.query(s, "mail.example.com", "MX"),
                    RecordSet("mail.example.com", "MX", 600, ("10 elsewhere.example.",)))
    assert p.diff("id", outs, props).changes
    p.update("id", outs, props)
    assert rfc2136.query(s, "mail.example.com", "MX").values == ("10 mx01.dm.example.org.",)
