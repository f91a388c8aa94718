"""SQL that only PostgreSQL runs, for the migrations of this app (a leading ``_``: not a migration itself)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any


def on_postgres(sql: str) -> Callable[[Any, Any], None]:
    """A ``RunPython`` function that executes ``sql`` on PostgreSQL and does nothing elsewhere (SQLite)."""

    def run(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            with schema_editor.connection.cursor() as cursor:
                cursor.execute(sql)  # no params: a "%" in the SQL (RAISE) is not a placeholder

    return run
