"""DNS for one account: the Pulumi stack of its record sets, and verification, from the spec plus
each domain's keys. No store here: the caller passes the keys in and writes results out."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from mailcore.spec.model import AccountSpec

from .program import DnsStack, backend_environment, make_program
from .records import DEFAULT_SELECTOR, DesiredRecord, generate_domain_keys
from .rfc2136 import DnsServer, TsigKey
from .verify import DomainVerification, mx_conflict, verify_domain


@dataclass
class DomainKeyInput:
    token: str
    selector: str
    dkim_public: str
    dkim_private_pem: str | None = None  # only for keys generated in this run (the caller stores them)


def new_keys(domains: list[str]) -> dict[str, DomainKeyInput]:
    out = {}
    for name in domains:
        k = generate_domain_keys()
        out[name] = DomainKeyInput(k.ownership_token, DEFAULT_SELECTOR, k.dkim_public_b64, k.dkim_private_pem)
    return out


def servers(spec: AccountSpec, environ: Mapping[str, str] = os.environ) -> dict[str, DnsServer]:
    """The RFC 2136 server of every rfc2136 backend, with its TSIG key resolved."""
    out = {}
    env = backend_environment(spec.dns_backends, environ, spec.root)
    from .program import tsig_env_name
    for name, b in spec.dns_backends.items():
        if b.kind != "rfc2136":
            continue
        tsig = b.settings.get("tsig")
        key = TsigKey(tsig["name"], tsig.get("algorithm", "hmac-sha256"), env[tsig_env_name(name)]) if tsig else None
        out[name] = DnsServer.parse(str(b.settings["server"]), key)
    return out


class AccountDns:
    def __init__(self, spec: AccountSpec, keys: Mapping[str, DomainKeyInput], state_dir: Path, passphrase: str,
                 environ: Mapping[str, str] = os.environ):
        self.spec, self.keys = spec, dict(keys)
        self.regions = {r.id: r for r in spec.regions}
        key_inputs = {d: (k.token, k.selector, k.dkim_public) for d, k in self.keys.items()}
        self.program = make_program(spec.domains, self.regions, spec.dns_backends, key_inputs)
        self.stack = DnsStack(state_dir, self.program, passphrase=passphrase,
                              env=backend_environment(spec.dns_backends, environ, spec.root))
        self.servers = servers(spec, environ)

    def records(self, domain: str) -> list[DesiredRecord]:
        return [r for r in self.program.recs if r.domain == domain]

    def mx_conflicts(self) -> list[str]:
        out = []
        for d in self.spec.domains:
            server = self.servers.get(d.dns)
            if server is not None:
                message = mx_conflict(server, self.records(d.name))
                if message:
                    out.append(message)
        return out

    def verify(self) -> list[DomainVerification]:
        out = []
        for d in self.spec.domains:
            server = self.servers.get(d.dns)
            if server is None:
                continue  # cloud backends: verified through their own DNS once delegated
            out.append(verify_domain(server, self.records(d.name)))
        return out
