"""Demo pages. Each page is static HTML; the live part arrives over its websocket."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from engines.firewall.verdicts import RULES

from . import firewall as firewall_demo
from . import firewall_load
from . import scheduler as scheduler_demo
from .registry import DEMOS
from .status import PROCESS_LABELS


def index(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "demos/index.html",
        {"demos": list(DEMOS.values()), "process_labels": PROCESS_LABELS},
    )


# The console's example chips: what the guard stops, what it lets through, and why.
FIREWALL_EXAMPLES = [
    ("SELECT * FROM customers LIMIT 5", "allowed: a plain read"),
    ("DELETE FROM orders", "blocked: DELETE without WHERE"),
    ("DROP TABLE customers", "blocked: DROP"),
    ("UPDATE customers SET email = NULL", "blocked: UPDATE without WHERE"),
    (
        "WITH gone AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM gone",
        "blocked: a DELETE hidden in a CTE",
    ),
    ("SELECT 'DROP TABLE customers' AS harmless_text", "allowed: DROP only inside a string"),
    (
        "SELECT c.name, count(o.id) AS orders, sum(o.amount) AS spent\n"
        "FROM customers c LEFT JOIN orders o ON o.customer_id = c.id\n"
        "GROUP BY c.name ORDER BY spent DESC NULLS LAST LIMIT 5",
        "allowed: a join",
    ),
    ("DELETE FROM orders WHERE status = 'cancelled'", "allowed: the WHERE narrows by a column"),
    ("DELETE FROM orders WHERE id = id", "blocked: a WHERE that holds for every row"),
    ("SELECT pg_read_file('/etc/passwd')", "blocked: a function the policy does not list"),
]


def firewall(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "demos/firewall.html",
        {
            "demo": DEMOS["firewall"],
            "process_labels": PROCESS_LABELS,
            "examples": [{"sql": sql, "note": note} for sql, note in FIREWALL_EXAMPLES],
            "rules": list(RULES.values()),
            "max_sql_kb": firewall_demo.MAX_SQL_BYTES // 1024,
            "max_rows": firewall_demo.MAX_ROWS,
            "load_queries": firewall_load.LOAD_QUERIES,
            "load_queries_text": f"{firewall_load.LOAD_QUERIES:,}",
            "load_connections": firewall_load.LOAD_CONNECTIONS,
        },
    )


def scheduler(request: HttpRequest) -> HttpResponse:
    """The scheduler demo's page: the form's choices and caps come from ``demos.scheduler``,
    so the page never offers what the server would refuse."""
    cores = scheduler_demo.server_cores()
    kinds = [
        {
            "name": kind.name,
            "label": kind.label,
            "description": kind.description,
            "default_count": kind.default_count,
            # The most the server allows, per pattern and worker count, for the form's hint.
            "max_counts": {
                f"{p}-{w}": scheduler_demo.max_count(kind.name, p, w)
                for p in scheduler_demo.PATTERNS
                for w in range(1, scheduler_demo.MAX_WORKERS + 1)
            },
        }
        for kind in scheduler_demo.KINDS.values()
    ]
    return render(
        request,
        "demos/scheduler.html",
        {
            "demo": DEMOS["scheduler"],
            "process_labels": PROCESS_LABELS,
            "kinds": kinds,
            "patterns": list(scheduler_demo.PATTERNS.items()),
            "max_workers": scheduler_demo.MAX_WORKERS,
            "worker_choices": range(1, scheduler_demo.MAX_WORKERS + 1),
            "cores": cores,
            "defaults": scheduler_demo.DEFAULTS,
            "max_run_seconds": scheduler_demo.MAX_RUN_SECONDS,
            "max_work_seconds": scheduler_demo.MAX_WORK_SECONDS,
            "compare_max": f"{scheduler_demo.COMPARE_MAX:,}",
            "paced_us": scheduler_demo.PACED_INTERVAL_US,
            "idle_hot_probes": f"{scheduler_demo.IDLE_HOT_PROBES:,}",
            "idle_hot_interval_us": scheduler_demo.IDLE_HOT_INTERVAL_US,
            "idle_parked_probes": f"{scheduler_demo.IDLE_PARKED_PROBES:,}",
            "idle_parked_interval_ms": scheduler_demo.IDLE_PARKED_INTERVAL_US / 1000,
            # The workload behind the card's throughput figure: empty native jobs, "fork".
            "throughput_preset": {
                "kind": "noop",
                "pattern": "fork",
                "workers": 2,
                "count": scheduler_demo.KINDS["noop"].default_count,
                "count_text": f"{scheduler_demo.KINDS['noop'].default_count:,}",
            },
        },
    )
