"""Input serializer bases: unknown fields are an error, not silently dropped."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail


class StrictSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """A serializer that answers 400 with a field error for each field it does not declare."""

    default_error_messages = {"unknown_field": "Unknown field."}

    def to_internal_value(self, data: Any) -> Any:
        unknown = self._unknown_fields(data)
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if not unknown or not isinstance(exc.detail, Mapping):
                raise
            raise serializers.ValidationError({**exc.detail, **unknown}) from exc
        if unknown:
            raise serializers.ValidationError(unknown)
        return value

    def _unknown_fields(self, data: Any) -> dict[str, list[ErrorDetail]]:
        if not isinstance(data, Mapping):
            return {}
        writable = {name for name, f in self.fields.items() if not f.read_only}
        message = ErrorDetail(self.error_messages["unknown_field"], code="unknown_field")
        return {str(name): [message] for name in data if name not in writable}


class CommandInputSerializer(StrictSerializer):
    """Base of command inputs: adds the optional ``expected_version`` (as ``If-Match`` does)."""

    expected_version = serializers.IntegerField(min_value=0, required=False,
                                                help_text="The stream version the client last saw; "
                                                          "412 if the stream has moved on.")
