"""The SQL firewall demo's work: the sandbox's sample schema, the console and the proxy's
figures (the load test is in :mod:`demos.firewall_load`). Plain async functions;
``demos.consumers.FirewallConsumer`` drives them.

Every console statement and every load-test query goes through the real proxy
(:func:`demos.sandbox.firewall_dsn`) as the least-privilege ``demo`` role, whose
``search_path`` (``app, public``) and ``statement_timeout`` (5 s) PostgreSQL applies per role,
so they hold on whichever pooled server connection a statement lands on. The reset goes
around the proxy (:func:`demos.sandbox.demo_dsn`): it has to DROP, which is what the firewall
is there to stop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
from typing import Any

import psycopg
from django.conf import settings
from psycopg import pq, sql

from .sandbox import demo_dsn, firewall_dsn

logger = logging.getLogger(__name__)

MAX_SQL_BYTES = 10 * 1024  # a console input larger than this is refused before it is sent
MAX_ROWS = 200  # rows shown per statement; the rest are counted as far as MAX_SCAN_ROWS
MAX_SCAN_ROWS = 10_000  # past this the statement is cancelled: nobody reads that many rows
MAX_RESULT_BYTES = 2 * 1024 * 1024  # text of the rows kept, over the whole input
MAX_CELL_CHARS = 500  # a longer value is shown cut, with an ellipsis
STATEMENT_DEADLINE = 15.0  # seconds; the server's statement_timeout (5 s) should come first
CONNECT_TIMEOUT = 5  # seconds, for each login through the proxy
STATS_TIMEOUT = 1.0  # seconds for GET /stats.json

SANDBOX_RECHECK = 30.0  # seconds a process trusts that the sample tables exist

_BLOCKED = re.compile(r'^firewall: blocked by rule "(?P<rule>[a-z_]+)"')


class FirewallUnavailable(RuntimeError):
    """The SQL firewall did not let us log in (not running, or refusing connections)."""


# -- the sample schema ---------------------------------------------------------------------

CUSTOMERS = [
    ("Ada Lovelace", "ada@example.com", "London", "2023-01-14"),
    ("Grace Hopper", "grace@example.com", "New York", "2023-02-03"),
    ("Alan Turing", "alan@example.com", "Manchester", "2023-02-21"),
    ("Edsger Dijkstra", "edsger@example.com", "Rotterdam", "2023-03-09"),
    ("Barbara Liskov", "barbara@example.com", "Boston", "2023-03-30"),
    ("Donald Knuth", "don@example.com", "Stanford", "2023-04-12"),
    ("Margaret Hamilton", "margaret@example.com", "Cambridge", "2023-05-02"),
    ("Ken Thompson", "ken@example.com", "Berkeley", "2023-05-27"),
    ("Frances Allen", "fran@example.com", "Peru, NY", "2023-06-15"),
    ("Dennis Ritchie", "dmr@example.com", "Murray Hill", "2023-07-04"),
    ("Radia Perlman", "radia@example.com", "Seattle", "2023-07-19"),
    ("Leslie Lamport", "leslie@example.com", "Palo Alto", "2023-08-08"),
    ("Katherine Johnson", "katherine@example.com", "Hampton", "2023-08-30"),
    ("Tony Hoare", "tony@example.com", "Oxford", "2023-09-17"),
    ("Sophie Wilson", "sophie@example.com", "Cambridge", "2023-10-05"),
    ("Michael Stonebraker", "mike@example.com", "Berkeley", "2023-10-26"),
    ("Jim Gray", "jim@example.com", "San Francisco", "2023-11-11"),
    ("Hedy Lamarr", "hedy@example.com", "Vienna", "2023-12-01"),
    ("Linus Torvalds", "linus@example.com", "Portland", "2024-01-09"),
    ("Shafi Goldwasser", "shafi@example.com", "Tel Aviv", "2024-01-30"),
]
PRODUCTS = [
    ("Mechanical keyboard", "89.00"),
    ("27-inch monitor", "249.99"),
    ("USB-C dock", "129.50"),
    ("Noise-cancelling headphones", "199.00"),
    ("Laptop stand", "39.95"),
    ("Webcam", "64.00"),
    ("External SSD 1 TB", "109.90"),
    ("Desk lamp", "45.00"),
]
STATUSES = ["delivered", "delivered", "delivered", "shipped", "paid", "cancelled"]


def _orders() -> list[tuple[int, str, int, str, str, str]]:
    """Thirty orders spread over the customers, the same every reset."""
    rows = []
    for n in range(30):
        customer = (n * 7) % len(CUSTOMERS) + 1
        product, price = PRODUCTS[(n * 5 + 3) % len(PRODUCTS)]
        quantity = 1 + (n * 3) % 3
        status = STATUSES[(n * 11) % len(STATUSES)]
        day = 1 + (n * 13) % 28
        month = 1 + n % 12
        rows.append(
            (customer, product, quantity, price, status, f"2024-{month:02d}-{day:02d} 10:{n:02d}Z")
        )
    return rows


SCHEMA = """
CREATE TABLE app.customers (
    id         integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL,
    email      text UNIQUE,
    city       text NOT NULL,
    signed_up  date NOT NULL
);
CREATE TABLE app.orders (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES app.customers (id),
    product     text NOT NULL,
    quantity    integer NOT NULL CHECK (quantity > 0),
    amount      numeric(10, 2) NOT NULL,
    status      text NOT NULL,
    ordered_at  timestamptz NOT NULL
);
CREATE INDEX orders_customer_id ON app.orders (customer_id);
"""

# Relation kinds a visitor can create in app through the firewall (tables, views,
# materialized views, sequences, foreign and partitioned tables); indexes go with them.
# Composite types (CREATE TYPE ... AS) are relations of kind "c" too.
_RELKINDS = ("r", "v", "m", "S", "f", "p", "c")
_RESET_LOCK = 0x6677_0001  # pg_advisory_xact_lock key: one reset at a time


_SAMPLE_PRESENT = (
    "SELECT to_regclass('app.customers') IS NOT NULL AND to_regclass('app.orders') IS NOT NULL"
)
_sandbox_seen_at = -math.inf  # when this process last saw the sample tables


async def ensure_sandbox(recheck: bool = False) -> dict[str, Any] | None:
    """Create the sample schema when a table of it is missing (a fresh instance, a restored
    one), so that the console's suggested query and the load test work before anyone has
    pressed Reset. Returns the reset's summary when it created them, None when they were
    there. Checked at most every ``SANDBOX_RECHECK`` seconds per process: cheap enough to
    call before every statement; ``recheck`` looks now whatever the last look said."""
    global _sandbox_seen_at
    if not recheck and time.monotonic() - _sandbox_seen_at < SANDBOX_RECHECK:
        return None
    summary = await reset_sandbox(only_if_missing=True)
    _sandbox_seen_at = time.monotonic()
    return summary


async def reset_sandbox(only_if_missing: bool = False) -> dict[str, Any] | None:
    """Restore the sample schema: everything in ``app`` dropped, the tables made and filled
    again, in one transaction, connected directly (the firewall would block the DROPs).
    With ``only_if_missing``, do nothing (and return None) when both tables exist: decided
    under the reset's lock, so concurrent callers create them once."""
    started = time.perf_counter()
    async with (
        await connect_direct() as conn,
        conn.transaction(),
    ):
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", [_RESET_LOCK])
        if only_if_missing and (await (await conn.execute(_SAMPLE_PRESENT)).fetchone())[0]:
            return None
        await conn.execute("SET LOCAL lock_timeout = '3s'")
        relations = await (
            await conn.execute(
                "SELECT c.relname, c.relkind FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'app' AND c.relkind = ANY(%s) "
                "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid "
                "AND d.deptype IN ('a', 'i'))",  # owned sequences go with their table
                [list(_RELKINDS)],
            )
        ).fetchall()
        kinds = {
            "r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW",
            "S": "SEQUENCE", "f": "FOREIGN TABLE", "c": "TYPE",
        }  # fmt: skip
        for name, kind in relations:
            await conn.execute(
                sql.SQL("DROP {} IF EXISTS app.{} CASCADE").format(
                    sql.SQL(kinds[kind]), sql.Identifier(name)
                )
            )
        types = await (
            await conn.execute(
                "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
                "WHERE n.nspname = 'app' AND t.typtype IN ('e', 'd', 'r')"
            )
        ).fetchall()
        for (name,) in types:
            await conn.execute(
                sql.SQL("DROP TYPE IF EXISTS app.{} CASCADE").format(sql.Identifier(name))
            )
        await conn.execute(SCHEMA)
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO app.customers (name, email, city, signed_up) VALUES (%s, %s, %s, %s)",
                CUSTOMERS,
            )
            await cur.executemany(
                "INSERT INTO app.orders "
                "(customer_id, product, quantity, amount, status, ordered_at) "
                "VALUES (%s, %s, %s, %s::numeric * %s, %s, %s)",
                [(c, p, q, price, q, s, at) for c, p, q, price, s, at in _orders()],
            )
    ms = round((time.perf_counter() - started) * 1000, 1)
    dropped = len(relations) + len(types)
    logger.info(
        "event=sandbox_reset dropped=%d ms=%.1f only_if_missing=%s", dropped, ms, only_if_missing
    )
    return {
        "tables": {"customers": len(CUSTOMERS), "orders": len(_orders())},
        "dropped": dropped,
        "ms": ms,
    }


# -- the console ---------------------------------------------------------------------------


def check_sql(text: Any) -> str:
    """The console input as it will be sent, or ValueError with a message for the visitor."""
    if not isinstance(text, str):
        raise ValueError('"sql" must be a string of SQL')
    if not text.strip():
        raise ValueError("type a statement first")
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_SQL_BYTES:
        raise ValueError(
            f"the console takes up to {MAX_SQL_BYTES // 1024} KB of SQL; got {size:,} bytes"
        )
    if "\x00" in text:
        raise ValueError("SQL cannot contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("the SQL is not valid Unicode text") from exc
    return text


async def _wait(fd: int, write: bool = False) -> None:
    """Until the connection's socket is readable (or writable)."""
    loop = asyncio.get_running_loop()
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    if write:
        loop.add_writer(fd, wake)
    else:
        loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        if write:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)


async def _next_result(pgconn: pq.abc.PGconn) -> pq.abc.PGresult | None:
    """libpq's next result without blocking the event loop; None when the input is done."""
    while pgconn.is_busy():
        await _wait(pgconn.socket)
        pgconn.consume_input()
    return pgconn.get_result()


def _field(res: pq.abc.PGresult, field: pq.DiagnosticField, encoding: str) -> str | None:
    value = res.error_field(field)
    return value.decode(encoding, "replace") if value is not None else None


def _error(res: pq.abc.PGresult, encoding: str) -> dict[str, Any]:
    """A statement's ErrorResponse as the page shows it: the firewall's verdict (with its
    rule) or PostgreSQL's own error."""
    F = pq.DiagnosticField
    message = _field(res, F.MESSAGE_PRIMARY, encoding) or (
        res.error_message.decode(encoding, "replace").strip()
    )
    sqlstate = _field(res, F.SQLSTATE, encoding) or ""
    match = _BLOCKED.match(message)
    blocked = bool(match) and sqlstate == "42501"
    position = _field(res, F.STATEMENT_POSITION, encoding)
    return {
        "ok": False,
        "sqlstate": sqlstate,
        "blocked": blocked,
        "rule": match["rule"] if blocked else None,
        # The firewall also refuses what it cannot parse (fail closed): a syntax error is
        # answered by the proxy, not by PostgreSQL, though with PostgreSQL's SQLSTATE.
        "source": "firewall" if message.startswith("firewall:") else "postgres",
        "message": message,
        "detail": _field(res, F.MESSAGE_DETAIL, encoding),
        "hint": _field(res, F.MESSAGE_HINT, encoding),
        "position": int(position) if position and position.isdigit() else None,
    }


def _cell(value: bytes | None, encoding: str) -> str | None:
    if value is None:
        return None
    text = value.decode(encoding, "replace")
    return text if len(text) <= MAX_CELL_CHARS else text[:MAX_CELL_CHARS] + "…"


async def connect_direct(**kwargs: Any) -> psycopg.AsyncConnection:
    """A login to the demo instance itself, around the firewall: resets, the sandbox check
    and the load test's baseline."""
    return await psycopg.AsyncConnection.connect(
        demo_dsn(), connect_timeout=CONNECT_TIMEOUT, **kwargs
    )


async def connect_through_firewall(**kwargs: Any) -> psycopg.AsyncConnection:
    """A login through the SQL firewall; FirewallUnavailable says why one failed."""
    try:
        return await psycopg.AsyncConnection.connect(
            firewall_dsn(), connect_timeout=CONNECT_TIMEOUT, **kwargs
        )
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise FirewallUnavailable(
            f"cannot log in through the SQL firewall at "
            f"{settings.FIREWALL_HOST}:{settings.FIREWALL_PORT}: {reason}"
        ) from exc


async def run_statement(text: str) -> dict[str, Any]:
    """Run one console input (one or several statements) through the firewall, once the
    sample tables are known to exist (:func:`ensure_sandbox`). Should it fail for a missing
    table because the sample tables went missing since this process last looked (a fresh
    instance), they are made again and the input runs once more, as the visitor meant it:
    an error rolls the whole (implicit) transaction of the input back, so nothing ran twice.
    """
    text = check_sql(text)
    await ensure_sandbox()
    result = await _run_once(text)
    if result.get("sqlstate") == "42P01" and await ensure_sandbox(recheck=True) is not None:
        result = await _run_once(text)
    return result


async def _run_once(text: str) -> dict[str, Any]:
    """One console input through the firewall.

    Sent as one simple-protocol Query, as psql sends it, so the guard sees exactly what was
    typed. Rows are read one at a time (libpq's single-row mode): the first ``MAX_ROWS`` are
    kept, and a statement that goes on past ``MAX_SCAN_ROWS`` is cancelled. Returns the last
    result that had columns (a SELECT's, even with no rows), or the first error.
    """
    started = time.perf_counter()
    conn = await connect_through_firewall(autocommit=True)
    pgconn = conn.pgconn
    encoding = conn.info.encoding
    statuses: list[str] = []
    shown: dict[str, Any] | None = None  # the result with rows the page will show
    current: dict[str, Any] | None = None  # the result being read
    error: dict[str, Any] | None = None
    kept_bytes = 0
    cut = ""  # why reading stopped early, if it did
    cut_state = "57014"  # and the SQLSTATE that says so: query_canceled, unless told otherwise
    try:
        async with asyncio.timeout(STATEMENT_DEADLINE):
            pgconn.send_query(text.encode(encoding))
            while pgconn.flush():
                await _wait(pgconn.socket, write=True)
            pgconn.set_single_row_mode()
            while (res := await _next_result(pgconn)) is not None:
                status = res.status
                if status == pq.ExecStatus.SINGLE_TUPLE:
                    if current is None:
                        current = {
                            "columns": [
                                res.fname(i).decode(encoding, "replace") for i in range(res.nfields)
                            ],
                            "rows": [],
                            "row_count": 0,
                        }
                    current["row_count"] += 1
                    if len(current["rows"]) < MAX_ROWS and kept_bytes < MAX_RESULT_BYTES:
                        row = [_cell(res.get_value(0, i), encoding) for i in range(res.nfields)]
                        kept_bytes += sum(len(c or "") for c in row)
                        current["rows"].append(row)
                    if current["row_count"] >= MAX_SCAN_ROWS:
                        cut = f"stopped reading after {MAX_SCAN_ROWS:,} rows"
                        break
                elif status == pq.ExecStatus.TUPLES_OK:
                    if current is None:  # no rows: the columns come with the final result
                        current = {
                            "columns": [
                                res.fname(i).decode(encoding, "replace") for i in range(res.nfields)
                            ],
                            "rows": [],
                            "row_count": 0,
                        }
                    statuses.append(res.command_status.decode(encoding, "replace"))
                    shown, current = current, None
                elif status == pq.ExecStatus.COMMAND_OK:
                    statuses.append(res.command_status.decode(encoding, "replace"))
                elif status == pq.ExecStatus.EMPTY_QUERY:
                    statuses.append("")
                elif status == pq.ExecStatus.FATAL_ERROR:
                    error = _error(res, encoding)
                elif status in (pq.ExecStatus.COPY_IN, pq.ExecStatus.COPY_OUT):
                    cut = "COPY to or from the client is not supported by this console"
                    cut_state = "0A000"  # feature_not_supported
                    break
                else:
                    cut = f"unexpected result {status.name}"
                    break
    except TimeoutError:
        cut = f"no answer within {STATEMENT_DEADLINE:g} s"
    except UnicodeEncodeError:
        cut = f"the SQL cannot be written in the database's encoding ({encoding})"
        cut_state = "22021"  # character_not_in_repertoire
    except psycopg.OperationalError as exc:  # the proxy or the server hung up on us
        lost = str(exc).strip() or type(exc).__name__
        cut = f"the connection through the firewall was lost: {lost}"
        cut_state = "08006"  # connection_failure
    finally:
        if cut:
            # Abandon the statement: cancel it (through the proxy, which forwards the cancel
            # to the server connection this client holds) and hang up.
            try:
                await conn.cancel_safe(timeout=2)
            except Exception as exc:  # cancelling is best effort; closing ends it anyway
                logger.info("event=console_cancel_failed error=%s", type(exc).__name__)
        await conn.close()
    ms = round((time.perf_counter() - started) * 1000, 1)
    if error is not None:
        return {**error, "statuses": statuses, "ms": ms}
    if cut and current is not None:  # a statement cut short shows what was read
        shown = current
    if cut and shown is None:
        return {
            "ok": False, "sqlstate": cut_state, "blocked": False, "rule": None,
            "source": "console", "message": cut, "detail": None, "hint": None,
            "position": None, "statuses": statuses, "ms": ms,
        }  # fmt: skip
    result: dict[str, Any] = {
        "ok": True,
        "columns": shown["columns"] if shown else [],
        "rows": shown["rows"] if shown else [],
        "row_count": shown["row_count"] if shown else 0,
        "truncated": bool(shown) and shown["row_count"] > len(shown["rows"]),
        "status": statuses[-1] if statuses else "",
        "statuses": statuses,
        "ms": ms,
    }
    if cut:
        result["note"] = cut
    return result


# -- the proxy's figures ----------------------------------------------------------------------


async def firewall_stats() -> dict[str, Any] | None:
    """The firewall's ``/stats.json``, or None when its metrics listener does not answer."""
    port = settings.FIREWALL_METRICS_PORT
    try:
        async with asyncio.timeout(STATS_TIMEOUT):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(b"GET /stats.json HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                await writer.drain()
                response = await reader.read(4 * 1024 * 1024)
                while chunk := await reader.read(65536):
                    response += chunk
            finally:
                writer.close()
    except (OSError, TimeoutError) as exc:
        logger.debug("event=firewall_stats_unreachable port=%s error=%s", port, exc)
        return None
    head, _, body = response.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.") or b" 200 " not in head.split(b"\r\n", 1)[0] + b" ":
        return None
    return parse_stats(body)


def parse_stats(body: bytes | str) -> dict[str, Any] | None:
    """The snapshot, or None when the body is not a JSON object."""
    try:
        stats = json.loads(body)
    except ValueError:
        return None
    return stats if isinstance(stats, dict) else None
