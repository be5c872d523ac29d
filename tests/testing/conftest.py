"""The fixtures the tests under tests/testing/ share: the plugin's own (so the plugin is what gets
tested), run on the example account (config/) with its secrets."""
import pytest

from mailcore.testing.pytest_plugin import mailcore_clock, mailcore_factory, mailcore_service  # noqa: F401
from tests.support.api import no_proxy  # noqa: F401
from tests.support.notify import receiver  # noqa: F401
from tests.support.store import EXAMPLE_ENV, ROOT


@pytest.fixture
def mailcore_config():
    return ROOT / "config"


@pytest.fixture
def mailcore_env():
    return dict(EXAMPLE_ENV)
