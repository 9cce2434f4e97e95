"""The guard's deny-by-default policy, statement by statement, against the real catalog of a
PostgreSQL 15: destructive SQL hidden every way we know is refused under the rule that names
why, and ordinary SQL (including what merely looks dangerous) passes. What sessions settle
(pool mode, temporary tables, bound values, encodings): test_guard_sessions.py; the cache,
limits and the worker process: test_guard_cache.py. Through the live proxy, judged by what the
server shows afterwards: test_redteam.py."""

from __future__ import annotations

import pytest

from engines.firewall.guard import Guard
from engines.firewall.verdicts import RULES

DESTRUCTIVE = [
    ("DROP TABLE users", "drop"),
    ("drop table if exists users cascade", "drop"),
    ("DROP INDEX CONCURRENTLY users_email", "drop"),
    ("DROP SCHEMA app CASCADE", "drop"),
    ("DROP DATABASE demo", "drop"),
    ("DROP ROLE demo", "drop"),
    ("DROP OWNED BY demo", "drop"),
    ("DROP TABLE public.users", "drop"),
    ('DROP TABLE U&"\\0075sers"', "drop"),
    ("/* harmless */ DROP/**/TABLE users", "drop"),
    ("SELECT 1;DROP TABLE users;SELECT 2", "drop"),
    ("TRUNCATE users", "truncate"),
    ("TRUNCATE TABLE public.users RESTART IDENTITY CASCADE", "truncate"),
    ("ALTER TABLE public.users ADD COLUMN x int", "alter_table"),
    ("ALTER TABLE users DROP COLUMN email", "alter_table"),
    ("ALTER TABLE users RENAME TO people", "alter_table"),
    ("ALTER TABLE users SET SCHEMA archive", "alter_table"),
    ("ALTER TYPE users RENAME ATTRIBUTE email TO mail", "alter_table"),
    ("CREATE OR REPLACE VIEW v AS SELECT 1", "alter_table"),
    ("DELETE FROM users", "delete_without_where"),
    ("DELETE FROM users WHERE true", "delete_without_where"),
    ("DELETE FROM users WHERE 1 = 1", "delete_without_where"),
    ("DELETE FROM users WHERE id = id", "delete_without_where"),
    ("DELETE FROM users WHERE id IS NOT NULL", "delete_without_where"),
    ("DELETE FROM users WHERE v = v OR true", "delete_without_where"),
    ("DELETE FROM users WHERE id <> 0", "delete_without_where"),
    ("DELETE FROM users WHERE id IN (SELECT id FROM users)", "delete_without_where"),
    ("DELETE FROM users WHERE id IN (SELECT id FROM users WHERE id = id)", "delete_without_where"),
    ("DELETE FROM users WHERE id IN (SELECT user_id FROM bans)", "delete_without_where"),
    ("DELETE FROM users WHERE id IN (SELECT id FROM other.users WHERE done)",
     "delete_without_where"),
    ("DELETE FROM users WHERE NOT (id = 1)", "delete_without_where"),
    ("UPDATE users SET email = 'x' WHERE id * 0 = 0", "update_without_where"),
    ("DELETE FROM users WHERE nullif(id, id) IS NULL", "delete_without_where"),
    ("DELETE FROM users WHERE id - id = 0", "delete_without_where"),
    ("DELETE FROM users WHERE email || 'x' LIKE '%x'", "delete_without_where"),
    ("DELETE FROM users o WHERE id IN (SELECT o.id FROM users WHERE id = 1)",
     "delete_without_where"),
    ("DELETE FROM users WHERE id IN (SELECT generate_series(1, 9) FROM users WHERE id = 1)",
     "delete_without_where"),
    ("MERGE INTO users u USING (SELECT 1) s ON true WHEN MATCHED AND u.id * 0 = 0 "
     "THEN UPDATE SET email = 'x'", "merge_without_condition"),
    ("DELETE FROM users WHERE '1'::int = '01'::int", "delete_without_where"),
    ("ALTER INDEX users RENAME TO gone; ALTER INDEX users RENAME TO x", "alter_table"),
    ("CREATE INDEX users_x ON users (id); ALTER INDEX users RENAME TO x", "alter_table"),
    ("CREATE UNIQUE INDEX one_more ON users ((true)) WHERE id > 100", "alter_table"),
    ("CREATE INDEX broken ON users ((1 / id))", "alter_table"),
    ("CREATE TABLE child (uid int REFERENCES users (id))", "alter_table"),
    ("ANALYZE pg_catalog.pg_class", "catalog"),
    ("DELETE FROM users WHERE email LIKE '%'", "delete_without_where"),
    ("DELETE FROM users WHERE email LIKE '_%%'", "delete_without_where"),
    ("DELETE FROM users WHERE email LIKE $1", "delete_without_where"),
    ("DELETE FROM users WHERE email NOT LIKE 'x%'", "delete_without_where"),
    ("DELETE FROM users USING (SELECT 1 AS a) x WHERE x.a = 1", "delete_without_where"),
    ("DELETE FROM users u USING users w WHERE u.id = w.id", "delete_without_where"),
    ("DELETE FROM users WHERE now() IS NOT NULL", "delete_without_where"),
    ("DELETE FROM users WHERE random() < 2", "delete_without_where"),
    ("UPDATE users SET email = NULL WHERE 2 > 1", "update_without_where"),
    ("UPDATE users SET email = NULL WHERE id = id + 0", "update_without_where"),
    ("WITH gone AS (DELETE FROM users WHERE id = id RETURNING *) SELECT 1", "delete_without_where"),
    ("EXPLAIN ANALYZE DELETE FROM users", "delete_without_where"),
    ("COPY (UPDATE users SET a = 1 RETURNING *) TO STDOUT", "update_without_where"),
    ("MERGE INTO users u USING src s ON u.id = s.id WHEN MATCHED THEN DELETE",
     "merge_without_condition"),
    ("MERGE INTO users u USING users s ON true WHEN MATCHED THEN UPDATE SET n = 1",
     "merge_without_condition"),
    ("INSERT INTO users SELECT id, 'x' FROM users ON CONFLICT (id) DO UPDATE SET email = 'x'",
     "merge_without_condition"),
    ("DO $$ BEGIN EXECUTE 'DROP TABLE users'; END $$", "dynamic_sql"),
    ("CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'SELECT 1'", "dynamic_sql"),
    ("CREATE RULE r AS ON INSERT TO users DO INSTEAD NOTHING", "statement"),
    ('CREATE RULE "_RETURN" AS ON SELECT TO users DO INSTEAD SELECT 1', "statement"),
    ("CREATE TRIGGER t BEFORE DELETE ON users EXECUTE FUNCTION f()", "statement"),
    ("CREATE EXTENSION dblink", "statement"),
    ("CREATE AGGREGATE a (text) (sfunc = textcat, stype = text)", "statement"),
    ("CREATE OPERATOR === (function = set_config, leftarg = text, rightarg = text)", "statement"),
    ("ALTER FUNCTION set_config(text, text, bool) RENAME TO innocent", "alter_table"),
    ("ALTER FUNCTION set_config(text, text, bool) OWNER TO demo", "statement"),
    ("ALTER SYSTEM SET work_mem = '1GB'", "statement"),
    ("LOCK TABLE users IN ACCESS EXCLUSIVE MODE", "statement"),
    ("VACUUM FULL users", "statement"),
    ("PREPARE TRANSACTION 'x'", "statement"),
    ("CREATE SCHEMA s", "statement"),
    ("COPY users TO PROGRAM 'gzip > /tmp/u.gz'", "server_files"),
    ("COPY users TO '/tmp/users'", "server_files"),
    ("COPY users FROM '/etc/hostname'", "server_files"),
    ("SELECT pg_read_file('/etc/hostname')", "function"),
    ("SELECT lo_import('/etc/passwd')", "function"),
    ("SELECT lo_export(1, '/tmp/x')", "function"),
    ("SELECT lo_unlink(1)", "function"),
    ("SELECT dblink_exec('dbname=demo', 'DROP TABLE users')", "function"),
    ("SELECT pg_catalog.pg_terminate_backend(1)", "function"),
    ('SELECT U&"\\0070g_terminate_backend"(1)', "function"),
    ("SELECT * FROM (SELECT PG_TERMINATE_BACKEND(1)) x", "function"),
    ("SELECT query_to_xml('DELETE FROM users', true, true, '')", "function"),
    ("SELECT pg_advisory_lock(1)", "function"),
    ("SELECT setseed(0.5)", "function"),
    ("SELECT setval('s', 1)", "function"),
    ("SELECT no_such_function()", "function"),
    # Column notation: PostgreSQL runs (x).f and t.f as f(x) and f(t).
    ("SELECT ('/etc/hostname'::text).pg_read_file", "function"),
    ("SELECT (42::bigint).pg_advisory_lock", "function"),
    ("SELECT f.pg_read_file FROM pg_catalog.text('/etc/hostname') f", "function"),
    ("SELECT 1 OPERATOR(public.===) 2", "operator"),
    ("UPDATE pg_class SET relname = 'x' WHERE relname = 'users'", "catalog"),
    ("UPDATE pg_settings SET setting = 'off' WHERE name = 'standard_conforming_strings'",
     "catalog"),
    ("INSERT INTO pg_catalog.pg_namespace VALUES (1)", "catalog"),
    ("DELETE FROM information_schema.sql_features WHERE feature_id = 'x'", "catalog"),
    ("CREATE VIEW v AS SELECT * FROM pg_settings", "catalog"),
    ("SELECT query FROM pg_stat_activity", "catalog"),
    ("SET standard_conforming_strings = off", "string_syntax"),
    ("SET standard_conforming_strings = 0", "string_syntax"),
    ("SELECT set_config('standard_conforming_strings', 'off', false)", "string_syntax"),
    ("SET client_encoding = 'SJIS'", "string_syntax"),
    ("SET NAMES 'win932'", "string_syntax"),
    ("SET client_encoding TO 'Shift_JIS'", "string_syntax"),
    ("SELECT set_config('client_encoding', 'LATIN1', false)", "string_syntax"),
    ("SET ROLE postgres", "setting"),
    ("SET SESSION AUTHORIZATION postgres", "setting"),
    ("SET session_replication_role = replica", "setting"),
    ("SET LOCAL search_path = information_schema, public", "setting"),
    ("SET LOCAL search_path = pg_temp, public", "setting"),
    ("SET LOCAL statement_timeout = 0", "setting"),
    ("SET LOCAL statement_timeout = '2h'", "setting"),
    ("SELECT set_config('lock_timeout', '0', true)", "setting"),
    ("SET LOCAL work_mem = '64GB'", "setting"),
    ("SELECT set_config(name, 'x', false) FROM t", "setting"),
]  # fmt: skip

BENIGN = [
    "SELECT 1",
    "SELECT abalance FROM pgbench_accounts WHERE aid = 5678",
    "UPDATE pgbench_accounts SET abalance = abalance + -1234 WHERE aid = 5678",
    "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 2, 3, 4, now())",
    "SELECT 'DROP TABLE users' AS text",
    "SELECT $$TRUNCATE users$$",
    "-- DROP TABLE users\nSELECT 1",
    'SELECT "drop", "truncate" FROM "delete"',
    "DELETE FROM users WHERE id = 42",
    "DELETE FROM users WHERE id = $1",
    "DELETE FROM users WHERE id IN (1, 2, 3)",
    "DELETE FROM users WHERE id = ANY($1)",
    "DELETE FROM logs WHERE created < now() - interval '30 days'",
    "DELETE FROM users WHERE email::text LIKE '%3'",
    "DELETE FROM users WHERE id = 1 OR id = 2",
    "DELETE FROM users WHERE deleted_at IS NULL AND id BETWEEN 1 AND 9",
    "DELETE FROM users u USING banned b WHERE u.id = 3 AND u.id = b.user_id",
    "DELETE FROM users WHERE CURRENT OF users_cursor",
    "DELETE FROM notes WHERE done",
    "UPDATE notes SET done = true WHERE NOT done AND id < 10",
    'DELETE FROM "orm_notes" WHERE "orm_notes"."id" IN (SELECT U0."id" FROM "orm_notes" U0 '
    'WHERE U0."done")',
    "DELETE FROM users WHERE false",
    "DELETE FROM users WHERE 1 = 0",
    "UPDATE users SET visits = visits + 1 WHERE id = 7 RETURNING visits",
    "WITH moved AS (DELETE FROM queue WHERE id = 1 RETURNING *) INSERT INTO done SELECT * FROM moved",
    "INSERT INTO users (id, email) VALUES (1, 'a@b.c') ON CONFLICT (id) DO UPDATE SET email = 'x'",
    "MERGE INTO users u USING (VALUES (1, 'x')) s(id, e) ON u.id = s.id "
    "WHEN MATCHED THEN UPDATE SET email = s.e WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.e)",
    "CREATE TABLE notes (id serial PRIMARY KEY, body text DEFAULT lower('X'), n int CHECK (n > 0))",
    "CREATE INDEX ON notes (body, id)",
    "CREATE VIEW recent AS SELECT * FROM notes WHERE id > 10",
    "CREATE SEQUENCE s",
    "CREATE TABLE copy AS SELECT * FROM notes",
    "ALTER INDEX notes_pkey RENAME TO notes_id",
    "DROP TABLE pg_temp.scratch",
    "CREATE TEMP TABLE scratch (a int) ON COMMIT DROP",
    "BEGIN; SELECT 1; COMMIT",
    "BEGIN ISOLATION LEVEL SERIALIZABLE; SAVEPOINT a; RELEASE a; ROLLBACK",
    "EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM users",
    "COPY users TO STDOUT WITH (FORMAT csv)",
    "COPY users (email) FROM STDIN",
    "COPY (SELECT * FROM users) TO STDOUT",
    "SET LOCAL statement_timeout = '1s'",
    "SET LOCAL statement_timeout = 30000",
    "SET LOCAL lock_timeout = '1min'",
    "SET TIME ZONE 'UTC'",
    "SET application_name = 'report'",
    "SET DateStyle = 'ISO, DMY'",
    "SET standard_conforming_strings = on",
    "SET standard_conforming_strings = 1",
    "SET standard_conforming_strings TO DEFAULT",
    "SET client_encoding = 'LATIN1'",
    "SET NAMES 'utf-8'",
    "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
    "SET LOCAL myapp.tenant = '7'",
    "SELECT set_config('TimeZone', 'UTC', false)",
    "SELECT set_config('statement_timeout', '5s', true)",
    "SHOW search_path",
    "SELECT now(), random(), nextval('s'), lower('X'), count(*), sum(n), coalesce(n, 0) FROM t",
    "SELECT '{\"a\": 1}'::jsonb -> 'a', 'x' || 'y', 'abc' ~~ 'a%', 1 = ANY(ARRAY[1])",
    "SELECT extract(year FROM now()), now() AT TIME ZONE 'UTC', position('a' IN 'b')",
    "SELECT * FROM users TABLESAMPLE bernoulli (50)",
    "SELECT pg_advisory_xact_lock(1)",
    "DECLARE c CURSOR FOR SELECT 1",
    "FETCH 10 FROM c",
    "NOTIFY jobs, 'x'",
    "ANALYZE users",
    "SELECT * FROM drop_log",
]


@pytest.mark.parametrize(("sql", "rule"), DESTRUCTIVE)
def test_destructive_sql_is_refused_under_its_rule(guard, sql, rule):
    verdict = guard.session("demo").check(sql.encode())
    assert verdict.blocked, sql
    assert verdict.rule == rule, verdict.message
    assert verdict.sqlstate == "42501"
    assert f'rule "{rule}"' in verdict.message


@pytest.mark.parametrize("sql", BENIGN)
def test_benign_sql_is_allowed(guard, sql):
    verdict = guard.session("demo").check(sql.encode())
    assert verdict.allowed, verdict.message


def test_every_policy_rule_has_a_destructive_example():
    mechanical = {"encoding", "too_long", "too_complex", "parse_error", "session_state"}
    assert {rule for _, rule in DESTRUCTIVE} == set(RULES) - mechanical


def test_exempt_roles_skip_every_check(catalog):
    guard = Guard(catalog, exempt_roles={"owner"})
    assert guard.check("DROP TABLE users", role="owner").allowed
    assert guard.session("owner").check(b"DROP TABLE users").allowed
    assert guard.session("demo").check(b"DROP TABLE users").blocked


def test_ddl_kinds_are_the_policys(catalog):
    guard = Guard(catalog, ddl=frozenset({"CREATE INDEX"}))
    assert guard.check("CREATE TABLE t (a int)").rule == "statement"
    assert guard.check("CREATE INDEX ON t (a)").allowed
    with pytest.raises(ValueError, match="unknown DDL"):
        Guard(catalog, ddl=frozenset({"DROP TABLE"}))


def test_without_a_catalog_no_function_is_allowed():
    assert Guard().check("SELECT lower('x')").rule == "function"
    assert Guard().check("SELECT 1 + 1").rule == "operator"
