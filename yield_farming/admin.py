"""Yield protocols, strategies and positions in the admin: read-only, linked to their events;
operators update a protocol through the command bus (``UpdateProtocol``)."""
from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin

from cqrs_core.admin import OperatorCommandForm, OperatorCommandsAdmin, ReadModelAdmin
from cqrs_core.commands import Command
from portfolio.state import portfolio_stream

from .catalogue import UpdateProtocol
from .models import Protocol, YieldPosition, YieldStrategy
from .state import CATALOGUE_STREAM


class UpdateProtocolForm(OperatorCommandForm):
    title = "Update protocol"

    apy = forms.DecimalField(max_digits=38, decimal_places=18, label="APY (%)")
    tvl = forms.DecimalField(max_digits=38, decimal_places=18, label="TVL (USD)")
    audited = forms.BooleanField(required=False)
    risk_score = forms.IntegerField(min_value=1, max_value=10, help_text="1 (safest) to 10.")

    @classmethod
    def initial_for(cls, obj: Protocol) -> dict[str, Any]:
        return {"apy": obj.apy, "tvl": obj.tvl, "audited": obj.audited, "risk_score": obj.risk_score}

    def command(self) -> Command:
        data = self.cleaned_data
        return UpdateProtocol(slug=self.obj.slug, apy=data["apy"], tvl=data["tvl"], audited=data["audited"],
                              risk_score=data["risk_score"])


@admin.register(Protocol)
class ProtocolAdmin(OperatorCommandsAdmin, ReadModelAdmin):
    list_display = ("slug", "name", "chain", "asset", "apy", "tvl", "audited", "risk_score", "updated_at",
                    "history", "source_event", "command_links")
    search_fields = ("=slug", "name")
    search_help_text = "A protocol slug or name."
    operator_commands = {"update": UpdateProtocolForm}

    def stream_of(self, obj: Protocol) -> str:
        return CATALOGUE_STREAM

    def stream_data_of(self, obj: Protocol) -> dict[str, str]:
        return {"slug": obj.slug}


@admin.register(YieldStrategy)
class YieldStrategyAdmin(ReadModelAdmin):
    list_display = ("requested_at", "user_id", "amount", "risk_tolerance", "allocated", "released", "saga_id",
                    "history", "source_event")
    search_fields = ("=strategy_id", "=user_id", "=saga_id")
    search_help_text = "A strategy, user or saga id."
    ordering = ("-position",)

    def stream_of(self, obj: YieldStrategy) -> str:
        return portfolio_stream(obj.user_id)

    def stream_data_of(self, obj: YieldStrategy) -> dict[str, str]:
        return {"strategy_id": str(obj.strategy_id)}


@admin.register(YieldPosition)
class YieldPositionAdmin(ReadModelAdmin):
    list_display = ("opened_at", "user_id", "protocol", "principal", "apy", "closed_at", "close_reason",
                    "history", "source_event")
    search_fields = ("=position_id", "=user_id", "=strategy_id")
    search_help_text = "A position, user or strategy id."
    ordering = ("-opened_at",)

    def stream_of(self, obj: YieldPosition) -> str:
        return portfolio_stream(obj.user_id)

    def stream_data_of(self, obj: YieldPosition) -> dict[str, str]:
        return {"strategy_id": str(obj.strategy_id)}
