"""Fixtures for the scheduler's tests: a running two-worker scheduler, shut down after."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engines.scheduler import Scheduler


@pytest.fixture
def sched() -> Iterator[Scheduler]:
    s = Scheduler(workers=2)
    try:
        yield s
    finally:
        s.shutdown(wait=True, cancel_pending=True)
