"""The submission listener's settings (config `service.listeners` of kind smtp, `service.limits`, `service.tls`)."""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

TLS_MODES = ("starttls", "implicit", "none")


class SmtpConfigError(Exception):
    """The listener settings cannot work; the message says which setting and why."""


@dataclass(frozen=True)
class SmtpSettings:
    """One listener. A listener is bound to one region (R1)."""

    region: str
    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port (see SmtpServer.port)
    tls_mode: str = "starttls"  # starttls | implicit | none
    hostname: str = "localhost"  # greeting/EHLO name, and the self-signed certificate's name
    cert_file: Path | None = None  # with key_file: a real certificate; else a self-signed one
    key_file: Path | None = None
    self_signed_dir: Path | None = None  # where the self-signed pair is kept (default: state dir /tls)
    max_rcpts: int = 30  # R32: 556 beyond this
    max_message_bytes: int = 15 * 1024 * 1024  # R32: 557 beyond this; advertised as SIZE
    activation_delay_seconds: int = 600  # R15: a new sender may send 10 minutes after creation
    allow_plain_auth_on_loopback: bool = False  # AUTH without TLS, from 127.0.0.0/8 and ::1 only
    timeout_seconds: float = 300  # idle between commands (RFC 5321 4.5.3.2: at least 5 minutes)
    data_timeout_seconds: float = 180  # idle inside DATA: no bytes for this long (RFC 5321: 3 minutes)
    max_connections: int = 1000  # open connections of the process (shared by its SMTP listeners)
    max_connections_per_ip: int = 50  # open connections from one client address
    max_auth_attempts: int = 5  # AUTH commands per connection before 421
    shutdown_grace_seconds: float = 30  # stop() waits this long for submissions in flight
    lookup_cache_seconds: float = 1.0  # reuse a sender's store lookups this long (0: look up every time)

    @classmethod
    def from_mapping(cls, data: dict, *, base_dir: Path | None = None) -> "SmtpSettings":
        """Settings from a config mapping (snake_case keys as the fields; paths relative to base_dir)."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise SmtpConfigError(f"smtp: unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                                  f"known: {', '.join(known)}")
        if "region" not in data:
            raise SmtpConfigError("smtp: 'region' is required (a listener serves one region, R1)")
        values = dict(data)
        for key in ("cert_file", "key_file", "self_signed_dir"):
            if values.get(key) is not None:
                path = Path(values[key])
                values[key] = path if path.is_absolute() or base_dir is None else base_dir / path
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        if self.tls_mode not in TLS_MODES:
            raise SmtpConfigError(f"smtp tls_mode {self.tls_mode!r}: expected one of {', '.join(TLS_MODES)}")
        if (self.cert_file is None) != (self.key_file is None):
            raise SmtpConfigError("smtp cert_file and key_file go together: set both or neither")
        if not 1 <= self.max_rcpts:
            raise SmtpConfigError(f"smtp max_rcpts {self.max_rcpts}: must be at least 1")
        for name in ("timeout_seconds", "data_timeout_seconds"):
            if not getattr(self, name) > 0:
                raise SmtpConfigError(f"smtp {name} {getattr(self, name)}: must be more than 0")
        if not 1 <= self.max_connections_per_ip <= self.max_connections:
            raise SmtpConfigError(f"smtp max_connections_per_ip {self.max_connections_per_ip}: must be 1.."
                                  f"max_connections ({self.max_connections})")
        if self.lookup_cache_seconds < 0:
            raise SmtpConfigError(f"smtp lookup_cache_seconds {self.lookup_cache_seconds}: must not be negative")
        if self.max_message_bytes < 1024:
            raise SmtpConfigError(f"smtp max_message_bytes {self.max_message_bytes}: must be at least 1024")
        if self.tls_mode == "none" and not self.allow_plain_auth_on_loopback:
            raise SmtpConfigError("smtp tls_mode 'none' needs allow_plain_auth_on_loopback: "
                                  "without TLS no client could ever authenticate")
