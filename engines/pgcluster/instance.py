"""One PostgreSQL server: its folder, its configuration, its process.

Layout of an instance folder (owned by the server user, mode 0700)::

    <data_dir>/<name>/
        pgdata/               PGDATA, made by initdb
        initialized           marker written after initdb succeeded (a half-made pgdata
                              from an interrupted initdb is removed and made again)
        superuser.password    0600, the generated superuser password (initdb --pwfile)
        demo.password         0600, the demo role's generated password
        server.crt/.key       the TLS certificate, when the binaries have OpenSSL
        server.log            the server's stdout/stderr (rotated once at 10 MB)
        sock/                 the Unix socket directory

The server is started as ``postgres -D pgdata`` directly (what ``pg_ctl start`` does, minus
the shell) in its own session, so a supervisor's SIGTERM to our process group does not reach
it as a "smart" shutdown that would wait for every client to leave; we stop it ourselves with
SIGINT, PostgreSQL's fast shutdown. When ``attached``, the kernel also sends SIGINT to the
server should the starting thread die (``PR_SET_PDEATHSIG``), so a SIGKILLed supervisor
leaves no server behind.

Readiness is the ``ready`` status PostgreSQL writes into ``postmaster.pid`` (what ``pg_ctl -w``
waits for), then a TCP connection to the port.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

from engines.procs import LOOPBACK, die_with_parent, pid_alive, port_open

from .binaries import Binaries
from .errors import ClusterError, InitError, PortInUseError, StartError
from .runas import ServerUser

logger = logging.getLogger(__name__)

LOG_ROTATE_BYTES = 10 * 1024 * 1024
SOCKET_PATH_MAX = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux
_INCLUDE_LINE = "include 'pgcluster.conf'  # engines.pgcluster's settings; keep last\n"


@dataclass(frozen=True)
class Settings:
    """What every instance of a cluster shares: names, limits, durability, TLS."""

    superuser: str = "postgres"
    demo_role: str = "demo"
    demo_db: str = "demo"
    statement_timeout: str = "5s"
    idle_in_transaction_timeout: str = "30s"
    demo_connection_limit: int = 50
    max_connections: int = 200
    durable: bool = False
    ca_file: Path | None = None  # set when the instances serve TLS


@dataclass(frozen=True)
class InstanceStatus:
    """What ``status`` reports about one server; ``up`` means it accepts TCP connections."""

    name: str
    port: int
    pid: int | None
    up: bool
    version: str
    tls: bool
    bindir: str
    data_dir: Path


def _looks_like_postgres(pid: int) -> bool:
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
    except FileNotFoundError:
        return False
    except OSError:
        return True  # cannot tell: trust the pid file
    return b"postgres" in os.path.basename(argv0) or b"postmaster" in argv0


class Instance:
    """One server of a cluster: initialises, configures, starts and stops it."""

    def __init__(
        self,
        name: str,
        root: Path,
        port: int,
        settings: Settings,
        binaries: Binaries,
        user: ServerUser,
    ) -> None:
        self.name = name
        self.dir = root / name
        self.pgdata = self.dir / "pgdata"
        self.log_path = self.dir / "server.log"
        self.socket_dir = self.dir / "sock"
        self.cert_path = self.dir / "server.crt"
        self.key_path = self.dir / "server.key"
        self.port = port
        self.settings = settings
        self.binaries = binaries
        self.user = user
        self.process: subprocess.Popen | None = None
        self._log_offset = 0

    def __repr__(self) -> str:
        return f"Instance({self.name!r}, port={self.port})"

    # -- secrets and DSNs -----------------------------------------------------------------

    def _secret(self, role: str) -> Path:
        return self.dir / f"{role}.password"

    def password(self, role: str = "superuser") -> str:
        """The generated password of ``role`` ("superuser" or "demo"), made on first use."""
        path = self._secret(role)
        if not path.exists():
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(24) + "\n")
            self.user.own(path)
        return path.read_text().strip()

    def dsn(self, role: str = "superuser", db: str | None = None, tls: bool = False) -> str:
        """``postgresql://user:pass@127.0.0.1:port/db`` for ``role`` "superuser" or "demo".

        ``db`` defaults to "postgres" for the superuser and the demo database for the demo
        role. ``tls=True`` adds ``sslmode=verify-full`` and the cluster CA as ``sslrootcert``.
        """
        if role == "superuser":
            user, default_db = self.settings.superuser, "postgres"
        elif role == "demo":
            user, default_db = self.settings.demo_role, self.settings.demo_db
        else:
            raise ValueError(f"role must be 'superuser' or 'demo', not {role!r}")
        url = (
            f"postgresql://{quote(user, safe='')}:{quote(self.password(role), safe='')}"
            f"@127.0.0.1:{self.port}/{quote(db or default_db, safe='')}"
        )
        if tls:
            if self.settings.ca_file is None:
                raise ClusterError(
                    f"{self.name} does not serve TLS: the binaries in {self.binaries.bindir} "
                    "lack OpenSSL; use a server built --with-openssl (set PG_BINDIR)"
                )
            url += "?" + urlencode({"sslmode": "verify-full", "sslrootcert": self.settings.ca_file})
        return url

    # -- initdb and configuration ---------------------------------------------------------

    @property
    def initialized(self) -> bool:
        return (self.dir / "initialized").exists()

    def data_major(self) -> int | None:
        """The major version the data folder was made by, if made."""
        try:
            return int((self.pgdata / "PG_VERSION").read_text().strip().split(".")[0])
        except (FileNotFoundError, ValueError):
            return None

    def run(self, argv: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL program as the server user from the instance folder."""
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            **self.user.popen_kwargs(self.dir),
        )

    def init(self) -> None:
        """Make the instance folder and run initdb, unless done before."""
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.user.switch and self.pgdata.exists() and self.pgdata.stat().st_uid != self.user.uid:
            # Made by another server user before (PGCLUSTER_USER changed): hand it all over,
            # or PostgreSQL refuses a data directory it does not own.
            logger.warning("event=chown_instance instance=%s user=%s", self.name, self.user.name)
            for parent, dirs, files in os.walk(self.dir):
                for name in dirs + files:
                    os.chown(os.path.join(parent, name), self.user.uid, self.user.gid)
        self.user.own(self.dir)
        os.chmod(self.dir, 0o700)
        if self.initialized:
            return
        if self.pgdata.exists():  # an interrupted initdb: its output is worth nothing
            logger.warning("event=partial_initdb_removed instance=%s", self.name)
            shutil.rmtree(self.pgdata)
        self.password("superuser")
        argv = [
            self.binaries.path("initdb"),
            "--pgdata", str(self.pgdata),
            "--username", self.settings.superuser,
            "--pwfile", str(self._secret("superuser")),
            "--auth", "scram-sha-256",
            "--encoding", "UTF8",
            "--locale", "C",
        ]  # fmt: skip
        if not self.settings.durable:
            argv.append("--no-sync")
        if self.binaries.major >= 14:
            argv.append("--no-instructions")
        started = time.monotonic()
        result = self.run(argv)
        if result.returncode != 0:
            raise InitError(
                f"initdb for {self.name} exited {result.returncode}:\n"
                f"{(result.stdout + result.stderr).strip()[-4000:]}"
            )
        (self.dir / "initialized").write_text(self.binaries.version + "\n")
        self.user.own(self.dir / "initialized")
        logger.info("event=initdb instance=%s seconds=%.2f", self.name, time.monotonic() - started)

    def ssl_library(self) -> str:
        """The SSL library the server binary was built with ("" when none), read off it."""
        result = self.run(
            [self.binaries.path("postgres"), "-C", "ssl_library", "-D", str(self.pgdata)]
        )
        if result.returncode == 0:
            return result.stdout.strip()
        pg_config = self.binaries.bindir / "pg_config"  # servers older than 12
        if pg_config.exists():
            out = self.run([str(pg_config), "--configure"]).stdout
            if "--with-openssl" in out or "--with-ssl=openssl" in out:
                return "OpenSSL"
        return ""

    def configure(self, tls: bool) -> None:
        """(Re)write our settings file and pg_hba.conf; called before every start."""
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        self.user.own(self.socket_dir)
        socket_path = f"{self.socket_dir}/.s.PGSQL.{self.port}"
        if len(socket_path) > SOCKET_PATH_MAX:
            logger.warning(
                "event=unix_socket_disabled instance=%s reason=path longer than %d bytes",
                self.name,
                SOCKET_PATH_MAX,
            )
            socket_dirs = ""
        else:
            socket_dirs = str(self.socket_dir)
        durable = "on" if self.settings.durable else "off"
        lines = {
            "listen_addresses": "127.0.0.1",
            "port": self.port,
            "unix_socket_directories": socket_dirs,
            "max_connections": self.settings.max_connections,
            "password_encryption": "scram-sha-256",
            # Demo and test data: a crash of the machine (not of a process) may lose or
            # corrupt it; durable=True turns all three back on.
            "fsync": durable,
            "synchronous_commit": durable,
            "full_page_writes": durable,
            "ssl": "on" if tls else "off",
            "log_line_prefix": "%m [%p] %q%u@%d ",
            "log_connections": "off",
        }
        if tls:
            lines.update(
                ssl_cert_file=str(self.cert_path),
                ssl_key_file=str(self.key_path),
                ssl_min_protocol_version="TLSv1.2",
            )
        text = "# Written by engines.pgcluster before every start; edits are overwritten.\n"
        for key, value in lines.items():
            quoted = value if isinstance(value, int) else "'" + str(value).replace("'", "''") + "'"
            text += f"{key} = {quoted}\n"
        self._write_owned(self.pgdata / "pgcluster.conf", text)

        main_conf = self.pgdata / "postgresql.conf"
        if _INCLUDE_LINE not in main_conf.read_text():
            with main_conf.open("a") as f:
                f.write("\n" + _INCLUDE_LINE)

        self._write_owned(
            self.pgdata / "pg_hba.conf",
            "# Written by engines.pgcluster before every start; edits are overwritten.\n"
            "# TYPE  DATABASE  USER  ADDRESS       METHOD\n"
            "local   all       all                 scram-sha-256\n"
            "host    all       all   127.0.0.1/32  scram-sha-256\n",
        )

    def _write_owned(self, path: Path, text: str) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        os.chmod(tmp, 0o600)
        self.user.own(tmp)
        os.replace(tmp, path)

    # -- process --------------------------------------------------------------------------

    def pid_file(self) -> list[str]:
        """The lines of postmaster.pid, or [] when there is none."""
        try:
            return (self.pgdata / "postmaster.pid").read_text().splitlines()
        except FileNotFoundError:
            return []

    def running_pid(self, remove_stale: bool = False) -> int | None:
        """The postmaster's pid when one runs on this data folder.

        A postmaster.pid left by a killed server names a dead process, or, after a reboot,
        somebody else's: with ``remove_stale`` it is deleted so the next start is clean.
        """
        lines = self.pid_file()
        if not lines:
            return None
        try:
            pid = int(lines[0])
        except ValueError:
            pid = 0
        if pid > 0 and pid_alive(pid) and _looks_like_postgres(pid):
            return pid
        if remove_stale:
            # The socket's lock file names the dead pid too, and PostgreSQL takes a zombie
            # (a killed server not yet reaped) for a live one: remove both. The socket
            # folder is this instance's alone.
            logger.warning("event=stale_pid_file instance=%s pid=%s action=removed", self.name, pid)
            (self.pgdata / "postmaster.pid").unlink(missing_ok=True)
            for path in self.socket_dir.glob(".s.PGSQL.*"):
                path.unlink(missing_ok=True)
        return None

    def running_port(self) -> int | None:
        """The port the running server listens on, from postmaster.pid."""
        lines = self.pid_file()
        try:
            return int(lines[3])
        except (IndexError, ValueError):
            return None

    def ready(self) -> bool:
        """Whether the server says it is ready and accepts TCP connections."""
        lines = self.pid_file()
        status = lines[7].strip() if len(lines) > 7 else ""
        return status == "ready" and port_open(LOOPBACK, self.running_port() or self.port)

    def launch(self, attached: bool) -> None:
        """Start the server in the background; ``wait_started`` tells how it went."""
        if self.log_path.exists() and self.log_path.stat().st_size > LOG_ROTATE_BYTES:
            os.replace(self.log_path, self.log_path.with_suffix(".log.1"))
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as log:
            self.user.own(self.log_path)
            self._log_offset = log.seek(0, os.SEEK_END)
            # SIGINT, a fast shutdown, should this thread die (see the module's docstring).
            preexec = die_with_parent(signal.SIGINT) if attached else None
            self.process = subprocess.Popen(
                [self.binaries.path("postgres"), "-D", str(self.pgdata)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=preexec,
                **self.user.popen_kwargs(self.dir),
            )
        logger.info(
            "event=server_launched instance=%s pid=%s port=%s attached=%s",
            self.name,
            self.process.pid,
            self.port,
            attached,
        )

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the server logged since our latest launch."""
        try:
            with self.log_path.open("rb") as f:
                f.seek(self._log_offset)
                data = f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return "(no server log)"
        return "\n".join(data.splitlines()[-lines:]) or "(server log is empty)"

    def check_started(self) -> bool:
        """True once ready; raises StartError (PortInUseError) when the server has died."""
        if self.process is not None and self.process.poll() is not None:
            tail = self.log_tail()
            kind = PortInUseError if "Address already in use" in tail else StartError
            raise kind(
                f"server {self.name} exited with code {self.process.returncode} while "
                f"starting on port {self.port}; log {self.log_path}:\n{tail}"
            )
        return self.ready()

    def signal(self, signum: int) -> int | None:
        """Send ``signum`` to the running postmaster; its pid, or None when none runs."""
        pid = self.running_pid()
        if pid is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
        return pid

    def stopped(self, pid: int) -> bool:
        """Whether the postmaster ``pid`` has exited (reaping it if it is our child)."""
        if self.process is not None and self.process.pid == pid:
            if self.process.poll() is None:
                return False
            self.process = None
            return True
        return not pid_alive(pid)

    def status(self, version: str, tls: bool) -> InstanceStatus:
        """This server's row of ``status``."""
        pid = self.running_pid()
        port = (self.running_port() if pid else None) or self.port
        up = pid is not None and self.ready()
        return InstanceStatus(
            name=self.name,
            port=port,
            pid=pid,
            up=up,
            version=version,
            tls=tls,
            bindir=str(self.binaries.bindir),
            data_dir=self.pgdata,
        )
