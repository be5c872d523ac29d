"""Webhook targets (validate time): an http endpoint whose URL names a loopback, link-local (cloud
metadata), private or otherwise non-public address literal, or a localhost name, is refused unless
`service.notifications_allow_private_targets` is true. Host names are checked again after DNS
resolution on every delivery (mailcore.notify.http), which also covers DNS rebinding.
"""
from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from .issues import Issue
from .validators import validator

LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")

# the first property an address has decides why it is refused; anything not global is refused
# (mailcore.notify.http checks resolved addresses with the same table, through non_public)
NON_PUBLIC: tuple[tuple[str, str], ...] = (
    ("is_loopback", "loopback"),
    ("is_link_local", "link-local (cloud metadata services live here)"),
    ("is_unspecified", "unspecified"),
    ("is_multicast", "multicast"),
    ("is_reserved", "reserved"),
    ("is_private", "private"),
)


def target_problem(url: str) -> str | None:
    """Why the notifier would refuse `url` by its literal host, or None."""
    try:
        host = urlsplit(url).hostname
    except ValueError as exc:
        return f"not a URL ({exc})"
    if not host:
        return "the URL has no host"
    host = host.rstrip(".").lower()
    if host in LOCAL_NAMES or host.endswith(".localhost"):
        return f"'{host}' is loopback"
    try:
        why = non_public(host)
    except ValueError:
        return None  # a name: checked after resolution at delivery time
    return f"{_ip(host)} is {why}" if why else None


def _ip(address: str):
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else ip


def non_public(address: str) -> str | None:
    """Why no webhook may go to `address` (an IP literal; ValueError otherwise), or None when it is public."""
    ip = _ip(address)
    for attr, why in NON_PUBLIC:
        if getattr(ip, attr):
            return why
    return None if ip.is_global else "not globally routable"


@validator("webhook-target")
def _webhook_targets(spec, ctx):
    if spec.service.allow_private_targets:
        return
    owned = [(e, f"rule '{r.name}'") for r in spec.rules for e in r.endpoints]
    owned += [(e, f"topic '{tp.name}'") for tp in spec.topics for e in tp.subscriptions]
    for e, owner in owned:
        if e.kind != "http":
            continue
        why = target_problem(e.target)
        if why:
            yield Issue(e.path + ("url",), f"{owner} posts to {e.target}: {why}; webhooks go to public addresses only "
                        "(set service.notifications_allow_private_targets: true for local testing)", "webhook-target")
