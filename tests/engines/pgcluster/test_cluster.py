"""A two-instance cluster as its users see it: connections, the demo role's limits,
status, restarts after a kill, and a clean stop that keeps the data."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from psycopg import errors

from engines.pgcluster import Cluster, ClusterError, DataDirError
from engines.procs import free_port, port_open


def _wait(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_status_reports_both_instances_up(cluster: Cluster) -> None:
    rows = cluster.status()
    assert [r.name for r in rows] == ["pg0", "pg1"]
    assert all(r.up and r.pid for r in rows)
    assert len({r.port for r in rows}) == 2
    assert all(port_open("127.0.0.1", r.port) for r in rows)
    assert rows[0].version[0].isdigit()
    assert rows[0].bindir == str(cluster.instances[0].binaries.bindir)
    assert rows[0].tls == (cluster.ca_file is not None)


def test_stats_report_the_figures(cluster: Cluster) -> None:
    stats = cluster.stats()
    assert (stats["instances"], stats["up"], stats["servers_started"]) == (2, 2, 2)
    assert stats["last_up_seconds"] > 0
    assert stats["version"] == cluster.status()[0].version


def test_dsn_has_the_documented_shape(cluster: Cluster) -> None:
    inst = cluster[1]
    url = inst.dsn("demo")
    assert url.startswith(f"postgresql://demo:{inst.password('demo')}@127.0.0.1:{inst.port}/demo")
    assert cluster.dsn("pg1", role="superuser", db="x").endswith(f":{inst.port}/x")
    with pytest.raises(ValueError, match="role"):
        inst.dsn("admin")


@pytest.mark.parametrize("role", ["superuser", "demo"])
def test_connects_over_tls_with_verify_full(cluster: Cluster, role: str, tls_or_skip) -> None:
    tls_or_skip(cluster)
    for inst in cluster.instances:
        with psycopg.connect(inst.dsn(role, tls=True)) as conn:
            row = conn.execute(
                "SELECT ssl, current_user FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
            ).fetchone()
        expected = cluster.instances[0].settings.superuser if role == "superuser" else "demo"
        assert row == (True, expected)


def test_verify_full_rejects_a_name_the_certificate_does_not_carry(
    cluster: Cluster, tls_or_skip
) -> None:
    tls_or_skip(cluster)
    inst = cluster[0]
    with pytest.raises(psycopg.OperationalError, match="does not match host name"):
        psycopg.connect(
            host="db.example.com",
            hostaddr="127.0.0.1",
            port=inst.port,
            user="demo",
            password=inst.password("demo"),
            dbname="demo",
            sslmode="verify-full",
            sslrootcert=str(cluster.ca_file),
        )


def test_wrong_password_is_refused(cluster: Cluster) -> None:
    inst = cluster[0]
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(host="127.0.0.1", port=inst.port, user="demo", password="x", dbname="demo")


def test_demo_role_is_least_privilege(cluster: Cluster) -> None:
    with psycopg.connect(cluster.dsn(0)) as conn:
        row = conn.execute(
            "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, "
            "rolbypassrls, rolconnlimit FROM pg_roles WHERE rolname = 'demo'"
        ).fetchone()
    assert row == (True, False, False, False, False, False, 50)


def test_demo_role_cannot_create_in_public(cluster: Cluster) -> None:
    with psycopg.connect(cluster.dsn(0, "demo")) as conn:
        with pytest.raises(errors.InsufficientPrivilege) as info:
            conn.execute("CREATE TABLE public.t (x int)")
        assert info.value.sqlstate == "42501"


def test_demo_role_cannot_create_a_database(cluster: Cluster) -> None:
    with (
        psycopg.connect(cluster.dsn(1, "demo"), autocommit=True) as conn,
        pytest.raises(errors.InsufficientPrivilege),
    ):
        conn.execute("CREATE DATABASE other")


def test_demo_role_cannot_connect_to_other_databases(cluster: Cluster) -> None:
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(cluster.dsn(0, "demo", db="postgres"))


def test_demo_role_works_in_its_app_schema(cluster: Cluster) -> None:
    with psycopg.connect(cluster.dsn(0, "demo")) as conn:
        conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
        conn.execute("INSERT INTO notes VALUES (1, 'hello')")
        assert conn.execute("SELECT schemaname FROM pg_tables WHERE tablename = 'notes'").fetchone()
        assert conn.execute("SELECT body FROM app.notes").fetchone() == ("hello",)


def test_demo_statement_timeout_cancels_long_queries(cluster: Cluster) -> None:
    with psycopg.connect(cluster.dsn(1, "demo")) as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("300ms",)
        started = time.monotonic()
        with pytest.raises(errors.QueryCanceled) as info:
            conn.execute("SELECT pg_sleep(10)")
        assert info.value.sqlstate == "57014"
        assert time.monotonic() - started < 5


def test_superuser_has_no_statement_timeout(cluster: Cluster) -> None:
    with psycopg.connect(cluster.dsn(1)) as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("0",)


def test_secrets_are_private_files(cluster: Cluster) -> None:
    inst = cluster[0]
    for name in ("superuser.password", "demo.password"):
        assert stat.S_IMODE((inst.dir / name).stat().st_mode) == 0o600
    assert stat.S_IMODE(inst.dir.stat().st_mode) == 0o700
    assert "password" not in (cluster.data_dir / "cluster.json").read_text()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root has to switch user")
def test_servers_run_as_an_unprivileged_user(cluster: Cluster) -> None:
    for row in cluster.status():
        status = Path(f"/proc/{row.pid}/status").read_text().splitlines()
        uid_line = next(line for line in status if line.startswith("Uid:"))
        assert uid_line.split()[1] != "0"


def test_up_twice_is_a_no_op(cluster: Cluster) -> None:
    before = [(r.pid, r.port) for r in cluster.status()]
    cluster.up()
    Cluster(cluster.data_dir).up()  # as another process would: the recorded settings hold
    assert [(r.pid, r.port) for r in cluster.status()] == before
    with psycopg.connect(Cluster(cluster.data_dir).dsn(1, "demo")) as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("300ms",)


def test_the_superuser_name_is_fixed_once_made(cluster: Cluster) -> None:
    with pytest.raises(ClusterError, match="fixed when it was made"):
        Cluster(cluster.data_dir, superuser="admin").up()


def test_status_from_another_object_sees_the_same(cluster: Cluster) -> None:
    mine = cluster.status()
    theirs = Cluster(cluster.data_dir).status()
    assert [(r.name, r.port, r.pid, r.up) for r in theirs] == [
        (r.name, r.port, r.pid, r.up) for r in mine
    ]


def test_explicit_port_of_a_running_instance_must_match(cluster: Cluster) -> None:
    other = free_port()
    with pytest.raises(ClusterError, match="already running on port"):
        Cluster(cluster.data_dir, instances=2, base_port=other).up()


def test_a_killed_server_is_restarted_on_the_next_up(cluster: Cluster) -> None:
    inst = cluster[1]
    old = cluster.status()[1]
    os.kill(old.pid, signal.SIGKILL)
    assert _wait(lambda: not cluster.status()[1].up)
    cluster.up()
    new = cluster.status()[1]
    assert new.up
    assert new.pid != old.pid
    assert new.port == old.port == inst.port


def test_down_stops_both_and_up_brings_back_the_data(cluster: Cluster) -> None:
    with psycopg.connect(cluster.dsn(0)) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS kept (x int)")
        conn.execute("INSERT INTO kept VALUES (42)")
    ports = [r.port for r in cluster.status()]

    cluster.down()

    assert not any(r.up or r.pid for r in cluster.status())
    assert not any(port_open("127.0.0.1", p) for p in ports)
    assert not any((i.pgdata / "postmaster.pid").exists() for i in cluster.instances)

    cluster.up()

    assert [r.port for r in cluster.status()] == ports
    with psycopg.connect(cluster.dsn(0)) as conn:
        assert conn.execute("SELECT x FROM kept").fetchone() == (42,)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root has to switch user")
def test_a_data_folder_the_server_user_cannot_reach_is_refused() -> None:
    private = Path(tempfile.mkdtemp(prefix="pgcluster-private-"))  # mode 0700, root's
    try:
        with pytest.raises(DataDirError, match=f"chmod o\\+x {private}"):
            Cluster(private / "data").up()
    finally:
        shutil.rmtree(private)
