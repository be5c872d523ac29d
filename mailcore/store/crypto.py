"""Secrets at rest.

- SMTP passwords are only ever verified: kept as salted scrypt hashes (n=2**14, r=8, p=1).
  So that `plan` need not run a slow hash per sender, each also has a fingerprint: HMAC-SHA256
  under a key derived from the master key; without the master key it reveals nothing.
- AccessKey secrets (and webhook signing secrets) must be recovered to compute HMAC signatures:
  they are encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under a key derived from the master key.

The master key is `MAILCORE_MASTER_KEY`: 32 random bytes, URL-safe base64 (`invoke keys.generate`
prints one). It lives outside git and outside the store (environment, secret manager).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets as _secrets
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MASTER_KEY_ENV = "MAILCORE_MASTER_KEY"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


class MasterKeyError(Exception):
    """The master key is missing or malformed."""


def generate_master_key() -> str:
    return base64.urlsafe_b64encode(_secrets.token_bytes(32)).decode()


@lru_cache(maxsize=4)
def _subkeys(master: str) -> tuple[bytes, bytes]:
    try:
        raw = base64.urlsafe_b64decode(master.encode())
    except (ValueError, TypeError) as exc:
        raise MasterKeyError(f"{MASTER_KEY_ENV} is not URL-safe base64 ({exc}); generate one with `mailcore keys generate` (or `invoke keys.generate`)") from None
    if len(raw) != 32:
        raise MasterKeyError(f"{MASTER_KEY_ENV} must decode to 32 bytes, got {len(raw)}; generate one with `mailcore keys generate` (or `invoke keys.generate`)")

    def derive(info: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(raw)

    return derive(b"mailcore fernet v1"), derive(b"mailcore fingerprint v1")


class SecretBox:
    """Encryption and fingerprints under the master key."""

    def __init__(self, master_key: str):
        self._master_key = master_key
        enc, fp = _subkeys(master_key)
        self._fernet = Fernet(base64.urlsafe_b64encode(enc))
        self._fp = fp

    def __reduce__(self):
        # pickled by its key, for the cleanup process (mailcore.cleanup.process) over its private socket
        return (SecretBox, (self._master_key,))

    @classmethod
    def from_env(cls, environ=os.environ) -> "SecretBox":
        key = environ.get(MASTER_KEY_ENV)
        if not key:
            raise MasterKeyError(f"{MASTER_KEY_ENV} is not set; generate one with `mailcore keys generate` (or `invoke keys.generate`), keep it outside git, "
                                 "and export it (or put it in .env)")
        return cls(key)

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise MasterKeyError(f"cannot decrypt a stored secret: {MASTER_KEY_ENV} differs from the key it was "
                                 "encrypted with") from None

    def derived_secret(self, purpose: str) -> str:
        """A stable secret for another tool (e.g. the Pulumi state passphrase), derived from the master key."""
        return hmac.new(self._fp, f"derived\x00{purpose}".encode(), hashlib.sha256).hexdigest()

    def fingerprint(self, purpose: str, value: str) -> str:
        return hmac.new(self._fp, f"{purpose}\x00{value}".encode(), hashlib.sha256).hexdigest()


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return "scrypt$%d$%d$%d$%s$%s" % (_SCRYPT["n"], _SCRYPT["r"], _SCRYPT["p"],
                                      base64.b64encode(salt).decode(), base64.b64encode(digest).decode())


def verify_password(password: str, stored: str | None) -> bool:
    if not stored:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    expected = base64.b64decode(digest)
    actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected))
    return hmac.compare_digest(actual, expected)
