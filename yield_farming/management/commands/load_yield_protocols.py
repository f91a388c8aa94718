"""``manage.py load_yield_protocols [PATH]``: list the protocols of a JSON file (default: the shipped sample)."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from yield_farming.feed import SAMPLE_PROTOCOLS, load_protocols


class Command(BaseCommand):
    help = "List yield protocols from a JSON file through the command bus; already listed ones are kept."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", nargs="?", default=str(SAMPLE_PROTOCOLS))

    def handle(self, *args: Any, **options: Any) -> None:
        report = load_protocols(options["path"])
        self.stdout.write(f"{report.listed} protocols listed, {report.already} already there")
