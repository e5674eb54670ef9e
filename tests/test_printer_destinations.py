"""Printers can only print: a studio points a printer only where the platform allows.

These tests run with the platform's default lists (no loopback, printer ports only), except
where a test says it allows 127.0.0.1 to have a printer that listens. bob manages the studio
(a hostile tenant admin here); root is the platform's superuser, who may configure anything.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from equipment import destinations
from equipment.models import Connection, Equipment, JobStatus, Kind, PrinterSettings, PrintJob
from equipment.printing import print_test_page, probe
from equipment.spooler import Spooler
from tests.conftest import RebindingResolver, make_device, make_ticket
from tests.fake_printer import FakePrinter, decode_text
from tests.test_printing import make_printer, pay, quick_spooler
from tickets.models import TicketStatus

ADD = "/admin/equipment/printersettings/add/"
DEFAULT_FILE_ROOT = Path(django_settings.PRINTER_FILE_ROOT)  # before any test changes it


@pytest.fixture(autouse=True)
def _printer_root(settings, tmp_path):
    """Printer files under this test's own folder; the other lists are the defaults."""
    settings.PRINTER_FILE_ROOT = tmp_path / "printers"


@pytest.fixture
def root(django_user_model):
    return django_user_model.objects.create_superuser("root", password="pw-root")


@pytest.fixture
def device(tenant):
    return make_device(tenant, "Impressora", kind=Kind.PRINTER)


def form(printer: Equipment, **fields) -> dict:
    data = {
        "equipment": printer.pk,
        "prints_tickets": "on",
        "connection": Connection.NETWORK,
        "host": "",
        "port": 9100,
        "device": "",
        "baudrate": 9600,
        "paper_width": 80,
        "header_text": "",
        "footer_text": "",
    }
    return data | fields


def net(host, port):
    return {"connection": Connection.NETWORK, "host": host, "port": port}


def path(connection, value):
    return {"connection": connection, "device": value}


HOSTILE = {
    "Redis on loopback": (net("127.0.0.1", 6379), "A porta 6379 não é permitida"),
    "loopback on a printer port": (net("127.0.0.1", 9100), "não está numa rede"),
    "PostgreSQL on the LAN": (net("10.0.0.5", 5432), "A porta 5432 não é permitida"),
    "the cloud's metadata service": (net("169.254.169.254", 80), "A porta 80"),
    "link-local on a printer port": (net("169.254.169.254", 9100), "não está numa rede"),
    "a name for loopback": (net("localhost", 9100), "não está numa rede"),
    "loopback as IPv4-mapped IPv6": (net("::ffff:127.0.0.1", 9100), "não está numa rede"),
    "loopback as a decimal number": (net("2130706433", 9100), "não está numa rede"),
    "a file outside the folder": (path(Connection.FILE, "/etc/passwd"), "pasta de impressoras"),
    "a .. escape": (path(Connection.FILE, "../outro/printer.bin"), "sem “..”"),
    "a disk": (path(Connection.FILE, "/dev/sda"), "pasta de impressoras"),
    "the server's console": (path(Connection.SERIAL, "/dev/ttyS0"), "dispositivo serial"),
    "a CUPS option": (path(Connection.CUPS, "-oraw;id"), "fila CUPS"),
}


@pytest.mark.parametrize("fields, message", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_studio_manager_cannot_point_a_printer_at_the_platform(
    client, bob, device, fields, message
):
    client.force_login(bob)

    response = client.post(ADD, form(device, **fields))

    assert response.status_code == 200  # the form again, with the reason in pt-BR
    assert message in response.content.decode()
    assert not PrinterSettings.objects.exists()


@pytest.mark.parametrize("fields, message", HOSTILE.values(), ids=HOSTILE.keys())
def test_the_platform_s_superuser_may_point_a_printer_anywhere(
    client, root, device, fields, message
):
    client.force_login(root)

    response = client.post(ADD, form(device, **fields))

    assert response.status_code == 302
    assert PrinterSettings.objects.get().set_by_platform is True


def test_a_symlink_in_the_studio_s_folder_cannot_lead_out_of_it(client, bob, device, tmp_path):
    folder = tmp_path / "printers" / "studio"
    folder.mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (folder / "link").symlink_to(tmp_path / "outside")
    (folder / "notes.bin").symlink_to(tmp_path / "outside" / "notes.txt")
    other = tmp_path / "printers" / "outro" / "printer.bin"  # another studio's printer
    client.force_login(bob)

    for value in ("link/printer.bin", "notes.bin", str(other)):
        response = client.post(ADD, form(device, **path(Connection.FILE, value)))
        assert "pasta de impressoras" in response.content.decode(), value
    assert not PrinterSettings.objects.exists()


def test_the_platform_s_own_service_ports_are_refused_even_when_the_list_allows_them(
    client, bob, device, settings
):
    settings.REDIS_URL = "redis://10.0.0.7:6390/0"
    settings.PRINTER_ALLOWED_PORTS = [9100, 6390]
    client.force_login(bob)

    response = client.post(ADD, form(device, **net("10.0.0.9", 6390)))

    assert "A porta 6390 não é permitida para impressoras; use 9100." in response.content.decode()


ALLOWED = {
    "a LAN printer": net("192.168.0.50", 9100),
    "a file in the studio's folder": path(Connection.FILE, "senhas/totem.bin"),
    "a USB printer's device file": path(Connection.FILE, "/dev/usb/lp0"),
    "a USB-serial printer": path(Connection.SERIAL, "/dev/ttyUSB0"),
    "a CUPS queue": path(Connection.CUPS, "recepcao_1"),
}


@pytest.mark.parametrize("fields", ALLOWED.values(), ids=ALLOWED.keys())
def test_a_studio_manager_saves_what_the_platform_allows(client, bob, device, fields):
    client.force_login(bob)

    response = client.post(ADD, form(device, **fields))

    assert response.status_code == 302
    assert PrinterSettings.objects.get().set_by_platform is False


def test_a_destination_the_platform_set_stays_while_the_studio_edits_texts_not_the_connection(
    client, root, bob, device
):
    with FakePrinter() as printer:
        client.force_login(root)
        client.post(ADD, form(device, **net("127.0.0.1", printer.port)))
        settings_row = PrinterSettings.objects.get()
        change = f"/admin/equipment/printersettings/{settings_row.pk}/change/"
        client.force_login(bob)

        same = net("127.0.0.1", printer.port)
        kept = client.post(change, form(device, **same, footer_text="Volte sempre"))
        moved = client.post(change, form(device, **net("127.0.0.1", 6379)))

        assert kept.status_code == 302 and moved.status_code == 200
        settings_row.refresh_from_db()
        assert (settings_row.footer_text, settings_row.port) == ("Volte sempre", printer.port)
        assert settings_row.set_by_platform is True
        job = print_test_page(device, user=bob)
        Spooler().run_one()
        assert "Volte sempre" in decode_text(printer.wait_for(1)[0])
    assert PrintJob.objects.get(pk=job.pk).status == JobStatus.PRINTED


# --- again when connecting --------------------------------------------------------------------


def test_a_printer_the_platform_no_longer_allows_fails_its_job_and_gets_no_byte(
    tenant, cryo, settings, printers_on_loopback
):
    with FakePrinter() as printer:
        make_printer(tenant, port=printer.port)  # allowed when it was saved
        settings.PRINTER_ALLOWED_NETWORKS = ["192.168.0.0/16"]  # the platform narrowed it
        ticket = pay(make_ticket(tenant, [cryo]))

        quick_spooler().run_until_idle()
        Spooler().heartbeat()

        assert printer.connections == 0  # neither the jobs nor the heartbeat connected
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.PRINT_ERROR
    assert "não está numa rede" in PrintJob.objects.get().last_error
    assert Equipment.objects.get(kind=Kind.PRINTER).status == "offline"


def test_a_name_that_resolves_to_loopback_after_it_was_saved_gets_no_byte(
    client, bob, device, settings, monkeypatch
):
    with FakePrinter() as printer:
        settings.PRINTER_ALLOWED_PORTS = [printer.port]
        name = RebindingResolver(monkeypatch, "impressora.studio.lan", "192.168.0.50", "127.0.0.1")
        client.force_login(bob)
        saved = client.post(ADD, form(device, **net("impressora.studio.lan", printer.port)))
        assert saved.status_code == 302  # 192.168.0.50 then

        print_test_page(device, user=bob)
        quick_spooler().run_until_idle()

        assert name.calls == 4  # saved, then each of the three attempts
        assert printer.connections == 0
    assert PrintJob.objects.get().status == JobStatus.FAILED


def test_a_printer_is_reached_at_the_address_that_was_checked(
    tenant, cryo, printers_on_loopback, monkeypatch
):
    with FakePrinter() as printer:  # on 127.0.0.1; a second lookup would answer 127.0.0.2
        name = RebindingResolver(monkeypatch, "impressora.studio.lan", "127.0.0.1", "127.0.0.2")
        make_printer(tenant, port=printer.port, host="impressora.studio.lan")
        pay(make_ticket(tenant, [cryo]))

        assert Spooler().run_one()

        assert len(printer.wait_for(1)) == 1 and name.calls == 1


def test_the_test_page_action_refuses_a_printer_the_platform_does_not_allow(client, tenant, bob):
    printer = make_printer(tenant, port=6379)  # 127.0.0.1:6379, stored before this rule
    client.force_login(bob)

    response = client.post(
        "/admin/equipment/printersettings/",
        {"action": "test_page", "_selected_action": [printer.printer_settings.pk]},
        follow=True,
    )

    assert "A porta 6379 não é permitida" in response.content.decode()
    assert not PrintJob.objects.exists()
    assert "A porta 6379" in probe(printer.printer_settings)  # the heartbeat's check


def test_a_symlink_put_in_the_folder_after_the_check_is_not_followed(tenant, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"")
    printer = make_printer(tenant, connection=Connection.FILE, device="totem.bin")
    target = destinations.check(printer.printer_settings)
    target.path.parent.mkdir(parents=True)
    target.path.symlink_to(outside)  # between the check and the open

    with pytest.raises(OSError):
        target.open()

    assert outside.read_bytes() == b""
    print_test_page(printer)
    quick_spooler().run_until_idle()  # checked again: the real path is now outside
    assert outside.read_bytes() == b""
    assert "pasta de impressoras" in PrintJob.objects.get().last_error


def test_the_demo_s_file_printer_is_inside_the_default_folder(db, settings):
    from django.core.management import call_command

    settings.PRINTER_FILE_ROOT = DEFAULT_FILE_ROOT
    call_command("seed_demo", stdout=io.StringIO())
    printer = PrinterSettings.objects.get(equipment__tenant__slug="demo")

    target = destinations.check(printer)  # as the spooler will: a tenant's printer

    assert printer.set_by_platform is False
    assert target.path == DEFAULT_FILE_ROOT / "demo" / "printer-demo.bin"


def test_a_platform_cannot_start_with_loopback_among_the_printer_networks():
    env = {**os.environ, "PRINTER_ALLOWED_NETWORKS": "192.168.0.0/16,127.0.0.0/8"}
    done = subprocess.run(
        [sys.executable, "-c", "import config.settings"],
        cwd=django_settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert "127.0.0.0/8 includes 127.0.0.0/8, never a printer's" in done.stderr


# --- the bytes: no tenant text forms a line of another protocol -------------------------------


def test_a_tenant_name_made_of_protocol_lines_prints_as_text_on_its_own_line(tenant, fake_printer):
    tenant.name = "Studio\r\nFLUSHALL\r\n\x1dVA\x01\x85\u2028SAVE\x1b@"
    tenant.save()
    printer = make_printer(tenant, port=fake_printer.port)

    print_test_page(printer)
    Spooler().run_one()

    [paper] = fake_printer.wait_for(1)
    assert b"\r" not in paper
    assert paper.count(b"\x1dV") == 1  # the layout's own cut, at the end
    assert paper.count(b"\x1b@") == 1  # the layout's own initialise, at the start
    heading = decode_text(paper).split("\n")[0]
    assert " ".join(heading.split()) == "Studio FLUSHALL VA SAVE@"  # one line, spaces between


def test_no_line_of_the_bytes_starts_with_tenant_text_even_where_it_wraps(tenant, fake_printer):
    tenant.name = "Studio " + "A" * 40 + " FLUSHALL"  # 48 columns: FLUSHALL wraps
    tenant.save()
    printer = make_printer(tenant, port=fake_printer.port)

    print_test_page(printer)
    Spooler().run_one()

    [paper] = fake_printer.wait_for(1)
    [line] = [line for line in paper.split(b"\n") if b"FLUSHALL" in line]
    assert line.startswith(b"\x1b") and line.endswith(b"FLUSHALL")
