"""The least-privilege demo role and database, made idempotently on every ``up``.

The demos hand a visitor a SQL console. Whatever the firewall in front lets through runs as
a role that can do little harm even unguarded: it logs in, connects only to its own database,
owns only that database's ``app`` schema (so a demo can create and fill its tables there),
cannot create in ``public``, cannot create databases or roles, and every statement it runs is
cut off by ``statement_timeout``, every transaction left idle by
``idle_in_transaction_session_timeout``, and its sessions are capped by a connection limit.

Passwords are sent as SCRAM verifiers computed client-side by libpq, so the cleartext never
reaches the server (or its log).
"""

from __future__ import annotations

import logging

import psycopg
from psycopg import sql

from .instance import Instance

logger = logging.getLogger(__name__)


def superuser_connect(instance: Instance, dbname: str = "postgres") -> psycopg.Connection:
    """An autocommit connection as the superuser over loopback TCP."""
    return psycopg.connect(
        host="127.0.0.1",
        port=instance.port,
        user=instance.settings.superuser,
        password=instance.password("superuser"),
        dbname=dbname,
        connect_timeout=10,
        autocommit=True,
    )


def provision_demo(instance: Instance) -> None:
    """Create or correct the demo role, database and schema on a running ``instance``."""
    s = instance.settings
    role, db = sql.Identifier(s.demo_role), sql.Identifier(s.demo_db)
    with superuser_connect(instance) as conn:
        verifier = conn.pgconn.encrypt_password(
            instance.password("demo").encode(), s.demo_role.encode(), b"scram-sha-256"
        ).decode()
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [s.demo_role]).fetchone():
            conn.execute(sql.SQL("CREATE ROLE {}").format(role))
            logger.info("event=role_created instance=%s role=%s", instance.name, s.demo_role)
        conn.execute(
            sql.SQL(
                "ALTER ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                "NOBYPASSRLS CONNECTION LIMIT {} PASSWORD {}"
            ).format(role, sql.Literal(s.demo_connection_limit), sql.Literal(verifier))
        )
        for setting, value in (
            ("statement_timeout", s.statement_timeout),
            ("idle_in_transaction_session_timeout", s.idle_in_transaction_timeout),
        ):
            conn.execute(
                sql.SQL("ALTER ROLE {} SET {} = {}").format(
                    role, sql.Identifier(setting), sql.Literal(value)
                )
            )
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [s.demo_db]).fetchone():
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(db, sql.Identifier(s.superuser))
            )
            logger.info("event=database_created instance=%s db=%s", instance.name, s.demo_db)
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db))
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(db, role))
        conn.execute("REVOKE CONNECT ON DATABASE postgres FROM PUBLIC")

    with superuser_connect(instance, s.demo_db) as conn:
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS app AUTHORIZATION {}").format(role))
        conn.execute(sql.SQL("ALTER SCHEMA app OWNER TO {}").format(role))
        conn.execute(
            sql.SQL("ALTER ROLE {} IN DATABASE {} SET search_path = app, public").format(role, db)
        )
    logger.info(
        "event=demo_provisioned instance=%s role=%s db=%s", instance.name, s.demo_role, s.demo_db
    )
