"""The fixtures the tests under tests/notify/ share (defined in tests/support/notify.py)."""
from tests.support.notify import *  # noqa: F401,F403
