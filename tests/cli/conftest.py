"""The fixtures the tests under tests/cli/ share (defined in tests/support/)."""
from tests.support.cli import key  # noqa: F401
from tests.support.dns import builtin_dns, dns_server, knot_dns, tsig_key  # noqa: F401
