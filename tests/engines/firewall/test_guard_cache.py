"""The guard's verdict cache and its limits: a verdict shared only where the statements are
the same but for numbers (never when it read one), a primed cache answering as a fresh guard
does (hypothesis), statements too long, too deep or too slow to check, and long ones judged
in a worker process that dies with its proxy."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from engines.firewall.guard import Guard
from engines.procs import pid_alive


def test_verdicts_that_read_a_constant_are_shared_only_with_the_same_text(guard):
    assert guard.check("DELETE FROM t WHERE 1 = 0").allowed
    assert guard.check("DELETE FROM t WHERE 1 = 1").rule == "delete_without_where"
    assert guard.check("SET standard_conforming_strings = 1").allowed
    assert guard.check("SET standard_conforming_strings = 0").rule == "string_syntax"
    assert guard.check("SET standard_conforming_strings = 1").allowed


def test_names_differing_in_digits_never_share_a_verdict(guard):
    session = guard.session("demo", transaction_mode=False)
    assert session.check(b"CREATE TEMP TABLE t1 (a int)").allowed
    assert session.check(b"DROP TABLE t1").allowed
    assert session.check(b"DROP TABLE t2").rule == "drop"


def test_statements_differing_only_in_numbers_share_a_verdict(guard):
    for aid in (4711, 8150, 99999):
        assert guard.check(f"SELECT abalance FROM pgbench_accounts WHERE aid = {aid}").allowed
    assert guard.stats.cache_hits == 2


def test_unparseable_sql_is_refused_with_a_syntax_error(guard):
    verdict = guard.check("SELEC 1 FROM")
    assert (verdict.rule, verdict.sqlstate) == ("parse_error", "42601")
    assert "syntax error" in verdict.message


def test_deeply_nested_sql_is_refused_not_crashed(guard):
    assert guard.check("SELECT " + "(" * 1000 + "1" + ")" * 1000).allowed
    assert guard.check("SELECT " + "(" * 200_000 + "1" + ")" * 200_000).blocked


def test_oversized_and_slow_statements_are_refused(catalog):
    verdict = Guard(catalog, max_query_bytes=100).check("SELECT '" + "x" * 200 + "'")
    assert (verdict.rule, verdict.sqlstate) == ("too_long", "54000")
    slow = Guard(catalog, check_timeout=0.0)
    verdict = slow.check("SELECT 1 WHERE " + " AND ".join(["1 = 1"] * 5000))
    assert (verdict.rule, verdict.sqlstate) == ("too_complex", "54000")


def test_long_statements_are_parsed_off_the_event_loop(catalog):
    guard = Guard(catalog, offload_bytes=1000)
    sql = ("SELECT 1 WHERE " + " AND ".join(["1 = 1"] * 2000)).encode()

    async def check() -> tuple:
        session = guard.session("demo")
        first = session.check(sql)
        assert first.pending is not None
        assert guard.pending == 1
        await first.pending
        return first, session.check(sql)

    first, second = asyncio.run(check())
    assert first.blocked
    assert second.allowed
    assert guard.pending == 0


def test_verdicts_are_cached_and_counted(guard):
    for _ in range(3):
        guard.check("DROP TABLE users")
    guard.check("SELECT 1")
    assert guard.stats.checked == 4
    assert guard.stats.cache_hits == 2
    assert guard.stats.blocked == {"drop": 3}


def test_cache_is_bounded(catalog):
    guard = Guard(catalog, cache_size=10)
    for n in range(50):
        guard.check(f"SELECT {'c' * (n + 1)} FROM t")
    assert len(guard.cache_for("utf-8", True)) == 10


# Statements whose verdict a number can decide (or not), with slots for numbers (n, m) and
# for digits inside names (a): the cache must never answer one with another's verdict.
POISON_TEMPLATES = [
    "DELETE FROM t WHERE {n} = {m}",
    "DELETE FROM t WHERE id = {n}",
    "DELETE FROM t WHERE id = id + {n}",
    "UPDATE t SET v = {n} WHERE {m} > {n}",
    "SET standard_conforming_strings = {n}",
    "SELECT set_config('standard_conforming_strings', '{n}', false)",
    "SELECT * FROM t{a} WHERE x = {n}",
    "DROP TABLE t{a}",
    "SELECT sha{a}('x'::bytea), {n}",
    "SELECT {n}.{m}e{a} FROM t",
    "DELETE FROM t WHERE {n} = {m} AND id = {a}",
    "SELECT 1 -- {n}\n; DELETE FROM t WHERE {m} = {m}",
    "SELECT '{n}' = '{m}'; DELETE FROM t WHERE 1 = {n}",
]


@settings(max_examples=300, deadline=None)
@given(
    template=st.sampled_from(POISON_TEMPLATES),
    first=st.tuples(*[st.integers(0, 300)] * 3),
    second=st.tuples(*[st.integers(0, 300)] * 3),
)
def test_a_cached_verdict_is_the_one_a_fresh_guard_gives(catalog, template, first, second):
    """A guard that has seen one statement answers another of the same shape exactly as a
    guard that never saw the first (the cache-poisoning property, end to end)."""
    one, other = (template.format(n=n, m=m, a=a) for n, m, a in (first, second))
    primed = Guard(catalog)
    primed.check(one)
    cached, fresh = primed.check(other), Guard(catalog).check(other)
    assert (cached.allowed, cached.rule, cached.message) == (
        fresh.allowed, fresh.rule, fresh.message
    ), (one, other)  # fmt: skip


def test_the_worker_process_dies_with_a_proxy_killed_outright(postgres):
    """A long statement starts the guard's worker; SIGKILL the process that owns it (as an
    operator's kill -9 would) and the worker goes too, never left running alone."""
    script = (
        "import asyncio, os, sys, time\n"
        "from engines.firewall.catalog import load_catalog\n"
        "from engines.firewall.guard import Guard\n"
        "async def main():\n"
        "    guard = Guard(await load_catalog(sys.argv[1]), offload_bytes=10)\n"
        "    verdict = guard.session('demo').check(b'SELECT 1 WHERE 1 = 1 AND 2 = 2')\n"
        "    await verdict.pending\n"
        "    print(*guard._pool._processes, flush=True)\n"
        "    time.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", script, postgres[0].dsn()], stdout=subprocess.PIPE, text=True
    )
    try:
        workers = [int(pid) for pid in owner.stdout.readline().split()]
        assert workers
        assert all(pid_alive(pid) for pid in workers)
    finally:
        owner.kill()
        owner.wait(10)
    deadline = time.monotonic() + 10
    while any(pid_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(pid_alive(pid) for pid in workers)
