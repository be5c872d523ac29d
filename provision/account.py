"""DNS for one account: the Pulumi stack of its record sets, and verification, from the spec plus
each domain's keys. No store here: the caller passes the keys in and writes results out."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from mailcore.spec.model import AccountSpec

from .program import DnsStack, backend_environment, make_program
from . import rfc2136
from .records import DEFAULT_SELECTOR, DesiredRecord, SpfError, generate_domain_keys, is_spf, merge_spf, txt_text
from .rfc2136 import DnsServer, DnsUpdateError, TsigKey
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

    def _live(self):
        """(domain, its RFC 2136 server, its desired records) for every domain on an rfc2136 backend."""
        for d in self.spec.domains:
            server = self.servers.get(d.dns)
            if server is not None:
                yield d.name, server, self.records(d.name)

    def refusals(self, managed: set[str]) -> list[str]:
        """What apply would refuse, read from live DNS (raises ``DnsUpdateError`` when it cannot ask).

        ``managed``: the record sets (``domain/kind``) the Pulumi state holds. R5's MX conflict is
        for a domain whose MX we do not manage yet (a managed one changed by hand is drift, which
        apply repairs); any other record set to create refuses where an unmanaged one is in the way.
        """
        out = []
        for domain, server, recs in self._live():
            todo = [r for r in recs if r.key not in managed]
            if any(r.kind == "mx" for r in todo):
                message = mx_conflict(server, recs)
                if message:
                    out.append(message)
            for r in todo:
                message = create_refusal(server, r)
                if message and r.kind != "mx":
                    out.append(message)
        return out

    def mx_conflicts(self) -> list[str]:
        return self.refusals(set())

    def foreign_mx(self, managed: set[str]) -> list[str]:
        """Managed MX record sets that also hold records someone else added: kept, and reported."""
        out = []
        for domain, server, recs in self._live():
            for r in recs:
                if r.kind == "mx" and r.key in managed:
                    live = rfc2136.query(server, r.rs.name_fqdn, "MX")
                    if live is not None and set(r.rs.values) <= set(live.values) and live.values != r.rs.values:
                        extra = [v for v in live.values if v not in r.rs.values]
                        out.append(f"{domain} MX also holds {', '.join(extra)}, which mailcore did not write: "
                                   "left in place (remove it by hand if it should not receive this domain's mail)")
        return out

    def drift_values(self, key: str) -> tuple[list[str], list[str]] | None:
        """(live values, wanted values) of one record set, for the plan's drift lines."""
        for domain, server, recs in self._live():
            for r in recs:
                if r.key == key:
                    live = rfc2136.query(server, r.rs.name_fqdn, r.rs.rtype)
                    found = list(live.values) if live else []
                    if r.kind == "spf":
                        found = [v for v in found if is_spf(txt_text(v))]
                        return [txt_text(v) for v in found], [f"an SPF record with include:{r.spf_include}"]
                    if r.rs.rtype == "TXT":
                        return [txt_text(v) for v in found], [txt_text(v) for v in r.rs.values]
                    return found, list(r.rs.values)
        return None

    def verify(self) -> tuple[list[DomainVerification], dict[str, str]]:
        """Each domain's verification, and {domain: why} for those whose server could not be asked
        (down, refusing, a wrong TSIG key): no status can be derived for them."""
        out, errors = [], {}
        for domain, server, recs in self._live():  # cloud backends: verified through their own DNS
            try:
                out.append(verify_domain(server, recs))
            except DnsUpdateError as exc:
                errors[domain] = str(exc)
        return out, errors


def create_refusal(server: DnsServer, rec: DesiredRecord) -> str | None:
    """Why creating ``rec`` would be refused by the provider, judged from live DNS now, or None."""
    if rec.kind == "spf":
        live = rfc2136.query(server, rec.rs.name_fqdn, "TXT")
        try:
            merge_spf(live.values if live else (), rec.spf_include or "")
        except SpfError as exc:
            return f"{rec.rs.name_fqdn} TXT: {exc}"
        return None
    live = rfc2136.query(server, rec.rs.name_fqdn, rec.rs.rtype)
    if live is None or (live.same_data(rec.rs) and live.ttl == rec.rs.ttl):
        return None
    return (f"create {rec.rs.describe()}: an unmanaged record set already exists there ({live.shown()}); "
            "remove it by hand or import it, it will not be overwritten")
