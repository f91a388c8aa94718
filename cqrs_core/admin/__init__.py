"""Operator admin of the core, one module per area; importing this package registers them all.

* ``store``: the event store and the command log, read-only for everyone.
* ``projections``: status, lag and rebuild progress; pause, resume, background rebuild, cancel;
  dead letters with retry and skip.
* ``sagas``: saga instances with their timeline; retry and compensate.
* ``ops``: reconciliation runs and refused-command counts, read-only.
* ``dashboard``: ``/admin/ledgerline/dashboard/``, linked from the admin index.
"""
from __future__ import annotations

from . import dashboard, ops, projections, sagas, store  # noqa: F401  (registration by import)
