"""The production profile: refuses to start without its required settings, passes ``check --deploy``,
and still serves the offline API docs (static files through WhiteNoise, no CDN).

Each case runs ``manage.py`` in a child process: settings are read once per process.
"""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path, **overrides: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "DATABASE_", "CACHE_", "CELERY_", "LEDGERLINE_"))}
    env.update({
        "LEDGERLINE_PROFILE": "production",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(60),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.sqlite3'}",
        "DJANGO_ALLOWED_HOSTS": "ledgerline.example.com",
        "DJANGO_STATIC_ROOT": str(tmp_path / "static"),
    })
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _manage(tmp_path: Path, *args: str, **overrides: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=_env(tmp_path, **overrides),
                          capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "DATABASE_URL", "DJANGO_ALLOWED_HOSTS"])
def test_refuses_to_start_without_a_required_setting(tmp_path: Path, missing: str) -> None:
    done = _manage(tmp_path, "check", **{missing: None})
    assert done.returncode != 0
    assert f"The production profile needs {missing}" in done.stderr


def test_refuses_a_weak_secret_key(tmp_path: Path) -> None:
    done = _manage(tmp_path, "check", DJANGO_SECRET_KEY="short")
    assert done.returncode != 0
    assert "at least 50 characters" in done.stderr


def test_an_unknown_profile_is_an_error(tmp_path: Path) -> None:
    done = _manage(tmp_path, "check", LEDGERLINE_PROFILE="prodution")
    assert done.returncode != 0
    assert "LEDGERLINE_PROFILE must be production" in done.stderr


def test_check_deploy_reports_nothing(tmp_path: Path) -> None:
    done = _manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


PROBE = r"""
import django, json
django.setup()
from django.conf import settings
from django.test import Client
c = Client()
docs = c.get("/api/docs/", secure=True, HTTP_HOST="ledgerline.example.com")
html = docs.content.decode()
start = html.index("/static/drf_spectacular_sidecar/")
asset = html[start:html.index('"', start)]
static = c.get(asset, secure=True, HTTP_HOST="ledgerline.example.com")
plain = c.get("/api/docs/", HTTP_HOST="ledgerline.example.com")
missing = c.get("/no-such-page/", secure=True, HTTP_HOST="ledgerline.example.com")
print(json.dumps({
    "debug": settings.DEBUG, "docs": docs.status_code, "asset": asset, "static": static.status_code,
    "static_body": b"".join(static.streaming_content)[:20].decode("latin-1") if static.status_code == 200 else "",
    "plain": plain.status_code, "plain_location": plain.get("Location", ""),
    "hsts": docs.get("Strict-Transport-Security", ""), "missing": missing.status_code,
    "missing_is_debug_page": b"Using the URLconf" in missing.content,
    "cookies_secure": settings.SESSION_COOKIE_SECURE and settings.CSRF_COOKIE_SECURE,
}))
"""


def test_serves_the_offline_docs_and_static_files_securely(tmp_path: Path) -> None:
    collected = _manage(tmp_path, "collectstatic", "--noinput")
    assert collected.returncode == 0, collected.stderr
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=_env(tmp_path), capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    import json

    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["debug"] is False
    assert seen["docs"] == 200
    assert seen["static"] == 200 and seen["static_body"].strip(), seen
    assert seen["plain"] == 301 and seen["plain_location"].startswith("https://"), seen
    assert seen["hsts"].startswith("max-age=31536000"), seen
    assert seen["missing"] == 404 and seen["missing_is_debug_page"] is False
    assert seen["cookies_secure"] is True
