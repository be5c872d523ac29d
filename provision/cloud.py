"""Cloud DNS backends: the same desired records mapped onto Alibaba Cloud DNS, Cloudflare, Route53.

Why through their Pulumi packages: they own the APIs' quirks (Alidns' one-row-per-value and
host-relative ``rr``, Route53's 255-byte TXT strings, Cloudflare's record model) and they keep
state the same way the RFC 2136 resources do.  Their plugins download at run time, so on machines
without internet the mappings are exercised with ``pulumi.runtime.set_mocks`` only.

Limits compared with RFC 2136: no SPF merge (the cloud providers replace the records they manage;
an existing SPF at the domain must be merged by hand), and creating over an existing record is
refused by the provider's API (Route53: ``allow_overwrite=False``).

One explicit provider per backend, so credentials come from the backend's config (secrets
resolved from ``{env: ...}``/``{file: ...}`` and kept as Pulumi secrets) instead of ambient state.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import pulumi

from mailcore.spec.model import DnsBackendSpec
from mailcore.spec.secrets import parse_ref

from .records import DesiredRecord, txt_text

CLOUD_KINDS = ("alidns", "cloudflare", "route53")
ROUTE53_TXT_JOIN = '""'  # how Route53 (via the AWS provider) separates 255-byte strings in one value


class CloudConfigError(Exception):
    """A cloud backend's settings are unusable; one line with the fix."""


def _package(name: str):
    """Import a cloud package on first use (they are large), without its deprecation noise."""
    import importlib
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        mod = importlib.import_module(name)
        # the packages load submodules lazily, on attribute access: touch what we use here
        _ = mod.Provider
        if name == "pulumi_alicloud":
            _ = mod.dns.AlidnsRecord
        elif name == "pulumi_aws":
            _ = mod.route53.Record
        else:
            _ = mod.DnsRecord
    return mod


def _secret(backend: DnsBackendSpec, key: str, environ: Mapping[str, str]) -> pulumi.Output | None:
    raw = backend.settings.get(key)
    if raw is None:
        return None
    ref = parse_ref(raw, Path.cwd())
    if ref is None:
        raise CloudConfigError(f"dns_backends.{backend.name}.{key} must be {{env: NAME}} or {{file: PATH}}")
    value, why = ref.resolve(environ)
    if value is None:
        raise CloudConfigError(f"dns_backends.{backend.name}.{key}: {why}")
    return pulumi.Output.secret(value)


def relative_host(name_fqdn: str, zone: str) -> str:
    """Alidns' ``rr``: the owner name relative to the zone, ``@`` for the apex."""
    name = name_fqdn.rstrip(".").lower()
    zone = zone.rstrip(".").lower()
    if name == zone:
        return "@"
    if not name.endswith("." + zone):
        raise CloudConfigError(f"record {name} is not inside zone {zone}")
    return name[: -len(zone) - 1]


def _plain(rec: DesiredRecord, value: str) -> tuple[str, int | None]:
    """(content without DNS presentation quoting, MX priority) for APIs that take raw values."""
    rtype = rec.rs.rtype
    if rtype == "TXT":
        return txt_text(value), None
    if rtype == "MX":
        prio, host = value.split(None, 1)
        return host.rstrip("."), int(prio)
    if rtype == "CNAME":
        return value.rstrip("."), None
    return value, None


def _route53_value(rec: DesiredRecord, value: str) -> str:
    if rec.rs.rtype == "TXT":
        # presentation '"a" "b"' -> 'a""b': the AWS provider adds the outer quotes itself
        text = txt_text(value)
        chunks = [text[i:i + 255] for i in range(0, len(text), 255)] or [""]
        return ROUTE53_TXT_JOIN.join(chunks)
    return value


class CloudRecords:
    """Declares cloud DNS resources inside a Pulumi program; one per program run."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ
        self._providers: dict[str, pulumi.ProviderResource] = {}

    def provider(self, backend: DnsBackendSpec) -> pulumi.ProviderResource:
        if backend.name in self._providers:
            return self._providers[backend.name]
        s = backend.settings
        if backend.kind == "alidns":
            alicloud = _package("pulumi_alicloud")
            p = alicloud.Provider(f"dns-{backend.name}", access_key=_secret(backend, "access_key_id", self.environ),
                                  secret_key=_secret(backend, "access_key_secret", self.environ),
                                  region=s.get("region", "cn-hangzhou"))
        elif backend.kind == "cloudflare":
            cloudflare = _package("pulumi_cloudflare")
            p = cloudflare.Provider(f"dns-{backend.name}", api_token=_secret(backend, "api_token", self.environ))
        elif backend.kind == "route53":
            aws = _package("pulumi_aws")
            p = aws.Provider(f"dns-{backend.name}", region=s.get("region", "us-east-1"))
        else:
            raise CloudConfigError(f"dns_backends.{backend.name}: kind {backend.kind!r} is not a cloud backend "
                                   f"(one of {', '.join(CLOUD_KINDS)})")
        self._providers[backend.name] = p
        return p

    def declare(self, rec: DesiredRecord, backend: DnsBackendSpec) -> list[pulumi.CustomResource]:
        """The resources for one record set (Alidns and Cloudflare: one per value)."""
        opts = pulumi.ResourceOptions(provider=self.provider(backend))
        rs = rec.rs
        out: list[pulumi.CustomResource] = []
        if backend.kind == "route53":
            aws = _package("pulumi_aws")
            zone_id = backend.settings.get("hosted_zone_id")
            if not zone_id:
                raise CloudConfigError(f"dns_backends.{backend.name}.hosted_zone_id is required")
            out.append(aws.route53.Record(rec.key, zone_id=zone_id, name=rs.name_fqdn.rstrip("."), type=rs.rtype,
                                          ttl=rs.ttl, records=[_route53_value(rec, v) for v in rs.values],
                                          allow_overwrite=False, opts=opts))
            return out
        for i, value in enumerate(rs.values):
            content, priority = _plain(rec, value)
            name = rec.key if len(rs.values) == 1 else f"{rec.key}#{i}"
            if backend.kind == "alidns":
                alicloud = _package("pulumi_alicloud")
                kwargs: dict[str, Any] = dict(domain_name=rec.zone, rr=relative_host(rs.name_fqdn, rec.zone),
                                              type=rs.rtype, value=content, ttl=rs.ttl)
                if priority is not None:
                    kwargs["priority"] = priority
                out.append(alicloud.dns.AlidnsRecord(name, opts=opts, **kwargs))
            else:
                cloudflare = _package("pulumi_cloudflare")
                zone_id = backend.settings.get("zone_id")
                if not zone_id:
                    raise CloudConfigError(f"dns_backends.{backend.name}.zone_id is required")
                kwargs = dict(zone_id=zone_id, name=rs.name_fqdn.rstrip("."), type=rs.rtype, content=content,
                              ttl=rs.ttl, proxied=False)
                if priority is not None:
                    kwargs["priority"] = priority
                out.append(cloudflare.DnsRecord(name, opts=opts, **kwargs))
        return out
