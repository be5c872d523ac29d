"""DKIM signing: dkimpy builds the signature (canonicalisation, header selection, tags); the RSA
operation itself runs in OpenSSL (cryptography). `Signer` signs with each domain's stored key.

dkimpy signs with its own pure-Python RSA: about 8 ms per 2048-bit signature, which would cap
cleanup near 120 messages per second per core. Its sign path looks up two module-level
functions, the PEM parser and the PKCS#1 v1.5 signer; `install()` points them at OpenSSL once.
Verification is left entirely to dkimpy.
"""
from __future__ import annotations

import threading
from functools import lru_cache

import dkim
import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from mailcore.store import Store
from mailcore.store import tables as t
from mailcore.store.crypto import SecretBox

_installed = False
_lock = threading.Lock()
_pure_parse = dkim.parse_pem_private_key
_pure_sign = dkim.RSASSA_PKCS1_v1_5_sign


@lru_cache(maxsize=64)
def _load(pem: bytes):
    return serialization.load_pem_private_key(pem, password=None)


def _parse(pem: bytes):
    key = _load(bytes(pem))
    return key if isinstance(key, rsa.RSAPrivateKey) else _pure_parse(pem)


def _sign(hash_obj, private_key):
    if not isinstance(private_key, rsa.RSAPrivateKey):
        return _pure_sign(hash_obj, private_key)
    digest = hash_obj.digest()
    algorithm = hashes.SHA256() if len(digest) == 32 else hashes.SHA1()
    return private_key.sign(digest, padding.PKCS1v15(), Prehashed(algorithm))


def install() -> None:
    global _installed
    with _lock:
        if not _installed:
            dkim.parse_pem_private_key = _parse
            dkim.RSASSA_PKCS1_v1_5_sign = _sign
            _installed = True


def sign(message: bytes, selector: bytes, domain: bytes, private_pem: bytes, include_headers: list[bytes]) -> bytes:
    """The DKIM-Signature header line(s) for `message` (dkim.sign, with OpenSSL doing the RSA)."""
    install()
    return dkim.sign(message, selector, domain, private_pem, include_headers=include_headers)


class Signer:
    """DKIM signatures with each domain's key (dkimpy); domains without a key are sent unsigned."""

    HEADERS = [b"from", b"to", b"subject", b"date", b"message-id", b"reply-to", b"mime-version", b"content-type"]

    def __init__(self, store: Store, box: SecretBox | None):
        self.store, self.box = store, box
        self._keys: dict[str, tuple[bytes, bytes] | None] = {}

    def key(self, domain: str):
        if domain not in self._keys:
            with self.store.engine.connect() as conn:
                row = conn.execute(sa.select(t.domain_keys.c.dkim_selector, t.domain_keys.c.dkim_private_enc)
                                   .where(t.domain_keys.c.domain == domain)).first()
            if row is None or self.box is None:
                self._keys[domain] = None
            else:
                self._keys[domain] = (row[0].encode(), self.box.decrypt(row[1]).encode())
        return self._keys[domain]

    def sign(self, domain: str, message: bytes) -> bytes:
        key = self.key(domain)
        if key is None:
            return message
        selector, private = key
        return sign(message, selector, domain.encode(), private, self.HEADERS) + message
