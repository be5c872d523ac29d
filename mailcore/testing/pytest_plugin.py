"""pytest fixtures that run the mail core; load with ``pytest -p mailcore.testing.pytest_plugin`` or
``pytest_plugins = ["mailcore.testing.pytest_plugin"]`` (this also loads the fake MX fixtures of
``mailcore.harness.pytest_plugin``: ``fake_mx``, ``fake_mx_factory``, ``fake_mx_clock``, ``mail_world``).

* ``mailcore_config``: the config directory. Override this fixture, or set the ini option
  ``mailcore_config`` (relative to the rootdir), or ``MAILCORE_CONFIG``.
* ``mailcore_env``: values for the config's ``{env: NAME}`` secrets (default: none; the process
  environment is read too). Override it to give the test senders' passwords.
* ``mailcore_clock``: the :class:`~mailcore.testing.running.VirtualClock` qmgr and the notifier read;
  ``mailcore_clock.advance(300)`` runs the retry schedule 300 s on.
* ``mailcore_service``: a started :class:`~mailcore.testing.running.MailcoreRunner` for
  ``mailcore_config``: ``smtp_host``/``smtp_port``, ``passwords``, ``api_endpoint``,
  ``access_key_id``/``access_key_secret``, ``sdk_client()``, ``fake_mx``, ``wait_for_delivery``,
  ``expect_outcome``, ``events``, ``assert_event``, ``advance``; stopped after the test.
* ``mailcore_factory``: ``mailcore_factory(config_dir, env=None, **options)`` starts more (another
  config, ``smtp_tls="starttls"``, a fake MX ``scenario``); all stopped after the test.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from .running import MailcoreRunner, VirtualClock

pytest_plugins = ["mailcore.harness.pytest_plugin"]


def pytest_addoption(parser):
    parser.addini("mailcore_config", "the config directory mailcore_service runs (relative to the rootdir)")


@pytest.fixture
def mailcore_config(request) -> Path:
    value = request.config.getini("mailcore_config")
    if value:
        return Path(request.config.rootpath) / value
    if os.environ.get("MAILCORE_CONFIG"):
        return Path(os.environ["MAILCORE_CONFIG"])
    pytest.fail("mailcore_service needs a config directory: override the `mailcore_config` fixture, set the "
                "`mailcore_config` ini option or MAILCORE_CONFIG", pytrace=False)


@pytest.fixture
def mailcore_env() -> dict:
    return {}


@pytest.fixture
def mailcore_clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def mailcore_factory(tmp_path_factory, mailcore_clock):
    started: list[MailcoreRunner] = []

    def make(config_dir, env: dict | None = None, **options) -> MailcoreRunner:
        options.setdefault("clock", mailcore_clock if not started else VirtualClock())
        runner = MailcoreRunner(config_dir, tmp_path_factory.mktemp("mailcore"), env=env, **options)
        runner.start()
        started.append(runner)
        return runner

    yield make
    for runner in reversed(started):
        runner.stop()


@pytest.fixture
def mailcore_service(mailcore_factory, mailcore_config, mailcore_env) -> MailcoreRunner:
    return mailcore_factory(mailcore_config, env=mailcore_env)
