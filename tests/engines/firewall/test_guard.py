"""The guard against a corpus of destructive SQL, hidden every way we know (all blocked),
and a corpus of ordinary SQL that merely looks dangerous (none blocked)."""

from __future__ import annotations

import pytest

from engines.firewall.guard import RULES, Guard

# (statement, the rule that must fire)
DESTRUCTIVE = [
    ("DROP TABLE users", "drop"),
    ("drop table if exists users cascade", "drop"),
    ("DROP INDEX CONCURRENTLY users_email", "drop"),
    ("DROP SCHEMA app CASCADE", "drop"),
    ("DROP DATABASE demo", "drop"),
    ("DROP ROLE demo", "drop"),
    ("DROP OWNED BY demo", "drop"),
    ("DROP VIEW v; DROP FUNCTION f()", "drop"),
    ('DROP TABLE "Users"', "drop"),
    ('DROP TABLE U&"\\0075sers"', "drop"),
    ("/* harmless */ DROP/**/TABLE users", "drop"),
    ("-- comment\nDROP TABLE users", "drop"),
    ("SELECT 1; DROP TABLE users", "drop"),
    ("SELECT 1;DROP TABLE users;SELECT 2", "drop"),
    ("PREPARE p AS SELECT 1; DROP TABLE users", "drop"),
    ("TRUNCATE users", "truncate"),
    ("TRUNCATE TABLE users, orders RESTART IDENTITY CASCADE", "truncate"),
    ("truncate ONLY users", "truncate"),
    ("ALTER TABLE users ADD COLUMN x int", "alter_table"),
    ("ALTER TABLE users DROP COLUMN email", "alter_table"),
    ("ALTER TABLE IF EXISTS ONLY users ALTER COLUMN id TYPE bigint", "alter_table"),
    ("ALTER TABLE users RENAME TO people", "alter_table"),
    ("ALTER TABLE users RENAME COLUMN email TO mail", "alter_table"),
    ("ALTER TABLE users RENAME CONSTRAINT users_pkey TO pk", "alter_table"),
    ("ALTER TABLE users SET SCHEMA archive", "alter_table"),
    ("ALTER INDEX users_email RENAME TO x", "alter_table"),
    ("DELETE FROM users", "delete_without_where"),
    ("delete from app.users", "delete_without_where"),
    ("DELETE FROM users WHERE true", "delete_without_where"),
    ("DELETE FROM users WHERE 1 = 1", "delete_without_where"),
    ("DELETE FROM users WHERE 'a' = 'a'", "delete_without_where"),
    ("DELETE FROM ONLY users AS u RETURNING *", "delete_without_where"),
    ("UPDATE users SET email = NULL", "update_without_where"),
    ("UPDATE users SET email = NULL WHERE 2 > 1", "update_without_where"),
    ("DELETE FROM users WHERE now() IS NOT NULL", "delete_without_where"),
    ("DELETE FROM users WHERE length('x') > 0", "delete_without_where"),
    ("DELETE FROM users WHERE EXISTS (SELECT 1 FROM bans)", "delete_without_where"),
    ("UPDATE users SET email = NULL WHERE EXISTS (SELECT 1)", "update_without_where"),
    (
        "WITH gone AS (DELETE FROM users RETURNING *) SELECT count(*) FROM gone",
        "delete_without_where",
    ),
    (
        "WITH a AS (SELECT 1), b AS (UPDATE users SET x = 1 RETURNING 1) SELECT * FROM b",
        "update_without_where",
    ),
    (
        "SELECT * FROM (SELECT 1) s; WITH x AS (DELETE FROM t RETURNING 1) INSERT INTO log SELECT * FROM x",
        "delete_without_where",
    ),
    ("PREPARE wipe AS DELETE FROM users", "delete_without_where"),
    ("PREPARE wipe(int) AS UPDATE users SET n = $1", "update_without_where"),
    ("EXPLAIN ANALYZE DELETE FROM users", "delete_without_where"),
    ("EXPLAIN (ANALYZE, BUFFERS) UPDATE users SET a = 1", "update_without_where"),
    ("COPY (DELETE FROM users RETURNING *) TO STDOUT", "delete_without_where"),
    (
        "COPY (UPDATE users SET a = 1 RETURNING *) TO STDOUT WITH (FORMAT csv)",
        "update_without_where",
    ),
    ("CREATE RULE r AS ON INSERT TO log DO ALSO DELETE FROM users", "delete_without_where"),
    (
        "CREATE RULE r AS ON UPDATE TO t DO INSTEAD (NOTIFY x; UPDATE users SET a = 1)",
        "update_without_where",
    ),
    ("MERGE INTO users u USING src s ON true WHEN MATCHED THEN DELETE", "merge_without_condition"),
    (
        "MERGE INTO users u USING src s ON 1 = 1 WHEN MATCHED THEN UPDATE SET n = s.n",
        "merge_without_condition",
    ),
    ("DO $$ BEGIN EXECUTE 'DROP TABLE users'; END $$", "dynamic_sql"),
    ("DO LANGUAGE plpgsql $body$ BEGIN PERFORM 1; END $body$", "dynamic_sql"),
    ("CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'SELECT 1'", "dynamic_sql"),
    ("CREATE OR REPLACE PROCEDURE p() LANGUAGE plpgsql AS $$ BEGIN END $$", "dynamic_sql"),
    ("COPY users TO PROGRAM 'gzip > /tmp/u.gz'", "copy_program"),
    ("SELECT dblink_exec('dbname=demo', 'DROP TABLE users')", "unsafe_function"),
    ("SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_stat_activity", "unsafe_function"),
    (
        "SELECT * FROM users WHERE id = (SELECT 1 FROM (SELECT PG_TERMINATE_BACKEND(1)) x)",
        "unsafe_function",
    ),
    ("SET standard_conforming_strings = off", "string_syntax"),
]

BENIGN = [
    "SELECT 1",
    "DELETE FROM users WHERE random() < 0.01",
    "DELETE FROM users WHERE lower(email) = 'x'",
    "DELETE FROM users WHERE id IN (SELECT user_id FROM bans)",
    "DELETE FROM users WHERE EXISTS (SELECT 1 FROM bans b WHERE b.user_id = users.id)",
    "SELECT 'DROP TABLE users' AS text",
    "SELECT $$TRUNCATE users$$",
    "SELECT E'DELETE FROM users\\n'",
    "-- DROP TABLE users\nSELECT 1",
    "/* TRUNCATE users; */ SELECT now()",
    'SELECT "drop", "truncate" FROM "delete"',
    "SELECT * FROM users WHERE note = 'ALTER TABLE users'",
    "DELETE FROM users WHERE id = 42",
    "DELETE FROM users WHERE id = $1",
    "DELETE FROM users u USING banned b WHERE u.id = b.user_id",
    "DELETE FROM users WHERE id IN (SELECT user_id FROM banned)",
    "DELETE FROM users WHERE CURRENT OF users_cursor",
    "UPDATE users SET visits = visits + 1 WHERE id = 7 RETURNING visits",
    "WITH moved AS (DELETE FROM queue WHERE id = 1 RETURNING *) INSERT INTO done SELECT * FROM moved",
    "INSERT INTO users (email) VALUES ('a@b.c') ON CONFLICT (email) DO UPDATE SET visits = 1",
    "MERGE INTO users u USING src s ON u.id = s.id WHEN MATCHED THEN DELETE",
    "CREATE TABLE notes (id serial PRIMARY KEY, body text)",
    "CREATE INDEX ON notes (body)",
    "BEGIN; SELECT 1; COMMIT",
    "PREPARE q(int) AS SELECT * FROM users WHERE id = $1",
    "EXECUTE q(1)",
    "EXPLAIN SELECT * FROM users",
    "COPY users TO STDOUT WITH (FORMAT csv)",
    "COPY users (email) FROM STDIN",
    "SET statement_timeout = '1s'",
    "SHOW search_path",
    "SELECT pg_sleep(0)",
    "CALL refresh_stats()",
    "SELECT * FROM drop_log",
]


@pytest.fixture
def guard() -> Guard:
    return Guard()


@pytest.mark.parametrize(("sql", "rule"), DESTRUCTIVE)
def test_destructive_sql_is_blocked_by_its_rule(guard, sql, rule):
    verdict = guard.check(sql)
    assert verdict.blocked, sql
    assert verdict.rule == rule
    assert verdict.sqlstate == "42501"
    assert f'rule "{rule}"' in verdict.message


@pytest.mark.parametrize("sql", BENIGN)
def test_benign_sql_is_allowed(guard, sql):
    verdict = guard.check(sql)
    assert verdict.allowed, verdict.message


def test_every_rule_has_a_destructive_example():
    assert {rule for _, rule in DESTRUCTIVE} == set(RULES)


def test_unparseable_sql_is_blocked_with_a_syntax_error(guard):
    verdict = guard.check("SELEC 1 FROM")
    assert verdict.blocked
    assert verdict.rule == "parse_error"
    assert verdict.sqlstate == "42601"
    assert "syntax error" in verdict.message


def test_deeply_nested_sql_is_refused_not_crashed(guard):
    assert guard.check("SELECT " + "(" * 1000 + "1" + ")" * 1000).allowed
    verdict = guard.check("SELECT " + "(" * 200_000 + "1" + ")" * 200_000)
    assert verdict.blocked
    assert verdict.rule == "parse_error"


def test_oversized_query_is_refused():
    verdict = Guard(max_query_bytes=100).check("SELECT '" + "x" * 200 + "'")
    assert verdict.blocked
    assert verdict.rule == "too_long"
    assert verdict.sqlstate == "54000"


def test_verdicts_are_cached_and_counted(guard):
    for _ in range(3):
        guard.check("DROP TABLE users")
    guard.check("SELECT 1")
    assert guard.stats.checked == 4
    assert guard.stats.cache_hits == 2
    assert guard.stats.blocked == {"drop": 3}


def test_cache_is_bounded():
    guard = Guard(cache_size=10)
    for n in range(50):
        guard.check(f"SELECT {'c' * (n + 1)} FROM t")
    assert len(guard._cache) == 10
    guard.check("SELECT c FROM t")  # the oldest went first: parsed again
    assert guard.stats.cache_hits == 0


def test_identifiers_differing_in_digits_share_a_verdict_but_not_a_message(guard):
    assert guard.check("SELECT * FROM t1").allowed
    assert guard.check("SELECT * FROM t2").allowed
    assert guard.stats.cache_hits == 1
    assert 't1"' in guard.check("DELETE FROM t1").message
    assert 't2"' in guard.check("DELETE FROM t2").message


def test_bytes_off_the_wire_are_checked_like_text(guard):
    assert guard.check(b"DROP TABLE t").rule == "drop"
    assert guard.check(b"SELECT 'caf\xc3\xa9'").allowed
    with pytest.raises(UnicodeDecodeError):
        guard.check(b"SELECT '\xff'")


def test_rules_can_be_disabled_and_roles_exempted():
    guard = Guard(rules={"drop"}, exempt_roles={"owner"})
    assert guard.check("TRUNCATE users").allowed
    assert guard.check("DROP TABLE users").blocked
    assert guard.check("DROP TABLE users", role="owner").allowed
    assert guard.check("DROP TABLE users", role="demo").blocked


def test_unknown_rule_names_are_rejected():
    with pytest.raises(ValueError, match="unknown guard rules"):
        Guard(rules={"drop", "nuke"})


@pytest.mark.parametrize(
    "sql",
    [
        """SELECT '{"DeleteStmt":{}}' AS fake_node""",
        'SELECT 1 AS "{""DropStmt"":"""',
        "SELECT 'dblink_exec', 'pg_terminate_backend'",
        "SELECT count(*), now() FROM users",
    ],
)
def test_text_that_looks_like_a_trigger_is_still_allowed(guard, sql):
    """The fast path skips the tree walk only when no trigger appears; text that merely
    resembles one goes the long way and is still allowed."""
    assert guard.check(sql).allowed


def test_trigger_inside_a_cte_of_an_otherwise_plain_select(guard):
    verdict = guard.check("SELECT * FROM (SELECT 1) a, LATERAL (SELECT 2) b; TRUNCATE t")
    assert verdict.rule == "truncate"


def test_statements_differing_only_in_numbers_share_a_verdict(guard):
    for aid in (4711, 8150, 9999):  # as many digits: the key keeps the length
        assert guard.check(f"SELECT abalance FROM pgbench_accounts WHERE aid = {aid}").allowed
    assert guard.stats.cache_hits == 2
    # ...but a number standing where a column stood is a different statement.
    assert guard.check("DELETE FROM t WHERE id = 7").allowed
    assert guard.check("DELETE FROM t WHERE 7 = 7").rule == "delete_without_where"
    assert guard.check("DELETE FROM t1 WHERE t1.c2 = 3").allowed
    assert guard.check("DELETE FROM t2 WHERE 3 = 3").blocked


def test_latency_percentiles_past_the_last_bucket_stay_valid_json():
    import json

    from engines.firewall.metrics import LatencyHistogram

    histogram = LatencyHistogram()
    histogram.observe(0.0001)
    histogram.observe(5.0)  # past the last bound
    snapshot = json.loads(json.dumps(histogram.snapshot(), allow_nan=False))
    assert snapshot["p99_us"] == "+Inf"
    assert snapshot["p50_us"] == 100


@pytest.mark.parametrize("tag", ["a", "€", "é", "_"])
def test_dollar_quote_tags_with_digits_never_share_a_cached_verdict(guard, tag):
    """Tags differing only in digits must not collapse into one cache key: with one pair of
    tags the text is a single string, with one tag it is three statements, one a DROP."""
    one_string = f"SELECT ${tag}1$ x ${tag}2$; DROP TABLE t; SELECT ${tag}2$ y ${tag}1$"
    three_statements = f"SELECT ${tag}1$ x ${tag}1$; DROP TABLE t; SELECT ${tag}1$ y ${tag}1$"
    assert guard.check(one_string).allowed
    assert guard.check(three_statements).rule == "drop"


def test_text_with_a_dollar_is_cached_under_its_exact_bytes(guard):
    guard.check("SELECT $1")
    guard.check("SELECT $2")
    guard.check("SELECT $2")
    assert guard.stats.cache_hits == 1


@pytest.mark.parametrize(
    "sql",
    [
        "SET standard_conforming_strings = off",
        "SET LOCAL standard_conforming_strings TO false",
        "SET SESSION standard_conforming_strings = 'no'",
        'SET "standard_conforming_strings" = 0',
        "SET standard_conforming_strings = 1",  # digits are refused either way (cache keys)
        "SELECT set_config('standard_conforming_strings', 'off', false)",
        "SELECT pg_catalog.set_config('Standard_Conforming_Strings', 'off', true)",
        "SELECT set_config(name, 'off', false) FROM my_settings",
        "ALTER ROLE app SET standard_conforming_strings = off",
        "ALTER DATABASE app SET standard_conforming_strings = off",
        "ALTER SYSTEM SET standard_conforming_strings = off",
        "UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'",
        "SELECT 1; SET standard_conforming_strings = off",
        "SET client_encoding = 'BIG5'",
        "SET NAMES 'sjis'",
        "SET client_encoding TO gbk",
        "SELECT set_config('client_encoding', 'UHC', false)",
        "ALTER ROLE app SET client_encoding = 'GB18030'",
    ],
)
def test_nothing_may_make_the_server_read_strings_unlike_the_guard(guard, sql):
    """With standard strings off, the server would read `'a\\' , '...'` as one string where
    the guard reads two; in BIG5 a multibyte character can swallow a backslash's byte."""
    assert guard.check(sql).rule == "string_syntax"


@pytest.mark.parametrize(
    "sql",
    [
        "SET standard_conforming_strings = on",
        "SET standard_conforming_strings TO DEFAULT",
        "RESET standard_conforming_strings",
        "RESET ALL",
        "SET work_mem = '64MB'",
        "SELECT set_config('application_name', 'report', false)",
        "SHOW standard_conforming_strings",
        "SET client_encoding = 'UTF8'",
        "SET NAMES 'utf-8'",
        "SET client_encoding TO DEFAULT",
    ],
)
def test_other_settings_and_turning_standard_strings_on_are_allowed(guard, sql):
    assert guard.check(sql).allowed


def test_numeric_setting_values_share_a_cache_key_and_a_verdict(guard):
    assert guard.check("SET standard_conforming_strings = 1").rule == "string_syntax"
    assert guard.check("SET standard_conforming_strings = 0").rule == "string_syntax"
