"""Run a ``manage.py`` command under the settings ``make run`` serves the site with.

``make run`` shows the site as visitors will see it: DEBUG off, so an unknown URL gets the
site's own 404 page, a crash never shows a traceback, and static files come hashed and
compressed from ``STATIC_ROOT``. Production settings refuse to start without a secret key and
allowed hosts, which nothing provides on a laptop. This fills in what the environment leaves
unset — a secret key generated once into the run directory and kept there (so sessions survive
restarts), the loopback host names, plain HTTP — and hands over to Django. Whatever the user
has set wins. ``runstack`` starts its processes with this environment, so all of them read the
same key::

    python -m portfolio.localrun runstack                  # make run
    DJANGO_DEBUG=1 python -m portfolio.localrun runstack   # make dev
    python -m portfolio.localrun createsuperuser

Kept free of Django settings: it must run before they are read.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

BASE_DIR = Path(__file__).resolve().parent.parent
KEY_FILE_NAME = "secret_key"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
# Addresses that mean "every interface": not names a browser sends in its Host header.
_WILDCARD_HOSTS = {"", "0.0.0.0", "::", "[::]"}  # noqa: S104 - compared, never bound


def run_dir(environ: Mapping[str, str]) -> Path:
    """The run directory as the settings define it (``STACK_RUN_DIR``, default ``.run/``)."""
    return Path(environ.get("STACK_RUN_DIR") or BASE_DIR / ".run")


def ensure_secret_key(path: Path) -> Path:
    """Create ``path`` holding a new random secret key (mode 0600) unless it exists already.

    Never overwrites: the key is written to a private temporary file and hard-linked into
    place, which fails if another process got there first, so concurrent starts agree on
    one key and a restart keeps the sessions and signed cookies made before it.
    """
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(50) + "\n")
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
            logger.info("event=secret_key_created path=%s", path)
    finally:
        temporary.unlink()
    return path


def loopback_hosts(host: str) -> list[str]:
    """The host names a browser on this machine may send: loopback, plus ``host`` when it is
    a name or a single address (a wildcard bind needs ``DJANGO_ALLOWED_HOSTS``)."""
    hosts = list(LOOPBACK_HOSTS)
    host = host.strip()
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # IPv6 addresses are bracketed in Host headers
    if host not in _WILDCARD_HOSTS and host not in hosts:
        hosts.append(host)
    return hosts


def local_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables to add to ``environ`` for a local run; those already set (non-empty)
    are left alone. Creates the secret key file when it is the key's source."""
    added: dict[str, str] = {}
    if not environ.get("DJANGO_SECRET_KEY") and not environ.get("DJANGO_SECRET_KEY_FILE"):
        key_file = ensure_secret_key(run_dir(environ) / KEY_FILE_NAME)
        added["DJANGO_SECRET_KEY_FILE"] = str(key_file)
    if not environ.get("DJANGO_ALLOWED_HOSTS"):
        added["DJANGO_ALLOWED_HOSTS"] = ",".join(loopback_hosts(environ.get("HOST", "")))
    # Plain HTTP on loopback: with HTTPS on, every request would be redirected to https://.
    if not environ.get("DJANGO_HTTPS"):
        added["DJANGO_HTTPS"] = "0"
    return added


def main(argv: Sequence[str] | None = None) -> None:
    """Fill in the local-run environment, then run the ``manage.py`` command in ``argv``."""
    os.environ.update(local_environ(os.environ))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portfolio.settings")
    from django.core.management import execute_from_command_line

    args = list(sys.argv[1:] if argv is None else argv)
    execute_from_command_line(["manage.py", *args])


if __name__ == "__main__":
    main()
