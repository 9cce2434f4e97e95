"""The firewall's configuration: command-line flags for the one-database case, a TOML file
for several databases, users and rules.

With only ``--upstream`` given, clients log in with the upstream's own user name and
password, so the proxy drops in front of an existing database with no other set-up. A config
file adds databases, a user list (PgBouncer-style: a name and a SCRAM verifier or a
plaintext password per user), the guard's additions to its default policy and exempt roles,
and pool limits::

    listen = "127.0.0.1:6432"
    metrics_listen = "127.0.0.1:9187"
    pool_mode = "transaction"

    [users]
    demo = "SCRAM-SHA-256$4096:...$...:..."
    reporting = "SCRAM-SHA-256$4096:...$...:..."

    [databases.demo]
    upstream = "postgresql://demo:secret@127.0.0.1:5432/demo"
    pool_size = 20
    min_pool_size = 2

    max_db_connections = 30             # across all of its user pools

    [databases.demo.users.reporting]    # this user's own pool, with its own limits
    pool_size = 4

    [databases.demo.guard]              # added to [guard]'s lists for this database
    functions = ["public.slugify(text)"]

    [guard]                             # the default policy: engines/firewall/README.md
    exempt_roles = ["owner"]
    ddl = ["CREATE TABLE", "CREATE INDEX", "CREATE VIEW", "CREATE SEQUENCE"]
    functions = []                      # user functions clients may call, by signature
    settings = []                       # more settings clients may SET LOCAL

A key the proxy does not know is an error naming its section and the nearest valid key, never
silently ignored: a misspelt ``pool_sise`` would otherwise leave the default pool size. The
keys every proxy has (listen, users, databases and their pools, TLS) and their checks are
engines.pgproxy.config's; this module adds the guard's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engines.pgproxy import config as proxy_config
from engines.pgproxy.config import (
    ConfigError,
    DatabaseConfig,
    ProxyConfig,
    Upstream,
    check_keys,
    section_name,
    strings,
    table,
)

from .tree_policy import DEFAULT_DDL, KNOWN_DDL

POLICY_KEYS = ("ddl", "functions", "settings")
GUARD_KEYS = ("exempt_roles", *POLICY_KEYS)
TOP_LEVEL_KEYS = (*proxy_config.TOP_LEVEL_KEYS[:-1], "guard", proxy_config.TOP_LEVEL_KEYS[-1])
DATABASE_KEYS = (*proxy_config.DATABASE_KEYS, "guard")
# Keys of another table, written at the top level: the error says where they belong.
MISPLACED = (
    dict.fromkeys(DATABASE_KEYS, "[databases.NAME]")
    | dict.fromkeys(GUARD_KEYS, "[guard]")
    | dict.fromkeys(proxy_config.TLS_KEYS, "[tls]")
)


@dataclass(frozen=True)
class GuardPolicy:
    """What the guard adds to its default policy for one database: DDL kinds beyond the
    default four, user functions by signature (resolved in the catalog at start-up), and
    settings clients may change with SET LOCAL."""

    ddl: frozenset[str] = DEFAULT_DDL
    functions: tuple[str, ...] = ()
    settings: frozenset[str] = frozenset()


@dataclass(frozen=True)
class FirewallDatabase(DatabaseConfig):
    """A database clients may ask for (engines.pgproxy.config.DatabaseConfig: its upstream
    and pool limits), with the guard's additions to its policy there."""

    guard: GuardPolicy = GuardPolicy()


@dataclass(frozen=True)
class FirewallConfig(ProxyConfig):
    """Everything the firewall needs to start: the proxy's settings, and the roles the
    guard lets through unchecked."""

    exempt_roles: frozenset[str] = frozenset()


def _policy(raw: Mapping[str, Any], where: str, base: GuardPolicy | None = None) -> GuardPolicy:
    """The guard's additions in ``raw`` (a [guard] table), on top of ``base``'s."""
    ddl = set(strings(raw.get("ddl", sorted(DEFAULT_DDL)), f"{where} ddl"))
    unknown = sorted(ddl - KNOWN_DDL)
    if unknown:
        raise ConfigError(
            f'unknown DDL kind "{unknown[0]}" in {where} ddl; known: {", ".join(sorted(KNOWN_DDL))}'
        )
    functions = strings(raw.get("functions", []), f"{where} functions")
    settings = {name.lower() for name in strings(raw.get("settings", []), f"{where} settings")}
    if base is None:
        return GuardPolicy(frozenset(ddl), tuple(functions), frozenset(settings))
    return GuardPolicy(
        base.ddl | ddl if "ddl" in raw else base.ddl,
        (*base.functions, *functions),
        base.settings | settings,
    )


def _database(
    name: str, raw: Any, defaults: dict[str, Any], guard: GuardPolicy
) -> FirewallDatabase:
    settings = proxy_config.database_settings(name, raw, defaults, DATABASE_KEYS)
    where = section_name("databases", name, "guard")
    guard_table = table(raw, "guard", where)
    check_keys(guard_table, POLICY_KEYS, f"in {where}")
    return FirewallDatabase(**settings, guard=_policy(guard_table, where, guard))


def load_config(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> FirewallConfig:
    """Read the TOML file (if any), then apply command-line overrides on top."""
    raw = proxy_config.read_toml(path)
    check_keys(raw, TOP_LEVEL_KEYS, "at the top level", MISPLACED)
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    pool_defaults = proxy_config.pool_defaults(raw, overrides)

    guard = table(raw, "guard", "[guard]")
    if "rules" in guard:
        raise ConfigError(
            "[guard] rules is gone: the guard now denies by default and enforces every rule; "
            "list what it should also allow with ddl, functions and settings"
        )
    check_keys(guard, GUARD_KEYS, "in [guard]")
    policy = _policy(guard, "[guard]")
    databases: dict[str, DatabaseConfig] = {
        name: _database(name, section, pool_defaults, policy)
        for name, section in table(raw, "databases", "[databases]").items()
    }
    if "upstream" in overrides:
        upstream = Upstream.from_url(overrides["upstream"])
        databases[upstream.database] = _database(
            upstream.database, {"upstream": overrides["upstream"]}, pool_defaults, policy
        )
    settings = proxy_config.proxy_settings(raw, overrides, databases)
    exempt_roles = strings(guard.get("exempt_roles", []), "[guard] exempt_roles")
    return FirewallConfig(**settings, exempt_roles=frozenset(exempt_roles))
