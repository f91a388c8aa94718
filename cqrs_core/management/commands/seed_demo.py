"""``manage.py seed_demo``: an admin login, its API token and the contexts' demo data.

Idempotent: running it again keeps the existing ``admin`` user and its password (pass
``--reset-password`` to generate a new one), reuses its token and re-runs the demo loaders,
which must themselves be idempotent. Nothing secret is stored in the repository: the password
is generated here and printed once.
"""
from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils.module_loading import import_string
from rest_framework.authtoken.models import Token

ADMIN_USERNAME = "admin"


class Command(BaseCommand):
    help = "Create the demo admin user and API token, then run settings.LEDGERLINE_DEMO_LOADERS."

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset-password",
            action="store_true",
            help="Generate and print a new password for an existing admin user.",
        )

    def handle(self, *args, reset_password: bool = False, **options):
        with transaction.atomic():
            user, password = self._ensure_admin(reset_password)
            token, _ = Token.objects.get_or_create(user=user)
        self._print_login(user.get_username(), password, token.key)
        self._run_loaders()

    def _ensure_admin(self, reset_password: bool):
        """Return (user, new password or None)."""
        User = get_user_model()
        user = User.objects.filter(**{User.USERNAME_FIELD: ADMIN_USERNAME}).first()
        if user is None:
            password = secrets.token_urlsafe(12)
            user = User.objects.create_superuser(ADMIN_USERNAME, email="", password=password)
            return user, password
        if reset_password:
            password = secrets.token_urlsafe(12)
            user.set_password(password)
            user.save(update_fields=["password"])
            return user, password
        return user, None

    def _print_login(self, username: str, password: str | None, token: str) -> None:
        out = self.stdout
        out.write(f"Admin user:     {username}")
        if password:
            out.write(f"Admin password: {password}  (shown once; keep it)")
        else:
            out.write("Admin password: unchanged (run `manage.py seed_demo --reset-password` for a new one)")
        out.write(f"API token:      {token}")
        out.write(f'                use it as: -H "Authorization: Token {token}"')

    def _run_loaders(self) -> None:
        loaders = getattr(settings, "LEDGERLINE_DEMO_LOADERS", [])
        if not loaders:
            self.stdout.write("Demo data:      no demo loaders registered yet")
            return
        for dotted_path in loaders:
            self.stdout.write(f"Demo data:      running {dotted_path}")
            import_string(dotted_path)(self.stdout)
        self.stdout.write(f"Demo data:      {len(loaders)} loader(s) done")
