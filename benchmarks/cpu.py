"""Where the CPU goes during a measurement: the host's processes grouped by role, read from ``/proc``.

On two cores a throughput figure is bounded by the CPU that every process spends per operation
(the client, its PostgreSQL backend, the workers projecting it, Redis, gunicorn), so each
command scenario reports, beside its rate, the CPU milliseconds per operation of each group:

* ``postgres``, ``celery``, ``gunicorn``, ``redis``: the live processes of that name plus the CPU
  their parents collected from children that exited (``cutime``/``cstime`` of a process that
  reaped them: PostgreSQL's postmaster reaps the backends of client connections that closed).
* ``clients``: what the benchmark's client processes measured of themselves over their timed
  window (``time.process_time``), passed in by the caller.
* ``other``: the rest of the host's busy time (``/proc/stat``), the harness itself included.

Linux only; elsewhere :func:`snapshot` returns None and no breakdown is reported.
https://man7.org/linux/man-pages/man5/proc_pid_stat.5.html
"""
from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

GROUPS = ("postgres", "celery", "gunicorn", "redis")
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PROC = Path("/proc")


@dataclass(frozen=True)
class Snapshot:
    """CPU seconds per group and of the whole host's busy time, at one moment."""

    groups: dict[str, float]
    busy: float


def _group(pid: str) -> str | None:
    try:
        cmdline = (_PROC / pid / "cmdline").read_bytes().split(b"\0")
        comm = (_PROC / pid / "comm").read_text().strip()
    except OSError:
        return None
    if comm.startswith("postgres") or comm == "postmaster":
        return "postgres"
    if comm.startswith("redis-server"):
        return "redis"
    words = b" ".join(cmdline[:3])
    if b"celery" in words:
        return "celery"
    if b"gunicorn" in words:
        return "gunicorn"
    return None


def _cpu(pid: str) -> tuple[float, float]:
    """(own CPU seconds, CPU seconds of reaped children) of one process."""
    fields = (_PROC / pid / "stat").read_text().rpartition(")")[2].split()
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return (utime + stime) / _TICK, (cutime + cstime) / _TICK


def _busy() -> float:
    """CPU seconds the host spent busy (every state but idle and iowait), over all cores."""
    values = [int(v) for v in (_PROC / "stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / _TICK


def snapshot() -> Snapshot | None:
    """The CPU each group has used so far (None where ``/proc`` is not there)."""
    if not (_PROC / "stat").exists():
        return None
    groups: dict[str, float] = defaultdict(float)
    for pid in os.listdir(_PROC):
        if not pid.isdigit():
            continue
        group = _group(pid)
        if group is None:
            continue
        try:
            own, children = _cpu(pid)
        except (OSError, ValueError, IndexError):
            continue  # it exited meanwhile: its parent's children's time has it next time
        groups[group] += own + children
    return Snapshot(dict(groups), _busy())


def breakdown(before: Snapshot | None, after: Snapshot | None, operations: int,
              clients_cpu: float) -> dict[str, float]:
    """CPU milliseconds per operation of each group between two snapshots, plus ``clients`` and ``other``."""
    if before is None or after is None or operations <= 0:
        return {}
    per_op = {name: max(0.0, after.groups.get(name, 0.0) - before.groups.get(name, 0.0)) for name in GROUPS}
    per_op["clients"] = clients_cpu
    per_op["other"] = max(0.0, (after.busy - before.busy) - sum(per_op.values()))
    return {name: round(seconds * 1000 / operations, 3) for name, seconds in per_op.items()}


def describe(ms_per_op: dict[str, float]) -> str:
    """``CPU/op 2.1 ms: clients 1.0, postgres 0.6, …`` (groups under 0.01 ms left out)."""
    if not ms_per_op:
        return ""
    total = sum(ms_per_op.values())
    parts = ", ".join(f"{name} {value:.2f}" for name, value in sorted(ms_per_op.items(), key=lambda kv: -kv[1])
                      if value >= 0.01)
    return f"CPU/op {total:.2f} ms: {parts}"
