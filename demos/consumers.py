"""Websocket consumers of the live demos, one per engine, all on the job framework."""

from __future__ import annotations

from typing import Any

from .jobs import JobConsumer, JobLimits, JobOutput
from .status import get_monitor


class StackStatusConsumer(JobConsumer):
    """Streams a snapshot of every stack process's health once a second.

    A watch is capped at 30 minutes like any job; the page starts a new one when it ends.
    """

    limits = JobLimits(max_runtime=30 * 60, max_items=2 * 30 * 60)

    async def run_job(self, params: Any, output: JobOutput) -> str | None:
        async for snap in get_monitor().watch():
            output.emit(snap)
        return None
