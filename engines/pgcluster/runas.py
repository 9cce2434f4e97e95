"""Who the servers run as, and what that user must be able to reach.

PostgreSQL refuses to run as root. When this process is root (containers, CI, a developer's
``sudo make run``) the servers run as an unprivileged user instead, chosen in this order:

1. ``PGCLUSTER_USER`` (environment), which must exist;
2. a dedicated system user ``pgcluster``, created with ``useradd --system`` when missing;
   dedicated, so that the data files are not readable by every other ``nobody`` daemon;
3. ``nobody``, when no user can be created (read-only /etc/passwd), with a warning.

Whatever the user, HOME is pointed at the instance folder (``nobody``'s home does not
exist), the umask is 077, and the environment is reduced to a few variables, so a
developer's ``PGPORT`` or ``PGDATA`` cannot leak into a server.

Not root: the servers run as this user and nothing here changes ownership.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import DataDirError, ServerUserError

logger = logging.getLogger(__name__)

DEDICATED_USER = "pgcluster"
FALLBACK_USER = "nobody"
_ENV_KEPT = ("PATH", "TZ", "LD_LIBRARY_PATH", "SYSTEMROOT")


@dataclass(frozen=True)
class ServerUser:
    """The account the servers run as; ``switch`` says whether we must change to it."""

    name: str
    uid: int
    gid: int
    groups: frozenset[int]
    switch: bool

    def popen_kwargs(self, home: Path) -> dict[str, Any]:
        """Keyword arguments for subprocess that run a program as this user, from ``home``."""
        env = {k: os.environ[k] for k in _ENV_KEPT if k in os.environ}
        env.setdefault("PATH", os.defpath)
        env.update(HOME=str(home), LANG="C", LC_ALL="C", USER=self.name, LOGNAME=self.name)
        kwargs: dict[str, Any] = {"env": env, "cwd": str(home), "umask": 0o077}
        if self.switch:
            kwargs.update(user=self.uid, group=self.gid, extra_groups=[])
        return kwargs

    def own(self, path: Path) -> None:
        """Give ``path`` to this user (a no-op when we already are that user)."""
        if self.switch:
            os.chown(path, self.uid, self.gid)

    def can_traverse(self, path: Path) -> bool:
        """Whether this user may search (``x``) the directory ``path``, by its mode bits."""
        st = path.stat()
        if self.uid == 0:
            return True
        if st.st_uid == self.uid:
            return bool(st.st_mode & stat.S_IXUSR)
        if st.st_gid in self.groups:
            return bool(st.st_mode & stat.S_IXGRP)
        return bool(st.st_mode & stat.S_IXOTH)


def _from_pwd(entry: pwd.struct_passwd, switch: bool) -> ServerUser:
    groups = {entry.pw_gid} | {g.gr_gid for g in grp.getgrall() if entry.pw_name in g.gr_mem}
    return ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid, frozenset(groups), switch)


def _create_dedicated_user() -> str | None:
    """Create the ``pgcluster`` system user; None on success, else why not."""
    useradd = shutil.which("useradd") or shutil.which("useradd", path="/usr/sbin:/sbin")
    if not useradd:
        return "useradd not found"
    nologin = shutil.which("nologin", path="/usr/sbin:/sbin:/usr/bin:/bin") or "/bin/false"
    result = subprocess.run(
        [
            useradd, "--system", "--user-group", "--no-create-home",
            "--home-dir", "/nonexistent", "--shell", nologin,
            "--comment", "local PostgreSQL servers of engines.pgcluster", DEDICATED_USER,
        ],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    if result.returncode not in (0, 9):  # 9: already exists (another process won the race)
        return f"useradd exited {result.returncode}: {result.stderr.strip()}"
    return None


def current_user() -> ServerUser:
    """This process's own user, never switched to: for reading files and signalling."""
    try:
        return _from_pwd(pwd.getpwuid(os.geteuid()), switch=False)
    except KeyError:  # an arbitrary uid without a passwd entry (some containers)
        groups = frozenset({os.getegid(), *os.getgroups()})
        return ServerUser(str(os.geteuid()), os.geteuid(), os.getegid(), groups, switch=False)


def server_user() -> ServerUser:
    """The user the servers run as (see the module docstring)."""
    if os.geteuid() != 0:
        return current_user()

    wanted = os.environ.get("PGCLUSTER_USER")
    if wanted:
        try:
            entry = pwd.getpwnam(wanted)
        except KeyError:
            raise ServerUserError(
                f"PGCLUSTER_USER={wanted} does not exist; create it or unset PGCLUSTER_USER"
            ) from None
        if entry.pw_uid == 0:
            raise ServerUserError(f"PGCLUSTER_USER={wanted} is root; PostgreSQL refuses root")
        return _from_pwd(entry, switch=True)

    try:
        return _from_pwd(pwd.getpwnam(DEDICATED_USER), switch=True)
    except KeyError:
        pass
    reason = _create_dedicated_user()
    if reason is None:
        try:
            entry = pwd.getpwnam(DEDICATED_USER)
        except KeyError:
            reason = "useradd succeeded but the user is not in the passwd database"
        else:
            logger.info("event=user_created user=%s uid=%s", DEDICATED_USER, entry.pw_uid)
            return _from_pwd(entry, switch=True)
    try:
        entry = pwd.getpwnam(FALLBACK_USER)
    except KeyError:
        raise ServerUserError(
            f"running as root, and could not create user {DEDICATED_USER} ({reason}) nor find "
            f"{FALLBACK_USER}; create an unprivileged user and set PGCLUSTER_USER to it"
        ) from None
    logger.warning(
        "event=user_fallback user=%s reason=%r", FALLBACK_USER, f"cannot create: {reason}"
    )
    return _from_pwd(entry, switch=True)


def check_reachable(user: ServerUser, path: Path, what: str) -> None:
    """Raise DataDirError unless ``user`` can traverse the directory ``path`` and those above."""
    path = path.resolve()
    for parent in [*reversed(path.parents), path]:
        if not user.can_traverse(parent):
            raise DataDirError(
                f"the {what} {path} is not reachable by user {user.name}: {parent} has mode "
                f"{stat.filemode(parent.stat().st_mode)}. Choose a folder under a traversable "
                f"path (e.g. PGCLUSTER_DATA_DIR=/var/tmp/pgcluster) or run chmod o+x {parent}"
            )
