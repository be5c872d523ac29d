"""Pulumi dynamic provider for one RFC 2136 record set (a thin adapter over ``provision.rfc2136``).

Why this shape: Pulumi serialises the provider object into the state and the plugin process
imports it by module path, so this module is small, its import path is stable
(``provision.dynamic.RecordSetProvider``), and the instance holds nothing: the TSIG secret is read
inside each method from the environment variable named in the inputs (``tsig_secret_env``), so
no secret ever lands in the state file.

Inputs (all plain strings/numbers): ``server`` (host:port), ``zone``, ``name``, ``rtype``, ``ttl``,
``values`` (presentation format), ``mode`` (``rrset``: the whole rrset is ours; ``spf``: one TXT RR in
the domain's shared TXT rrset, merged with an existing SPF record), ``spf_include``, ``tsig_name``,
``tsig_algorithm``, ``tsig_secret_env``.

``diff`` also looks at live DNS, because ``read``/``refresh`` do not work for dynamic providers: a
record changed by hand shows up as an update in the preview, and the update then fails (the
"rrset equals what we wrote" prerequisite) with a message naming the record set instead of
overwriting the edit.
"""
from __future__ import annotations

import os
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

from . import rfc2136
from .records import has_include, is_spf, merge_spf, remove_include, spf_default, spf_is_empty, txt_text, txt_value
from .rfc2136 import DnsServer, RecordSet, TsigKey

IDENTITY = ("zone", "name", "rtype", "mode")
COMPARED = ("ttl", "values", "spf_include", "server", "tsig_name", "tsig_algorithm", "tsig_secret_env")


class ProviderConfigError(Exception):
    """The provider's inputs cannot be used (e.g. the TSIG secret's variable is unset)."""


def _server(props: dict[str, Any], environ: Any = None) -> DnsServer:
    key = None
    if props.get("tsig_name"):
        env = props.get("tsig_secret_env") or ""
        secret = (os.environ if environ is None else environ).get(env)
        if not secret:
            raise ProviderConfigError(f"TSIG secret for key {props['tsig_name']} not available: environment "
                                      f"variable {env or '(unnamed)'} is not set in the Pulumi provider's environment")
        key = TsigKey(props["tsig_name"], props.get("tsig_algorithm") or "hmac-sha256", secret)
    return DnsServer.parse(props["server"], key, float(props.get("timeout") or rfc2136.DEFAULT_TIMEOUT_S))


def _rs(props: dict[str, Any], values=None) -> RecordSet:
    return RecordSet(props["name"], props["rtype"], int(props["ttl"]), tuple(props["values"] if values is None else values))


def _spf_text_for(include: str, replaced: str | None) -> str:
    """Our SPF RR value: merged into the SPF we replaced, or the default one."""
    return merge_spf([replaced], include).value if replaced else txt_value(spf_default(include))


def _merge_spf_into_live(server: DnsServer, props: dict[str, Any], current: RecordSet | None) -> dict[str, Any]:
    """Merge our include into the SPF record the server holds now (adding one when there is none)
    and return the outputs that remember what we wrote and what it replaced."""
    merged = merge_spf(current.values if current else (), props["spf_include"])
    if merged.replaced is None:
        rfc2136.add_rr(server, props["zone"], current, props["name"], "TXT", int(props["ttl"]), merged.value)
    elif merged.replaced != merged.value:
        rfc2136.replace_rr(server, props["zone"], current, merged.replaced, merged.value)
    return {"spf_value": merged.value, "spf_replaced": merged.replaced, "spf_warning": merged.warning}


class RecordSetProvider(ResourceProvider):
    """Create / update / delete one record set with RFC 2136 prerequisites (see module doc)."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        server = _server(props)
        outs = dict(props)
        if props.get("mode") == "spf":
            outs.update(_merge_spf_into_live(server, props, rfc2136.query(server, props["name"], "TXT")))
        else:
            rs = _rs(props)
            rfc2136.create(server, props["zone"], rs)
            outs["values"] = list(rs.values)
        return CreateResult(f"{rfc2136.fqdn(props['name'])}{props['rtype'].upper()}", outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # keep in step with same_inputs(), which the no-change shortcut in provision.program uses
        replaces = [k for k in IDENTITY if _norm(k, olds.get(k)) != _norm(k, news.get(k))]
        if replaces:
            return DiffResult(changes=True, replaces=replaces, delete_before_replace=True)
        changed = [k for k in COMPARED if _norm(k, olds.get(k)) != _norm(k, news.get(k))]
        if not changed and _drifted(olds):
            changed = ["values"]
        return DiffResult(changes=bool(changed), replaces=[], delete_before_replace=True)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        server = _server(news)
        outs = dict(news)
        if news.get("mode") == "spf":
            current = rfc2136.query(server, news["name"], "TXT")
            mine = olds.get("spf_value")
            if current is None or mine not in current.values:
                # drift (R10): the plan showed it (diff reads live DNS); repair by merging our include
                # into whatever SPF is there now, keeping the other mechanisms someone added
                outs.update(_merge_spf_into_live(server, news, current))
                return UpdateResult(outs)
            replaced = olds.get("spf_replaced")
            if replaced == mine:  # we adopted an SPF that already included us: keep it, add a new include
                value = merge_spf([mine], news["spf_include"]).value
            else:
                value = _spf_text_for(news["spf_include"], replaced)
            if value != mine:
                rfc2136.replace_rr(server, news["zone"], current, mine, value)
            outs.update(spf_value=value, spf_replaced=replaced, spf_warning=olds.get("spf_warning"))
        else:
            new, old = _rs(news), _rs(olds)
            live = rfc2136.query(server, news["name"], news["rtype"])
            outs["values"] = list(new.values)
            foreign = []
            if new.rtype == "MX" and live is not None and set(old.values) <= set(live.values):
                foreign = [v for v in _foreign(live, old) if v not in new.values]
            if foreign:  # an MX someone added beside ours stays (the plan reports it); a changed one is repaired
                new = RecordSet(new.name_fqdn, "MX", new.ttl, new.values + tuple(foreign))
            if live is None:  # removed by hand: put it back (the plan showed the drift)
                rfc2136.create(server, news["zone"], new)
            elif not live.same_data(old) or live.ttl != old.ttl:
                # edited by hand: the prerequisite is what we just read, so an edit racing this
                # update still fails instead of being overwritten unseen
                rfc2136.replace(server, news["zone"], live, new)
            elif not live.same_data(new) or live.ttl != new.ttl:
                rfc2136.replace(server, news["zone"], old, new)
        return UpdateResult(outs)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        server = _server(props)
        if props.get("mode") == "spf":
            _remove_spf_include(server, props)
        elif props["rtype"].upper() == "MX":
            mine = _rs(props)
            live = rfc2136.query(server, props["name"], "MX")
            foreign = _foreign(live, mine)
            if live is None or not foreign:
                rfc2136.delete(server, props["zone"], mine if live is None or live.same_data(mine) else live)
            elif set(live.values) & set(mine.values):  # keep the MX records someone else added
                rfc2136.replace(server, props["zone"], live, RecordSet(mine.name_fqdn, "MX", live.ttl, foreign))
        else:
            rfc2136.delete(server, props["zone"], _rs(props))


def _remove_spf_include(server: DnsServer, props: dict[str, Any]) -> None:
    """Take our include out of the domain's SPF record, whoever wrote the rest and whatever was
    edited since: the record goes when nothing but ``v=spf1 ... all`` would be left of one we
    added, else the rest of it stays (the original we merged into, when that is what is left)."""
    current = rfc2136.query(server, props["name"], "TXT")
    include = props["spf_include"]
    target = next((v for v in (current.values if current else ()) if is_spf(txt_text(v))
                   and has_include(txt_text(v), include)), None)
    if current is None or target is None:
        return  # our include is gone already
    rest = remove_include(txt_text(target), include)
    replaced = props.get("spf_replaced")
    if replaced and txt_text(replaced) == rest:
        rfc2136.replace_rr(server, props["zone"], current, target, replaced)  # give back the original
    elif not replaced and spf_is_empty(rest):
        rfc2136.delete_rr(server, props["zone"], current, target)
    else:
        rfc2136.replace_rr(server, props["zone"], current, target, txt_value(rest))


def _foreign(live: RecordSet | None, mine: RecordSet) -> tuple[str, ...]:
    """MX records at the name that we did not write (kept, and reported by the plan)."""
    return tuple(v for v in (live.values if live else ()) if v not in mine.values)


def _norm(key: str, value: Any) -> Any:
    if value is None:
        return None
    if key in ("zone", "name"):
        return rfc2136.fqdn(str(value))
    if key in ("rtype", "mode"):
        return str(value).upper()
    if key == "ttl":
        return int(value)
    if key == "values":
        return tuple(sorted(str(v) for v in value))
    return value


def same_inputs(olds: dict[str, Any], news: dict[str, Any]) -> bool:
    """What ``diff`` decides before it looks at live DNS: no input that matters changed."""
    return all(_norm(k, olds.get(k)) == _norm(k, news.get(k)) for k in IDENTITY + COMPARED)


def _drifted(olds: dict[str, Any], environ: Any = None) -> bool:
    """Does live DNS no longer hold what we wrote?  (Errors propagate: a preview must not guess.)"""
    server = _server(olds, environ)
    if olds.get("mode") == "spf":
        live = rfc2136.query(server, olds["name"], "TXT")
        return live is None or olds.get("spf_value") not in live.values
    live = rfc2136.query(server, olds["name"], olds["rtype"])
    mine = _rs(olds)
    if live is not None and mine.rtype == "MX":  # MX records added beside ours are not ours to repair
        return not set(mine.values) <= set(live.values) or live.ttl != mine.ttl
    return live is None or not live.same_data(mine) or live.ttl != mine.ttl


RESOURCE_TYPE = "pulumi-python:dynamic/mailcore:RecordSet"


class RecordSetResource(pulumi.dynamic.Resource, module="mailcore", name="RecordSet"):
    """One record set; type token ``pulumi-python:dynamic/mailcore:RecordSet``."""

    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(RecordSetProvider(), name, props, opts)
