"""N local PostgreSQL servers under one data folder, started and stopped as one.

``Cluster.up()`` is idempotent: it initialises what is missing, starts what is down (all at
once, then waits for all), leaves running servers alone, and (re)applies the demo role.
``down()`` stops every server the data folder knows about. ``status()`` only reads.

What another process needs to find the servers is in ``<data_dir>/cluster.json`` (names,
ports, binaries, TLS; no secrets), so ``status`` and ``down`` work from any process, and a
cluster started on free ports keeps its ports across restarts. ``up`` and ``down`` take an
exclusive lock on ``<data_dir>/.lock`` so two of them never interleave.

A data folder keeps the binaries that made it (recorded in cluster.json) while they still
run, unless ``PG_BINDIR`` says otherwise: data made by PostgreSQL 15 cannot be opened by 16,
so installing a newer server must not silently break a folder made by the older one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import re
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

from engines.procs import free_ports

from .binaries import Binaries, binaries_at, find_binaries
from .errors import (
    ClusterError,
    DataDirError,
    PortInUseError,
    StartError,
    StopError,
    TLSUnavailableError,
)
from .instance import Instance, InstanceStatus, Settings
from .provision import provision_demo
from .runas import ServerUser, check_reachable, current_user, server_user
from .tls import ensure_ca, ensure_server_cert

logger = logging.getLogger(__name__)

STATE_FILE = "cluster.json"
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,30}")
_START_ATTEMPTS = 4


class Cluster:
    """N PostgreSQL servers on loopback, from one data folder.

    ``instances`` is a count (names ``pg0``, ``pg1``, ...) or a list of names; None means
    the instances recorded in the data folder, or one. ``base_port`` 0 keeps the recorded
    ports or picks free ones; otherwise instance i listens on ``base_port + i``. ``tls``
    None means "when the binaries support it". ``attached`` ties the servers to this
    process: if it dies, even by SIGKILL, the kernel asks them for a fast shutdown.

    The role and server settings (``superuser`` ... ``durable``) left None take the values
    the last ``up`` recorded in the data folder, else the defaults of ``Settings``; so a
    ``Cluster(data_dir)`` made elsewhere builds the right DSNs and changes nothing.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        instances: int | Sequence[str] | None = None,
        base_port: int = 0,
        *,
        superuser: str | None = None,
        demo_role: str | None = None,
        demo_db: str | None = None,
        statement_timeout: str | None = None,
        idle_in_transaction_timeout: str | None = None,
        demo_connection_limit: int | None = None,
        max_connections: int | None = None,
        durable: bool | None = None,
        tls: bool | None = None,
        attached: bool = False,
        start_timeout: float = 60.0,
        binaries: Binaries | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.base_port = base_port
        self.tls_wanted = tls
        self.attached = attached
        self.start_timeout = start_timeout
        explicit = {
            "superuser": superuser,
            "demo_role": demo_role,
            "demo_db": demo_db,
            "statement_timeout": statement_timeout,
            "idle_in_transaction_timeout": idle_in_transaction_timeout,
            "demo_connection_limit": demo_connection_limit,
            "max_connections": max_connections,
            "durable": durable,
        }
        self._explicit = {k: v for k, v in explicit.items() if v is not None}
        self._last_up_seconds: float | None = None
        self._servers_started = 0
        self._requested = instances
        self._binaries = binaries
        self._user: ServerUser | None = None
        self._instances: dict[str, Instance] = {}
        self._state: dict[str, Any] = self._read_state()
        if isinstance(instances, int) and instances < 1:
            raise ValueError(f"instances must be at least 1, not {instances}")
        if not 0 <= base_port <= 65535:
            raise ValueError(f"base_port must be 0 (free ports) or a TCP port, not {base_port}")
        for name in self.names:
            if not _NAME.fullmatch(name):
                raise ValueError(f"instance name {name!r} must match {_NAME.pattern}")

    # -- what the cluster is made of ------------------------------------------------------

    @property
    def names(self) -> list[str]:
        """The instances this cluster object manages."""
        if isinstance(self._requested, int):
            return [f"pg{i}" for i in range(self._requested)]
        if self._requested is not None:
            return list(self._requested)
        recorded = [i["name"] for i in self._state.get("instances", [])]
        return recorded or ["pg0"]

    @property
    def ca_file(self) -> Path | None:
        """The CA certificate clients pass as ``sslrootcert``, when the servers serve TLS."""
        return self.data_dir / "tls" / "ca.crt" if self._state.get("tls") else None

    @property
    def instances(self) -> list[Instance]:
        """The managed instances, in order; each has ``dsn()``, ``port``, ``name``."""
        return [self._instance(name) for name in self.names]

    def __getitem__(self, key: int | str) -> Instance:
        return self.instances[key] if isinstance(key, int) else self._instance(key)

    def dsn(self, key: int | str = 0, role: str = "superuser", db: str | None = None,
            tls: bool = False) -> str:  # fmt: skip
        """Shortcut for ``cluster[key].dsn(role, db, tls)``."""
        return self[key].dsn(role=role, db=db, tls=tls)

    def _binaries_for_reading(self) -> Binaries:
        if self._binaries is not None:
            return self._binaries
        if "bindir" in self._state:
            return Binaries(Path(self._state["bindir"]), self._state["version"], "state")
        return Binaries(Path("?"), "?", "none")

    def _settings_now(self) -> Settings:
        recorded = self._state.get("settings", {})
        fields = {f.name for f in dataclasses.fields(Settings)} - {"ca_file"}
        merged = {k: v for k, v in recorded.items() if k in fields} | self._explicit
        return Settings(**merged, ca_file=self.ca_file)

    def _instance(self, name: str) -> Instance:
        ports = {i["name"]: i["port"] for i in self._state.get("instances", [])}
        inst = self._instances.get(name)
        if inst is None:
            user = self._user or current_user()
            inst = Instance(
                name,
                self.data_dir,
                ports.get(name, 0),
                self._settings_now(),
                self._binaries_for_reading(),
                user,
            )
            self._instances[name] = inst
        else:
            inst.settings = self._settings_now()
            if not inst.process:
                inst.port = ports.get(name, inst.port)
        return inst

    # -- state file and lock --------------------------------------------------------------

    def _read_state(self) -> dict[str, Any]:
        try:
            return json.loads((self.data_dir / STATE_FILE).read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise DataDirError(
                f"{self.data_dir / STATE_FILE} is unreadable ({exc}); fix or delete it "
                "(it only records ports and names)"
            ) from exc

    def _write_state(self) -> None:
        path = self.data_dir / STATE_FILE
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self._state, indent=2, sort_keys=True) + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with (self.data_dir / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self._state = self._read_state()
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # -- up -------------------------------------------------------------------------------

    def up(self) -> Cluster:
        """Initialise what is missing, start what is down, wait until all accept connections.

        Raises StartError (with the tail of the server log), InitError, DataDirError,
        BinariesNotFoundError or TLSUnavailableError with what to do about it.
        """
        if self.attached and threading.current_thread() is not threading.main_thread():
            raise ClusterError(
                "attached=True ties the servers to the thread that starts them; call up() "
                "from the main thread or pass attached=False"
            )
        started = time.monotonic()
        with self._locked():
            self._prepare()
            instances = self.instances
            running = self._check_running(instances)
            todo = [i for i in instances if i.name not in running]
            with ThreadPoolExecutor(max_workers=max(1, len(todo))) as pool:
                list(pool.map(Instance.init, todo))
            tls = self._setup_tls(instances)
            self._assign_ports(instances, running)
            for inst in instances:
                inst.settings = self._settings_now()
            self._start(todo, tls)
            self._wait_ready([i for i in instances if i.name in running])
            with ThreadPoolExecutor(max_workers=len(instances)) as pool:
                list(pool.map(provision_demo, instances))
        self._last_up_seconds = time.monotonic() - started
        self._servers_started += len(todo)
        logger.info(
            "event=cluster_up data_dir=%s instances=%d started=%d tls=%s seconds=%.2f",
            self.data_dir,
            len(instances),
            len(todo),
            tls,
            time.monotonic() - started,
        )
        return self

    def _prepare(self) -> None:
        if self._binaries is None and not os.environ.get("PG_BINDIR") and "bindir" in self._state:
            # A data folder belongs to the binaries that made it: keep them while they work.
            self._binaries = binaries_at(Path(self._state["bindir"]), "recorded")
        if self._binaries is None:
            self._binaries = find_binaries()
        self._user = server_user()
        for inst in self._instances.values():  # made for reading before we knew these
            inst.binaries, inst.user = self._binaries, self._user
        if self._user.switch:
            st = self.data_dir.stat()
            if not self._user.can_traverse(self.data_dir) and st.st_uid == os.geteuid():
                # Our own folder: let the server user pass through it (x only, no listing).
                os.chmod(self.data_dir, st.st_mode | 0o011)  # noqa: S103
            check_reachable(self._user, self.data_dir, "data folder")
            check_reachable(self._user, self._binaries.bindir, "PostgreSQL bindir")
        for inst in self.instances:
            major = inst.data_major()
            if major is not None and major != self._binaries.major:
                raise DataDirError(
                    f"{inst.pgdata} holds PostgreSQL {major} data but the binaries in "
                    f"{self._binaries.bindir} are version {self._binaries.version}; set "
                    f"PG_BINDIR to a PostgreSQL {major} bin folder, or delete {inst.dir}"
                )
        self._state.update(bindir=str(self._binaries.bindir), version=self._binaries.version)
        recorded = self._state.get("settings", {}).get("superuser")
        wanted = self._explicit.get("superuser")
        if recorded and wanted and wanted != recorded:
            raise ClusterError(
                f"the superuser of {self.data_dir} is {recorded!r}, fixed when it was made; "
                f"drop superuser={wanted!r}, or use another data folder"
            )
        settings = dataclasses.asdict(self._settings_now())
        settings.pop("ca_file")
        self._state["settings"] = settings

    def _check_running(self, instances: list[Instance]) -> set[str]:
        running = set()
        for inst in instances:
            if inst.running_pid(remove_stale=True) is None:
                continue
            port = inst.running_port()
            if self.base_port and port != self.base_port + self.names.index(inst.name):
                raise ClusterError(
                    f"{inst.name} is already running on port {port}, not "
                    f"{self.base_port + self.names.index(inst.name)}; run down first"
                )
            inst.port = port or inst.port
            running.add(inst.name)
        return running

    def _setup_tls(self, instances: list[Instance]) -> bool:
        assert self._binaries is not None
        assert self._user is not None
        key = str(self._binaries.bindir)
        library = self._state.get("ssl_library", {}).get(key)
        if library is None:
            library = instances[0].ssl_library()
            self._state.setdefault("ssl_library", {})[key] = library
        tls = bool(library) if self.tls_wanted is None else self.tls_wanted
        if tls and not library:
            raise TLSUnavailableError(
                f"tls=True but the binaries in {key} were built without OpenSSL; use a "
                "PostgreSQL built --with-openssl (set PG_BINDIR) or pass tls=None/False"
            )
        self._state["tls"] = tls
        if tls:
            ca = ensure_ca(self.data_dir / "tls", str(self.data_dir))
            for inst in instances:
                if ensure_server_cert(ca, inst.cert_path, inst.key_path):
                    self._user.own(inst.cert_path)
                    self._user.own(inst.key_path)
        return tls

    def _assign_ports(self, instances: list[Instance], running: set[str]) -> None:
        if self.base_port:
            for i, inst in enumerate(instances):
                inst.port = self.base_port + i
        else:
            lacking = [i for i in instances if not i.port and i.name not in running]
            for inst, port in zip(lacking, free_ports(len(lacking)), strict=True):
                inst.port = port
        self._record_ports()

    def _record_ports(self) -> None:
        known = {i["name"]: i for i in self._state.get("instances", [])}
        for inst in self._instances.values():
            known[inst.name] = {"name": inst.name, "port": inst.port}
        order = self.names + [n for n in known if n not in self.names]
        self._state["instances"] = [known[n] for n in order if n in known]
        self._write_state()

    def _start(self, todo: list[Instance], tls: bool) -> None:
        """Launch ``todo`` together and wait for all; retry what a retry can fix: a free
        port taken meanwhile (then other free ports), or the shared memory of a killed
        server whose children are still exiting (then a second later)."""
        for attempt in range(1, _START_ATTEMPTS + 1):
            for inst in todo:
                inst.configure(tls)
                inst.launch(self.attached)
            try:
                self._wait_ready(todo)
                return
            except StartError as exc:
                self._stop_quietly(todo)
                port_taken = isinstance(exc, PortInUseError) and not self.base_port
                transient = "pre-existing shared memory block" in str(exc)
                if attempt == _START_ATTEMPTS or not (port_taken or transient):
                    if isinstance(exc, PortInUseError) and self.base_port:
                        raise PortInUseError(
                            f"{exc}\nChoose another --base-port, or 0 for free ports"
                        ) from None
                    raise
                logger.warning(
                    "event=start_retry attempt=%d reason=%s",
                    attempt,
                    "port_taken" if port_taken else "shared_memory_in_use",
                )
                if port_taken:
                    for inst, port in zip(todo, free_ports(len(todo)), strict=True):
                        inst.port = port
                    self._record_ports()
                else:
                    time.sleep(1.0)

    def _wait_ready(self, instances: list[Instance]) -> None:
        deadline = time.monotonic() + self.start_timeout
        pending = list(instances)
        while pending:
            pending = [i for i in pending if not i.check_started()]
            if not pending:
                return
            if time.monotonic() > deadline:
                inst = pending[0]
                raise StartError(
                    f"server {inst.name} not ready on port {inst.port} after "
                    f"{self.start_timeout:g} s; log {inst.log_path}:\n{inst.log_tail()}"
                )
            time.sleep(0.05)

    def _stop_quietly(self, instances: list[Instance]) -> None:
        with contextlib.suppress(ClusterError):
            self._stop(instances, timeout=10)

    # -- down and status ------------------------------------------------------------------

    def down(self, timeout: float = 30.0) -> None:
        """Stop every server of this data folder: fast shutdown (SIGINT, clients are
        disconnected, data is checkpointed), then immediate (SIGQUIT) after ``timeout``."""
        if not (self.data_dir / STATE_FILE).exists():
            return  # never started here
        with self._locked():
            recorded = [i["name"] for i in self._state.get("instances", [])]
            names = self.names + [n for n in recorded if n not in self.names]
            self._stop([self._instance(n) for n in names], timeout)

    def _stop(self, instances: list[Instance], timeout: float) -> None:
        started = time.monotonic()
        pids = {}
        for inst in instances:
            pid = inst.signal(signal.SIGINT)
            if pid is not None:
                pids[inst.name] = (inst, pid)
            elif inst.process is not None:  # died while starting: reap it
                inst.stopped(inst.process.pid)
        for signum, grace in ((None, timeout), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
            if signum is not None and pids:
                logger.warning(
                    "event=stop_escalated signal=%s instances=%s",
                    signal.Signals(signum).name,
                    ",".join(pids),
                )
                for _inst, pid in pids.values():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signum)
            deadline = time.monotonic() + grace
            while pids and time.monotonic() < deadline:
                pids = {n: (i, p) for n, (i, p) in pids.items() if not i.stopped(p)}
                if pids:
                    time.sleep(0.05)
            if not pids:
                break
        if pids:
            raise StopError(f"servers did not stop even after SIGKILL: {', '.join(pids)}")
        logger.info(
            "event=cluster_down data_dir=%s instances=%d seconds=%.2f",
            self.data_dir,
            len(instances),
            time.monotonic() - started,
        )

    def status(self) -> list[InstanceStatus]:
        """One row per instance known to this data folder: name, port, pid, up, version, tls."""
        self._state = self._read_state()
        recorded = [i["name"] for i in self._state.get("instances", [])]
        names = self.names + [n for n in recorded if n not in self.names]
        version = self._state.get("version", "?")
        tls = bool(self._state.get("tls"))
        return [self._instance(n).status(version, tls) for n in names]

    def stats(self) -> dict[str, Any]:
        """The figures the demos and benchmarks show: how many servers, how many up, what
        version, TLS, and how long this object's latest ``up`` took."""
        rows = self.status()
        return {
            "instances": len(rows),
            "up": sum(r.up for r in rows),
            "version": self._state.get("version"),
            "bindir": self._state.get("bindir"),
            "tls": bool(self._state.get("tls")),
            "servers_started": self._servers_started,
            "last_up_seconds": self._last_up_seconds,
        }

    # -- context manager ------------------------------------------------------------------

    def __enter__(self) -> Cluster:
        try:
            return self.up()
        except BaseException:
            self._stop_quietly(self.instances)  # __exit__ will not run
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()
