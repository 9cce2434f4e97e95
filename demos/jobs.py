"""The live-demo job framework: one websocket, several cancellable jobs, batched output.

Every demo consumer subclasses :class:`JobConsumer` and writes one coroutine,
:meth:`JobConsumer.run_job`, that drives its engine and emits output items. The framework
owns everything a public demo must get right:

* a job is an asyncio task owned by the connection: a ``stop`` message or a disconnect
  cancels it promptly;
* output is buffered and flushed at most every ``flush_interval`` (20 messages/s by
  default) as one numbered message, because channel layers drop messages past their
  capacity and browsers choke on thousands of tiny frames;
* a job is capped in run time and in output; a visitor runs a few jobs at once at most;
* incoming messages are rate-limited; malformed or unknown messages get an ``error``
  message and the socket stays open.

The protocol, client to server::

    {"type": "start", "params": {...}}      -> {"type": "started", "job": 1}
    {"type": "stop", "job": 1}              -> {"type": "done", "job": 1, "status": "stopped"}

server to client::

    {"type": "output", "job": 1, "seq": 0, "items": [...]}
    {"type": "done", "job": 1, "status": "finished|stopped|timeout|limit|failed", "message": "..."}
    {"type": "error", "code": "bad_json|bad_message|unknown_type|bad_params|rate_limited|
                               too_many_jobs|no_such_job|too_large", "message": "..."}
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

logger = logging.getLogger(__name__)


class JobInputError(ValueError):
    """The visitor's parameters are unusable; the message is shown to them as is."""


class OutputLimitReached(Exception):
    """A job emitted more output than its limits allow; it ends with status ``limit``."""


@dataclass(frozen=True)
class JobLimits:
    """What one job may cost the server."""

    max_runtime: float = 60.0  # seconds before the job is cancelled with status "timeout"
    max_items: int = 20_000  # output items over the whole job
    max_batch: int = 1_000  # items in one output message; the rest wait for the next flush
    flush_interval: float = 0.05  # seconds between output messages: at most 20 per second


class TokenBucket:
    """Allows ``rate`` events per second on average and bursts of ``burst``."""

    def __init__(self, rate: float, burst: float, clock=time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.clock = clock
        self.stamp = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def full(self) -> bool:
        """Whether the bucket has refilled: its owner has been quiet for a while."""
        return self.tokens + (self.clock() - self.stamp) * self.rate >= self.burst


class JobOutput:
    """A job's output channel: ``emit`` buffers, a background loop sends numbered batches."""

    def __init__(self, consumer: JobConsumer, job_id: int, limits: JobLimits) -> None:
        self._consumer = consumer
        self._job_id = job_id
        self._limits = limits
        self._buffer: list[Any] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self.emitted = 0

    def emit(self, item: Any) -> None:
        """Queue one JSON-serialisable item; raises OutputLimitReached past the cap."""
        if self.emitted >= self._limits.max_items:
            raise OutputLimitReached(f"output capped at {self._limits.max_items} items")
        self.emitted += 1
        self._buffer.append(item)
        self._wake.set()

    async def flush(self) -> None:
        """Send everything buffered, in batches of at most ``max_batch`` items."""
        while self._buffer:
            batch = self._buffer[: self._limits.max_batch]
            await self._consumer.send_json(
                {"type": "output", "job": self._job_id, "seq": next(self._seq), "items": batch}
            )
            # Dropped only once sent: a pump cancelled mid-send leaves them for the last flush.
            del self._buffer[: len(batch)]

    async def pump(self) -> None:
        """Flush whenever there is output, never more often than ``flush_interval``."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.flush()
            await asyncio.sleep(self._limits.flush_interval)


@dataclass
class Job:
    id: int
    task: asyncio.Task
    stop_requested: bool = False


class JobConsumer(AsyncJsonWebsocketConsumer):
    """Base class of every demo consumer. Subclasses implement :meth:`run_job`, and
    :meth:`validate` when they take parameters."""

    limits: ClassVar[JobLimits] = JobLimits()
    max_message_bytes: ClassVar[int] = 64 * 1024

    # Jobs running per visitor (client address) across this process's connections.
    _jobs_per_visitor: ClassVar[Counter[str]] = Counter()
    # Heavy jobs (a load test, a scheduler run) keep the server's cores busy for seconds: a
    # visitor starts a few in a row, then DEMO_HEAVY_RUNS_PER_MINUTE, whatever the
    # connection (one bucket per visitor and consumer class, in this process).
    _heavy_buckets: ClassVar[dict[tuple[str, str], TokenBucket]] = {}
    max_heavy_buckets: ClassVar[int] = 10_000

    # -- what subclasses write -------------------------------------------------------------

    def validate(self, params: dict[str, Any]) -> Any:
        """Check and normalise the start message's parameters; raise JobInputError."""
        if params:
            raise JobInputError(f"this demo takes no parameters, got {sorted(params)}")
        return params

    async def run_job(self, params: Any, output: JobOutput) -> str | None:
        """Drive the engine, emitting items on ``output``. Return an optional final message."""
        raise NotImplementedError

    def is_heavy(self, params: Any) -> bool:
        """Whether this (validated) job counts against the visitor's heavy-run budget."""
        return False

    # -- connection life -------------------------------------------------------------------

    async def connect(self) -> None:
        self.jobs: dict[int, Job] = {}
        self._job_ids = itertools.count(1)
        self._closed = False
        self._rate = TokenBucket(
            settings.DEMO_MESSAGES_PER_SECOND, 2 * settings.DEMO_MESSAGES_PER_SECOND
        )
        self._rate_warned_at = 0.0
        client = self.scope.get("client") or ("unknown", 0)
        self.visitor = str(client[0])
        await self.accept()

    async def disconnect(self, code: int) -> None:
        self._closed = True
        jobs = [job.task for job in self.jobs.values()]
        for task in jobs:
            task.cancel()
        if jobs:
            await asyncio.gather(*jobs, return_exceptions=True)

    async def send_json(self, content: Any, close: bool = False) -> None:
        if not self._closed:
            await super().send_json(content, close=close)

    async def error(self, code: str, message: str) -> None:
        await self.send_json({"type": "error", "code": code, "message": message})

    # -- incoming messages -----------------------------------------------------------------

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kw
    ) -> None:
        if not self._rate.take():
            # One warning a second at most, or a flood of junk would be answered by a flood.
            now = time.monotonic()
            if now - self._rate_warned_at >= 1.0:
                self._rate_warned_at = now
                await self.error("rate_limited", "too many messages; slow down")
            return
        if text_data is None:
            await self.error("bad_message", "binary frames are not understood; send JSON text")
            return
        if len(text_data) > self.max_message_bytes:
            await self.error("too_large", f"messages are limited to {self.max_message_bytes} bytes")
            return
        try:
            message = json.loads(text_data)
        except ValueError:
            await self.error("bad_json", "the message is not valid JSON")
            return
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self.error("bad_message", 'expected a JSON object with a "type"')
            return
        handler = {"start": self.on_start, "stop": self.on_stop}.get(message["type"])
        if handler is None:
            await self.error("unknown_type", f"unknown message type {message['type'][:40]!r}")
            return
        await handler(message)

    async def on_start(self, message: dict[str, Any]) -> None:
        params = message.get("params", {})
        if not isinstance(params, dict):
            await self.error("bad_params", '"params" must be a JSON object')
            return
        if self._jobs_per_visitor[self.visitor] >= settings.DEMO_MAX_JOBS_PER_VISITOR:
            await self.error(
                "too_many_jobs",
                f"at most {settings.DEMO_MAX_JOBS_PER_VISITOR} jobs at once; stop one first",
            )
            return
        try:
            checked = self.validate(params)
        except JobInputError as exc:
            await self.error("bad_params", str(exc))
            return
        if self.is_heavy(checked) and not self._heavy_bucket().take():
            per_minute = settings.DEMO_HEAVY_RUNS_PER_MINUTE
            await self.error(
                "too_many_runs",
                f"at most {per_minute} runs a minute, after a first few: try again shortly",
            )
            return
        job_id = next(self._job_ids)
        self._jobs_per_visitor[self.visitor] += 1
        await self.send_json({"type": "started", "job": job_id})
        self.jobs[job_id] = Job(job_id, asyncio.create_task(self._run(job_id, checked)))

    def _heavy_bucket(self) -> TokenBucket:
        buckets = self._heavy_buckets
        key = (type(self).__name__, self.visitor)
        bucket = buckets.get(key)
        if bucket is None:
            if len(buckets) >= self.max_heavy_buckets:  # forget visitors who are long gone
                for stale in [k for k, b in buckets.items() if b.full()]:
                    del buckets[stale]
            per_minute = settings.DEMO_HEAVY_RUNS_PER_MINUTE
            bucket = buckets[key] = TokenBucket(per_minute / 60, settings.DEMO_HEAVY_RUNS_BURST)
        return bucket

    async def on_stop(self, message: dict[str, Any]) -> None:
        job_id = message.get("job")
        targets = list(self.jobs.values()) if job_id is None else [self.jobs.get(job_id)]
        if not targets or targets[0] is None:
            await self.error("no_such_job", f"no running job {job_id!r}")
            return
        for job in targets:
            job.stop_requested = True
            job.task.cancel()

    # -- running a job ---------------------------------------------------------------------

    async def _run(self, job_id: int, params: Any) -> None:
        output = JobOutput(self, job_id, self.limits)
        pump = asyncio.create_task(output.pump())
        status, message = "finished", ""
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.limits.max_runtime):
                message = await self.run_job(params, output) or ""
        except TimeoutError:
            status, message = "timeout", f"stopped after {self.limits.max_runtime:g} s, the limit"
        except asyncio.CancelledError:
            status, message = "stopped", "stopped on request"
            if not self.jobs[job_id].stop_requested:
                raise  # the connection is going away: nobody to tell
        except OutputLimitReached as exc:
            status, message = "limit", str(exc)
        except JobInputError as exc:
            status, message = "failed", str(exc)
        except Exception:
            logger.exception("event=job_failed consumer=%s job=%s", type(self).__name__, job_id)
            status, message = "failed", "the demo failed on the server; try again"
        finally:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
            self._jobs_per_visitor[self.visitor] -= 1
            if self._jobs_per_visitor[self.visitor] <= 0:
                del self._jobs_per_visitor[self.visitor]
            self.jobs.pop(job_id, None)
            logger.info(
                "event=job_end consumer=%s job=%s status=%s items=%d seconds=%.3f",
                type(self).__name__, job_id, status, output.emitted, time.monotonic() - started,
            )  # fmt: skip
        await output.flush()
        await self.send_json({"type": "done", "job": job_id, "status": status, "message": message})
