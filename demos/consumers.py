"""Websocket consumers of the live demos, one per engine, all on the job framework."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import psycopg

from . import firewall, firewall_load, scheduler
from .jobs import JobConsumer, JobInputError, JobLimits, JobOutput
from .sandbox import SandboxUnavailable
from .status import get_monitor


class StackStatusConsumer(JobConsumer):
    """Streams a snapshot of every stack process's health once a second.

    A watch is capped at 30 minutes like any job; the page starts a new one when it ends.
    """

    limits = JobLimits(max_runtime=30 * 60, max_items=2 * 30 * 60)

    def is_passive(self, params: Any) -> bool:
        return True  # every page's footer watches: never one of the visitor's jobs

    async def run_job(self, params: Any, output: JobOutput) -> str | None:
        async for snap in get_monitor().watch():
            output.emit(snap)
        return None


class FirewallConsumer(JobConsumer):
    """The SQL firewall demo: one socket for the console, the reset, the load test and the
    live panel of the proxy's counters. ``params["action"]`` picks the job:

    ``{"action": "query", "sql": "..."}``
        one item ``{"kind": "result", "sql", ...run_statement's dict}``;
    ``{"action": "reset"}``
        one item ``{"kind": "reset", ...}`` once the sample schema is back;
    ``{"action": "load"}``
        2,000 queries over 20 connections: ``{"kind": "progress", "done", "total", ...}``
        items about ten a second, then ``{"kind": "load", ...load_test's dict}``;
    ``{"action": "watch"}``
        ``{"kind": "stats", "at", "stats": <the proxy's /stats.json or null>}`` once a
        second until stopped (or for 30 minutes, like any watch).

    A watch runs for up to 30 minutes, so the framework's cap is set for it; the other
    actions carry their own, shorter deadlines.
    """

    limits = JobLimits(max_runtime=30 * 60, max_items=2 * 30 * 60 + 100)
    actions = ("query", "reset", "load", "watch")
    deadlines = {"query": 30.0, "reset": 30.0, "load": 120.0}  # seconds, per action
    watch_interval = 1.0

    def validate(self, params: dict[str, Any]) -> dict[str, Any]:
        action = params.get("action")
        if action not in self.actions:
            raise JobInputError(
                f'"action" must be one of {", ".join(self.actions)}; got {str(action)[:40]!r}'
            )
        allowed = {"action", "sql"} if action == "query" else {"action"}
        extra = set(params) - allowed
        if extra:
            raise JobInputError(f'"{action}" takes no {", ".join(sorted(extra))}')
        if action == "query":
            if "sql" not in params:
                raise JobInputError('"query" needs "sql": the statement to run')
            try:
                return {"action": action, "sql": firewall.check_sql(params["sql"])}
            except ValueError as exc:
                raise JobInputError(str(exc)) from exc
        return {"action": action}

    def is_heavy(self, params: dict[str, Any]) -> bool:
        return params["action"] == "load"  # 2,000 queries over 20 connections

    def is_passive(self, params: dict[str, Any]) -> bool:
        return params["action"] == "watch"  # the live counters: the page, not the visitor

    async def run_job(self, params: dict[str, Any], output: JobOutput) -> str | None:
        action = params["action"]
        if action == "watch":
            return await self._watch(output)
        try:
            async with asyncio.timeout(self.deadlines[action]):
                if action == "query":
                    result = await firewall.run_statement(params["sql"])
                    output.emit({"kind": "result", "sql": params["sql"], **result})
                elif action == "reset":
                    output.emit({"kind": "reset", **await firewall.reset_sandbox()})
                else:
                    result = await firewall_load.load_test(
                        progress=lambda p: output.emit({"kind": "progress", **p})
                    )
                    output.emit({"kind": "load", **result})
        except (
            SandboxUnavailable,
            firewall.FirewallUnavailable,
            firewall_load.LoadTestBusy,
            ValueError,
        ) as exc:
            raise JobInputError(str(exc)) from exc
        except TimeoutError as exc:
            limit = self.deadlines[action]
            raise JobInputError(
                f"the {action} took longer than {limit:g} s and was stopped"
            ) from exc
        except psycopg.Error as exc:
            # Errors of the console's own statements are results, not failures; what lands
            # here is the reset or the load test failing, which the visitor should hear about.
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise JobInputError(f"the {action} failed: {message}") from exc
        return None

    async def _watch(self, output: JobOutput) -> None:
        while True:
            started = time.monotonic()
            stats = await firewall.firewall_stats()
            output.emit(
                {
                    "kind": "stats",
                    "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
                    "stats": stats,
                }
            )
            await asyncio.sleep(max(0.0, self.watch_interval - (time.monotonic() - started)))


class SchedulerConsumer(JobConsumer):
    """The work-stealing scheduler demo: one job per run. ``params`` are the workload
    (``workers``, ``count``, ``kind``, ``pattern``; see ``demos.scheduler.check_params``).

    Items: ``{"kind": "start", ...}``, then ``{"kind": "sample", ...}`` about ten a second
    (per-worker queues and counters, steals, throughput, the run's queueing-delay histogram
    so far), ``{"kind": "phase", "phase": "idle"}`` and ``{"kind": "idle", ...}`` (submit-to-
    start with the pool idle, measured on the same workers after the run),
    ``{"kind": "phase", "phase": "compare"}`` and ``{"kind": "summary", ...}`` with the
    ThreadPoolExecutor comparison. One run per server process at a time.
    """

    # The run is cancelled at MAX_RUN_SECONDS; the margin covers the idle-pool probe
    # (IDLE_PROBE_SECONDS), the comparison and clean-up.
    limits = JobLimits(max_runtime=scheduler.MAX_RUN_SECONDS + 45, max_items=1_000)

    def validate(self, params: dict[str, Any]) -> scheduler.RunParams:
        try:
            return scheduler.check_params(params)
        except ValueError as exc:
            raise JobInputError(str(exc)) from exc

    def is_heavy(self, params: scheduler.RunParams) -> bool:
        return True  # every run keeps the server's cores busy for seconds

    async def run_job(self, params: scheduler.RunParams, output: JobOutput) -> str | None:
        try:
            summary = await scheduler.run_demo(params, output.emit)
        except scheduler.SchedulerBusy as exc:
            raise JobInputError(str(exc)) from exc
        output.emit({"kind": "summary", **summary})
        if summary["capped"]:
            return f"cancelled at the {scheduler.MAX_RUN_SECONDS:g} s cap"
        return None
