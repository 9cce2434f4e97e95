"""The firewall's configuration: flags, a TOML file, and clear errors for bad values."""

from __future__ import annotations

import textwrap

import pytest

from engines.firewall import config as config_module
from engines.firewall.config import load_config
from engines.pgproxy.config import ConfigError, PoolLimits, Upstream


def test_upstream_url_is_parsed():
    upstream = Upstream.from_url("postgresql://demo:s%40cret@127.0.0.1:5433/shop?sslmode=require")
    assert (upstream.user, upstream.password, upstream.host, upstream.port) == (
        "demo",
        "s@cret",
        "127.0.0.1",
        5433,
    )
    assert upstream.database == "shop"
    assert upstream.sslmode == "require"


def test_flags_alone_make_one_database():
    config = load_config(
        overrides={
            "upstream": "postgresql://demo:pw@localhost/demo",
            "listen": "127.0.0.2:7000",
            "pool_mode": "session",
            "pool_size": 5,
        }
    )
    assert (config.listen_host, config.listen_port) == ("127.0.0.2", 7000)
    database = config.databases["demo"]
    assert database.pool_mode == "session"
    assert database.pool_size == 5
    assert database.upstream.port == 5432
    assert config.users == {}


def test_file_with_several_databases_users_and_guard_additions(tmp_path):
    path = tmp_path / "firewall.toml"
    path.write_text(
        """
listen = "127.0.0.1:6500"
metrics_listen = "127.0.0.1:9187"
pool_size = 8
[users]
alice = "plain-password"
[databases.shop]
upstream = "postgresql://shop:pw@127.0.0.1:5432/shop"
min_pool_size = 2
[databases.blog]
upstream = "postgresql://blog:pw@127.0.0.1:5433/blog"
pool_mode = "session"
pool_size = 3
idle_transaction_timeout = 0
[databases.blog.guard]
functions = ["blog.slugify(text)"]
ddl = ["CREATE MATERIALIZED VIEW"]
[guard]
exempt_roles = ["owner"]
functions = ["public.f(int)"]
settings = ["MyApp.Tenant"]
"""
    )
    config = load_config(path)
    assert set(config.databases) == {"shop", "blog"}
    assert config.databases["shop"].pool_size == 8
    assert config.databases["shop"].min_pool_size == 2
    assert config.databases["blog"].pool_mode == "session"
    assert config.databases["blog"].pool_size == 3
    assert config.exempt_roles == {"owner"}
    shop, blog = config.databases["shop"], config.databases["blog"]
    assert shop.guard.functions == ("public.f(int)",)
    assert shop.guard.ddl == {"CREATE TABLE", "CREATE INDEX", "CREATE VIEW", "CREATE SEQUENCE"}
    assert shop.guard.settings == {"myapp.tenant"}
    assert blog.guard.functions == ("public.f(int)", "blog.slugify(text)")
    assert "CREATE MATERIALIZED VIEW" in blog.guard.ddl
    assert "CREATE TABLE" in blog.guard.ddl
    assert (shop.idle_transaction_timeout, blog.idle_transaction_timeout) == (60.0, 0.0)
    assert (config.metrics_host, config.metrics_port) == ("127.0.0.1", 9187)
    assert config.users == {"alice": "plain-password"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({}, "no database to proxy"),
        ({"upstream": "mysql://x@y/z"}, "postgresql:// URL"),
        ({"upstream": "postgresql://localhost/db"}, "needs a user and a host"),
        ({"upstream": "postgresql://u@h/d", "pool_mode": "statement"}, "pool_mode must be one of"),
        ({"upstream": "postgresql://u@h/d", "pool_size": 0}, "must be a positive number"),
        ({"upstream": "postgresql://u@h/d", "listen": "6432"}, "listen must be HOST:PORT"),
        ({"upstream": "postgresql://u@h/d?sslmode=sometimes"}, "unknown sslmode"),
    ],
)
def test_bad_settings_are_explained(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=overrides)


def test_bad_files_are_explained(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("listen = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken)
    rules = tmp_path / "rules.toml"
    rules.write_text('[databases.d]\nupstream = "postgresql://u@h/d"\n[guard]\nrules = ["drop"]\n')
    with pytest.raises(ConfigError, match=r"\[guard\] rules is gone: the guard now denies by"):
        load_config(rules)
    small = tmp_path / "small.toml"
    small.write_text(
        '[databases.d]\nupstream = "postgresql://u@h/d"\npool_size = 2\nmin_pool_size = 3\n'
    )
    with pytest.raises(ConfigError, match="exceeds pool_size"):
        load_config(small)


def test_users_get_pool_limits_of_their_own(tmp_path):
    path = tmp_path / "firewall.toml"
    path.write_text(
        """
pool_size = 10
min_pool_size = 2
[users]
alice = "a"
bob = "b"
[databases.shop]
upstream = "postgresql://shop:pw@127.0.0.1:5432/shop"
[databases.shop.users.alice]
pool_size = 3
"""
    )
    shop = load_config(path).databases["shop"]
    assert shop.max_db_connections == 0  # no cap unless asked
    assert (shop.limits_for("alice").pool_size, shop.limits_for("alice").min_pool_size) == (3, 0)
    assert (shop.limits_for("bob").pool_size, shop.limits_for("bob").min_pool_size) == (10, 2)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("[databases.d.users.alice]\npool_size = 0\n", "d.users.alice.pool_size must be"),
        ("[databases.d.users.alice]\nmin_pool_size = 30\n", "exceeds pool_size"),
        ("[databases.d.users.alice]\nmax = 3\n", 'unknown key "max"'),
        ("[databases.d.users]\nalice = 3\n", "must be a table"),
        ('[users]\nbob = "b"\n[databases.d.users.alice]\npool_size = 1\n', "not in the"),
        ("max_db_connections = -1\n", "max_db_connections must be"),
        ("min_pool_size = 3\nmax_db_connections = 2\n", "below min_pool_size"),
    ],
)
def test_bad_user_limits_are_explained(tmp_path, section, message):
    path = tmp_path / "firewall.toml"
    path.write_text('[databases.d]\nupstream = "postgresql://u@h/d"\n' + section)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


# -- unknown keys ---------------------------------------------------------------------------

DEMO = '[databases.demo]\nupstream = "postgresql://u@h/demo"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "pool_sise = 4\n" + DEMO,
            'unknown key "pool_sise" at the top level; did you mean "pool_size"?',
            id="top level",
        ),
        pytest.param(
            "server_idle_timeout = 5\n" + DEMO,
            'unknown key "server_idle_timeout" at the top level; it belongs in [databases.NAME]',
            id="top level, a database's key",
        ),
        pytest.param(
            "exempt_roles = ['owner']\n" + DEMO,
            'unknown key "exempt_roles" at the top level; it belongs in [guard]',
            id="top level, a guard key",
        ),
        pytest.param(
            DEMO + "pool_sise = 4\n",
            'unknown key "pool_sise" in [databases.demo]; did you mean "pool_size"?',
            id="database",
        ),
        pytest.param(
            '[databases.demo]\nupstrem = "postgresql://u@h/demo"\n',
            'unknown key "upstrem" in [databases.demo]; did you mean "upstream"?',
            id="database, upstream misspelt",
        ),
        pytest.param(
            '[databases."shop.eu"]\nupstream = "postgresql://u@h/shop"\nlisten = "x"\n',
            'unknown key "listen" in [databases."shop.eu"]; valid keys: guard, '
            "idle_transaction_timeout, max_db_connections, min_pool_size, pool_mode, pool_size, query_wait_timeout, server_idle_timeout, "
            "server_lifetime, upstream, users",
            id="database with a quoted name, no near key",
        ),
        pytest.param(
            '[databases]\nupstream = "postgresql://u@h/demo"\n',
            '"upstream" in [databases] is not a table: each database is a section [databases.NAME]',
            id="database without a name",
        ),
        pytest.param(
            DEMO + "[databases.demo.users.reporting]\npool_sise = 4\n",
            'unknown key "pool_sise" in [databases.demo.users.reporting]; '
            'did you mean "pool_size"?',
            id="user pool",
        ),
        pytest.param(
            DEMO + "[databases.demo.users.reporting]\nmax = 4\n",
            'unknown key "max" in [databases.demo.users.reporting]; '
            "valid keys: min_pool_size, pool_size",
            id="user pool, no near key",
        ),
        pytest.param(
            '[users]\nalice = "a"\n' + DEMO + "[databases.demo.users.alcie]\npool_size = 1\n",
            '[databases.demo.users.alcie]: "alcie" is not in the [users] list; '
            'did you mean "alice"?',
            id="user pool of an unknown user",
        ),
        pytest.param(
            '[users.alice]\npassword = "a"\n' + DEMO,
            '[users] "alice" must be a string: a SCRAM verifier or a password',
            id="users",
        ),
        pytest.param(
            DEMO + '[guard]\nfunction = ["f()"]\n',
            'unknown key "function" in [guard]; did you mean "functions"?',
            id="guard",
        ),
        pytest.param(
            DEMO + '[guard]\nddl = ["CREATE TABLE", "DROP TABLE"]\n',
            'unknown DDL kind "DROP TABLE" in [guard] ddl; known: CREATE INDEX',
            id="guard ddl",
        ),
        pytest.param(
            DEMO + '[guard]\nfunctions = "f()"\n',
            "[guard] functions must be a list of strings, got 'f()'",
            id="guard functions not a list",
        ),
        pytest.param(
            DEMO + '[databases.demo.guard]\nexempt_roles = ["x"]\n',
            'unknown key "exempt_roles" in [databases.demo.guard]; valid keys: ddl, functions, settings',
            id="database guard",
        ),
        pytest.param(
            DEMO + '[tls]\ncert = "c.pem"\nkee = "k.pem"\n',
            'unknown key "kee" in [tls]; did you mean "key"?',
            id="tls",
        ),
    ],
)
def test_unknown_keys_are_refused_with_the_nearest_valid_one(tmp_path, text, message):
    path = tmp_path / "firewall.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    assert str(excinfo.value).startswith(message)


def test_every_documented_key_is_accepted(tmp_path):
    """Strict, but not stricter than the format: the docstring's example and a file using
    every key at every level both load."""
    example = config_module.__doc__.split("::\n", 1)[1].split("\n\nA key", 1)[0]
    path = tmp_path / "example.toml"
    path.write_text(textwrap.dedent(example))
    assert load_config(path).databases["demo"].limits_for("reporting").pool_size == 4

    path.write_text(
        """
listen = "127.0.0.1:6500"
metrics_listen = "127.0.0.1:9188"
max_client_connections = 50
pool_mode = "session"
pool_size = 6
min_pool_size = 1
max_db_connections = 12
[users]
alice = "a"
[databases.demo]
upstream = "postgresql://u@h/demo"
pool_mode = "transaction"
pool_size = 5
min_pool_size = 2
max_db_connections = 10
server_idle_timeout = 60
server_lifetime = 600
query_wait_timeout = 3
[databases.demo.users.alice]
pool_size = 3
min_pool_size = 1
[guard]
exempt_roles = ["owner"]
[tls]
cert = "cert.pem"
key = "key.pem"
"""
    )
    config = load_config(path)
    demo = config.databases["demo"]
    assert (demo.pool_mode, demo.pool_size, demo.max_db_connections) == ("transaction", 5, 10)
    assert (demo.server_idle_timeout, demo.query_wait_timeout) == (60.0, 3.0)
    assert demo.limits_for("alice") == PoolLimits(3, 1)
    assert (config.max_client_connections, config.tls_cert) == (50, "cert.pem")
