"""The fixtures the tests under tests/harness/ share (defined in tests/support/harness.py)."""
from tests.support.harness import *  # noqa: F401,F403
