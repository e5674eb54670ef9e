"""Where a printer's bytes may go: the platform's allow-lists for what a tenant configures.

A printer's connection is a tenant's setting that makes the spooler write to a network
address or a path on the platform's machine. Unless a platform superuser set it
(`PrinterSettings.set_by_platform`), it must be:

- network: an address on PRINTER_ALLOWED_NETWORKS, on a port of PRINTER_ALLOWED_PORTS and
  never one of the platform's own services (DATABASE_URL, REDIS_URL), every address the name
  resolves to included (tenants/netguard.py);
- file: a file inside the tenant's folder, PRINTER_FILE_ROOT/<slug>/ (a relative path is taken
  inside it), with no ".." and no symlink out — or a device file matching
  PRINTER_DEVICE_FILES; serial: such a device file;
- CUPS: a queue name of a safe charset (it goes on `lp`'s command line).

`check` runs when the settings are saved (the admin form) and again before every connection
(`send`, `probe`): a name can resolve elsewhere by then, and a symlink can appear. What it
returns is what the transport then uses — the addresses checked, the real path checked — so
nothing is resolved twice.
"""

from __future__ import annotations

import fnmatch
import os
import re
import socket
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext as _

from equipment.models import Connection, PrinterSettings
from tenants import netguard
from tenants.models import Tenant

# The fields that say where the bytes go: a change to any of them by someone other than a
# platform superuser is checked against the allow-lists (admin_printing.PrinterSettingsForm).
DESTINATION_FIELDS = ("connection", "host", "port", "device", "baudrate")
# CUPS allows more, but this is what `lp -d` gets; no leading "-" (an option to lp).
CUPS_QUEUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,126}")


class DestinationRefused(Exception):
    """A destination the platform does not allow, with the form field it belongs to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Target:
    """A checked destination: the transport connects to or opens exactly this."""

    addresses: list[netguard.Address] = field(default_factory=list)  # network
    path: Path | None = None  # file, serial
    restricted: bool = True  # a tenant's: only what the lists allow, no symlink followed
    device_file: bool = False  # from PRINTER_DEVICE_FILES, not a file in the tenant's folder

    def connect(self, timeout: float) -> socket.socket:
        return netguard.connect(self.addresses, timeout)

    def open(self) -> BinaryIO:
        """The file for appending. A tenant's is opened at the real path checked, without
        following a symlink put there since, and must be a regular file (in its folder) or a
        character device (from the list) — never created outside its folder."""
        if not self.restricted:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return self.path.open("ab")
        flags = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
        if self.device_file:
            fd, wanted = os.open(self.path, flags), stat.S_ISCHR
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, wanted = os.open(self.path, flags | os.O_CREAT, 0o640), stat.S_ISREG
        if not wanted(os.fstat(fd).st_mode):
            os.close(fd)
            raise DestinationRefused("device", _file_message())
        return os.fdopen(fd, "ab")


def tenant_folder(tenant: Tenant) -> Path:
    """Where `tenant`'s file printers write: its own folder, so no tenant appends to
    another's printer file."""
    return Path(settings.PRINTER_FILE_ROOT) / tenant.slug


def file_path(printer: PrinterSettings) -> Path:
    """A file printer's path as configured: absolute, or inside the tenant's folder."""
    path = Path(printer.device.strip()).expanduser()
    return path if path.is_absolute() else tenant_folder(printer.equipment.tenant) / path


def service_ports() -> set[int]:
    """The ports of the platform's own services, never a printer's whatever the lists say."""
    ports = set()
    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.postgresql":
        ports.add(int(database.get("PORT") or 5432))
    if settings.REDIS_URL:
        ports.add(urlsplit(settings.REDIS_URL).port or 6379)
    return ports


def _printer_network(ip: netguard.IPAddress) -> bool:
    return netguard.in_networks(ip, settings.PRINTER_ALLOWED_NETWORKS)


def _device_allowed(real: Path) -> bool:
    return any(fnmatch.fnmatchcase(str(real), p) for p in settings.PRINTER_DEVICE_FILES)


def _file_message() -> str:
    return _(
        "Use a file name inside the studio's printer folder (such as tickets.bin), without "
        "“..”, or a printer device this platform allows (%(devices)s)."
    ) % {"devices": ", ".join(settings.PRINTER_DEVICE_FILES)}


def _network(printer: PrinterSettings, restricted: bool) -> Target:
    host, port = printer.host.strip(), printer.port
    if restricted:
        ports = [p for p in settings.PRINTER_ALLOWED_PORTS if p not in service_ports()]
        if port not in ports:
            raise DestinationRefused(
                "port",
                _("Port %(port)s is not allowed for printers; use %(ports)s.")
                % {"port": port, "ports": ", ".join(map(str, ports))},
            )
    try:
        addresses = netguard.resolve(
            host, port, _printer_network if restricted else lambda ip: True
        )
    except netguard.NotAllowed:
        # The addresses it resolved to are not said: they may be the platform's.
        raise DestinationRefused(
            "host",
            _("%(host)s is not on a network where this platform allows printers (%(networks)s).")
            % {"host": host, "networks": ", ".join(settings.PRINTER_ALLOWED_NETWORKS)},
        ) from None
    except netguard.Refused as error:
        raise DestinationRefused("host", str(error)) from None
    return Target(addresses=addresses, restricted=restricted)


def _file(printer: PrinterSettings, restricted: bool) -> Target:
    raw = printer.device.strip()
    if not restricted:
        return Target(path=file_path(printer), restricted=False)
    if "\0" in raw or ".." in Path(raw).parts:
        raise DestinationRefused("device", _file_message())
    real = Path(os.path.realpath(file_path(printer)))
    if _device_allowed(real):
        return Target(path=real, device_file=True)
    folder = Path(os.path.realpath(tenant_folder(printer.equipment.tenant)))
    if real != folder and real.is_relative_to(folder):
        return Target(path=real)
    raise DestinationRefused("device", _file_message())


def _serial(printer: PrinterSettings, restricted: bool) -> Target:
    raw = printer.device.strip()
    if not restricted:
        return Target(path=Path(raw), restricted=False)
    real = Path(os.path.realpath(raw)) if "\0" not in raw else None
    if real is None or not _device_allowed(real):
        raise DestinationRefused(
            "device",
            _("Use a serial printer device this platform allows (%(devices)s).")
            % {"devices": ", ".join(settings.PRINTER_DEVICE_FILES)},
        )
    return Target(path=real, device_file=True)


def check(printer: PrinterSettings) -> Target:
    """`printer`'s destination, checked now; DestinationRefused when the platform does not
    allow it. A destination a platform superuser set is only resolved (network)."""
    restricted = not printer.set_by_platform
    match printer.connection:
        case Connection.NETWORK:
            return _network(printer, restricted)
        case Connection.FILE:
            return _file(printer, restricted)
        case Connection.SERIAL:
            return _serial(printer, restricted)
        case Connection.CUPS:
            if restricted and not CUPS_QUEUE.fullmatch(printer.device.strip()):
                raise DestinationRefused(
                    "device",
                    _("A CUPS queue name has only letters, digits, “.”, “_” and “-”."),
                )
    return Target(restricted=restricted)
