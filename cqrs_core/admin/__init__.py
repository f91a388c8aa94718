"""Operator admin of the core, one module per area; importing this package registers them all.

* ``store``: the event store and the command log, read-only for everyone, indexed filters.
* ``streams``: a stream's full history (``/admin/ledgerline/streams/<stream>/``) and links to it.
* ``projections``: status, lag and rebuild progress; pause, resume, background rebuild, cancel;
  dead letters with retry and skip.
* ``sagas``: saga instances with their timeline; retry and compensate.
* ``ops``: reconciliation runs and refused-command counts, read-only.
* ``dashboard``: ``/admin/ledgerline/dashboard/``, linked from the admin index.
* ``base.ReadModelAdmin`` and ``commands.OperatorCommandsAdmin``: what contexts build their
  admins from (read-only read models linked to their events; operator commands through the bus).
"""
from __future__ import annotations

from . import dashboard, ops, projections, sagas, store, streams  # noqa: F401  (registration by import)
from .base import ReadModelAdmin, ReadOnlyAdmin
from .commands import OperatorCommandForm, OperatorCommandsAdmin

__all__ = ["OperatorCommandForm", "OperatorCommandsAdmin", "ReadModelAdmin", "ReadOnlyAdmin"]
