"""Find states the rules forbid (after a crash or a hand edit); repair them with --fix."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from tickets.maintenance import inspect


class Command(BaseCommand):
    help = (
        "Report tickets closed with open lines, devices held by such lines, tickets whose status "
        "disagrees with their lines, services called or in service past the tenant's limit, "
        "and tickets stuck in printing. --fix repairs them."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--fix", action="store_true", help="repair what is found")

    def handle(self, *args, fix: bool = False, **options) -> None:
        result = inspect(fix=fix)
        for finding in result.findings:
            self.stdout.write(f"  {finding.kind:30} {finding.ticket:8} {finding.detail}")
        summary = f"cleanup_inconsistent_states: {len(result.findings)} found"
        if fix:
            summary += f", {result.fixed} repaired"
        elif result.findings:
            summary += " (run with --fix to repair)"
        self.stdout.write(summary)
