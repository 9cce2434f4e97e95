"""Fixtures for the pgcluster tests: throwaway data folders and one running cluster per module.

Data folders live in fresh /tmp directories rather than pytest's tmp_path, because pytest's
/tmp/pytest-of-root is mode 0700 and, run as root, the servers run as an unprivileged user
who could not reach them (the cluster refuses such a folder with a DataDirError).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engines.pgcluster import Cluster

STATEMENT_TIMEOUT = "300ms"


def _tls_or_skip(cluster: Cluster) -> None:
    """Skip a TLS test when the binaries lack OpenSSL, unless PGCLUSTER_REQUIRE_TLS=1."""
    if cluster.ca_file is None:
        reason = f"binaries in {cluster.status()[0].bindir} were built without OpenSSL"
        if os.environ.get("PGCLUSTER_REQUIRE_TLS") == "1":
            pytest.fail(f"PGCLUSTER_REQUIRE_TLS=1 but {reason}")
        pytest.skip(reason)


@pytest.fixture
def tls_or_skip() -> Callable[[Cluster], None]:
    return _tls_or_skip


@pytest.fixture(scope="module")
def make_data_dir() -> Iterator[Callable[[], Path]]:
    """Makes empty data folders; stops whatever runs in them and removes them afterwards."""
    made: list[Path] = []

    def make() -> Path:
        path = Path(tempfile.mkdtemp(prefix="pgcluster-test-"))
        made.append(path)
        return path

    yield make
    for path in made:
        if (path / "cluster.json").exists():
            Cluster(path).down(timeout=10)
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(make_data_dir: Callable[[], Path]) -> Iterator[Cluster]:
    """Two instances on free ports, tied to the test process, with a short demo timeout."""
    with Cluster(
        make_data_dir(), instances=2, statement_timeout=STATEMENT_TIMEOUT, attached=True
    ) as running:
        yield running
