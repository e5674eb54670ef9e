"""Forget what the API keeps only for a while: replies to idempotency keys after a day (as
Stripe's), the request log after the audit log's own retention (ops/retention.py)."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from api.models import ApiRequest, IdempotentReply

REPLY_HOURS = 24
LOG_DAYS = 180


def purge(*, reply_hours: int = REPLY_HOURS, log_days: int = LOG_DAYS) -> tuple[int, int]:
    """Delete the old rows; returns how many replies and log rows went (the found work)."""
    now = timezone.now()
    replies, _ = IdempotentReply.objects.filter(
        created_at__lt=now - timedelta(hours=reply_hours)
    ).delete()
    requests, _ = ApiRequest.objects.filter(created_at__lt=now - timedelta(days=log_days)).delete()
    return replies, requests


class Command(BaseCommand):
    help = "Delete idempotency replies older than a day and API request logs past retention."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--reply-hours", type=int, default=REPLY_HOURS)
        parser.add_argument("--log-days", type=int, default=LOG_DAYS)

    def handle(self, *args, **options) -> None:
        if options["reply_hours"] < 1 or options["log_days"] < 1:
            raise CommandError("--reply-hours and --log-days must be positive")
        replies, requests = purge(reply_hours=options["reply_hours"], log_days=options["log_days"])
        self.stdout.write(f"{replies} idempotency replies and {requests} API requests deleted")
