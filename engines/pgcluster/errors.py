"""The exceptions of ``engines.pgcluster``, one per thing a user can fix.

Each message names the file, port, directory or setting to change, because the person who
reads it is usually looking at a supervisor's log, not at this code.
"""

from __future__ import annotations


class ClusterError(RuntimeError):
    """Base class: something about the local PostgreSQL servers needs the user's attention."""


class BinariesNotFoundError(ClusterError):
    """No usable PostgreSQL server binaries (``postgres`` and ``initdb``) were found."""


class DataDirError(ClusterError):
    """The data folder cannot be used: not traversable by the server user, or not writable."""


class ServerUserError(ClusterError):
    """Running as root and no unprivileged user could be found or created for the servers."""


class InitError(ClusterError):
    """``initdb`` failed; the message carries its output."""


class StartError(ClusterError):
    """A server did not come up; the message carries the tail of its log."""


class PortInUseError(StartError):
    """A server could not bind its port because something else listens on it."""


class StopError(ClusterError):
    """A server did not stop, even after an immediate-shutdown request."""


class TLSUnavailableError(ClusterError):
    """TLS was required but the PostgreSQL binaries were built without OpenSSL."""
