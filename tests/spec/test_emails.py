"""The fast-path pattern in mailcore/spec/emails.py must accept only what email-validator accepts.

`_plain` answers "valid" without asking the library; if it ever says True for an address the
library rejects, recipient lists accept addresses the single-address path refuses. The
generator is seeded, so a failure prints the same counterexamples on every run.
"""
from __future__ import annotations

import random
import string
from functools import lru_cache

import pytest
from email_validator import EmailNotValidError, validate_email

from mailcore.spec.emails import _plain, email_error

SEED = 20240601
COUNT = 30_000

LOCAL_ASCII = string.ascii_letters + string.digits + "._%+-"
LOCAL_SPECIAL = "!#$&'*/=?^`{|}~\"(),:;<>@[\\] \t"
UNICODE = "äéñøßçüÅΩжд中文日本語한국ℌﬁ\u200b\u00a0\u0301"
LABEL_CHARS = string.ascii_lowercase + string.digits + "-"
TLDS = ["com", "org", "net", "cn", "co", "io", "example", "museum", "COM", "Org",
        "test", "local", "localhost", "invalid", "onion", "arpa", "home.arpa", "example",  # special-use
        "c", "x1", "123", "c0m", "xn--p1ai", "xn--zz", "XN--FIQS8S", "co-op", "a" * 63, "a" * 64]


def _local(rng: random.Random) -> str:
    kind = rng.random()
    n = rng.choice([1, 2, 5, 10, 20, 63, 64, 65, 70])
    if kind < 0.7:
        s = "".join(rng.choice(LOCAL_ASCII) for _ in range(n))
    elif kind < 0.85:
        s = "".join(rng.choice(LOCAL_ASCII + LOCAL_SPECIAL) for _ in range(n))
    else:
        s = "".join(rng.choice(LOCAL_ASCII + UNICODE) for _ in range(n))
    r = rng.random()
    if r < 0.1:
        s = "." + s
    elif r < 0.2:
        s = s + "."
    elif r < 0.3 and len(s) > 2:
        i = rng.randrange(1, len(s) - 1)
        s = s[:i] + ".." + s[i:]
    return s


def _label(rng: random.Random) -> str:
    r = rng.random()
    n = rng.choice([1, 2, 3, 4, 8, 20, 62, 63, 64])
    s = "".join(rng.choice(LABEL_CHARS) for _ in range(n))
    if r < 0.08:
        s = s[:2] + "--" + s[2:]  # R-LDH: two characters then '--' (only xn-- is allowed)
    elif r < 0.12:
        s = "xn--" + s
    elif r < 0.16:
        s = s + "-"
    elif r < 0.2:
        s = "-" + s
    elif r < 0.25:
        s = s.upper()
    elif r < 0.3:
        s = s + rng.choice("_é中 ")
    return s


def _domain(rng: random.Random) -> str:
    labels = [_label(rng) for _ in range(rng.choice([0, 1, 1, 2, 3]))]
    return ".".join(labels + [rng.choice(TLDS)])


def _address(rng: random.Random) -> str:
    a = f"{_local(rng)}@{_domain(rng)}"
    if rng.random() < 0.1:  # push the total length near the 254 limit
        domain = a.rpartition("@")[2]
        pad = max(0, rng.choice([250, 253, 254, 255, 256]) - len(a))
        while pad > 1:
            chunk = min(pad - 1, 63)
            domain = "".join(rng.choice(string.ascii_lowercase) for _ in range(chunk)) + "." + domain
            pad -= chunk + 1
        a = a.rpartition("@")[0] + "@" + domain
    return a


@lru_cache(maxsize=None)
def generated(count: int = COUNT, seed: int = SEED) -> tuple[str, ...]:
    rng = random.Random(seed)
    return tuple(_address(rng) for _ in range(count))


def _library_accepts(address: str) -> bool:
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


EDGES = [
    "a" * 64 + "@example.com",
    "a" * 65 + "@example.com",
    "a@" + "b" * 63 + ".com",
    "a@" + "b" * 64 + ".com",
    "x" * 64 + "@" + ".".join(["c" * 61] * 3) + ".com",  # 254 characters
    "x" * 64 + "@" + ".".join(["c" * 61] * 3) + ".comx",  # 255 characters
    "A_B%C+D-E@Example.COM",
    "first.last@mail.example.com",
    "a..b@example.com", ".a@example.com", "a.@example.com",
    "a@example.c", "a@example.co", "a@-example.com", "a@example-.com", "a@ex_ample.com",
    "a@example.test", "a@x.local", "a@sub.localhost", "a@example.invalid", "a@x.onion", "a@1.in-addr.arpa",
    "a@ab--cd.example.com", "a@mail.ab--x.com", "a@12--x.com", "a@xn--zz.example.com", "a@xn--a.com",
    "a@xn--p1ai.com", "a@XN--P1AI.com",
    "ünïcode@example.com", "a@exämple.com", "a b@example.com", '"a b"@example.com', "a@[192.0.2.1]",
]


@pytest.mark.parametrize("address", EDGES)
def test_fast_path_is_subset_on_edges(address):
    if _plain(address):
        assert _library_accepts(address), f"_plain accepts {address!r} but email-validator rejects it"


def test_fast_path_is_subset_on_generated_addresses():
    addresses = generated()
    plain = [a for a in addresses if _plain(a)]
    # the generator must exercise both sides of the pattern, or this test proves nothing
    assert len(plain) > COUNT // 25, len(plain)
    assert len(addresses) - len(plain) > COUNT // 2
    wrong = sorted({a for a in plain if not _library_accepts(a)}, key=len)
    assert wrong == [], f"{len(wrong)} addresses pass _plain but fail email-validator, e.g. {wrong[:5]}"


def test_generator_reaches_the_length_limits():
    addresses = generated()
    lengths = {len(a) for a in addresses}
    locals_ = {len(a.rpartition("@")[0]) for a in addresses}
    assert {254, 255} <= lengths
    assert {64, 65} <= locals_


def test_email_error_agrees_with_library():
    """email_error is None exactly when email-validator accepts the address (fast path or not)."""
    for address in generated(5_000, SEED + 1) + tuple(EDGES):
        assert (email_error(address) is None) == _library_accepts(address), address


def test_special_use_domains_rejected_unless_allowed():
    assert email_error("a@example.test") is not None
    assert email_error("a@example.test", allow_special_use=True) is None
    assert email_error("a@x.local") is not None


@pytest.mark.parametrize("address, accepted", [
    ("rcpt@dest.test", True), ("rcpt@sub.example.test", True),  # RFC 6761 testing names: the fake MX's world
    ("rcpt@x.local", False), ("rcpt@sub.localhost", False), ("rcpt@example.invalid", False), ("rcpt@x.onion", False),
])
def test_ingress_accepts_test_names_but_no_other_special_use_domain(address, accepted):
    from mailcore.spec.emails import address_error
    assert (address_error(address) is None) is accepted
