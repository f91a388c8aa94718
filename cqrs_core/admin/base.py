"""What every core admin shares: read-only model admins, actions for staff, pretty JSON."""
from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html


def pretty(value: Any) -> str:
    return format_html("<pre style='margin:0'>{}</pre>", json.dumps(value, indent=2, sort_keys=True, default=str))


class ReadOnlyAdmin(admin.ModelAdmin):
    """No add, change or delete, for anyone: history is not edited from a browser."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


class StaffActionsAdmin(ReadOnlyAdmin):
    """Read-only, with this admin's own ``actions`` for staff (they need no change permission)."""

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        return {name: self.get_action(name) for name in self.actions} if request.user.is_staff else {}
