"""Real services the fault tests may break: a private PostgreSQL cluster, private Redis servers, the
app under gunicorn and real Celery processes, each on its own port and in a temporary directory.

The fault tests stop and kill these, never the machine's shared services (other suites use those at
the same time). Everything started here is stopped by ``close()``, also when a test fails.
"""
from __future__ import annotations

import contextlib
import glob
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
_PG_BINS = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
PG_BIN = Path(_PG_BINS[-1]) if _PG_BINS else None
REDIS_SERVER = shutil.which("redis-server")
_SBIN_PATH = f"{os.environ.get('PATH', '')}:/usr/sbin:/usr/lib/rabbitmq/bin"
RABBITMQ_SERVER = shutil.which("rabbitmq-server", path=_SBIN_PATH)
RABBITMQCTL = shutil.which("rabbitmqctl", path=_SBIN_PATH)
AS_POSTGRES = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def missing_tools() -> str | None:
    """Why these tests do not run here, or None. They run once, in the services suite."""
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        return "fault tests run in the services suite (./dev.sh services-test)"
    if PG_BIN is None or not (PG_BIN / "initdb").exists():
        return "needs the PostgreSQL server binaries (initdb, pg_ctl)"
    if REDIS_SERVER is None:
        return "needs redis-server"
    if AS_POSTGRES and shutil.which("runuser") is None:
        return "running as root needs runuser to start PostgreSQL as postgres"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.1) -> float:
    """Polls ``predicate`` until it is truthy; returns the seconds it took; raises after ``timeout``."""
    start = time.monotonic()
    while True:
        try:
            if predicate():
                return time.monotonic() - start
        except Exception:  # noqa: BLE001 - the thing polled is expected to fail while it comes up
            pass
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"{what}: not within {timeout} s")
        time.sleep(interval)


class PrivatePostgres:
    """A throw-away PostgreSQL cluster (trust auth) that a test may stop and restart.

    ``fsync=off`` only skips flushing to disk, which matters when the OS crashes (it does not
    here); ``synchronous_commit`` stays on, or an immediate shutdown would lose acknowledged commits.
    """

    def __init__(self, root: Path) -> None:
        self.dir = root / "pg"
        self.port = free_port()
        self.log = root / "pg.log"

    def _pg(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        assert PG_BIN is not None
        return subprocess.run([*AS_POSTGRES, str(PG_BIN / args[0]), *args[1:]], capture_output=True, text=True,
                              check=check, timeout=120)

    def init(self) -> None:
        self.dir.mkdir(mode=0o700)
        self.log.touch()
        if AS_POSTGRES:
            shutil.chown(self.dir, "postgres", "postgres")
            shutil.chown(self.log, "postgres", "postgres")
            os.chmod(self.dir.parent, 0o755)
        self._pg("initdb", "-D", str(self.dir), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        self.start()
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE ledgerline")

    def start(self) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off "
                   f"-c max_connections=50")
        self._pg("pg_ctl", "-D", str(self.dir), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._pg("pg_ctl", "-D", str(self.dir), "-m", mode, "-w", "-t", "60", "stop", check=False)

    def url(self, db: str = "ledgerline") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()


class PrivateRedis:
    """A Redis server on its own port, keeping nothing on disk; ``stop`` shuts it down for real."""

    def __init__(self, root: Path, name: str) -> None:
        self.port = free_port()
        self.dir = root / f"redis-{name}"
        self.dir.mkdir()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert REDIS_SERVER is not None
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self.ping, 20, f"redis on {self.port}")

    def ping(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"


class PrivateRabbitMQ:
    """A RabbitMQ node of its own (name, AMQP and distribution ports, data and logs in ``root``).

    The machine's ``/etc/rabbitmq`` files are replaced by empty ones here, so the shared node's name
    and listener are not inherited; ``stop`` halts this node only (``rabbitmqctl -n <node> stop``).
    """

    def __init__(self, root: Path) -> None:
        self.dir = root / "rabbitmq"
        self.dir.mkdir()
        self.port, self.dist_port = free_port(), free_port()
        self.node = f"ledgerline-faults-{uuid.uuid4().hex[:8]}@localhost"
        (self.dir / "rabbitmq.conf").write_text(f"listeners.tcp.1 = 127.0.0.1:{self.port}\nloopback_users = none\n")
        (self.dir / "env.conf").write_text("")
        (self.dir / "enabled_plugins").write_text("[].\n")
        if os.geteuid() == 0:  # the server script drops to the rabbitmq user, which must own its files
            os.chmod(root, 0o755)
            for path in [self.dir, *self.dir.iterdir()]:
                shutil.chown(path, "rabbitmq", "rabbitmq")
        self.env = {**os.environ, "RABBITMQ_NODENAME": self.node, "RABBITMQ_NODE_PORT": str(self.port),
                    "RABBITMQ_DIST_PORT": str(self.dist_port), "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
                    "RABBITMQ_LOG_BASE": str(self.dir / "log"), "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
                    "RABBITMQ_CONF_ENV_FILE": str(self.dir / "env.conf"), "RABBITMQ_PID_FILE": str(self.dir / "pid"),
                    "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
                    "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
                    "ERL_EPMD_ADDRESS": "127.0.0.1"}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert RABBITMQ_SERVER is not None
        log = open(self.dir.parent / "rabbitmq.out", "ab")  # noqa: SIM115 - closed with the process's end
        self.proc = subprocess.Popen([RABBITMQ_SERVER], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        # await_startup fails at once until the node has registered its name: asked again until it waits.
        wait_until(lambda: self.ctl("await_startup", timeout=120), 120, f"rabbitmq node {self.node}", interval=0.5)

    def ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        assert RABBITMQCTL is not None
        return subprocess.run([RABBITMQCTL, "-n", self.node, *args], env=self.env, capture_output=True, text=True,
                              check=True, timeout=timeout)

    def stop(self) -> None:
        """Halts the node (and only it); kills its process group if it does not go."""
        if self.proc is None:
            return
        with contextlib.suppress(subprocess.SubprocessError):
            self.ctl("stop")
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None
        with contextlib.suppress(OSError, ValueError):  # the Erlang VM itself, should it have left the group
            pid = int((self.dir / "pid").read_text().strip())
            if f"RABBITMQ_NODENAME={self.node}".encode() in Path(f"/proc/{pid}/environ").read_bytes():
                os.kill(pid, signal.SIGKILL)

    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]
    body: Any
    seconds: float


@dataclass
class Stack:
    """The app (gunicorn), optionally Celery worker and beat, over the private services."""

    root: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    token: str = ""

    def manage(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run([str(VENV_BIN / "python"), "manage.py", *args], cwd=ROOT, env=self.env, input=stdin,
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def spawn(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process's end
        proc = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def serve(self, workers: int = 2) -> None:
        self.spawn("gunicorn", [str(VENV_BIN / "gunicorn"), "config.wsgi", "--config", str(ROOT / "config" / "gunicorn.py"),
                                 "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers), "--timeout", "60",
                                 "--graceful-timeout", "2"])
        wait_until(lambda: self.request("GET", "/health/live/", timeout=2).status == 200, 60, "gunicorn up")

    def worker(self, concurrency: int = 1, loglevel: str = "warning") -> subprocess.Popen[bytes]:
        """A ``celery worker`` in its own process group (``kill`` takes the parent and its pool together)."""
        return self.spawn(f"worker-{uuid.uuid4().hex[:6]}", [
            str(VENV_BIN / "celery"), "-A", "config", "worker", "-l", loglevel, "--concurrency", str(concurrency),
            "--pool", "prefork", "-n", f"fault-{uuid.uuid4().hex[:8]}@%h", "--without-gossip", "--without-mingle"])

    def beat(self, name: str = "beat") -> subprocess.Popen[bytes]:
        return self.spawn(name, [str(VENV_BIN / "celery"), "-A", "config", "beat", "-l", "warning",
                                  "--schedule", str(self.root / f"{name}-schedule")])

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL a process's whole group: a worker's parent and its pool children at once."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def logs(self, prefix: str) -> str:
        """The combined output of the processes whose log name starts with ``prefix``."""
        return "".join(p.read_text(errors="replace") for p in sorted(self.root.glob(f"{prefix}*.log")))

    def create_user(self, username: str = "faulty") -> str:
        script = ("from django.contrib.auth import get_user_model\n"
                  "from rest_framework.authtoken.models import Token\n"
                  f"u, _ = get_user_model().objects.get_or_create(username={username!r})\n"
                  "print('TOKEN', Token.objects.get_or_create(user=u)[0].key)\n")
        out = self.manage("shell", stdin=script)
        self.token = next(line.split()[1] for line in out.splitlines() if line.startswith("TOKEN"))
        return self.token

    def request(self, method: str, path: str, body: Mapping[str, Any] | None = None,
                headers: Mapping[str, str] | None = None, timeout: float = 30) -> Reply:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        sent = {"Content-Type": "application/json", **({"Authorization": f"Token {self.token}"} if self.token else {}),
                **(headers or {})}
        start = time.monotonic()
        try:
            conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=sent)
            response = conn.getresponse()
            raw = response.read()
            seconds = time.monotonic() - start
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = raw.decode("utf-8", "replace")
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, parsed, seconds)
        finally:
            conn.close()

    def deposit(self, key: str, amount: Decimal, timeout: float = 30) -> Reply:
        return self.request("POST", "/api/portfolio/deposits/", {"amount": str(amount)},
                            {"Idempotency-Key": key}, timeout=timeout)

    def close(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.kill(proc)
        self.procs.clear()


def base_env(**overrides: str) -> dict[str, str]:
    """The app's environment: config.settings (not the test settings), nothing from the outer run."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "DATABASE_", "CACHE_", "CELERY_", "LEDGERLINE_", "PYTEST"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONPATH": str(ROOT),
        "CACHE_URL": "locmemcache://faults",
        "CELERY_BROKER_URL": "memory://",
        "THROTTLE_COMMANDS": "100000/min",
        "MARKET_SIMULATED_FEED": "false",
        "LOG_LEVEL": "WARNING",
        **overrides,
    })
    return env


@contextlib.contextmanager
def temporary_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="ledgerline-faults-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)
