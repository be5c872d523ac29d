"""The fixtures the tests under tests/delivery/ share (defined in tests/support/harness.py)."""
from tests.support.harness import *  # noqa: F401,F403
from tests.support.serve import mailcore_service  # noqa: F401
from tests.support.world import world  # noqa: F401
