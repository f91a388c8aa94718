"""Input serializer bases: unknown fields are an error, not silently dropped."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail
from rest_framework.fields import Field


class StrictSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """A serializer that answers 400 with a field error for each field it does not declare."""

    default_error_messages = {"unknown_field": "Unknown field."}

    def get_fields(self) -> dict[str, Field]:
        """The declared fields, each a shallow copy when all are leaves (DRF deep-copies them).

        DRF re-creates every declared field for each serializer (``copy.deepcopy``, which calls
        each field's ``__init__`` again): about half of validating a command's body. A field
        without children keeps no per-request state on itself: binding sets the copy's own
        name and parent, and what the copies share (validators, choices, error messages) is
        only read. Serializers with nested fields (serializers, lists, dicts) get DRF's copies.
        """
        declared = _leaf_fields(type(self))
        if declared is None:
            return super().get_fields()  # type: ignore[no-any-return]
        fields = {}
        for name, field in declared.items():
            clone = object.__new__(type(field))
            clone.__dict__.update(field.__dict__)
            fields[name] = clone
        return fields

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


_LEAVES: dict[type, dict[str, Field] | None] = {}


def _leaf_fields(serializer_class: type) -> dict[str, Field] | None:
    """The class's declared fields when none has children (no nested serializer, list or dict field), else None."""
    try:
        return _LEAVES[serializer_class]
    except KeyError:
        declared = serializer_class._declared_fields  # type: ignore[attr-defined]
        leaves = all(not isinstance(f, serializers.BaseSerializer) and not hasattr(f, "child")
                     and not hasattr(f, "child_relation") for f in declared.values())
        _LEAVES[serializer_class] = result = dict(declared) if leaves else None
        return result


class CommandInputSerializer(StrictSerializer):
    """Base of command inputs: adds the optional ``expected_version`` (as ``If-Match`` does)."""

    expected_version = serializers.IntegerField(min_value=0, required=False,
                                                help_text="The stream version the client last saw; "
                                                          "412 if the stream has moved on.")
