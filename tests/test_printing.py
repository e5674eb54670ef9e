"""Printing: layouts, print jobs, the spooler against a TCP printer on 127.0.0.1, reprints."""

from __future__ import annotations

import signal
import threading
from datetime import timedelta
from decimal import Decimal
from io import BytesIO, StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.utils import timezone, translation

from equipment.management.commands.run_printer_spooler import Command as SpoolerCommand
from equipment.models import (
    Connection,
    Equipment,
    JobKind,
    JobStatus,
    Kind,
    PaperWidth,
    PrinterSettings,
    PrintJob,
    Status,
)
from equipment.printing import (
    PrintingError,
    ReceiptData,
    ReceiptItem,
    print_test_page,
    queue_receipt,
    render_receipt,
    render_ticket,
)
from equipment.spooler import Spooler
from tenants.errors import DomainError
from tests.conftest import make_device, make_service, make_ticket, queued_ticket
from tests.fake_printer import FakePrinter, decode_text, qr_contents, refusing_port
from tickets.models import Priority, Ticket, TicketStatus
from tickets.printing import mark_paid, move_to_queue, reprint, status_url, ticket_print_data
from tickets.queue import cancel_ticket

T = TicketStatus


@pytest.fixture(autouse=True)
def _printers_here(printers_on_loopback):
    """Every printer of this file is on 127.0.0.1 (tests/conftest.py)."""


@pytest.fixture(autouse=True)
def _english():
    # Domain errors are matched by their English msgid; the paper is pt-BR regardless.
    with translation.override("en"):
        yield


def make_printer(tenant, *, port=9100, name="Impressora", **settings) -> Equipment:
    device = make_device(tenant, name, kind=Kind.PRINTER)
    # As the spooler's heartbeat leaves it: seen just now.
    Equipment.objects.filter(pk=device.pk).update(last_seen_at=timezone.now())
    device.refresh_from_db()
    settings.setdefault("connection", Connection.NETWORK)
    settings.setdefault("host", "127.0.0.1")
    PrinterSettings.objects.create(equipment=device, port=port, **settings)
    return device


def pay(ticket: Ticket) -> Ticket:
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
        mark_paid(ticket)
    return ticket


def quick_spooler(**kwargs) -> Spooler:
    spooler = Spooler(**kwargs)
    spooler.retry_delays = (0, 0)  # three attempts, no waiting
    return spooler


# --- from paid to printed -------------------------------------------------------------------


def test_a_paid_ticket_of_a_tenant_without_printer_goes_straight_to_the_queue(tenant, cryo):
    ticket = pay(make_ticket(tenant, [cryo]))

    assert ticket.status == T.IN_QUEUE
    assert ticket.print_attempts == 0
    assert not PrintJob.objects.exists()


def test_an_offline_printer_is_passed_over_and_the_ticket_is_digital(tenant, cryo):
    printer = make_printer(tenant)
    Equipment.objects.filter(pk=printer.pk).update(status=Status.OFFLINE)

    ticket = pay(make_ticket(tenant, [cryo]))

    assert ticket.status == T.IN_QUEUE
    assert not PrintJob.objects.exists()


def test_a_printer_no_spooler_has_seen_lately_is_passed_over(tenant, cryo):
    printer = make_printer(tenant)
    Equipment.objects.filter(pk=printer.pk).update(
        last_seen_at=timezone.now() - timedelta(minutes=5)
    )

    ticket = pay(make_ticket(tenant, [cryo]))

    assert ticket.status == T.IN_QUEUE


def test_a_network_printer_receives_the_number_the_services_and_the_status_qr(
    tenant, cryo, boots, fake_printer
):
    make_printer(tenant, port=fake_printer.port)
    ticket = pay(make_ticket(tenant, [cryo, boots], priority=Priority.PRIORITY_80))
    assert ticket.status == T.PRINTING
    assert ticket.print_attempts == 1

    assert Spooler().run_one() is True

    [paper] = fake_printer.wait_for(1)
    text = decode_text(paper)
    assert ticket.number in text
    assert "Crioterapia" in text
    assert "Bota de compressão" in text
    assert Priority.PRIORITY_80.label.upper() in text
    assert timezone.localtime(ticket.paid_at, tenant.tzinfo).strftime("%d/%m/%Y %H:%M") in text
    assert qr_contents(paper) == [f"http://127.0.0.1:8000/t/studio/senha/{ticket.token}/"]
    ticket.refresh_from_db()
    assert ticket.status == T.IN_QUEUE
    assert ticket.lines.filter(queued_at__isnull=True).count() == 0
    job = PrintJob.objects.get()
    assert (job.status, job.attempts, job.kind) == (JobStatus.PRINTED, 1, JobKind.TICKET)


def test_each_tenant_s_tickets_go_to_its_own_printer_and_a_spooler_serves_only_its_own(
    tenant, other_tenant, cryo
):
    other_cryo = make_service(other_tenant, "Crioterapia", "C")
    with FakePrinter() as ours, FakePrinter() as theirs:
        make_printer(tenant, port=ours.port)
        make_printer(other_tenant, port=theirs.port)
        mine, other = pay(make_ticket(tenant, [cryo])), pay(make_ticket(other_tenant, [other_cryo]))

        call_command(
            "run_printer_spooler", "--once", "--printer", "outro/impressora", stdout=StringIO()
        )
        assert Ticket.objects.get(pk=mine.pk).status == T.PRINTING
        assert Spooler().run_until_idle() == 1

        assert qr_contents(ours.wait_for(1)[0]) == [status_url(mine)]
        assert qr_contents(theirs.wait_for(1)[0]) == [status_url(other)]


def test_the_logo_is_printed_instead_of_the_name_when_asked(tenant, cryo, settings, tmp_path):
    from django.core.files.base import ContentFile
    from PIL import Image

    settings.MEDIA_ROOT = tmp_path
    image = BytesIO()
    Image.new("RGB", (800, 300), "black").save(image, "PNG")
    tenant.logo.save("logo.png", ContentFile(image.getvalue()))
    printer = make_printer(tenant, print_logo=True)
    ticket = make_ticket(tenant, [cryo])

    paper = render_ticket(ticket_print_data(ticket, printer.printer_settings), 32)

    assert b"\x1dv0" in paper  # a raster image…
    width = paper[paper.index(b"\x1dv0") + 4]  # …scaled to 58 mm paper (bytes of 8 dots)
    assert width == 32 * 12 // 8  # 384 dots: the whole 58 mm line, not merely within it
    assert "Studio Alfa" not in decode_text(paper)


def test_the_status_url_follows_the_public_base_url(tenant, cryo, settings):
    settings.PUBLIC_BASE_URL = "https://fila.example.com"
    ticket = make_ticket(tenant, [cryo])

    assert status_url(ticket) == f"https://fila.example.com/t/studio/senha/{ticket.token}/"


def test_a_ticket_printed_before_entering_the_queue_shows_the_place_it_will_take(
    tenant, cryo, boots
):
    make_device(tenant, "Criocâmara", [cryo])
    printer = make_printer(tenant)
    Equipment.objects.filter(pk=printer.pk).update(status=Status.OFFLINE)
    queued_ticket(tenant, [cryo])  # digital: the printer is offline
    Equipment.objects.filter(pk=printer.pk).update(status=Status.ONLINE)

    ticket = pay(make_ticket(tenant, [cryo, boots]))
    data = ticket_print_data(ticket, printer.printer_settings)

    assert [(s.name, s.position) for s in data.services] == [
        ("Crioterapia", 2),
        ("Bota de compressão", 1),
    ]
    assert data.services[0].wait_minutes == cryo.duration_minutes


def test_a_cancelled_ticket_s_job_is_skipped_without_printing(tenant, cryo, alice, fake_printer):
    make_printer(tenant, port=fake_printer.port)
    ticket = pay(make_ticket(tenant, [cryo]))
    cancel_ticket(tenant, ticket.pk, user=alice, reason="desistiu")

    Spooler().run_one()

    assert PrintJob.objects.get().status == JobStatus.CANCELLED
    assert fake_printer.prints == []


# --- failures, leases, concurrency ----------------------------------------------------------


def test_a_printer_that_refuses_connections_is_retried_then_the_ticket_is_a_print_error(
    tenant, cryo
):
    printer = make_printer(tenant, port=refusing_port())
    ticket = pay(make_ticket(tenant, [cryo]))
    spooler = quick_spooler()

    assert spooler.run_one() and spooler.run_one()
    job = PrintJob.objects.get()
    assert (job.status, job.attempts) == (JobStatus.PENDING, 2)
    assert "refused" in job.last_error.lower()
    ticket.refresh_from_db()
    assert ticket.status == T.PRINTING

    assert spooler.run_one()
    job.refresh_from_db()
    ticket.refresh_from_db()
    printer.refresh_from_db()
    assert (job.status, job.attempts) == (JobStatus.FAILED, 3)
    assert ticket.status == T.PRINT_ERROR
    assert "refused" in ticket.history.first().history_change_reason.lower()
    assert printer.status == Status.OFFLINE
    assert spooler.run_one() is False
    assert spooler.counts["failed"] == 1 and spooler.counts["retried"] == 2


def test_a_failed_attempt_waits_its_backoff_before_the_next(tenant, cryo):
    make_printer(tenant, port=refusing_port())
    pay(make_ticket(tenant, [cryo]))
    spooler = Spooler()

    assert spooler.run_one() is True
    job = PrintJob.objects.get()
    assert job.next_attempt_at > timezone.now() + timedelta(seconds=1)
    assert spooler.run_one() is False


def test_a_job_whose_spooler_was_killed_is_printed_by_the_next_run(tenant, cryo, fake_printer):
    make_printer(tenant, port=fake_printer.port)
    ticket = pay(make_ticket(tenant, [cryo]))
    killed = Spooler(name="killed")
    job = killed.claim()  # …and the process dies here, before printing

    survivor = Spooler(name="survivor")
    assert survivor.run_one() is False  # the lease still holds
    PrintJob.objects.filter(pk=job.pk).update(claimed_at=timezone.now() - timedelta(minutes=2))
    assert survivor.run_one() is True

    assert len(fake_printer.wait_for(1)) == 1
    job.refresh_from_db()
    ticket.refresh_from_db()
    assert (job.status, job.claimed_by, job.attempts) == (JobStatus.PRINTED, "survivor", 2)
    assert ticket.status == T.IN_QUEUE
    # Had the first spooler only stalled, it would print once more, but settles nothing.
    assert killed.process(job) == "lost"
    assert ticket.history.filter(status=T.IN_QUEUE).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_spoolers_on_the_same_queue_never_print_a_job_twice(tenant, cryo, fake_printer):
    make_printer(tenant, port=fake_printer.port)
    tickets = [pay(make_ticket(tenant, [cryo])) for _ in range(12)]
    spoolers = [Spooler(name="one"), Spooler(name="two")]

    start = threading.Barrier(2)

    def run(spooler):
        try:
            start.wait(5)
            spooler.run_until_idle()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(s,)) for s in spoolers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    papers = fake_printer.wait_for(12)
    printed = [t.number for t in tickets for paper in papers if t.number in decode_text(paper)]
    assert sorted(printed) == sorted(t.number for t in tickets)
    assert len(papers) == 12
    assert set(Ticket.objects.values_list("status", flat=True)) == {T.IN_QUEUE}
    assert spoolers[0].counts["printed"] + spoolers[1].counts["printed"] == 12
    assert all(s.counts["printed"] for s in spoolers), "both spoolers should have worked"


# --- heartbeat, command ---------------------------------------------------------------------


def test_the_heartbeat_brings_a_reachable_printer_online_and_marks_a_dead_one_offline(
    tenant, fake_printer
):
    alive = make_printer(tenant, port=fake_printer.port, name="Viva")
    dead = make_printer(tenant, port=refusing_port(), name="Morta")
    Equipment.objects.filter(pk=alive.pk).update(status=Status.OFFLINE)
    seen_before = dead.last_seen_at

    assert Spooler().heartbeat() == 2

    alive.refresh_from_db()
    dead.refresh_from_db()
    assert alive.status == Status.ONLINE and alive.last_seen_at > seen_before
    assert dead.status == Status.OFFLINE and dead.last_seen_at == seen_before
    assert fake_printer.prints == []  # probing prints nothing


def test_a_printer_in_maintenance_is_left_alone(tenant, cryo, fake_printer):
    printer = make_printer(tenant, port=fake_printer.port)
    job = print_test_page(printer)
    Equipment.objects.filter(pk=printer.pk).update(status=Status.MAINTENANCE)

    spooler = Spooler()
    spooler.heartbeat()
    assert spooler.run_one() is False
    printer.refresh_from_db()
    assert printer.status == Status.MAINTENANCE
    assert PrintJob.objects.get(pk=job.pk).status == JobStatus.PENDING


def test_the_command_prints_what_is_due_once_and_says_so(tenant, cryo, fake_printer):
    make_printer(tenant, port=fake_printer.port)
    ticket = pay(make_ticket(tenant, [cryo]))
    out = StringIO()

    call_command("run_printer_spooler", "--once", "--printer", "studio/impressora", stdout=out)

    assert f"ticket {ticket.number} printed" in out.getvalue()
    assert "1 printed, 0 retries, 0 failed" in out.getvalue()
    assert len(fake_printer.wait_for(1)) == 1


# Out of a test transaction, as the command runs: its loop's close_old_connections() drops a
# connection left inside a transaction.
@pytest.mark.django_db(transaction=True)
def test_sigterm_stops_the_spooler_after_the_job_in_hand(tenant, cryo, fake_printer):
    make_printer(tenant, port=fake_printer.port)
    first, second = (pay(make_ticket(tenant, [cryo])) for _ in range(2))
    command = SpoolerCommand(stdout=StringIO())
    command.stop = threading.Event()
    spooler = Spooler(say=command.say)
    printing = spooler.process

    def signalled_mid_job(job):
        command.on_signal(signal.SIGTERM, None)  # arrives while the first job prints
        return printing(job)

    spooler.process = signalled_mid_job
    command.run_forever(spooler, interval=0.01, heartbeat_every=30)

    statuses = dict(Ticket.objects.values_list("number", "status"))
    assert statuses == {first.number: T.IN_QUEUE, second.number: T.PRINTING}
    assert "stopping after the job in hand" in command.stdout.getvalue()


def test_the_command_refuses_an_unknown_printer(db):
    with pytest.raises(CommandError, match="no printer 'studio/nada'"):
        call_command("run_printer_spooler", "--once", "--printer", "studio/nada")


def test_a_file_printer_appends_every_print_in_its_studio_s_folder(
    tenant, cryo, tmp_path, settings
):
    settings.PRINTER_FILE_ROOT = tmp_path
    path = tmp_path / "studio" / "out" / "printer.bin"
    make_printer(tenant, connection=Connection.FILE, device="out/printer.bin")
    first, second = (pay(make_ticket(tenant, [cryo])) for _ in range(2))

    assert Spooler().run_until_idle() == 2

    text = decode_text(path.read_bytes())
    assert first.number in text and second.number in text


# --- reprint and move to the queue ----------------------------------------------------------


def print_error_ticket(tenant, services) -> Ticket:
    printer = make_printer(tenant, port=refusing_port())
    ticket = pay(make_ticket(tenant, services))
    spooler = quick_spooler()
    spooler.run_until_idle()
    ticket.refresh_from_db()
    assert ticket.status == T.PRINT_ERROR
    printer.refresh_from_db()
    return ticket


def test_reprint_after_a_print_error_prints_on_the_repaired_printer(
    tenant, cryo, alice, fake_printer
):
    ticket = print_error_ticket(tenant, [cryo])
    PrinterSettings.objects.update(port=fake_printer.port)  # paper back, cable back

    job = reprint(tenant, ticket.pk, alice)

    ticket.refresh_from_db()
    assert ticket.status == T.PRINTING
    assert ticket.print_attempts == 2
    last = ticket.history.first()
    assert (last.history_user, last.history_change_reason, last.print_attempts) == (
        alice,
        "reprint",
        2,
    )
    assert job.created_by == alice
    assert Spooler().run_one()
    ticket.refresh_from_db()
    assert ticket.status == T.IN_QUEUE
    assert Equipment.objects.get(kind=Kind.PRINTER).status == Status.ONLINE


def test_reprint_of_a_queued_ticket_keeps_it_in_the_queue(tenant, cryo, alice, fake_printer):
    make_printer(tenant, port=fake_printer.port)
    ticket = pay(make_ticket(tenant, [cryo]))
    Spooler().run_one()

    reprint(tenant, ticket.pk, alice)
    with pytest.raises(PrintingError, match="already being printed"):
        reprint(tenant, ticket.pk, alice)
    Spooler().run_one()

    ticket.refresh_from_db()
    assert (ticket.status, ticket.print_attempts) == (T.IN_QUEUE, 2)
    assert len(fake_printer.wait_for(2)) == 2


def test_reprint_refuses_a_ticket_of_another_tenant_and_one_without_printer(
    tenant, other_tenant, cryo, charlie
):
    ticket = queued_ticket(tenant, [cryo])

    with pytest.raises(DomainError, match="not found"):
        reprint(other_tenant, ticket.pk, charlie)
    with pytest.raises(PrintingError, match="no ticket printer"):
        reprint(tenant, ticket.pk, None)


def test_move_to_queue_takes_a_print_error_ticket_into_the_queue(tenant, cryo, alice):
    ticket = print_error_ticket(tenant, [cryo])

    move_to_queue(tenant, ticket.pk, alice)

    ticket.refresh_from_db()
    assert ticket.status == T.IN_QUEUE
    assert ticket.history.first().history_user == alice
    with pytest.raises(PrintingError, match="Only a ticket with a print error"):
        move_to_queue(tenant, ticket.pk, alice)


# --- receipts and test pages ----------------------------------------------------------------


def receipt() -> ReceiptData:
    return ReceiptData(
        tenant_name="Studio Alfa",
        code="R-000123",
        issued_at=timezone.now(),
        items=[
            ReceiptItem("Bota de compressão", 1, Decimal("80.00")),
            ReceiptItem("Água de coco", 2, Decimal("8.00")),
        ],
        total=Decimal("1096.00"),
        method="PIX",
        ticket_number="B001",
    )


def test_a_receipt_fits_58_mm_paper_with_accents_and_brl_amounts():
    text = decode_text(render_receipt(receipt(), 32, footer="Obrigado — até logo!"))

    assert "Bota de compressão" in text
    assert "2 x Água de coco" in text
    assert "R$ 16,00" in text
    assert "R$ 1.096,00" in text
    assert "R-000123" in text and "B001" in text
    assert "Obrigado - até logo!" in text
    assert max(len(line) for line in text.splitlines()) <= 32


def test_a_receipt_job_is_printed_from_its_plain_data(tenant, fake_printer):
    make_printer(tenant, port=fake_printer.port, prints_receipts=True)

    job = queue_receipt(tenant, receipt())
    Spooler().run_one()

    assert job.kind == JobKind.RECEIPT
    assert "Bota de compressão" in decode_text(fake_printer.wait_for(1)[0])


def test_without_a_receipt_printer_no_receipt_job_is_made(tenant):
    make_printer(tenant)  # prints tickets only

    assert queue_receipt(tenant, receipt()) is None


def test_a_test_page_shows_the_paper_width_and_the_accents(tenant, bob, fake_printer):
    printer = make_printer(tenant, port=fake_printer.port, paper_width=PaperWidth.MM58)

    job = print_test_page(printer, user=bob)
    Spooler().run_one()

    text = decode_text(fake_printer.wait_for(1)[0])
    assert "Bota de compressão" in text and "ÁÉÍÓÚ" in text
    assert "01234567890123456789012345678901" in text
    assert job.created_by == bob


# --- admin --------------------------------------------------------------------------------


def test_a_manager_queues_a_test_page_from_admin_and_an_outsider_sees_no_printer(
    client, tenant, bob, charlie
):
    printer = make_printer(tenant)
    settings_id = printer.printer_settings.pk
    client.force_login(bob)

    response = client.post(
        "/admin/equipment/printersettings/",
        {"action": "test_page", "_selected_action": [settings_id]},
    )

    assert response.status_code == 302
    job = PrintJob.objects.get()
    assert (job.kind, job.printer, job.created_by) == (JobKind.TEST_PAGE, printer, bob)
    assert client.get(f"/admin/equipment/printjob/{job.pk}/change/").status_code == 200
    client.force_login(charlie)
    assert client.get(f"/admin/equipment/printersettings/{settings_id}/change/").status_code == 404
    assert client.get(f"/admin/equipment/printjob/{job.pk}/change/").status_code == 404
    client.post(
        "/admin/equipment/printersettings/",
        {"action": "test_page", "_selected_action": [settings_id]},
    )
    assert PrintJob.objects.count() == 1


def test_print_again_from_admin_reprints_a_failed_ticket(client, tenant, cryo, bob):
    ticket = print_error_ticket(tenant, [cryo])
    client.force_login(bob)

    client.post(
        "/admin/equipment/printjob/",
        {"action": "print_again", "_selected_action": [PrintJob.objects.get().pk]},
    )

    ticket.refresh_from_db()
    assert (ticket.status, ticket.print_attempts) == (T.PRINTING, 2)
    assert ticket.history.first().history_user == bob


def raster_of(paper: bytes) -> tuple[int, int, bytes]:
    """The first GS v 0 raster image in `paper`: width in dots, height, and its bitmap
    (ESC/POS: GS v 0 m xL xH yL yH d1…dk, k = (xL + xH·256) × (yL + yH·256), 1 = black dot)."""
    start = paper.index(b"\x1dv0")
    width_bytes = paper[start + 4] + paper[start + 5] * 256
    height = paper[start + 6] + paper[start + 7] * 256
    bitmap = paper[start + 8 : start + 8 + width_bytes * height]
    assert len(bitmap) == width_bytes * height
    return width_bytes * 8, height, bitmap


def black_share(bitmap: bytes, width: int, first_dot: int, last_dot: int) -> float:
    """The share of black dots between two columns (in bytes of 8 dots) over every row."""
    row = width // 8
    chunk = [
        bitmap[r * row + first_dot // 8 : r * row + last_dot // 8]
        for r in range(len(bitmap) // row)
    ]
    dots = sum(bin(byte).count("1") for part in chunk for byte in part)
    return dots / (len(chunk) * (last_dot - first_dot))


def test_the_logo_prints_as_a_dithered_raster_the_width_of_the_paper(
    tenant, cryo, settings, tmp_path
):
    from django.core.files.base import ContentFile
    from PIL import Image, ImageDraw

    settings.MEDIA_ROOT = tmp_path
    # Black, mid-grey and transparent thirds: black dots, about half the dots, no dots.
    image = Image.new("RGBA", (960, 240), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 319, 239), fill=(0, 0, 0, 255))
    draw.rectangle((320, 0, 639, 239), fill=(128, 128, 128, 255))
    image_bytes = BytesIO()
    image.save(image_bytes, "PNG")
    tenant.logo.save("logo.png", ContentFile(image_bytes.getvalue()))
    printer = make_printer(tenant, print_logo=True)

    paper = render_ticket(
        ticket_print_data(make_ticket(tenant, [cryo]), printer.printer_settings), 48
    )

    width, height, bitmap = raster_of(paper)
    assert width == 48 * 12  # 576 dots: the whole 80 mm line
    assert height == 144  # the logo's proportions kept
    assert black_share(bitmap, width, 0, 192) > 0.98
    assert 0.3 < black_share(bitmap, width, 200, 376) < 0.7  # grey is dithered, not thresholded
    assert black_share(bitmap, width, 392, 576) < 0.02  # transparency prints as paper
