"""Binary discovery in its documented order, on fake installs, and the pgserver fallback
on the real wheel."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from engines.pgcluster import BinariesNotFoundError, Cluster, find_binaries
from engines.pgcluster.binaries import pgserver_bindir


def fake_install(bindir: Path, version: str) -> Path:
    """A bin folder whose postgres and initdb only answer --version."""
    bindir.mkdir(parents=True)
    for name in ("postgres", "initdb"):
        script = bindir / name
        script.write_text(f"#!/bin/sh\necho '{name} (PostgreSQL) {version}'\n")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return bindir


def no_pgserver() -> None:
    return None


def test_pg_bindir_wins(tmp_path: Path) -> None:
    bindir = fake_install(tmp_path / "custom" / "bin", "17.1")
    found = find_binaries(
        env={"PG_BINDIR": str(bindir), "PATH": ""}, system_root=tmp_path, pgserver=no_pgserver
    )
    assert (found.bindir, found.version, found.major, found.source) == (
        bindir.resolve(), "17.1", 17, "PG_BINDIR"
    )  # fmt: skip


def test_an_unusable_pg_bindir_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    fake_install(tmp_path / "15" / "bin", "15.2")
    with pytest.raises(BinariesNotFoundError, match="PG_BINDIR=/nonexistent is not usable"):
        find_binaries(env={"PG_BINDIR": "/nonexistent", "PATH": ""}, system_root=tmp_path)


def test_pg_config_names_the_bindir(tmp_path: Path) -> None:
    bindir = fake_install(tmp_path / "opt" / "bin", "16.4")
    tools = tmp_path / "tools"
    tools.mkdir()
    pg_config = tools / "pg_config"
    pg_config.write_text(f"#!/bin/sh\necho {bindir}\n")
    pg_config.chmod(0o755)
    found = find_binaries(env={"PATH": str(tools)}, system_root=tmp_path / "none")
    assert (found.bindir, found.source) == (bindir.resolve(), "pg_config")


def test_pg_config_without_a_server_falls_through_to_the_newest_system_major(
    tmp_path: Path,
) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "pg_config").write_text(f"#!/bin/sh\necho {tmp_path / 'libpq-only'}\n")
    (tools / "pg_config").chmod(0o755)
    system = tmp_path / "usr-lib-postgresql"
    fake_install(system / "9.6" / "bin", "9.6.24")
    fake_install(system / "13" / "bin", "13.9")
    found = find_binaries(env={"PATH": str(tools)}, system_root=system, pgserver=no_pgserver)
    assert (found.version, found.source) == ("13.9", "system")


def test_nothing_found_names_every_place_looked_at(tmp_path: Path) -> None:
    with pytest.raises(BinariesNotFoundError) as info:
        find_binaries(env={"PATH": str(tmp_path)}, system_root=tmp_path, pgserver=no_pgserver)
    message = str(info.value)
    for place in ("PG_BINDIR", "pg_config", str(tmp_path), "pgserver", "apt-get install"):
        assert place in message


def test_a_binary_that_cannot_run_here_is_skipped(tmp_path: Path) -> None:
    broken = tmp_path / "sys" / "16" / "bin"
    broken.mkdir(parents=True)
    for name in ("postgres", "initdb"):
        (broken / name).write_bytes(b"\x7fELF not really")
        (broken / name).chmod(0o755)
    with pytest.raises(BinariesNotFoundError, match="does not run on this machine"):
        find_binaries(env={"PATH": ""}, system_root=tmp_path / "sys", pgserver=no_pgserver)


@pytest.fixture(scope="module")
def pgserver_only() -> Path:
    bindir = pgserver_bindir()
    if bindir is None:
        pytest.skip("the pgserver wheel is not installed")
    return bindir


def test_the_pgserver_wheel_is_the_last_resort(tmp_path: Path, pgserver_only: Path) -> None:
    found = find_binaries(env={"PATH": str(tmp_path)}, system_root=tmp_path)
    assert found.source == "pgserver"
    assert found.bindir == pgserver_only.resolve()
    assert found.major == 16


@pytest.mark.slow
def test_the_pgserver_binaries_run_a_server(
    pgserver_only: Path, make_data_dir: Callable[[], Path], tmp_path: Path
) -> None:
    binaries = find_binaries(env={"PATH": str(tmp_path)}, system_root=tmp_path)
    data_dir = make_data_dir()
    with Cluster(data_dir, binaries=binaries, attached=True) as cluster:
        row = cluster.status()[0]
        assert (row.up, row.version, row.bindir) == (True, binaries.version, str(binaries.bindir))
        assert row.tls is False  # the wheel is built without OpenSSL
        with psycopg.connect(cluster.dsn(0, "demo")) as conn:
            assert conn.execute("SHOW server_version").fetchone()[0].startswith("16.")
    assert not cluster.status()[0].up
    shutil.rmtree(data_dir / "pg0")
    assert os.path.isdir(data_dir)
