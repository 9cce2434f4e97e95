"""The environment `make run` fills in: a secret key made once, loopback hosts, plain HTTP,
and never over anything the user set."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from portfolio.localrun import ensure_secret_key, local_environ, loopback_hosts

ROOT = Path(__file__).resolve().parents[2]


def test_a_fresh_run_gets_a_key_file_loopback_hosts_and_plain_http(tmp_path):
    added = local_environ({"STACK_RUN_DIR": str(tmp_path / "run")})
    key_file = tmp_path / "run" / "secret_key"
    assert added == {
        "DJANGO_SECRET_KEY_FILE": str(key_file),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,[::1]",
        "DJANGO_HTTPS": "0",
    }
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert len(key_file.read_text().strip()) >= 50


def test_the_key_is_made_once_and_kept(tmp_path):
    key_file = ensure_secret_key(tmp_path / "secret_key")
    key = key_file.read_text()
    assert ensure_secret_key(tmp_path / "secret_key").read_text() == key
    assert [path.name for path in tmp_path.iterdir()] == ["secret_key"]  # no temporaries


def test_what_the_user_set_wins(tmp_path):
    user = {
        "STACK_RUN_DIR": str(tmp_path),
        "DJANGO_SECRET_KEY": "the-users-own-key",
        "DJANGO_ALLOWED_HOSTS": "aryan.example",
        "DJANGO_HTTPS": "1",
    }
    assert local_environ(user) == {}
    own_file = {"STACK_RUN_DIR": str(tmp_path), "DJANGO_SECRET_KEY_FILE": "/run/secrets/key"}
    assert "DJANGO_SECRET_KEY_FILE" not in local_environ(own_file)
    assert not (tmp_path / "secret_key").exists()


def test_the_configured_host_is_allowed_too():
    assert loopback_hosts("portfolio.local")[-1] == "portfolio.local"
    assert loopback_hosts("::1") == ["127.0.0.1", "localhost", "[::1]"]
    assert loopback_hosts("fd00::5")[-1] == "[fd00::5]"
    assert loopback_hosts("0.0.0.0") == ["127.0.0.1", "localhost", "[::1]"]  # noqa: S104


def test_manage_commands_run_without_any_environment(tmp_path):
    """`make setup` on a fresh clone: production settings, nothing set by the user."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    result = subprocess.run(
        [sys.executable, "-m", "portfolio.localrun", "check"],
        cwd=ROOT, env={**clean, "STACK_RUN_DIR": str(tmp_path)},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "secret_key").exists()
