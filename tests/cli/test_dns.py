"""Issue 3's acceptance as a user runs it: `invoke apply` publishes the records through Pulumi into a
real DNS server (Knot, and the built-in one started as the embedded default), `invoke verify`
proves them, a hand edit is reported as drift and repaired by the next apply."""
from __future__ import annotations

import shutil
import subprocess

import sqlalchemy as sa
import yaml

from mailcore.store import open_store
from mailcore.store import tables as t
from provision import rfc2136
from provision.records import txt_text, txt_value
from tests.support.cli import run
from tests.support.dns import free_port
from tests.support.store import ROOT

TWO_DOMAINS = ["mail.example.com", "notice.example.net"]


def _config(tmp_path, backend: dict) -> str:
    cfg = tmp_path / "config"
    shutil.copytree(ROOT / "config", cfg)
    d = yaml.safe_load((cfg / "domains.yaml").read_text())
    d["dns_backends"]["builtin"] = backend
    d["domains"] = [x for x in d["domains"] if x["name"] in TWO_DOMAINS]
    (cfg / "domains.yaml").write_text(yaml.safe_dump(d, sort_keys=False))
    s = yaml.safe_load((cfg / "senders.yaml").read_text())
    s["senders"] = [x for x in s["senders"] if x["address"].split("@")[1] in TWO_DOMAINS]
    (cfg / "senders.yaml").write_text(yaml.safe_dump(s, sort_keys=False))
    lists = yaml.safe_load((cfg / "lists.yaml").read_text())
    for lst in lists["recipient_lists"]:
        lst["alias_address"] = lst["alias_address"].replace("news.", "mail.")
    (cfg / "lists.yaml").write_text(yaml.safe_dump(lists, sort_keys=False))
    return str(cfg)


def _statuses(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'state' / 'mailcore.db'}")
    with store.engine.connect() as conn:
        out = dict(conn.execute(sa.select(t.domains.c.name, t.domains.c.status)).all())
    store.dispose()
    return out


def test_apply_verify_drift_repair_on_knot(tmp_path, knot_dns, key):
    server = knot_dns.server
    backend = {"kind": "rfc2136", "server": knot_dns.address,
               "tsig": {"name": server.tsig.name, "algorithm": "hmac-sha256", "secret": {"env": "MAILCORE_TSIG_SECRET"}}}
    cfg = _config(tmp_path, backend)
    env = {**key, "MAILCORE_TSIG_SECRET": server.tsig.secret_b64}
    r = run(["apply", "--config", cfg], env, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Applying DNS through Pulumi" in r.stdout and "Apply complete" in r.stdout
    # kdig sees every record
    out = subprocess.run(["kdig", "-p", str(server.port), "@127.0.0.1", "example.com", "AXFR", "-y",
                          f"hmac-sha256:{server.tsig.name}:{server.tsig.secret_b64}"], capture_output=True, text=True).stdout
    for needle in ("aliyundm.mail.example.com.", "v=spf1 include:spf.dm.cn-hangzhou.mailcore.example.org -all",
                   "MX\t10 mx01.dm.cn-hangzhou.mailcore.example.org.", "dmtrace.mail.example.com.",
                   "mailcore._domainkey.mail.example.com."):
        assert needle in out, needle
    r = run(["verify", "--config", cfg], env, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Verified 2 of 2 domain(s)" in r.stdout
    assert _statuses(tmp_path) == {"mail.example.com": "verified", "notice.example.net": "verified"}
    # the SPF record is edited on the server by hand
    current = rfc2136.query(server, "mail.example.com", "TXT")
    spf = next(v for v in current.values if txt_text(v).startswith("v=spf1"))
    rfc2136.replace_rr(server, "example.com", current, spf, txt_value("v=spf1 include:elsewhere.example -all"))
    r = run(["verify", "--config", cfg], env, tmp_path)
    assert r.returncode == 2
    assert "drift: mail.example.com: verified -> usable" in r.stdout and "include:elsewhere.example" in r.stdout
    assert _statuses(tmp_path)["mail.example.com"] == "usable"
    store = open_store(f"sqlite:///{tmp_path / 'state' / 'mailcore.db'}")
    with store.engine.connect() as conn:
        events = conn.execute(sa.select(t.events.c.event, t.events.c.body)).all()
    assert [e for e, _ in events] == ["Domain:DnsChanged"] and "domain=mail.example.com" in events[0][1]
    # apply repairs it: the plan shows the drifted record set, apply merges our include back in
    r = run(["plan", "--config", cfg], env, tmp_path)
    assert r.returncode == 3 and "~ dns mail.example.com/spf" in r.stdout
    r = run(["apply", "--config", cfg], env, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    spf = [txt_text(v) for v in rfc2136.query(server, "mail.example.com", "TXT").values if txt_text(v).startswith("v=spf1")]
    assert spf == ["v=spf1 include:elsewhere.example include:spf.dm.cn-hangzhou.mailcore.example.org -all"]
    assert run(["verify", "--config", cfg], env, tmp_path).returncode == 0
    r = run(["plan", "--config", cfg], env, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "No DNS changes" in r.stdout and "Plan: 0 to create, 0 to update, 0 to delete." in r.stdout


def test_unmanaged_record_set_stops_apply_with_its_name(tmp_path, builtin_dns, key):
    server = builtin_dns.server
    rfc2136.create(server, "example.net", rfc2136.RecordSet("dmtrace.notice.example.net", "TXT", 300, ('"mine"',)))
    rfc2136.create(server, "example.net", rfc2136.RecordSet("aliyundm.notice.example.net", "TXT", 300, ('"not yours"',)))
    backend = {"kind": "rfc2136", "server": builtin_dns.address,
               "tsig": {"name": server.tsig.name, "algorithm": "hmac-sha256", "secret": {"env": "MAILCORE_TSIG_SECRET"}}}
    cfg = _config(tmp_path, backend)
    env = {**key, "MAILCORE_TSIG_SECRET": server.tsig.secret_b64}
    r = run(["apply", "--config", cfg], env, tmp_path)
    assert r.returncode == 2
    assert "aliyundm.notice.example.net" in r.stderr and "the store is unchanged" in r.stderr
    assert not (tmp_path / "state" / "mailcore.db").exists() or _statuses(tmp_path) == {}
    assert rfc2136.query(server, "aliyundm.notice.example.net", "TXT").values == ('"not yours"',)


def test_embedded_builtin_server_quick_start(tmp_path, key):
    port = free_port()
    cfg = _config(tmp_path, {"kind": "rfc2136", "server": f"127.0.0.1:{port}", "embedded": True,
                             "tsig": {"name": "mailcore-key.", "algorithm": "hmac-sha256",
                                      "secret": {"env": "MAILCORE_TSIG_SECRET"}}})
    env = {**key, "MAILCORE_TSIG_SECRET": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI="}
    try:
        r = run(["apply", "--config", cfg], env, tmp_path)
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"started the built-in DNS server on 127.0.0.1:{port}" in r.stdout
        r = run(["verify", "--config", cfg], env, tmp_path)
        assert r.returncode == 0 and "Verified 2 of 2 domain(s)" in r.stdout
        r = run(["apply", "--config", cfg], env, tmp_path)
        assert r.returncode == 0 and "Nothing to apply; nothing was written." in r.stdout
        assert (tmp_path / "state" / "zones" / "example.com.zone").exists()
    finally:
        pid = tmp_path / "state" / "dns-builtin.pid"
        if pid.exists():
            subprocess.run(["kill", pid.read_text().strip()])
