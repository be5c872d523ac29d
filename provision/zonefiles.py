"""Zone files of the built-in DNS server: where each zone lives, a new zone's SOA and NS, and atomic load and save."""
from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import dns.exception
import dns.zone

ZONE_SUFFIX = ".zone"


DEFAULT_SOA_TIMERS = (3600, 600, 1209600, 300)  # refresh retry expire minimum


class ZoneLoadError(Exception):
    """A zone file could not be read; the message names the file."""


def zone_path(zone_dir: Path | str, zone: str) -> Path:
    return Path(zone_dir) / (zone.lower().rstrip(".") + ZONE_SUFFIX)


def create_zone_file(zone_dir: Path | str, zone: str, *, ns_host: str | None = None,
                     ns_address: str = "127.0.0.1", serial: int = 1, ttl: int = 3600) -> Path:
    """Write a new zone file holding only SOA, NS and the name server's A record.

    The name server defaults to ``ns1.<zone>`` so the zone is self-contained (glue in-zone).
    Refuses to overwrite an existing file: zones carry state.
    """
    origin = zone.lower().rstrip(".") + "."
    ns = (ns_host or f"ns1.{origin}").lower()
    ns = ns if ns.endswith(".") else ns + "."
    path = zone_path(zone_dir, zone)
    if path.exists():
        raise FileExistsError(f"zone file {path} already exists")
    refresh, retry, expire, minimum = DEFAULT_SOA_TIMERS
    lines = [
        f"$ORIGIN {origin}",
        f"$TTL {ttl}",
        f"@ IN SOA {ns} hostmaster.{origin} {serial} {refresh} {retry} {expire} {minimum}",
        f"@ IN NS {ns}",
    ]
    if ns.endswith("." + origin) or ns == origin:
        lines.append(f"{ns} IN A {ns_address}")
    Path(zone_dir).mkdir(parents=True, exist_ok=True)
    _atomic_write(path, "\n".join(lines) + "\n")
    return path


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def load_zone(path: Path) -> dns.zone.Zone:
    origin = path.name[: -len(ZONE_SUFFIX)] + "."
    try:
        return dns.zone.from_file(str(path), origin=origin, relativize=False, check_origin=True)
    except (OSError, dns.exception.DNSException) as e:
        raise ZoneLoadError(f"cannot load zone file {path}: {e}") from None


def save_zone(zone: dns.zone.Zone, path: Path) -> None:
    buf = io.StringIO()
    zone.to_file(buf, sorted=True, relativize=False, want_origin=True)
    _atomic_write(path, buf.getvalue())
