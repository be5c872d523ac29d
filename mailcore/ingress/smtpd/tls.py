"""TLS for the submission listeners: a self-signed certificate for local use, and server contexts.

Production installs point the listener at a real certificate; a developer running `invoke serve`
or a test needs one that exists without asking anyone, so `ensure_self_signed` writes one (an
ECDSA P-256 key, fast to handshake) the first time and reuses it until it nears expiry. Clients
that want to verify it load the certificate file as their CA.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALID_DAYS = 365
RENEW_BEFORE = dt.timedelta(days=7)


class TlsError(Exception):
    """A certificate or key cannot be loaded; the message names the file and what is wrong."""


def self_signed_certificate(hostname: str = "localhost", *, valid_days: int = VALID_DAYS,
                            now: dt.datetime | None = None) -> tuple[bytes, bytes]:
    """(certificate PEM, private key PEM) for `hostname`, also valid for localhost, 127.0.0.1 and ::1."""
    now = now or dt.datetime.now(dt.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mailcore local")])
    dns_names = list(dict.fromkeys([hostname, "localhost"]))
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ("127.0.0.1", "::1")]
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=valid_days))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def ensure_self_signed(directory: Path, hostname: str = "localhost", *,
                       now: dt.datetime | None = None) -> tuple[Path, Path]:
    """(cert file, key file) under `directory`: reused while valid for another week, else rewritten."""
    now = now or dt.datetime.now(dt.timezone.utc)
    directory = Path(directory)
    cert_file, key_file = directory / "smtpd-selfsigned.crt", directory / "smtpd-selfsigned.key"
    if cert_file.exists() and key_file.exists():
        try:
            cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
            if cert.not_valid_after_utc - RENEW_BEFORE > now and _names(cert) >= {hostname}:
                return cert_file, key_file
        except ValueError:
            pass  # unreadable: write a fresh one
    cert_pem, key_pem = self_signed_certificate(hostname, now=now)
    directory.mkdir(parents=True, exist_ok=True)
    cert_file.write_bytes(cert_pem)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key_pem)
    return cert_file, key_file


def _names(cert: x509.Certificate) -> set[str]:
    try:
        return set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        return set()


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A server-side context (TLS 1.2 or newer) with the given certificate chain."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(cert_file), str(key_file))
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(f"cannot load TLS certificate {cert_file} with key {key_file}: {exc}") from None
    return ctx
