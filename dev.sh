#!/usr/bin/env bash
# Ledgerline developer entry point. Needs only Python 3.11 on the machine.
#
#   ./dev.sh run                          migrate, seed the demo, serve on 127.0.0.1:${PORT:-8000}
#   ./dev.sh test [pytest args]           the whole test suite (embedded stack by default)
#   ./dev.sh services-test [pytest args]  the suite against PostgreSQL + Redis (see README)
#   ./dev.sh bench [--quick]              the benchmark suite on the services stack (docs/PERFORMANCE.md)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

VENV=.venv
VENV_PY="$VENV/bin/python"
STAMP="$VENV/.requirements.sha256"

die() {
    echo "dev.sh: $*" >&2
    exit 1
}

is_py311() {
    "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' >/dev/null 2>&1
}

# Prints the path of a Python 3.11 interpreter ($PYTHON, python3.11 or python3).
find_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.11 python3; do
        [[ -n "$candidate" ]] && command -v "$candidate" >/dev/null || continue
        if is_py311 "$candidate"; then
            command -v "$candidate"
            return
        fi
    done
    die "Python 3.11 is required: put python3.11 (or a python3 that is 3.11) on PATH," \
        "or set PYTHON=/path/to/python3.11"
}

create_venv() {
    local python
    python="$(find_python)"
    echo "==> Creating $VENV with $python"
    "$python" -m venv --clear "$VENV" \
        || die "could not create $VENV (on Debian/Ubuntu: apt-get install python3.11-venv)"
}

requirements_hash() {
    "$VENV_PY" - requirements.txt <<'PY'
import hashlib, sys
print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())
PY
}

# Creates the venv if missing (or not 3.11) and installs requirements.txt when it changed.
ensure_venv() {
    if [[ ! -x "$VENV_PY" ]] || ! is_py311 "$VENV_PY"; then
        create_venv
    fi
    local wanted
    wanted="$(requirements_hash)"
    if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$wanted" ]]; then
        return
    fi
    echo "==> Installing requirements.txt into $VENV"
    "$VENV_PY" -m pip install --quiet --disable-pip-version-check -r requirements.txt
    echo "$wanted" >"$STAMP"
}

manage() {
    "$VENV_PY" manage.py "$@"
}

# Runs pytest; "no tests collected" (exit 5) is reported as a failure, never a pass.
run_pytest() {
    local rc=0
    "$VENV_PY" -m pytest "$@" || rc=$?
    if [[ $rc -eq 5 ]]; then
        echo "dev.sh: pytest collected no tests; treating that as a failure (exit 5)" >&2
    fi
    return "$rc"
}

cmd_run() {
    ensure_venv
    manage migrate --noinput
    manage seed_demo
    if [[ ! -d staticfiles ]]; then
        manage collectstatic --noinput --verbosity 0
    fi
    local port="${PORT:-8000}"
    echo
    echo "==> Ledgerline on http://127.0.0.1:$port/"
    echo "    API docs: http://127.0.0.1:$port/api/docs/"
    echo "    Admin:    http://127.0.0.1:$port/admin/  (login printed above)"
    echo
    exec "$VENV_PY" manage.py runserver "127.0.0.1:$port"
}

cmd_test() {
    ensure_venv
    run_pytest "$@"
}

cmd_services_test() {
    export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/ledgerline}"
    export CACHE_URL="${CACHE_URL:-redis://127.0.0.1:6379/1}"
    export CELERY_BROKER_URL="${CELERY_BROKER_URL:-redis://127.0.0.1:6379/2}"
    echo "==> Services: DATABASE_URL=$DATABASE_URL"
    echo "              CACHE_URL=$CACHE_URL CELERY_BROKER_URL=$CELERY_BROKER_URL"
    cmd_test "$@"
}

# The services stack of the benchmarks: its own PostgreSQL database (recreated each run) and
# Redis databases; gunicorn and the Celery workers are started and stopped by the harness.
cmd_bench() {
    ensure_venv
    export DATABASE_URL="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/ledgerline_bench}"
    export CACHE_URL="${BENCH_CACHE_URL:-redis://127.0.0.1:6379/13}"
    export CELERY_BROKER_URL="${BENCH_BROKER_URL:-redis://127.0.0.1:6379/14}"
    echo "==> Bench services: DATABASE_URL=$DATABASE_URL"
    echo "                    CACHE_URL=$CACHE_URL CELERY_BROKER_URL=$CELERY_BROKER_URL"
    exec "$VENV_PY" -m benchmarks "$@"
}

usage() {
    sed -n '2,7s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
    exit "${1:-0}"
}

main() {
    local command="${1:-}"
    shift || true
    case "$command" in
        run) cmd_run "$@" ;;
        test) cmd_test "$@" ;;
        services-test) cmd_services_test "$@" ;;
        bench) cmd_bench "$@" ;;
        -h | --help | help) usage 0 ;;
        *) usage 2 >&2 ;;
    esac
}

main "$@"
