"""The firewall's configuration: flags, a TOML file, and clear errors for bad values."""

from __future__ import annotations

import pytest

from engines.firewall.config import ConfigError, Upstream, load_config


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


def test_file_with_several_databases_users_and_rules(tmp_path):
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
[guard]
rules = ["drop", "truncate"]
exempt_roles = ["owner"]
"""
    )
    config = load_config(path)
    assert set(config.databases) == {"shop", "blog"}
    assert config.databases["shop"].pool_size == 8
    assert config.databases["shop"].min_pool_size == 2
    assert config.databases["blog"].pool_mode == "session"
    assert config.databases["blog"].pool_size == 3
    assert config.rules == {"drop", "truncate"}
    assert config.exempt_roles == {"owner"}
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
    rules.write_text('[databases.d]\nupstream = "postgresql://u@h/d"\n[guard]\nrules = ["nuke"]\n')
    with pytest.raises(ConfigError, match="unknown guard rules"):
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
        ("[databases.d.users.alice]\nmax = 3\n", "unknown settings"),
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
