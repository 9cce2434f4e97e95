"""The live-demo job framework: one websocket, several cancellable jobs, batched output.

Every demo consumer subclasses :class:`JobConsumer` and writes one coroutine,
:meth:`JobConsumer.run_job`, that drives its engine and emits output items. The framework
owns everything a public demo must get right:

* a job is an asyncio task owned by the connection: a ``stop`` message or a disconnect
  cancels it promptly;
* output is buffered and flushed at most every ``flush_interval`` (20 messages/s by
  default) as one numbered message, because channel layers drop messages past their
  capacity and browsers choke on thousands of tiny frames;
* a job is capped in run time and in output;
* a page's passive watches (the stack status, live counters) never count against what the
  visitor may run: interactive jobs are capped per connection and per visitor address, and
  sockets per visitor address, so a person with five tabs never meets a cap while a script
  with fifty sockets does (see :class:`JobConsumer`);
* incoming messages are rate-limited; every frame is read once, checked for size and JSON
  nesting before it is parsed, and every field's type is checked: anything malformed gets an
  ``error`` message and the socket stays open.

The protocol, client to server::

    {"type": "start", "params": {...}}      -> {"type": "started", "job": 1}
    {"type": "stop", "job": 1}              -> {"type": "done", "job": 1, "status": "stopped"}

server to client::

    {"type": "output", "job": 1, "seq": 0, "items": [...]}
    {"type": "done", "job": 1, "status": "finished|stopped|timeout|limit|failed", "message": "..."}
    {"type": "error", "code": "bad_json|bad_message|unknown_type|bad_params|rate_limited|
                               too_many_jobs|too_many_runs|too_many_connections|no_such_job|
                               too_large", "message": "..."}

A connection refused for ``too_many_connections`` is closed after its error with code 4429.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
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


class MessageError(ValueError):
    """A frame the protocol cannot take; ``code`` is the error code the visitor is sent."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# What can open or close a nesting level, or change whether a bracket counts: quotes and
# backslashes. Only these characters are visited, so the scan is linear in the frame.
_STRUCTURE = re.compile(r'["\\\[\]{}]')


def json_nesting(text: str) -> int:
    """How deeply arrays and objects nest in ``text`` (brackets inside strings do not count),
    read without parsing: ``json.loads`` recurses, and a frame of a thousand ``[`` would
    raise RecursionError deep inside it."""
    depth = deepest = 0
    in_string = False
    skip_at = -1  # the position of a character escaped by a backslash
    for match in _STRUCTURE.finditer(text):
        at = match.start()
        if at == skip_at:
            continue
        char = match.group()
        if in_string:
            if char == "\\":
                skip_at = at + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


# The fields each message type may carry besides "type".
_MESSAGE_FIELDS: dict[str, set[str]] = {"start": {"params"}, "stop": {"job"}}


def parse_message(text: str | None, max_bytes: int, max_depth: int) -> dict[str, Any]:
    """One client frame as a protocol message, or MessageError: the size and nesting are
    checked before the JSON is parsed, then the envelope's fields and their types. What a
    handler reads from a message has been checked here."""
    if text is None:
        raise MessageError("bad_message", "binary frames are not understood; send JSON text")
    # Characters first (cheap, and never fewer than bytes), then the UTF-8 bytes themselves.
    if len(text) > max_bytes or len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise MessageError("too_large", f"messages are limited to {max_bytes:,} bytes")
    if json_nesting(text) > max_depth:
        raise MessageError("bad_json", f"the message nests deeper than {max_depth} levels")
    try:
        # NaN and Infinity are Python's extensions, not JSON.
        message = json.loads(text, parse_constant=_refuse_constant)
    except ValueError:  # includes integers too long to convert
        raise MessageError("bad_json", "the message is not valid JSON") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise MessageError("bad_message", 'expected a JSON object with a "type"')
    kind = message["type"]
    fields = _MESSAGE_FIELDS.get(kind)
    if fields is None:
        raise MessageError("unknown_type", f"unknown message type {kind[:40]!r}")
    extra = sorted(set(message) - fields - {"type"})
    if extra:
        shown = ", ".join(repr(name[:40]) for name in extra[:5])
        raise MessageError("bad_message", f'"{kind}" takes no {shown}')
    if kind == "start":
        params = message.setdefault("params", {})
        if not isinstance(params, dict):
            raise MessageError("bad_params", '"params" must be a JSON object')
    elif kind == "stop":
        job = message.get("job")
        if job is not None and (not isinstance(job, int) or isinstance(job, bool)):
            raise MessageError("bad_message", '"job" must be the number of a running job')
    return message


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
    passive: bool  # a watch: not counted against the visitor's interactive jobs
    stop_requested: bool = False


class JobConsumer(AsyncJsonWebsocketConsumer):
    """Base class of every demo consumer. Subclasses implement :meth:`run_job`, and
    :meth:`validate` when they take parameters.

    What one visitor (client address) may hold, in this process, and why it is counted so:

    * passive jobs (:meth:`is_passive`: a page watching the stack or the proxy's counters)
      are free of the job caps, at most ``DEMO_MAX_WATCHES_PER_CONNECTION`` per socket: every
      open page has one, and a visitor with several tabs must not be locked out by them;
    * interactive jobs (a statement, a load test, a run): ``DEMO_MAX_JOBS_PER_CONNECTION``
      per socket, which one page never needs more than, and ``DEMO_MAX_JOBS_PER_VISITOR``
      across sockets, generous enough for several people behind one office address;
    * sockets: ``DEMO_MAX_SOCKETS_PER_VISITOR``; a page holds one or two, so a person with a
      dozen tabs fits and a script opening fifty is refused past the cap.
    """

    limits: ClassVar[JobLimits] = JobLimits()
    max_message_bytes: ClassVar[int] = 64 * 1024
    # The protocol's messages nest two levels ({"params": {...}}); parameters add a few.
    max_message_depth: ClassVar[int] = 8
    # A refused socket is closed with this code (4000-4999 are the application's).
    close_too_many_connections: ClassVar[int] = 4429

    # Interactive jobs and open sockets per visitor across this process's connections.
    _jobs_per_visitor: ClassVar[Counter[str]] = Counter()
    _sockets_per_visitor: ClassVar[Counter[str]] = Counter()
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

    def is_passive(self, params: Any) -> bool:
        """Whether this (validated) job only watches (a page's live status or counters), so
        it does not count against the visitor's interactive jobs."""
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
        self._counted = False
        await self.accept()
        cap = settings.DEMO_MAX_SOCKETS_PER_VISITOR
        if self._sockets_per_visitor[self.visitor] >= cap:
            # Accepted first so that the page can be told why, in words, before the close.
            logger.warning("event=socket_refused visitor=%s cap=%d", self.visitor, cap)
            await self.error(
                "too_many_connections",
                f"{cap} demo connections are already open from your address: close some "
                "tabs with live demos, then reload this page",
            )
            await self.close(code=self.close_too_many_connections)
            return
        self._sockets_per_visitor[self.visitor] += 1
        self._counted = True

    async def disconnect(self, code: int) -> None:
        self._closed = True
        if getattr(self, "_counted", False):
            self._counted = False
            _release(self._sockets_per_visitor, self.visitor)
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
        try:
            message = parse_message(text_data, self.max_message_bytes, self.max_message_depth)
        except MessageError as exc:
            await self.error(exc.code, str(exc))
            return
        if message["type"] == "start":
            await self.on_start(message)
        else:
            await self.on_stop(message)

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        # The last line of defence for the promise that bad input never closes the socket:
        # whatever a frame makes go wrong is one warning line and an error message, not a
        # traceback and a 1011 close. What the checks above know is answered before this.
        try:
            await super().websocket_receive(message)
        except Exception as exc:
            logger.warning(
                "event=message_failed consumer=%s visitor=%s error=%s",
                type(self).__name__, self.visitor, type(exc).__name__,
            )  # fmt: skip
            await self.error("bad_message", "the server could not handle that message")

    def _refusal(self, passive: bool) -> str | None:
        """Why a new job may not start now, in the visitor's words, or None."""
        here = [job for job in self.jobs.values() if job.passive == passive]
        if passive:
            cap = settings.DEMO_MAX_WATCHES_PER_CONNECTION
            if len(here) >= cap:
                return f"this page already watches {cap} live feeds; stop one first"
            return None
        cap = settings.DEMO_MAX_JOBS_PER_CONNECTION
        if len(here) >= cap:
            return f"this page is already running {cap} things at once; wait for one to finish"
        cap = settings.DEMO_MAX_JOBS_PER_VISITOR
        if self._jobs_per_visitor[self.visitor] >= cap:
            return (
                f"your address already runs {cap} demos at once in other tabs or windows; "
                "wait for one to finish, or close a tab, and try again"
            )
        return None

    async def on_start(self, message: dict[str, Any]) -> None:
        try:
            checked = self.validate(message["params"])
        except JobInputError as exc:
            await self.error("bad_params", str(exc))
            return
        passive = self.is_passive(checked)
        refusal = self._refusal(passive)
        if refusal is not None:
            await self.error("too_many_jobs", refusal)
            return
        if self.is_heavy(checked) and not self._heavy_bucket().take():
            per_minute = settings.DEMO_HEAVY_RUNS_PER_MINUTE
            await self.error(
                "too_many_runs",
                f"at most {per_minute} runs a minute, after a first few: try again shortly",
            )
            return
        job_id = next(self._job_ids)
        if not passive:
            self._jobs_per_visitor[self.visitor] += 1
        await self.send_json({"type": "started", "job": job_id})
        task = asyncio.create_task(self._run(job_id, checked, passive))
        self.jobs[job_id] = Job(job_id, task, passive)

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
            shown = job_id if job_id is None or abs(job_id) < 10**9 else "with that number"
            await self.error("no_such_job", f"no running job {shown}")
            return
        for job in targets:
            job.stop_requested = True
            job.task.cancel()

    # -- running a job ---------------------------------------------------------------------

    async def _run(self, job_id: int, params: Any, passive: bool) -> None:
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
            if not passive:
                _release(self._jobs_per_visitor, self.visitor)
            self.jobs.pop(job_id, None)
            logger.info(
                "event=job_end consumer=%s job=%s status=%s items=%d seconds=%.3f",
                type(self).__name__, job_id, status, output.emitted, time.monotonic() - started,
            )  # fmt: skip
        await output.flush()
        await self.send_json({"type": "done", "job": job_id, "status": status, "message": message})


def _release(counter: Counter[str], visitor: str) -> None:
    """One fewer for ``visitor``; a visitor with none is forgotten."""
    counter[visitor] -= 1
    if counter[visitor] <= 0:
        del counter[visitor]
