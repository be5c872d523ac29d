"""The fixtures the tests under tests/e2e/ share (defined in tests/support/)."""
from tests.support.pipeline import pipeline  # noqa: F401
from tests.support.serve import mailcore_service  # noqa: F401
from tests.support.world import world  # noqa: F401
