"""Operator commands from the admin: a Django form builds a Command, the command bus runs it.

The events it appends carry the operator as acting user (``actor_id``), the command is
idempotent by a command id fixed when the form is first shown (a double submit runs it once),
and a refusal comes back as a form error with its stable code, nothing written. Each run is
also noted in the admin's own history of the row (``LogEntry``).

Adding an operator command to a read model's admin takes a form and one line::

    class UpdateProtocolForm(OperatorCommandForm):
        title = "Update protocol"
        apy = forms.DecimalField(max_digits=38, decimal_places=18)

        @classmethod
        def initial_for(cls, obj: ProtocolRow) -> dict[str, Any]:
            return {"apy": obj.apy}

        def command(self) -> Command:
            return UpdateProtocol(protocol_id=self.obj.protocol_id, apy=self.cleaned_data["apy"])

    @admin.register(ProtocolRow)
    class ProtocolAdmin(OperatorCommandsAdmin, ReadModelAdmin):
        operator_commands = {"update": UpdateProtocolForm}   # /admin/<app>/<model>/<pk>/command/update/

Who may run it is the handler's business (its ``authorize=``, e.g. staff only); the admin adds
its own staff login and view permission on the row, and ``permission`` on the form when set.
A refusal whose context names a ``field`` of the form is shown on that field.
"""
from __future__ import annotations

from typing import Any, ClassVar
from uuid import uuid4

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from ..api.commands import actor_for
from ..bus import command_bus
from ..commands import Command
from ..errors import DomainError


class OperatorCommandForm(forms.Form):
    """A form for one command on one admin row: declare fields, ``title`` and :meth:`command`."""

    title: ClassVar[str] = ""
    #: A Django permission the operator needs besides staff status (None: the handler decides).
    permission: ClassVar[str | None] = None

    command_id = forms.UUIDField(widget=forms.HiddenInput)

    def __init__(self, *args: Any, obj: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.obj = obj

    @classmethod
    def initial_for(cls, obj: Any) -> dict[str, Any]:
        """The form's starting values for ``obj`` (default: none)."""
        return {}

    def command(self) -> Command:
        """The command to dispatch, from ``self.obj`` and ``self.cleaned_data``."""
        raise NotImplementedError

    def add_domain_error(self, error: DomainError) -> None:
        """Show a refusal on the field it names (``field`` in its context), else on the whole form."""
        field = error.context.get("field")
        self.add_error(field if field in self.fields else None, f"{error.detail} (code: {error.code})")


class OperatorCommandsAdmin(admin.ModelAdmin):
    """Adds ``operator_commands`` (slug → form class) to an admin: a page per command and row, and links to them."""

    operator_commands: ClassVar[dict[str, type[OperatorCommandForm]]] = {}
    change_form_template = "admin/ledgerline/change_form_with_commands.html"

    def get_urls(self) -> list[URLPattern]:
        name = f"{self.opts.app_label}_{self.opts.model_name}_command"
        # Ahead of the default ones: "<path:object_id>/" would swallow ".../command/<slug>/".
        return [path("<path:object_id>/command/<slug:slug>/", self.admin_site.admin_view(self.command_view), name=name),
                *super().get_urls()]

    def command_url(self, obj: Any, slug: str) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_command", args=[obj.pk, slug],
                       current_app=self.admin_site.name)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        links = self._links(obj) if obj else []
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "operator_commands": links})

    def _links(self, obj: Any) -> list[tuple[str, str]]:
        return [(self.command_url(obj, slug), form.title) for slug, form in self.operator_commands.items()]

    @admin.display(description="operator commands")
    def command_links(self, obj: Any) -> str:
        return format_html_join(" · ", '<a href="{}">{}</a>', self._links(obj))

    def command_view(self, request: HttpRequest, object_id: str, slug: str) -> HttpResponse:
        form_class = self.operator_commands.get(slug)
        obj = self.get_object(request, unquote(object_id))
        if form_class is None or obj is None:
            raise Http404("no such row or command")
        if not self.has_view_permission(request, obj) or (
                form_class.permission and not request.user.has_perm(form_class.permission)):
            raise PermissionDenied
        if request.method == "POST":
            form = form_class(request.POST, obj=obj)
            if form.is_valid() and self._dispatch(request, form, obj):
                return HttpResponseRedirect(reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change",
                                                    args=[obj.pk], current_app=self.admin_site.name))
        else:
            form = form_class(obj=obj, initial={**form_class.initial_for(obj), "command_id": uuid4()})
        context = {**self.admin_site.each_context(request), "title": f"{form_class.title}: {obj}", "opts": self.opts,
                   "original": obj, "form": form, "media": self.media + form.media,
                   "change_url": reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change",
                                         args=[obj.pk], current_app=self.admin_site.name)}
        return TemplateResponse(request, "admin/ledgerline/operator_command.html", context)

    def _dispatch(self, request: HttpRequest, form: OperatorCommandForm, obj: Any) -> bool:
        """Run the form's command as the operator; False (and a form error) when it is refused."""
        command = form.command()
        try:
            result = command_bus.dispatch(command, actor=actor_for(request.user),
                                          command_id=form.cleaned_data["command_id"])
        except DomainError as error:
            form.add_domain_error(error)
            return False
        summary = (f"{command.command_type}: {len(result.events)} event(s) on {result.stream_id}, "
                   f"position {result.position}" + (" (already done: replayed)" if result.replayed else ""))
        self.log_change(request, obj, summary)
        self.message_user(request, summary, messages.SUCCESS)
        return True
