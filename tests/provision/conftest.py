"""The fixtures the tests under tests/provision/ share (defined in tests/support/dns.py)."""
from tests.support.dns import *  # noqa: F401,F403
