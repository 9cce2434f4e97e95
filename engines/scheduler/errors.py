"""The scheduler's exceptions: each says what went wrong and what to do about it."""

from __future__ import annotations

from concurrent.futures import CancelledError


class SchedulerError(Exception):
    """Base class: anything the scheduler itself refuses or fails to do."""


class SchedulerClosed(SchedulerError, RuntimeError):
    """Work was submitted to (or figures asked of) a scheduler that has been shut down."""


class JobCancelled(SchedulerError, CancelledError):
    """A queued job did not run: its scheduler shut down with ``cancel_pending=True``."""


class UnknownKernel(SchedulerError, ValueError):
    """``start_native`` was asked for a kernel or pattern that does not exist."""
