"""The deployed server (``gunicorn -c config/gunicorn.py``) keeps a client's connection for its next request."""
from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.timeout(120)
def test_two_requests_travel_on_one_connection_and_both_are_answered(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "PYTHONPATH": str(BASE_DIR),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "CACHE_URL": "locmemcache://server-config",
           "CELERY_BROKER_URL": "memory://", "LOG_LEVEL": "WARNING"}
    gunicorn = Path(sys.executable).parent / "gunicorn"
    proc = subprocess.Popen([str(gunicorn), "config.wsgi", "--config", str(BASE_DIR / "config" / "gunicorn.py"),
                             "--bind", f"127.0.0.1:{port}", "--workers", "1"],
                            cwd=BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        conn = _connect(port, proc)
        peers = []
        for _ in range(2):
            conn.request("GET", "/health/live/")
            response = conn.getresponse()
            response.read()
            assert response.status == 200
            assert (response.getheader("Connection") or "").lower() != "close"
            peers.append(conn.sock.getsockname())  # the same local socket: no reconnect in between
        assert peers[0] == peers[1]
        conn.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def _connect(port: int, proc: subprocess.Popen) -> http.client.HTTPConnection:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, "gunicorn exited"
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.connect()
            return conn
        except OSError:
            time.sleep(0.2)
    raise AssertionError("gunicorn did not listen within 60 s")
