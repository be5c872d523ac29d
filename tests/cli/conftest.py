"""The fixtures the tests under tests/cli/ share (defined in tests/support/)."""
from tests.support.cli import key  # noqa: F401
from tests.support.dns import bind_dns, builtin_dns, dns_server, knot_dns, pulumi_bin, tsig_key  # noqa: F401
