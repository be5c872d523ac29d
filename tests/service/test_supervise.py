"""The stages' supervisor (issue 11): a loop that dies is logged at once with its traceback and
started again after a capped, doubling backoff; a loop that ran long enough starts the backoff over;
stopping the service ends it."""
from __future__ import annotations

import asyncio
import logging

from mailcore.service import supervise


def test_a_crashing_loop_is_logged_at_once_and_restarted_with_a_capped_backoff(caplog):
    runs, waits, now = [], [], [0.0]
    stop = asyncio.Event()

    async def loop(ev):
        runs.append(ev)
        if len(runs) == 6:
            now[0] += 100  # this run lasted long: the backoff starts over
            raise RuntimeError("late failure")
        if len(runs) == 7:
            stop.set()
            return
        raise RuntimeError(f"poisoned row {len(runs)}")

    async def pause(seconds):
        waits.append(seconds)

    with caplog.at_level(logging.ERROR, logger="mailcore.service"):
        asyncio.run(supervise("qmgr", loop, stop, backoff=1, backoff_max=8, healthy_after=60,
                              monotonic=lambda: now[0], pause=pause))
    assert len(runs) == 7 and all(ev is stop for ev in runs)
    assert waits == [1, 2, 4, 8, 8, 1]
    crashes = [r for r in caplog.records if "qmgr stage crashed" in r.getMessage()]
    assert len(crashes) == 6 and all(r.exc_info and r.exc_info[0] is RuntimeError for r in crashes)


def test_a_loop_that_returns_while_running_is_restarted_and_stop_ends_it(caplog):
    runs, stop = [], asyncio.Event()

    async def loop(ev):
        runs.append(1)
        if len(runs) == 3:
            stop.set()

    async def pause(seconds):
        pass

    with caplog.at_level(logging.ERROR, logger="mailcore.service"):
        asyncio.run(supervise("notify", loop, stop, pause=pause))
    assert len(runs) == 3
    assert sum("notify stage returned" in r.getMessage() for r in caplog.records) == 2
