"""Where the database demos' PostgreSQL and firewall are, and how to log in to them.

`make run` starts one engines.pgcluster instance named ``demo`` and the SQL firewall in front
of it; its passwords are made by initdb and kept in the cluster's data folder, so DSNs are
read from there rather than from settings.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from django.conf import settings

from engines.pgcluster import Cluster, ClusterError

DEMO_INSTANCE = "demo"


class SandboxUnavailable(RuntimeError):
    """The demo PostgreSQL has not been set up (is `make run` running?)."""


def demo_dsn(role: str = "demo") -> str:
    """The demo instance, directly (for set-up and resets, which the firewall would block)."""
    data_dir = settings.PGCLUSTER_DATA_DIR
    if not (data_dir / "cluster.json").exists():
        raise SandboxUnavailable(f"no demo PostgreSQL in {data_dir}: is `make run` running?")
    try:
        instance = Cluster(data_dir)[DEMO_INSTANCE]
        if not instance.port:
            raise SandboxUnavailable(f"instance {DEMO_INSTANCE!r} in {data_dir} has no port yet")
        return instance.dsn(role)
    except (ClusterError, KeyError, OSError) as exc:
        raise SandboxUnavailable(f"the demo PostgreSQL is not set up: {exc}") from exc


def firewall_dsn() -> str:
    """The same login, through the SQL firewall."""
    parts = urlsplit(demo_dsn())
    userinfo = parts.netloc.rsplit("@", 1)[0]
    netloc = f"{userinfo}@{settings.FIREWALL_HOST}:{settings.FIREWALL_PORT}"
    return urlunsplit(parts._replace(netloc=netloc))
