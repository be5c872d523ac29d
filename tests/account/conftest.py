"""The fixtures the tests under tests/account/ share (defined in tests/support/api.py)."""
from tests.support.api import *  # noqa: F401,F403
