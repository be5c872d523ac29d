"""The fixtures the tests under tests/queue/ share (defined in tests/support/)."""
from tests.support.flow import clock, flow  # noqa: F401
from tests.support.world import world  # noqa: F401
