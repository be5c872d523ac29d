"""The fixtures the tests under tests/ingress/api/ share (defined in tests/support/api.py)."""
from tests.support.api import *  # noqa: F401,F403
