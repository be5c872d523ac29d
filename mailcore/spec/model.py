"""The desired state of one account, built from the merged config document.

Builders are lenient: an entry the schema already rejected is skipped here, so semantic
validators can still run on everything else and all errors are reported at once.
Every entity keeps `path`, its JSON path in the document, for error locations.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from .files import FileRefused, read_capped
from .issues import Location
from .recipients import RecipientFile, load_recipients
from .secrets import SecretRef, parse_ref
from .source import SourceDoc

DEFAULT_QUOTA = {"daily": 20000, "monthly": 600000, "free_daily": 200}


@dataclass
class RegionSpec:
    id: str
    mx_host: str | None
    spf_include: str | None
    tracking_host: str | None
    path: tuple


@dataclass
class DnsBackendSpec:
    name: str
    kind: str
    settings: dict  # as written: secret fields are references, never values
    path: tuple
    tsig_secret: SecretRef | None = None


@dataclass
class DomainSpec:
    name: str
    region: str
    dns: str
    zone: str | None
    tracking: bool
    ttl_seconds: int | None
    dmarc: str | None
    purpose: str
    path: tuple


@dataclass
class SenderSpec:
    address: str
    type: str
    reply_to: str | None
    smtp_password: SecretRef | None
    path: tuple

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2].lower()


@dataclass
class TagSpec:
    name: str
    description: str
    path: tuple


@dataclass
class RecipientListSpec:
    name: str
    alias_address: str
    description: str
    file: Path
    path: tuple
    data: RecipientFile | None = None


@dataclass
class TemplateSpec:
    name: str
    subject: str
    nick_name: str
    body: str | None  # None when body_file could not be read
    body_file: Path | None
    path: tuple
    body_error: str | None = None  # why body_file was not read (outside the config directory, too large)
    subject_at: Location | None = None  # where the subject's value starts in its YAML file
    body_at: Location | None = None  # where an inline body's value starts

    def content_digest(self) -> str:
        """What an approval is bound to (R20): subject, sender name and body."""
        h = hashlib.sha256()
        for part in (self.subject, self.nick_name, self.body or ""):
            h.update(part.encode())
            h.update(b"\x00")
        return h.hexdigest()


@dataclass
class EndpointSpec:
    kind: str
    target: str  # url for http, name for queue/topic
    signing_secret: SecretRef | None
    path: tuple


@dataclass
class RuleSpec:
    name: str
    region: str
    events: list[str]
    senders: list[str] | None
    endpoints: list[EndpointSpec]
    path: tuple


@dataclass
class QueueSpec:
    name: str
    settings: dict  # the QUEUE_SETTINGS fields given in config (others keep their defaults)
    path: tuple


@dataclass
class TopicSpec:
    name: str
    subscriptions: list[EndpointSpec]
    path: tuple


@dataclass
class NotificationSpec:
    scope: str  # "account" or a sender address
    region: str
    path: tuple


@dataclass
class ApiKeySpec:
    id: str
    secret: SecretRef | None
    description: str
    enabled: bool
    path: tuple


@dataclass
class ListenerSpec:
    region: str
    kind: str  # smtp | api
    host: str
    port: int
    tls: str  # smtp: starttls | implicit | none; api, queues: implicit (HTTPS) | none
    allow_plain_auth_on_loopback: bool
    path: tuple
    base_url: str | None = None  # api: where links in mail point (else service.base_url, else the listener)


@dataclass
class ServiceSpec:
    """How `invoke serve` runs (not stored): listeners and the settings of each stage."""

    hostname: str = "localhost"
    listeners: list[ListenerSpec] = field(default_factory=list)
    cert_file: Path | None = None
    key_file: Path | None = None
    limits: dict = field(default_factory=dict)
    delivery: dict = field(default_factory=dict)
    queue: dict = field(default_factory=dict)
    cleanup: dict = field(default_factory=dict)
    base_url: str | None = None  # links in mail (reply-to confirmation), for API listeners without their own
    allow_private_targets: bool = False  # notifications_allow_private_targets: webhooks on loopback/private hosts


@dataclass
class AccountSpec:
    root: Path
    name: str | None = None
    status: str = "active"
    timezone: str = "Asia/Shanghai"
    quota: dict = field(default_factory=lambda: dict(DEFAULT_QUOTA))
    regions: list[RegionSpec] = field(default_factory=list)
    dns_backends: dict[str, DnsBackendSpec] = field(default_factory=dict)
    domains: list[DomainSpec] = field(default_factory=list)
    senders: list[SenderSpec] = field(default_factory=list)
    tags: list[TagSpec] = field(default_factory=list)
    recipient_lists: list[RecipientListSpec] = field(default_factory=list)
    templates: list[TemplateSpec] = field(default_factory=list)
    allowlist_enabled: bool = False
    allowlist: list[tuple[str, tuple]] = field(default_factory=list)  # (entry, path)
    rules: list[RuleSpec] = field(default_factory=list)
    notifications: list[NotificationSpec] = field(default_factory=list)
    api_keys: list[ApiKeySpec] = field(default_factory=list)
    service: ServiceSpec = field(default_factory=ServiceSpec)
    queues: list[QueueSpec] = field(default_factory=list)
    topics: list[TopicSpec] = field(default_factory=list)


def _items(data: dict, key: str):
    value = data.get(key)
    if not isinstance(value, list):
        return
    for i, item in enumerate(value):
        if isinstance(item, dict):
            yield (key, i), item


def _str(item: dict, key: str, default=None):
    v = item.get(key, default)
    return v if isinstance(v, str) else default


def build_spec(doc: SourceDoc, environ=None) -> AccountSpec:
    """`environ` holds MAILCORE_ALLOW_OUTSIDE_CONFIG (mailcore.spec.files); default os.environ."""
    data = doc.data
    spec = AccountSpec(root=doc.root)
    account = data.get("account")
    if isinstance(account, dict):
        spec.name = _str(account, "name")
        spec.status = _str(account, "status", "active")
        spec.timezone = _str(account, "timezone", "Asia/Shanghai")
        quota = account.get("quota")
        if isinstance(quota, dict):
            spec.quota.update({k: v for k, v in quota.items() if isinstance(v, int) and k in DEFAULT_QUOTA})

    for path, r in _items(data, "regions"):
        if _str(r, "id"):
            spec.regions.append(RegionSpec(r["id"], _str(r, "mx_host"), _str(r, "spf_include"), _str(r, "tracking_host"), path))

    backends = data.get("dns_backends")
    if isinstance(backends, dict):
        for name, b in backends.items():
            if isinstance(b, dict) and _str(b, "kind"):
                settings = {k: v for k, v in b.items() if k != "kind"}
                tsig = b.get("tsig") if isinstance(b.get("tsig"), dict) else {}
                base = Path(doc.locate(("dns_backends", name)).file).parent
                spec.dns_backends[name] = DnsBackendSpec(name, b["kind"], settings, ("dns_backends", name),
                                                         parse_ref(tsig.get("secret"), base, doc.root))

    for path, d in _items(data, "domains"):
        if _str(d, "name") and _str(d, "region"):
            spec.domains.append(DomainSpec(
                d["name"].lower().rstrip("."), d["region"], _str(d, "dns", ""), (_str(d, "zone") or "").lower().rstrip(".") or None,
                d.get("tracking") is True, d.get("ttl_seconds") if isinstance(d.get("ttl_seconds"), int) else None,
                _str(d, "dmarc"), _str(d, "purpose", "mixed"), path))

    for path, s in _items(data, "senders"):
        if _str(s, "address") and s.get("type") in ("trigger", "batch"):
            base = doc.locate(path)
            ref = parse_ref(s.get("smtp_password"), Path(base.file).parent, doc.root)
            spec.senders.append(SenderSpec(s["address"].lower(), s["type"], _str(s, "reply_to"), ref, path))

    for path, t in _items(data, "tags"):
        if _str(t, "name"):
            spec.tags.append(TagSpec(t["name"], _str(t, "description", ""), path))

    for path, lst in _items(data, "recipient_lists"):
        if _str(lst, "name") and _str(lst, "alias_address") and _str(lst, "file"):
            file = Path(doc.locate(path).file).parent / lst["file"]
            item = RecipientListSpec(lst["name"], lst["alias_address"].lower(), _str(lst, "description", ""), file, path)
            item.data = load_recipients(file, path, root=doc.root, environ=environ)
            spec.recipient_lists.append(item)

    for path, t in _items(data, "templates"):
        if not (_str(t, "name") and _str(t, "subject")):
            continue
        body, body_file, body_error = _str(t, "body"), None, None
        if _str(t, "body_file"):
            body_file = Path(doc.locate(path).file).parent / t["body_file"]
            try:
                body = read_capped(body_file, "template", doc.root, environ).decode("utf-8")
            except FileRefused as exc:
                body, body_error = None, str(exc)  # reported by the template-body validator
            except (OSError, UnicodeDecodeError):
                body = None
        spec.templates.append(TemplateSpec(t["name"], t["subject"], _str(t, "nick_name", ""), body, body_file, path,
                                           body_error, doc.value_at.get(path + ("subject",)),
                                           None if body_file else doc.value_at.get(path + ("body",))))

    allow = data.get("ip_allowlist")
    if isinstance(allow, dict):
        spec.allowlist_enabled = allow.get("enabled") is True
        entries = allow.get("entries")
        if isinstance(entries, list):
            spec.allowlist = [(e, ("ip_allowlist", "entries", i)) for i, e in enumerate(entries) if isinstance(e, str)]

    for path, r in _items(data, "notification_rules"):
        if not (_str(r, "name") and _str(r, "region") and isinstance(r.get("events"), list)):
            continue
        endpoints = []
        for i, e in enumerate(r.get("endpoints") or []):
            if isinstance(e, dict) and e.get("kind") in ("http", "queue", "topic"):
                target = _str(e, "url") if e["kind"] == "http" else _str(e, "name")
                if target:
                    base = Path(doc.locate(path).file).parent
                    endpoints.append(EndpointSpec(e["kind"], target, parse_ref(e.get("signing_secret"), base, doc.root), path + ("endpoints", i)))
        senders = r.get("senders")
        spec.rules.append(RuleSpec(r["name"], r["region"], [e for e in r["events"] if isinstance(e, str)],
                                   [s.lower() for s in senders if isinstance(s, str)] if isinstance(senders, list) else None,
                                   endpoints, path))

    notif = data.get("notifications")
    if isinstance(notif, dict):
        acct = notif.get("account")
        if isinstance(acct, dict) and _str(acct, "region"):
            spec.notifications.append(NotificationSpec("account", acct["region"], ("notifications", "account")))
        for i, s in enumerate(notif.get("senders") or []):
            if isinstance(s, dict) and _str(s, "sender") and _str(s, "region"):
                spec.notifications.append(NotificationSpec(s["sender"].lower(), s["region"], ("notifications", "senders", i)))

    for path, k in _items(data, "api_keys"):
        if _str(k, "id"):
            base = Path(doc.locate(path).file).parent
            spec.api_keys.append(ApiKeySpec(k["id"], parse_ref(k.get("secret"), base, doc.root), _str(k, "description", ""),
                                            k.get("enabled", True) is not False, path))
    for path, q in _items(data, "queues"):
        if _str(q, "name"):
            spec.queues.append(QueueSpec(q["name"], {k: v for k, v in q.items() if k != "name"}, path))
    for path, tp in _items(data, "topics"):
        if not _str(tp, "name"):
            continue
        base = Path(doc.locate(path).file).parent
        subs = []
        for i, e in enumerate(tp.get("subscriptions") or []):
            if isinstance(e, dict) and e.get("kind") in ("http", "queue"):
                target = _str(e, "url") if e["kind"] == "http" else _str(e, "name")
                if target:
                    subs.append(EndpointSpec(e["kind"], target, parse_ref(e.get("signing_secret"), base, doc.root),
                                             path + ("subscriptions", i)))
        spec.topics.append(TopicSpec(tp["name"], subs, path))
    svc = data.get("service")
    if isinstance(svc, dict):
        spec.service = _service(svc, doc)
    return spec


def _service(svc: dict, doc: SourceDoc) -> ServiceSpec:
    out = ServiceSpec(hostname=_str(svc, "hostname", "localhost"),
                      allow_private_targets=svc.get("notifications_allow_private_targets") is True)
    for path, item in _items(svc, "listeners"):
        path = ("service",) + path
        listen = _str(item, "listen", "")
        host, _, port = listen.rpartition(":")
        if item.get("kind") in ("smtp", "api", "queues") and _str(item, "region") and port.isdigit():
            out.listeners.append(ListenerSpec(item["region"], item["kind"], host.strip("[]"), int(port),
                                              _str(item, "tls", "starttls" if item["kind"] == "smtp" else "none"),
                                              item.get("allow_plain_auth_on_loopback") is True, path,
                                              base_url=_str(item, "base_url") or None))
    out.base_url = _str(svc, "base_url") or None
    tls = svc.get("tls")
    if isinstance(tls, dict) and _str(tls, "cert_file") and _str(tls, "key_file"):
        base = Path(doc.locate(("service",)).file).parent
        out.cert_file, out.key_file = base / tls["cert_file"], base / tls["key_file"]
    for key in ("limits", "delivery", "queue", "cleanup"):
        if isinstance(svc.get(key), dict):
            setattr(out, key, dict(svc[key]))
    return out
