"""The benchmark harness runs end to end on the services stack and writes every figure.

Timings never decide this test: it runs ``python -m benchmarks --tiny`` (seconds per
measurement, a few thousand rows) against the test database and checks the JSON's keys.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from benchmarks.run import MODES, expected_keys

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.services,
    pytest.mark.skipif(
        not settings.CELERY_BROKER_URL.startswith(("redis://", "amqp://")) or connection.vendor != "postgresql"
        or not os.environ.get("CACHE_URL", "").startswith("redis://"),
        reason="needs PostgreSQL, a Redis cache and a real broker (the harness starts workers and gunicorn)",
    ),
]


def _database_url() -> str:
    db = connection.settings_dict
    auth = quote(db["USER"] or "") + (":" + quote(db["PASSWORD"]) if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.mark.timeout(600)  # about a minute alone; several on a shared machine
def test_a_tiny_run_writes_every_figure_and_limit(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = {**os.environ, "DATABASE_URL": _database_url(), "CELERY_BROKER_URL": settings.CELERY_BROKER_URL}
    run = subprocess.run([sys.executable, "-m", "benchmarks", "--tiny", "--keep-database", "--json", str(out)],
                         cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=540)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    body = json.loads(out.read_text())
    assert set(body["figures"]) | set(body["limits"]) == expected_keys(MODES["tiny"])
    unmeasured = {key for key, figure in body["figures"].items() if figure["value"] is None}
    assert unmeasured == set(), "every figure is measured"
    assert body["figures"]["s6.sagas.yield"]["extra"]["completed"] == MODES["tiny"].sagas
