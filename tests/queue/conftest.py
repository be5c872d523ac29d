"""The fixtures the tests under tests/queue/ share (defined in tests/support/)."""
from tests.support.world import world  # noqa: F401
