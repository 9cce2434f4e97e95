"""A proxy's figures: a latency histogram, a JSON snapshot and Prometheus text, served
over a small HTTP listener (``GET /metrics``, ``GET /stats.json``).

What every proxy counts (clients, logins, pools, round trips, the relay's reads) is here;
what its policy counts comes from the proxy's hooks (proxy.BaseProxy ``policy_stats`` for
the snapshot, ``policy_metrics`` for the Prometheus lines), and the metrics are named after
the proxy (``firewall_clients``, ``router_clients``).

Latency is measured per round trip: from the moment the proxy forwards a Query or Sync to
the moment the matching ReadyForQuery comes back, which is what a client waits for minus
its own network hop.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

from ._metrics import LatencyCounts
from ._transport import read_counts

if TYPE_CHECKING:
    from .proxy import BaseProxy

logger = logging.getLogger(__name__)

# Upper bounds in microseconds, roughly log-spaced: sub-millisecond detail where a pooler
# lives, and enough range for slow queries.
BUCKETS_US = (
    50,
    100,
    200,
    300,
    500,
    750,
    1_000,
    2_000,
    5_000,
    10_000,
    20_000,
    50_000,
    100_000,
    1_000_000,
)


class LatencyHistogram(LatencyCounts):
    """Counts of round trips by latency bucket, with percentiles read off the buckets.
    Counting (``observe``, ``counts``, ``total``, ``sum_us``) is compiled: it runs once per
    round trip."""

    def __init__(self) -> None:
        super().__init__(BUCKETS_US)

    def percentile(self, fraction: float) -> float | str | None:
        """The bucket bound below which ``fraction`` of round trips fall (an upper estimate);
        "+Inf" past the last bound (a string: JSON has no infinity)."""
        if not self.total:
            return None
        rank = fraction * self.total
        seen = 0
        for bound, count in zip((*BUCKETS_US, float("inf")), self.counts, strict=True):
            seen += count
            if seen >= rank:
                return "+Inf" if bound == float("inf") else bound
        return "+Inf"

    def snapshot(self) -> dict[str, Any]:
        return {
            "count": self.total,
            "mean_us": round(self.sum_us / self.total, 1) if self.total else None,
            "p50_us": self.percentile(0.50),
            "p95_us": self.percentile(0.95),
            "p99_us": self.percentile(0.99),
            "buckets": [
                [bound, count]
                for bound, count in zip((*BUCKETS_US, "+Inf"), self.counts, strict=True)
            ],
        }


def stats_snapshot(proxy: BaseProxy) -> dict[str, Any]:
    """Everything the proxy counts, as one JSON-ready dict (the demo page reads this)."""
    in_place, copied = read_counts()
    return {
        "clients": len(proxy.sessions),
        "logins": proxy.logins,
        "login_failures": proxy.login_failures,
        "pools": [
            {
                "database": database,
                "user": user,
                "mode": pool.database.pool_mode,
                "size": pool.pool_size,
                "min_size": pool.min_pool_size,
                "active": len(pool.active),
                "idle": len(pool.idle),
                "connecting": pool.connecting,
                "waiting_clients": len(pool.waiters),
                "acquired": pool.stats.acquired,
                "waited": pool.stats.waited,
                "wait_seconds": round(pool.stats.wait_seconds, 3),
                "timeouts": pool.stats.timeouts,
                "connects": pool.stats.connects,
                "connect_failures": pool.stats.connect_failures,
                "discarded": pool.stats.discarded,
            }
            for (database, user), pool in sorted(proxy.pools.items())
        ],
        **proxy.policy_stats(),
        "latency": proxy.latency.snapshot(),
        # The relay's fast path at work: reads forwarded straight from the read buffer,
        # against those copied for the general path (logins and TLS are not counted).
        "reads": {"in_place": in_place, "copied": copied},
    }


def _label(value: str) -> str:
    """A Prometheus label value: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus_text(proxy: BaseProxy) -> str:
    """The same figures in Prometheus' text exposition format."""
    stats = proxy.stats()
    name = proxy.name
    lines = [
        f"# HELP {name}_clients Client connections logged in.",
        f"# TYPE {name}_clients gauge",
        f"{name}_clients {stats['clients']}",
        f"# TYPE {name}_logins_total counter",
        f"{name}_logins_total {stats['logins']}",
        f"# TYPE {name}_login_failures_total counter",
        f"{name}_login_failures_total {stats['login_failures']}",
    ]
    for key, kind in [
        ("active", "gauge"), ("idle", "gauge"), ("waiting_clients", "gauge"),
        ("acquired", "counter"),
        ("timeouts", "counter"), ("connects", "counter"), ("discarded", "counter"),
    ]:  # fmt: skip
        metric = f"{name}_pool_{key}" + ("_total" if kind == "counter" else "")
        lines.append(f"# TYPE {metric} {kind}")
        lines += [
            f'{metric}{{database="{_label(pool["database"])}",user="{_label(pool["user"])}"}} '
            f"{pool[key]}"
            for pool in stats["pools"]
        ]
    lines += proxy.policy_metrics(stats)
    lines.append(f"# TYPE {name}_reads_total counter")
    lines += [
        f'{name}_reads_total{{path="{path}"}} {count}' for path, count in stats["reads"].items()
    ]
    lines.append(f"# TYPE {name}_round_trip_seconds histogram")
    cumulative = 0
    for bound, count in stats["latency"]["buckets"]:
        cumulative += count
        le = "+Inf" if bound == "+Inf" else f"{bound / 1e6:g}"
        lines.append(f'{name}_round_trip_seconds_bucket{{le="{le}"}} {cumulative}')
    lines.append(f"{name}_round_trip_seconds_sum {proxy.latency.sum_us / 1e6:.6f}")
    lines.append(f"{name}_round_trip_seconds_count {proxy.latency.total}")
    return "\n".join(lines) + "\n"


async def serve_metrics(proxy: BaseProxy, host: str, port: int) -> asyncio.base_events.Server:
    """A deliberately tiny HTTP/1.0 responder: two read-only GET routes, nothing else."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            method, _, rest = request.decode("latin-1").partition(" ")
            path = rest.split(" ", 1)[0]
            if method != "GET":
                status, kind, body = "405 Method Not Allowed", "text/plain", "GET only\n"
            elif path == "/metrics":
                status, kind, body = "200 OK", "text/plain; version=0.0.4", prometheus_text(proxy)
            elif path == "/stats.json":
                status, kind, body = "200 OK", "application/json", json.dumps(proxy.stats())
            else:
                status, kind, body = "404 Not Found", "text/plain", "try /metrics or /stats.json\n"
            data = body.encode()
            writer.write(
                f"HTTP/1.0 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(data)}\r\n"
                f"Connection: close\r\n\r\n".encode()
                + data
            )
            await writer.drain()
        except (TimeoutError, ConnectionError, UnicodeDecodeError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)
