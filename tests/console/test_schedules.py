"""Schedules: Celery beat's periodic tasks (settings' entries included) are listed and editable in the admin."""
from __future__ import annotations

import pytest
from django.urls import reverse
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from config.celery import app as celery_app

pytestmark = pytest.mark.django_db(transaction=True)  # the scheduler closes connections


def test_beat_entries_are_editable_periodic_tasks(admin_client_olivia) -> None:
    DatabaseScheduler(app=celery_app)  # beat's start-up: the settings' entries become rows
    task = PeriodicTask.objects.get(name="reconcile")
    assert task.task == "cqrs_core.reconcile"

    page = admin_client_olivia.get(reverse("admin:django_celery_beat_periodictask_changelist"))
    assert page.status_code == 200 and "reconcile" in page.content.decode()
    change = reverse("admin:django_celery_beat_periodictask_change", args=[task.pk])
    assert admin_client_olivia.get(change).status_code == 200
    response = admin_client_olivia.post(reverse("admin:django_celery_beat_periodictask_changelist"),
                                        {"action": "disable_tasks", "_selected_action": [task.pk]})
    assert response.status_code == 302
    task.refresh_from_db()
    assert not task.enabled
