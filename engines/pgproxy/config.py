"""Configuration shared by the proxies built on this package: where each database lives
(``Upstream``), its pools' limits (``DatabaseConfig``, ``PoolLimits``), the listener, users
and TLS (``ProxyConfig``), and the helpers a proxy's TOML reader checks its tables with.

Each proxy reads its own file and subclasses these for what it adds (the firewall: its
guard's policy per database and exempt roles, engines/firewall/config.py). A key a proxy
does not know is an error naming its section and the nearest valid key, never silently
ignored: a misspelt ``pool_sise`` would otherwise leave the default pool size. The keys
below are the ones every proxy's file has in common.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from psycopg.conninfo import make_conninfo


class ConfigError(ValueError):
    """The configuration cannot be used; the message says which setting and why."""


POOL_MODES = ("session", "transaction")

# The keys each table of the file may hold. ``users`` under a database is a table of user
# names, each a table of USER_KEYS; the top-level [users] table maps any user name to a secret.
POOL_KEYS = ("pool_mode", "pool_size", "min_pool_size", "max_db_connections")
TOP_LEVEL_KEYS = ("listen", "metrics_listen", "max_client_connections", *POOL_KEYS, "users",
                  "databases", "tls")  # fmt: skip
DATABASE_KEYS = (
    "upstream", *POOL_KEYS, "server_idle_timeout", "server_lifetime", "query_wait_timeout",
    "idle_transaction_timeout", "users",
)  # fmt: skip
USER_KEYS = ("pool_size", "min_pool_size")
TLS_KEYS = ("cert", "key")


@dataclass(frozen=True)
class Upstream:
    """Where a database really lives, and how the proxy logs in to it."""

    host: str
    port: int
    user: str
    password: str
    database: str
    sslmode: str = "prefer"
    sslrootcert: str | None = None

    @classmethod
    def from_url(cls, url: str) -> Upstream:
        parts = urlsplit(url)
        if parts.scheme not in {"postgres", "postgresql"}:
            raise ConfigError(f"upstream must be a postgresql:// URL, got {parts.scheme!r}")
        if not parts.hostname or not parts.username:
            raise ConfigError(
                "upstream URL needs a user and a host: postgresql://USER:PASS@HOST:PORT/DB"
            )
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        sslmode = query.get("sslmode", "prefer")
        if sslmode not in {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}:
            raise ConfigError(f"unknown sslmode {sslmode!r}")
        return cls(
            host=parts.hostname,
            port=parts.port or 5432,
            user=unquote(parts.username),
            password=unquote(parts.password or ""),
            database=unquote(parts.path.lstrip("/")) or unquote(parts.username),
            sslmode=sslmode,
            sslrootcert=query.get("sslrootcert"),
        )

    def dsn(self) -> str:
        """A libpq connection string for this upstream (the guard reads its catalog)."""
        return make_conninfo(
            host=self.host, port=self.port, user=self.user, password=self.password,
            dbname=self.database, sslmode=self.sslmode, sslrootcert=self.sslrootcert,
        )  # fmt: skip


@dataclass(frozen=True)
class PoolLimits:
    """How many server connections one (database, user) pool may hold and keeps open."""

    pool_size: int
    min_pool_size: int = 0


@dataclass(frozen=True)
class DatabaseConfig:
    """One database clients may ask for, and the limits of its server pools.

    Every client user gets a pool of their own in each database (as in PgBouncer), so one
    user's load cannot take every connection from another's; ``pool_size`` and
    ``min_pool_size`` are each pool's limits unless ``user_limits`` names the user. All
    pools log in to the server as the upstream URL's user.
    """

    name: str
    upstream: Upstream
    pool_size: int = 20
    min_pool_size: int = 0
    pool_mode: str = "transaction"
    server_idle_timeout: float = 600.0  # close a warm server connection idle this long
    server_lifetime: float = 3600.0  # and any server connection this old, once released
    query_wait_timeout: float = 10.0  # a client waits this long for a server, then errors
    # A client idle inside a transaction this long loses its server (PostgreSQL's
    # idle_in_transaction_session_timeout), so no one holds locks on a pooled server; 0: off.
    idle_transaction_timeout: float = 60.0
    user_limits: dict[str, PoolLimits] = field(default_factory=dict)
    max_db_connections: int = 0  # across all its user pools; 0: no cap but each pool's

    def limits_for(self, user: str) -> PoolLimits:
        return self.user_limits.get(user) or PoolLimits(self.pool_size, self.min_pool_size)


@dataclass(frozen=True)
class ProxyConfig:
    """Everything the proxy needs to start."""

    listen_host: str = "127.0.0.1"
    listen_port: int = 6432
    metrics_host: str | None = None
    metrics_port: int | None = None
    databases: dict[str, DatabaseConfig] = field(default_factory=dict)
    # user name -> SCRAM verifier or plaintext password; empty means "the upstream's user".
    users: dict[str, str] = field(default_factory=dict)
    max_client_connections: int = 1000
    tls_cert: str | None = None
    tls_key: str | None = None


def parse_address(text: str, what: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"{what} must be HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def section_name(*names: str) -> str:
    """A table's header as written in the file, for messages: ``[databases.demo]``."""
    bare = (name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else f'"{name}"' for name in names)
    return f"[{'.'.join(bare)}]"


def did_you_mean(word: str, valid: Iterable[str], what: str = "valid keys") -> str:
    """``did you mean "x"?`` with the nearest valid word, else the list of valid words."""
    valid = sorted(valid)
    close = difflib.get_close_matches(word, valid, n=1)
    return f'did you mean "{close[0]}"?' if close else f"{what}: {', '.join(valid)}"


def check_keys(
    table: Mapping[str, Any],
    valid: tuple[str, ...],
    where: str,
    elsewhere: Mapping[str, str] | None = None,
) -> None:
    """Refuse the first key of ``table`` not in ``valid``, naming ``where`` it was found and
    the nearest valid key (or, for a key of another table, that table)."""
    for key in table:
        if key in valid:
            continue
        if elsewhere and key in elsewhere:
            raise ConfigError(f'unknown key "{key}" {where}; it belongs in {elsewhere[key]}')
        raise ConfigError(f'unknown key "{key}" {where}; {did_you_mean(key, valid)}')


def table(raw: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table, got {value!r}")
    return value


def strings(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{what} must be a list of strings, got {value!r}")
    return value


def positive(value: Any, what: str, allow_zero: bool = False) -> Any:
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or value < 0
        or (value == 0 and not allow_zero)
    ):
        raise ConfigError(f"{what} must be a positive number, got {value!r}")
    return value


def limits(settings: dict[str, Any], where: str) -> tuple[int, int]:
    size = positive(settings.get("pool_size", 20), f"{where}.pool_size")
    minimum = positive(settings.get("min_pool_size", 0), f"{where}.min_pool_size", allow_zero=True)
    if minimum > size:
        raise ConfigError(f"{where}: min_pool_size ({minimum}) exceeds pool_size ({size})")
    return int(size), int(minimum)


def read_toml(path: str | Path | None) -> dict[str, Any]:
    """The file's tables ({} without a file), or ConfigError saying why it cannot be read."""
    if path is None:
        return {}
    try:
        return tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc


def pool_defaults(raw: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The pool settings every database starts from: command-line flags, then the file's
    top level."""
    defaults = {k: overrides[k] for k in ("pool_mode", "pool_size") if k in overrides}
    for key in POOL_KEYS:
        if key in raw and key not in defaults:
            defaults[key] = raw[key]
    return defaults


def database_settings(
    name: str,
    raw: Any,
    defaults: Mapping[str, Any],
    keys: tuple[str, ...] = DATABASE_KEYS,
) -> dict[str, Any]:
    """A [databases.NAME] table, with ``defaults`` under it, as DatabaseConfig's keyword
    arguments; ``keys`` are the keys the table may hold (a proxy's own among them)."""
    section = section_name("databases", name)
    if not isinstance(raw, dict):
        raise ConfigError(
            f'"{name}" in [databases] is not a table: each database is a section '
            "[databases.NAME] with its own upstream and pool settings"
        )
    check_keys(raw, keys, f"in {section}")
    settings = {**defaults, **raw}
    if "upstream" not in settings:
        raise ConfigError(f"database {name!r} needs an upstream URL")
    mode = settings.get("pool_mode", "transaction")
    if mode not in POOL_MODES:
        raise ConfigError(f"pool_mode must be one of {POOL_MODES}, got {mode!r}")
    size, minimum = limits(settings, name)
    user_limits = {}
    for user, raw_limits in table(raw, "users", section_name("databases", name, "users")).items():
        user_section = section_name("databases", name, "users", user)
        if not isinstance(raw_limits, dict):
            raise ConfigError(f"{user_section} must be a table of pool limits")
        check_keys(raw_limits, USER_KEYS, f"in {user_section}")
        user_limit = {"pool_size": size, "min_pool_size": 0, **raw_limits}
        user_limits[user] = PoolLimits(*limits(user_limit, f"{name}.users.{user}"))
    max_db = int(positive(settings.get("max_db_connections", 0), f"{name}.max_db_connections",
                          allow_zero=True))  # fmt: skip
    if max_db and max_db < minimum:
        raise ConfigError(f"{name}: max_db_connections ({max_db}) is below min_pool_size")
    timeouts = {
        key: float(positive(settings[key], f"{name}.{key}"))
        for key in ("server_idle_timeout", "server_lifetime", "query_wait_timeout")
        if key in settings
    }
    if "idle_transaction_timeout" in settings:
        timeouts["idle_transaction_timeout"] = float(positive(
            settings["idle_transaction_timeout"], f"{name}.idle_transaction_timeout",
            allow_zero=True,
        ))  # fmt: skip
    return dict(
        name=name, upstream=Upstream.from_url(settings["upstream"]), pool_size=size,
        min_pool_size=minimum, pool_mode=mode, user_limits=user_limits,
        max_db_connections=max_db, **timeouts,
    )  # fmt: skip


def proxy_settings(
    raw: Mapping[str, Any], overrides: Mapping[str, Any], databases: dict[str, DatabaseConfig]
) -> dict[str, Any]:
    """ProxyConfig's keyword arguments from the file's top level and the command-line
    ``overrides``: the user list (checked against each database's per-user limits), the
    listen and metrics addresses, the client limit and TLS."""
    if not databases:
        raise ConfigError("no database to proxy: give --upstream or a [databases.NAME] section")
    users = dict(table(raw, "users", "[users]"))
    for user, secret in users.items():
        if not isinstance(secret, str):
            raise ConfigError(f'[users] "{user}" must be a string: a SCRAM verifier or a password')
    for database in databases.values():
        for user in database.user_limits:
            if users and user not in users:
                raise ConfigError(
                    f"{section_name('databases', database.name, 'users', user)}: "
                    f'"{user}" is not in the [users] list; '
                    f"{did_you_mean(user, users, 'users')}"
                )
    listen = parse_address(overrides.get("listen") or raw.get("listen", "127.0.0.1:6432"), "listen")
    metrics = overrides.get("metrics_listen") or raw.get("metrics_listen")
    metrics_host, metrics_port = (
        parse_address(metrics, "metrics_listen") if metrics else (None, None)
    )
    tls = table(raw, "tls", "[tls]")
    check_keys(tls, TLS_KEYS, "in [tls]")
    return dict(
        listen_host=listen[0], listen_port=listen[1],
        metrics_host=metrics_host, metrics_port=metrics_port,
        databases=databases, users=users,
        max_client_connections=int(raw.get("max_client_connections", 1000)),
        tls_cert=overrides.get("tls_cert") or tls.get("cert"),
        tls_key=overrides.get("tls_key") or tls.get("key"),
    )  # fmt: skip
