"""The services stack of a benchmark run: environment, a fresh database, Celery workers and gunicorn.

Every process the stack starts runs in its own session (process group) and is stopped by
:meth:`Stack.close`, which the harness calls in a ``finally``: after the run, on an error and on
Ctrl-C or SIGTERM alike. Nothing here touches a database other than the one in ``DATABASE_URL``,
and :func:`recreate_database` refuses any whose name does not end in ``_bench``.
"""
from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

BASE_DIR = Path(__file__).resolve().parent.parent
SETTINGS = "benchmarks.settings"
#: Defaults of the services a benchmark talks to (``./dev.sh bench`` sets the same).
DEFAULTS = {
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/ledgerline_bench",
    "CACHE_URL": "redis://127.0.0.1:6379/13",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/14",
}


def bench_environment() -> dict[str, str]:
    """Set (where unset) the variables the benchmark processes share; returns the environment.

    The production profile needs a secret key and allowed hosts; TLS is off (plain HTTP on
    loopback); the per-user command throttle (600/min) is lifted so it does not become the
    figure; logs go at WARNING so that logging every command is not what is measured.
    """
    values = {
        **DEFAULTS,
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "THROTTLE_COMMANDS": "100000000/min",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(BASE_DIR),
    }
    for name, value in values.items():
        os.environ.setdefault(name, value)
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS
    return dict(os.environ)


def database_name(url: str) -> str:
    return urlparse(url).path.lstrip("/")


def recreate_database(url: str) -> None:
    """Drop and create the benchmark database (only a ``*_bench`` one: never anybody else's)."""
    import psycopg

    name = database_name(url)
    if not name.endswith("_bench"):
        raise SystemExit(f"refusing to recreate database {name!r}: only a *_bench database is recreated")
    admin = urlparse(url)._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def flush_redis(*urls: str) -> None:
    """Empty the cache and broker databases of this run (stale tasks of an aborted run, old entries)."""
    import redis

    for url in urls:
        if url.startswith("redis://"):
            redis.Redis.from_url(url).flushdb()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Stack:
    """Celery worker(s) and a gunicorn server on a free loopback port, with their logs in ``log_dir``."""

    def __init__(self, *, log_dir: Path, workers: int, web_workers: int) -> None:
        self.log_dir = log_dir
        self.worker_concurrency = workers
        self.web_workers = web_workers
        self.port = free_port()
        self.procs: dict[str, subprocess.Popen] = {}
        log_dir.mkdir(parents=True, exist_ok=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, name: str, command: list[str]) -> None:
        log = open(self.log_dir / f"{name}.log", "w")  # noqa: SIM115  (closed with the process)
        self.procs[name] = subprocess.Popen(command, cwd=BASE_DIR, env=dict(os.environ), stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def start_workers(self) -> None:
        bin_dir = Path(sys.executable).parent
        self._spawn("celery", [str(bin_dir / "celery"), "-A", "config", "worker", "-l", "warning", "--pool", "prefork",
                               "--concurrency", str(self.worker_concurrency), "-n", f"bench-{self.port}@%h",
                               "--without-gossip", "--without-mingle", "--without-heartbeat"])

    def start_web(self) -> None:
        bin_dir = Path(sys.executable).parent
        # As the README deploys it (config/gunicorn.py: threaded workers keeping connections open).
        self._spawn("gunicorn", [str(bin_dir / "gunicorn"), "config.wsgi", "--config", str(BASE_DIR / "config" / "gunicorn.py"),
                                 "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.web_workers),
                                 "--log-level", "warning"])
        self._wait_http("/health/live/")
        self._warm_up()

    def _warm_up(self) -> None:
        """Each worker loads URLconf, views and connections on its first requests: do that before timing."""
        for _ in range(10 * self.web_workers):
            for path in ("/health/live/", "/api/portfolio/", "/api/trading/trades/", "/api/market/top-coins/"):
                try:
                    urllib.request.urlopen(self.base_url + path, timeout=10).read()
                except OSError:
                    pass  # 401 without a token: the view was loaded all the same

    def wait_workers(self, timeout: float = 60.0) -> None:
        """Until a worker answers a ping (its pool is up and consuming)."""
        from config.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive("celery")
            if app.control.ping(timeout=1.0):
                return
        raise RuntimeError(f"no Celery worker answered within {timeout:.0f} s; see {self.log_dir / 'celery.log'}")

    def _wait_http(self, path: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive("gunicorn")
            try:
                with urllib.request.urlopen(self.base_url + path, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer {path} within {timeout:.0f} s; see {self.log_dir / 'gunicorn.log'}")

    def _check_alive(self, name: str) -> None:
        proc = self.procs[name]
        if proc.poll() is not None:
            tail = (self.log_dir / f"{name}.log").read_text()[-2000:]
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")

    def stop(self, name: str) -> None:
        """SIGTERM the process group, SIGKILL it if it lingers."""
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue

    def close(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
