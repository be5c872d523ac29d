"""Named semantic validators. Each takes the account spec and a context and yields Issues.

A validator is registered under a name; each finding carries its own id (printed in brackets), so one
validator may report several ids (the allow-list validator reports allowlist-syntax, allowlist-private, ...).
"""
from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

from .emails import email_error
from .issues import WARNING, Issue, Location
from .limits import TEMPLATE_VARIABLES, describe, limit
from .model import AccountSpec
from .source import locate_text

Validator = Callable[[AccountSpec, "Context"], Iterable[Issue]]
VALIDATORS: dict[str, Validator] = {}


@dataclass
class Context:
    environ: Mapping[str, str]
    # domain name -> owning account name, for every other account in the store (R6)
    foreign_domains: Mapping[str, str] = field(default_factory=dict)
    secrets: dict = field(default_factory=dict)  # resolved secret values, by id(spec entity)


def validator(vid: str):
    def register(fn: Validator) -> Validator:
        VALIDATORS[vid] = fn
        return fn
    return register


def run_all(spec: AccountSpec, ctx: Context) -> list[Issue]:
    out: list[Issue] = []
    for fn in VALIDATORS.values():
        out.extend(fn(spec, ctx))
    return out


def _dupes(items, key, what: str, vid: str, *, field_name: str):
    first: dict = {}
    for item in items:
        k = key(item)
        if k in first:
            yield Issue(item.path + (field_name,), f"{what} '{k}' is declared twice (first at {first[k][1]})", vid)
        else:
            first[k] = (item, ".".join(str(p) for p in item.path))


# --- account, regions, references ---------------------------------------------------------

@validator("account-required")
def _account(spec, ctx):
    if not spec.name:
        yield Issue(("account",), "the config declares no account; add `account: {name: ...}` to one file", "account-required")


@validator("region-unique")
def _regions(spec, ctx):
    yield from _dupes(spec.regions, lambda r: r.id, "region", "region-unique", field_name="id")


@validator("region-ref")
def _region_refs(spec, ctx):
    declared = {r.id for r in spec.regions}
    hint = ", ".join(sorted(declared)) or "none declared"
    for d in spec.domains:
        if d.region not in declared:
            yield Issue(d.path + ("region",), f"domain '{d.name}' uses undeclared region '{d.region}' (regions: {hint})", "region-ref")
    for r in spec.rules:
        if r.region not in declared:
            yield Issue(r.path + ("region",), f"rule '{r.name}' uses undeclared region '{r.region}' (regions: {hint})", "region-ref")
    for n in spec.notifications:
        if n.region not in declared:
            yield Issue(n.path + ("region",), f"notification uses undeclared region '{n.region}' (regions: {hint})", "region-ref")


@validator("dns-backend-ref")
def _dns_refs(spec, ctx):
    names = ", ".join(sorted(spec.dns_backends)) or "none declared"
    for d in spec.domains:
        if d.dns not in spec.dns_backends:
            yield Issue(d.path + ("dns",), f"domain '{d.name}' uses undeclared DNS backend '{d.dns}' (dns_backends: {names})", "dns-backend-ref")


# --- domains ----------------------------------------------------------------------------

_SECOND_LEVEL = {"com.cn", "net.cn", "org.cn", "gov.cn", "edu.cn", "ac.cn", "co.uk", "org.uk", "com.au", "com.hk",
                 "com.sg", "com.tw", "co.jp", "co.kr", "com.br", "co.nz", "co.in"}


def is_apex(name: str, zone: str | None) -> bool:
    if zone:
        return name == zone
    labels = name.split(".")
    return len(labels) <= 2 or (len(labels) == 3 and ".".join(labels[1:]) in _SECOND_LEVEL)


def related(a: str, b: str) -> bool:
    """True when a and b are the same domain or one is a subdomain of the other (R6)."""
    return a == b or a.endswith("." + b) or b.endswith("." + a)


@validator("domain-unique")
def _domain_unique(spec, ctx):
    yield from _dupes(spec.domains, lambda d: d.name, "domain", "domain-unique", field_name="name")


@validator("domain-exclusive")
def _domain_exclusive(spec, ctx):
    for d in spec.domains:
        for other, owner in sorted(ctx.foreign_domains.items()):
            if related(d.name, other):
                how = "is" if d.name == other else ("is a subdomain of" if d.name.endswith("." + other) else "is a parent of")
                yield Issue(d.path + ("name",), f"domain '{d.name}' {how} '{other}', which account '{owner}' already uses; "
                            "a domain and its subdomains belong to one account only (R6)", "domain-exclusive")


@validator("domain-apex")
def _domain_apex(spec, ctx):
    for d in spec.domains:
        if is_apex(d.name, d.zone):
            yield Issue(d.path + ("name",), f"'{d.name}' is an apex domain; send from a subdomain such as 'mail.{d.name}' "
                        "so the apex keeps its own mail and reputation (R5)", "domain-apex", WARNING)


@validator("domain-purpose")
def _domain_purpose(spec, ctx):
    kinds = defaultdict(set)
    for s in spec.senders:
        kinds[s.domain].add(s.type)
    for d in spec.domains:
        if kinds[d.name] == {"trigger", "batch"}:
            yield Issue(d.path + ("name",), f"domain '{d.name}' has both trigger and batch senders; keep separate domains for "
                        "trigger and batch mail so batch reputation does not hurt trigger mail (R5)", "domain-purpose", WARNING)


@validator("domain-tracking")
def _domain_tracking(spec, ctx):
    hosts = {r.id: r.tracking_host for r in spec.regions}
    for d in spec.domains:
        if d.tracking and d.region in hosts and not hosts[d.region]:
            yield Issue(d.path + ("tracking",), f"tracking is on but region '{d.region}' declares no tracking_host "
                        "for the dmtrace CNAME (R7)", "domain-tracking")


# --- senders ----------------------------------------------------------------------------

@validator("sender-unique")
def _sender_unique(spec, ctx):
    yield from _dupes(spec.senders, lambda s: s.address, "sender", "sender-unique", field_name="address")


@validator("sender-domain")
def _sender_domain(spec, ctx):
    declared = {d.name for d in spec.domains}
    for s in spec.senders:
        if s.domain not in declared:
            yield Issue(s.path + ("address",), f"sender '{s.address}' uses undeclared domain '{s.domain}'; "
                        "declare it under domains: or fix the address", "sender-domain")


@validator("email-syntax")
def _emails(spec, ctx):
    def check(value, path, what):
        if value:
            why = email_error(value)
            if why:
                yield Issue(path, f"{what} '{value}' is not a valid address: {why}", "email-syntax")
    for s in spec.senders:
        yield from check(s.address, s.path + ("address",), "sender")
        yield from check(s.reply_to, s.path + ("reply_to",), "reply-to")
    for lst in spec.recipient_lists:
        yield from check(lst.alias_address, lst.path + ("alias_address",), "list alias")


def password_problems(pw: str) -> list[str]:
    """R14: 10-20 characters; digits, upper- and lower-case letters; at least 2 digits and 2 letters;
    neither the digits nor the letters one repeated character."""
    problems = []
    lo, hi = limit("smtp-password-min-length"), limit("smtp-password-max-length")
    if not lo <= len(pw) <= hi:
        problems.append(f"has {len(pw)} characters, needs {lo} to {hi}")
    digits = [c for c in pw if c.isascii() and c.isdigit()]
    letters = [c for c in pw if c.isascii() and c.isalpha()]
    if not any(c.isupper() for c in letters):
        problems.append("needs an upper-case letter")
    if not any(c.islower() for c in letters):
        problems.append("needs a lower-case letter")
    if len(digits) < 2:
        problems.append("needs at least 2 digits")
    elif len(set(digits)) == 1:
        problems.append("its digits are one character repeated")
    if len(letters) < 2:
        problems.append("needs at least 2 letters")
    elif len(set(letters)) == 1:
        problems.append("its letters are one character repeated")
    return problems


@validator("smtp-password")
def _smtp_password(spec, ctx):
    for s in spec.senders:
        if s.smtp_password is None:
            continue
        value, why = s.smtp_password.resolve(ctx.environ)
        path = s.path + ("smtp_password",)
        if why:
            yield Issue(path, f"SMTP password of '{s.address}': {why}", "secret-unresolved")
            continue
        ctx.secrets[("sender", s.address)] = value
        problems = password_problems(value)
        if problems:
            yield Issue(path, f"SMTP password of '{s.address}' (from {s.smtp_password.describe()}) is too weak: "
                        + "; ".join(problems) + " (R14)", "smtp-password")


# --- tags, lists, templates ---------------------------------------------------------------

@validator("tag-unique")
def _tags(spec, ctx):
    yield from _dupes(spec.tags, lambda t: t.name, "tag", "tag-unique", field_name="name")


@validator("list-unique")
def _lists(spec, ctx):
    yield from _dupes(spec.recipient_lists, lambda lst: lst.name, "list name", "list-unique", field_name="name")


@validator("list-alias-unique")
def _aliases(spec, ctx):
    yield from _dupes(spec.recipient_lists, lambda lst: lst.alias_address, "alias address", "list-alias-unique",
                      field_name="alias_address")
    senders = {s.address for s in spec.senders}
    for lst in spec.recipient_lists:
        if lst.alias_address in senders:
            yield Issue(lst.path + ("alias_address",), f"alias address '{lst.alias_address}' is also a sender address; "
                        "an alias must identify the list alone", "list-alias-unique")


@validator("list-rows")
def _list_rows(spec, ctx):
    for lst in spec.recipient_lists:
        if lst.data is not None:
            yield from lst.data.issues


_VARIABLE = re.compile(r"\{([^{}\s]{1,40})\}")


def _variable_issues(text: str, path: tuple, where: str, file: str | None, base: Location | None):
    for m in _VARIABLE.finditer(text):
        if m.group(1) in TEMPLATE_VARIABLES:
            continue
        line = text.count("\n", 0, m.start()) + 1
        col = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
        loc = Location(file, line, col) if file else locate_text(base, m.group(0))
        yield Issue(path, f"{where} uses unknown variable '{{{m.group(1)}}}'; variables are "
                    + ", ".join("{%s}" % v for v in TEMPLATE_VARIABLES) + " (R19)", "template-variable", location=loc)


@validator("template-unique")
def _templates(spec, ctx):
    yield from _dupes(spec.templates, lambda t: t.name, "template", "template-unique", field_name="name")


@validator("template-content")
def _template_content(spec, ctx):
    for t in spec.templates:
        yield from _variable_issues(t.subject, t.path + ("subject",), f"subject of template '{t.name}'", None, t.subject_at)
        if t.body is None and t.body_file is None:
            continue  # neither body nor body_file: the schema reports it
        if t.body is None:
            yield Issue(t.path + ("body_file",), t.body_error or f"cannot read body file {t.body_file} as UTF-8 text",
                        "template-body-file")
            continue
        body_path = t.path + (("body_file",) if t.body_file else ("body",))
        size = len(t.body.encode("utf-8"))
        if size > limit("template-body-bytes"):
            yield Issue(body_path, f"{describe('template-body-bytes')}; '{t.name}' has {size}", "template-body-bytes")
        yield from _variable_issues(t.body, body_path, f"body of template '{t.name}'",
                                    str(t.body_file) if t.body_file else None, t.body_at)
        for m in re.finditer(r"<img\b[^>]*\bsrc\s*=\s*[\"']?(?!https?://)([^\"'\s>]+)", t.body, re.I):
            yield Issue(body_path, f"template '{t.name}' embeds image '{m.group(1)}'; images must be external http(s) URLs (R19)",
                        "template-image", WARNING)


# --- IP allow-list ------------------------------------------------------------------------

_PRIVATE = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]
_NOT_PUBLIC = [ipaddress.ip_network(n) for n in ("127.0.0.0/8", "169.254.0.0/16", "0.0.0.0/8", "::1/128", "fc00::/7", "fe80::/10")]


def parse_allow_entry(entry: str):
    """(first, last) addresses of an IP, a range 'a-b' or a CIDR block; raises ValueError."""
    entry = entry.strip()
    if "-" in entry:
        a, _, b = entry.partition("-")
        first, last = ipaddress.ip_address(a.strip()), ipaddress.ip_address(b.strip())
        if first.version != last.version:
            raise ValueError("both ends of a range must be the same IP version")
        if first > last:
            raise ValueError(f"range starts after it ends ({first} > {last})")
        return first, last
    if "/" in entry:
        net = ipaddress.ip_network(entry, strict=False)
        return net.network_address, net.broadcast_address
    ip = ipaddress.ip_address(entry)
    return ip, ip


@validator("allowlist")
def _allowlist(spec, ctx):
    seen = {}
    for entry, path in spec.allowlist:
        try:
            first, last = parse_allow_entry(entry)
        except ValueError as exc:
            yield Issue(path, f"'{entry}' is not an IP, a range a-b or a CIDR block: {exc}", "allowlist-syntax")
            continue
        for nets, why in ((_PRIVATE, "private"), (_NOT_PUBLIC, "not a public address")):
            hit = next((n for n in nets if n.version == first.version and first <= n.broadcast_address and last >= n.network_address), None)
            if hit:
                yield Issue(path, f"'{entry}' overlaps {why} range {hit}; the allow-list holds public sending IPs only (R28)",
                            "allowlist-private")
                break
        key = (first, last)
        if key in seen:
            yield Issue(path, f"'{entry}' repeats entry {seen[key]}", "allowlist-duplicate", WARNING)
        seen.setdefault(key, entry)


# --- notifications ----------------------------------------------------------------------

@validator("rule-unique")
def _rule_unique(spec, ctx):
    yield from _dupes(spec.rules, lambda r: f"{r.name}' in region '{r.region}", "rule", "rule-unique", field_name="name")


@validator("max-rules-per-region")
def _rules_per_region(spec, ctx):
    per = Counter(r.region for r in spec.rules)
    for r in spec.rules:
        if per[r.region] > limit("max-rules-per-region"):
            yield Issue(r.path, f"{describe('max-rules-per-region')}; region '{r.region}' has {per[r.region]}",
                        "max-rules-per-region")
            per[r.region] = 0  # report once per region


@validator("rule-overlap")
def _rule_overlap(spec, ctx):
    rules = spec.rules
    for i, a in enumerate(rules):
        for b in rules[i + 1:]:
            if a.region != b.region:
                continue
            events = sorted(set(a.events) & set(b.events))
            scope_a = set(a.senders) if a.senders else None
            scope_b = set(b.senders) if b.senders else None
            senders_meet = scope_a is None or scope_b is None or scope_a & scope_b
            if events and senders_meet:
                yield Issue(b.path + ("events",), f"rule '{b.name}' overlaps rule '{a.name}' in region '{a.region}' on "
                            f"{', '.join(events)}; an event may match one rule only (R22)", "rule-overlap")


@validator("rule-endpoints")
def _rule_endpoints(spec, ctx):
    for r in spec.rules:
        seen = set()
        for e in r.endpoints:
            key = (e.kind, e.target)
            if key in seen:
                yield Issue(e.path, f"rule '{r.name}' lists {e.kind} endpoint '{e.target}' twice (R22)", "rule-endpoints")
            seen.add(key)


@validator("notification-sender")
def _notification_senders(spec, ctx):
    senders = {s.address for s in spec.senders}
    for r in spec.rules:
        for i, s in enumerate(r.senders or []):
            if s not in senders:
                yield Issue(r.path + ("senders", i), f"rule '{r.name}' names undeclared sender '{s}'", "notification-sender")
    seen = {}
    for n in spec.notifications:
        if n.scope == "account":
            continue
        if n.scope not in senders:
            yield Issue(n.path + ("sender",), f"notification for undeclared sender '{n.scope}'; declare it under senders:",
                        "notification-sender")
        if n.scope in seen:
            yield Issue(n.path + ("sender",), f"sender '{n.scope}' already has a notification; one per sender (R23)",
                        "notification-sender")
        seen[n.scope] = n


@validator("topics")
def _topics(spec, ctx):
    yield from _dupes(spec.queues, lambda q: q.name, "queue", "queue-unique", field_name="name")
    yield from _dupes(spec.topics, lambda tp: tp.name, "topic", "topic-unique", field_name="name")
    declared = {tp.name for tp in spec.topics}
    for r in spec.rules:
        for e in r.endpoints:
            if e.kind == "topic" and e.target not in declared:
                yield Issue(e.path, f"rule '{r.name}' sends to topic '{e.target}', which has no subscribers in `topics:`; "
                            "its events would be dropped", "topic-ref", WARNING)
    for tp in spec.topics:
        for e in tp.subscriptions:
            yield from _resolve(ctx, e.signing_secret, e.path + ("signing_secret",),
                                f"signing secret of topic '{tp.name}' subscriber {e.target}",
                                ("subscription", tp.name, e.kind, e.target))


@validator("notification-route")
def _notification_route(spec, ctx):
    with_rules = {r.region for r in spec.rules}
    for n in spec.notifications:
        if n.region not in with_rules:
            yield Issue(n.path + ("region",), f"no notification rule in region '{n.region}'; its events would reach no endpoint",
                        "notification-route", WARNING)


# --- other secrets ----------------------------------------------------------------------

def _resolve(ctx, ref, path: tuple, what: str, key: tuple):
    """Resolve one secret reference into ctx.secrets[key], or yield why it cannot be read."""
    if ref is None:
        return
    value, why = ref.resolve(ctx.environ)
    if why:
        yield Issue(path, f"{what}: {why}", "secret-unresolved")
    else:
        ctx.secrets[key] = value


def _is_base64(value: str) -> bool:
    try:
        return bool(base64.b64decode(value.strip(), validate=True))
    except (binascii.Error, ValueError):
        return False


@validator("secrets")
def _other_secrets(spec, ctx):
    """TSIG keys and webhook signing secrets must resolve too (API keys and SMTP passwords above/below)."""
    for b in spec.dns_backends.values():
        yield from _resolve(ctx, b.tsig_secret, b.path + ("tsig", "secret"), f"TSIG secret of DNS backend '{b.name}'",
                            ("tsig", b.name))
        secret = ctx.secrets.get(("tsig", b.name))
        if secret is not None and not _is_base64(secret):
            yield Issue(b.path + ("tsig", "secret"), f"TSIG secret of DNS backend '{b.name}' is not base64 (RFC 8945 "
                        "keys are written in base64, as `tsig-keygen` prints them); generate one with "
                        "`invoke secrets.init` or `tsig-keygen`", "tsig-secret")
    for r in spec.rules:
        for i, e in enumerate(r.endpoints):
            yield from _resolve(ctx, e.signing_secret, e.path + ("signing_secret",),
                                f"signing secret of rule '{r.name}' endpoint {e.target}", ("endpoint", r.region, r.name, i))


# --- service ----------------------------------------------------------------------------

@validator("service-listeners")
def _listeners(spec, ctx):
    declared = {r.id for r in spec.regions}
    seen = {}
    for li in spec.service.listeners:
        if li.region not in declared:
            yield Issue(li.path + ("region",), f"listener for undeclared region '{li.region}'", "region-ref")
        key = (li.host, li.port)
        if key in seen and li.port != 0:  # port 0: any free port
            yield Issue(li.path + ("listen",), f"{li.host}:{li.port} is already used by another listener", "listener-unique")
        seen[key] = li


# --- API keys ---------------------------------------------------------------------------

@validator("api-key")
def _api_keys(spec, ctx):
    yield from _dupes(spec.api_keys, lambda k: k.id, "AccessKeyId", "api-key-unique", field_name="id")
    for k in spec.api_keys:
        if k.secret is None:
            continue
        value, why = k.secret.resolve(ctx.environ)
        if why:
            yield Issue(k.path + ("secret",), f"AccessKey secret of '{k.id}': {why}", "secret-unresolved")
        else:
            ctx.secrets[("api_key", k.id)] = value

