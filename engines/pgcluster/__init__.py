"""Local PostgreSQL servers for the demos, the tests and the benchmarks.

The site's demos need real PostgreSQL: one instance behind the SQL firewall, three shards
behind the router. ``engines.pgcluster`` starts N of them on loopback from one data folder,
with what a careful operator would set up by hand and a hurried one would skip: a server
user that is not root, SCRAM passwords generated per instance, TLS with a private CA so
clients can use ``sslmode=verify-full``, and a least-privilege demo role with statement
and idle timeouts. It finds binaries on any machine (``PG_BINDIR``, ``pg_config``, Debian's
layout, or the ``pgserver`` wheel), so a fresh checkout needs nothing beyond pip.

    with Cluster(".run/pgcluster", instances=2) as cluster:
        psycopg.connect(cluster[0].dsn("demo", tls=True))

Also a command-line tool: ``python -m engines.pgcluster --help``.
"""

from .binaries import Binaries, find_binaries
from .cluster import Cluster
from .errors import (
    BinariesNotFoundError,
    ClusterError,
    DataDirError,
    InitError,
    PortInUseError,
    ServerUserError,
    StartError,
    StopError,
    TLSUnavailableError,
)
from .instance import Instance, InstanceStatus

__all__ = [
    "Binaries",
    "BinariesNotFoundError",
    "Cluster",
    "ClusterError",
    "DataDirError",
    "InitError",
    "Instance",
    "InstanceStatus",
    "PortInUseError",
    "ServerUserError",
    "StartError",
    "StopError",
    "TLSUnavailableError",
    "find_binaries",
]
