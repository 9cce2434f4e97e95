"""Finds the PostgreSQL server binaries to run, so a fresh machine needs nothing beyond pip.

Looked at in order, first usable wins:

1. ``PG_BINDIR`` (environment): an explicit choice, so an unusable one is an error, not a
   reason to look elsewhere;
2. ``pg_config --bindir`` when ``pg_config`` is on PATH (Debian's comes with libpq-dev and
   may name a bindir whose server package is not installed: then it is skipped);
3. the newest ``/usr/lib/postgresql/<major>/bin`` (Debian and Ubuntu's layout);
4. the binaries bundled in the ``pgserver`` wheel (PostgreSQL 16, built without OpenSSL).

"Usable" means ``postgres`` and ``initdb`` exist there and are executable.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import BinariesNotFoundError

logger = logging.getLogger(__name__)

REQUIRED = ("postgres", "initdb")
SYSTEM_ROOT = Path("/usr/lib/postgresql")


@dataclass(frozen=True)
class Binaries:
    """One PostgreSQL installation: where its programs are and which version they are."""

    bindir: Path
    version: str  # e.g. "16.2"
    source: str  # which rule found it: PG_BINDIR, pg_config, system, pgserver

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def path(self, program: str) -> str:
        """Absolute path of one program in this installation."""
        return str(self.bindir / program)


def _check(bindir: Path, source: str) -> Binaries | str:
    """The installation in ``bindir``, or why it cannot be used."""
    missing = [p for p in REQUIRED if not os.access(bindir / p, os.X_OK)]
    if missing:
        return f"{bindir} lacks {', '.join(missing)}"
    bindir = bindir.resolve()
    try:
        version = server_version(bindir)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        return f"{bindir}/postgres does not run on this machine ({exc})"
    return Binaries(bindir=bindir, version=version, source=source)


def binaries_at(bindir: Path, source: str) -> Binaries | None:
    """The installation in ``bindir`` if it is usable, else None (logged)."""
    found = _check(bindir, source)
    if isinstance(found, str):
        logger.warning("event=binaries_unusable source=%s reason=%r", source, found)
        return None
    return found


def server_version(bindir: Path) -> str:
    """The version ``postgres --version`` reports, e.g. ``15.18``."""
    out = subprocess.run(
        [str(bindir / "postgres"), "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    match = re.search(r"\(PostgreSQL\)\s+(\d+(?:\.\d+)?)", out)
    if not match:
        raise ValueError(f"postgres --version printed {out.strip()!r}")
    return match.group(1)


def pgserver_bindir() -> Path | None:
    """The bindir inside the installed ``pgserver`` wheel, without importing the package."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _system_bindirs(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    majors = [p for p in root.iterdir() if re.fullmatch(r"\d+(\.\d+)?", p.name)]
    majors.sort(key=lambda p: tuple(int(x) for x in p.name.split(".")), reverse=True)
    return [p / "bin" for p in majors]


def find_binaries(
    env: Mapping[str, str] | None = None,
    system_root: Path = SYSTEM_ROOT,
    pgserver: Callable[[], Path | None] = pgserver_bindir,
) -> Binaries:
    """Pick the installation to use (see the module docstring for the order).

    ``env``, ``system_root`` and ``pgserver`` exist so tests can hide parts of the machine.
    Raises BinariesNotFoundError naming every place looked at and why each was refused.
    """
    env = os.environ if env is None else env
    looked: list[str] = []

    explicit = env.get("PG_BINDIR")
    if explicit:
        found = _check(Path(explicit), "PG_BINDIR")
        if isinstance(found, str):
            raise BinariesNotFoundError(
                f"PG_BINDIR={explicit} is not usable: {found}; point it at the bin folder "
                "of a PostgreSQL server install, or unset it to search"
            )
        return _found(found)
    looked.append("PG_BINDIR: not set")

    pg_config = shutil.which("pg_config", path=env.get("PATH", os.defpath))
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=30
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError) as exc:
            looked.append(f"pg_config ({pg_config}): failed: {exc}")
        else:
            found = _check(Path(out), "pg_config")
            if not isinstance(found, str):
                return _found(found)
            looked.append(f"pg_config --bindir: {found}")
    else:
        looked.append("pg_config: not on PATH")

    candidates = _system_bindirs(system_root)
    for bindir in candidates:
        found = _check(bindir, "system")
        if not isinstance(found, str):
            return _found(found)
        looked.append(f"system: {found}")
    if not candidates:
        looked.append(f"{system_root}/<major>/bin: none")

    bundled = pgserver()
    if bundled is None:
        looked.append("pgserver wheel: not installed (pip install pgserver)")
    else:
        found = _check(bundled, "pgserver")
        if not isinstance(found, str):
            return _found(found)
        looked.append(f"pgserver wheel: {found}")

    raise BinariesNotFoundError(
        "no PostgreSQL server binaries found; looked at: "
        + "; ".join(looked)
        + ". Install a server (apt-get install postgresql, or pip install pgserver) "
        "or set PG_BINDIR"
    )


def _found(binaries: Binaries) -> Binaries:
    logger.info(
        "event=binaries_found bindir=%s version=%s source=%s",
        binaries.bindir,
        binaries.version,
        binaries.source,
    )
    return binaries
