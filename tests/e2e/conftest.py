"""The fixtures the tests under tests/e2e/ share (defined in tests/support/)."""
from tests.support.world import world  # noqa: F401
