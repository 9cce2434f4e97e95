"""What the guard settles per session (guard.GuardSession): its pool mode, its own temporary
tables (run as pg_temp), checks that wait for bound values, fastpath calls by OID, the client
encoding its statements are read in, and the messages a SET client_encoding holds back."""

from __future__ import annotations

import pytest

from engines.firewall.guard import qualify_temp


@pytest.mark.parametrize(
    "sql",
    [
        "SET statement_timeout = '5s'",
        "SET statement_timeout = 1",
        "SET default_transaction_read_only = on",
        "SELECT set_config('statement_timeout', '1', false)",
        "CREATE TEMP TABLE users (a int)",
        "CREATE TABLE pg_temp_3.users (a int)",
        "LISTEN x",
        "PREPARE p AS SELECT 1",
        "DEALLOCATE ALL",
        "DISCARD ALL",
        "RESET ALL",
        "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
    ],
)
def test_session_state_needs_session_mode(guard, sql):
    refused = guard.session("demo", transaction_mode=True).check(sql.encode())
    assert refused.rule == "session_state"
    assert "session pool mode" in refused.message
    assert guard.session("demo", transaction_mode=False).check(sql.encode()).allowed


def test_own_temporary_tables_may_be_dropped_as_pg_temp(guard):
    session = guard.session("demo", transaction_mode=False)
    assert session.check(b"DROP TABLE scratch").rule == "drop"  # not made yet: a real table
    assert session.check(b"CREATE TEMP TABLE scratch (a int)").allowed
    for sql, rewritten in [
        (b"TRUNCATE scratch", b"TRUNCATE TABLE pg_temp.scratch"),
        (b"ALTER TABLE scratch ADD COLUMN b int", b"ALTER TABLE pg_temp.scratch ADD COLUMN b"),
        (b"DROP TABLE scratch", b"DROP TABLE pg_temp.scratch"),
    ]:
        verdict = session.check(sql)
        assert verdict.allowed, verdict.message
        assert verdict.sql is not None
        assert verdict.sql.startswith(rewritten)
    assert session.check(b"DROP TABLE scratch, users").rule == "drop"
    assert session.check(b"CREATE TEMP TABLE scratch (a int)").allowed
    indexed = session.check(b"CREATE UNIQUE INDEX ON scratch ((a + 1))")
    assert indexed.allowed, indexed.message
    assert indexed.sql.startswith(b"CREATE UNIQUE INDEX ON pg_temp.scratch")
    assert guard.session("demo", transaction_mode=False).check(b"DROP TABLE scratch").blocked


def test_qualify_temp_touches_only_the_named_relations():
    assert qualify_temp("DROP TABLE a, b; TRUNCATE a", frozenset({"a"})) == (
        "DROP TABLE pg_temp.a, b; TRUNCATE TABLE pg_temp.a"
    )


def test_where_with_only_parameters_is_decided_at_bind(guard):
    session = guard.session("demo")
    assert session.check(b"DELETE FROM users WHERE $1", statement=b"wipe").allowed
    assert session.check_bind(b"wipe", [b"false"], [0]).allowed
    assert session.check_bind(b"wipe", [None], [0]).allowed
    assert session.check_bind(b"wipe", [b"true"], [0]).rule == "delete_without_where"
    assert session.check_bind(b"wipe", [b"\x01"], [1]).rule == "delete_without_where"
    assert session.check_bind(b"wipe", [b"\x00\x00\x00\x01"], [1]).blocked  # unknown: refused
    session.forget(b"wipe")
    assert session.check_bind(b"wipe", [b"true"], [0]).allowed  # nothing left to check


def test_set_config_with_parameters_is_decided_at_bind(guard):
    session = guard.session("demo")
    assert session.check(b"SELECT set_config($1, $2, false)", statement=b"").allowed
    assert session.check_bind(b"", [b"application_name", b"x"], [0, 0]).allowed
    assert session.check_bind(b"", [b"TimeZone", b"UTC"], [0, 1]).allowed
    refused = session.check_bind(b"", [b"standard_conforming_strings", b"off"], [0, 0])
    assert refused.rule == "string_syntax"
    assert session.check_bind(b"", [b"role", b"postgres"], [0, 0]).rule == "setting"
    assert session.check_bind(b"", [b"statement_timeout", b"1"], [0, 0]).rule == "session_state"
    assert session.check_bind(b"", [b"client_encoding", b"SJIS"], [0, 0]).rule == "string_syntax"


def test_fastpath_calls_only_of_allowed_functions(guard, catalog):
    session = guard.session("demo")
    by_name = {f.name: f.oid for f in catalog.functions if f.schema == "pg_catalog"}
    assert session.check_function_call(by_name["lower"]).allowed
    for name in ("set_config", "lo_unlink", "pg_terminate_backend", "lo_import"):
        assert session.check_function_call(by_name[name]).rule == "function", name
    assert session.check_function_call(999_999_999).rule == "function"


def test_statements_are_read_in_the_sessions_encoding(guard):
    session = guard.session("demo", encoding="LATIN1")
    assert session.check("SELECT 'café'".encode("latin-1")).allowed
    refused = guard.session("demo").check(b"SELECT '\xe9'")  # not UTF-8
    assert refused.rule == "encoding"
    assert refused.sqlstate == "22021"
    assert not session.set_encoding("SJIS")
    with pytest.raises(ValueError, match="cannot be read"):
        guard.session("demo", encoding="BIG5")


def test_client_encoding_changes_hold_the_next_messages(guard):
    session = guard.session("demo")
    assert session.check(b"SET client_encoding = 'LATIN1'").holds
    assert session.check(b"SET client_encoding = 'LATIN1'", statement=b"").rule == "string_syntax"
