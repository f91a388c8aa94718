"""The event store in the admin is read-only, even for a superuser; the index links the dashboard."""
from __future__ import annotations

import pytest
from django.urls import reverse

from cqrs_core.models import StoredEvent

from .conftest import history

pytestmark = pytest.mark.django_db


def test_event_store_refuses_add_change_and_delete_for_a_superuser(admin_client_olivia) -> None:
    history(accounts=1, deposits=1)
    event = StoredEvent.objects.first()
    before = StoredEvent.objects.values_list("position", "data").order_by("position")[::1]

    assert admin_client_olivia.get(reverse("admin:cqrs_core_storedevent_add")).status_code == 403
    change = reverse("admin:cqrs_core_storedevent_change", args=[event.pk])
    assert admin_client_olivia.get(change).status_code == 200  # viewing is allowed
    assert admin_client_olivia.post(change, {"stream_id": "forged", "data": "{}"}).status_code == 403
    assert admin_client_olivia.post(reverse("admin:cqrs_core_storedevent_delete", args=[event.pk]),
                                    {"post": "yes"}).status_code == 403

    changelist = admin_client_olivia.get(reverse("admin:cqrs_core_storedevent_changelist"))
    assert changelist.status_code == 200
    assert b"delete_selected" not in changelist.content
    assert StoredEvent.objects.values_list("position", "data").order_by("position")[::1] == before


def test_admin_index_links_the_dashboard(admin_client_olivia) -> None:
    page = admin_client_olivia.get(reverse("admin:index"))
    assert page.status_code == 200
    assert reverse("admin:ledgerline-dashboard").encode() in page.content
    assert b"cqrs_core" in page.content  # the app list is still there
    assert b'id="ll-stream-form"' in page.content  # a stream's events, one box away
