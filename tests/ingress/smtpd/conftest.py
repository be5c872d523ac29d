"""The fixtures the tests under tests/ingress/smtpd/ share (defined in tests/support/smtpd.py)."""
from tests.support.smtpd import *  # noqa: F401,F403
