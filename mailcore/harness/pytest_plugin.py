"""pytest fixtures for the fake MX; load with ``pytest -p mailcore.harness.pytest_plugin``.

* ``fake_mx_clock``: a :class:`~mailcore.harness.ManualClock` (rate limits move only when the test
  calls ``advance``).
* ``fake_mx``: a started :class:`~mailcore.harness.FakeMX` on 127.0.0.1 with STARTTLS and the HTTP
  endpoint, using ``fake_mx_clock``; stopped after the test.
* ``fake_mx_factory``: ``fake_mx_factory(scenario=None, **kwargs)`` starts more (a second MX that
  rejects at connect, one from a scenario file given as a path or a dict); all stopped after the test.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from .scenario import Scenario
from .server import FakeMX, ManualClock


@pytest.fixture
def fake_mx_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def fake_mx_factory(fake_mx_clock):
    started: list[FakeMX] = []

    def make(scenario: Scenario | dict | str | Path | None = None, **kwargs) -> FakeMX:
        if isinstance(scenario, dict):
            scenario = Scenario.from_dict(scenario)
        elif isinstance(scenario, (str, Path)):
            scenario = Scenario.from_yaml(scenario)
        kwargs.setdefault("clock", fake_mx_clock)
        kwargs.setdefault("http", True)
        mx = FakeMX(scenario, **kwargs).start()
        started.append(mx)
        return mx

    yield make
    for mx in started:
        mx.stop()


@pytest.fixture
def fake_mx(fake_mx_factory) -> FakeMX:
    return fake_mx_factory()
