"""Analog ports of the line board: which FXS port registers as which extension, and which FXO
line is which IP trunk of the core.

The lines process (`pbx-lines`) reads these rows; the core never does: to the core an FXS port
is an extension like any ATA and an FXO line an IP trunk whose server is the gateway. The FXS
port's SIP password is kept here in clear (the extensions table holds only digest HA1 values,
which a client cannot answer a challenge with)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from appliance.i18n import T
from appliance.store import extensions, settings, trunks
from appliance.store.database import Database
from appliance.store.db import transaction

KINDS = ("fxs", "fxo")
CALLER_ID = ("etsi-fsk", "bell202", "dtmf", "none")
DEFAULT_BOARD = "sim"
GATEWAY_HOST = "127.0.0.1"
GATEWAY_PORT = 5070
FXO_PORT = 5071
"""Where `pbx-lines` listens for SIP: its FXS ports register and call from GATEWAY_PORT; its
FXO lines, a trunk of the core (the trunk's server), from FXO_PORT. The core tells a trunk on
loopback apart by its port, so an analog extension's call is never taken for the city line's."""


class PortError(ValueError):
    """A port's configuration cannot be saved; `str()` says why, `field` names what."""

    def __init__(self, message: str, field: str = "port") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Port:
    port: int
    """1-based, in the board profile's order."""
    kind: str
    extension: str
    """FXS: the extension it registers as; "" for FXO."""
    password: str
    """FXS: the extension's SIP password (the port answers digest challenges with it)."""
    trunk: str
    """FXO: the IP trunk the core sees the line as; "" for FXS."""
    caller_id: str
    board: str


_COLUMNS = "port, kind, extension, password, trunk, caller_id, board"


def board(db: Database) -> str:
    """The board profile name (setting `lines.board`), 'sim' unless set."""
    try:
        return settings.get_text(db, "lines.board") or DEFAULT_BOARD
    except KeyError:
        return DEFAULT_BOARD


def _check(db: Database, port: int, kind: str, extension: str, trunk: str, caller_id: str) -> None:
    if not 1 <= port <= 64:
        raise PortError(T("port must be a number from 1 to 64"), "port")
    if kind not in KINDS:
        raise PortError(T("port kind must be fxs or fxo"), "kind")
    if caller_id not in CALLER_ID:
        raise PortError(
            T("caller ID must be one of: {choices}", choices=", ".join(CALLER_ID)), "caller_id"
        )
    if kind == "fxs":
        if extensions.get(db, extension) is None:
            raise PortError(T("extension {number} does not exist", number=extension), "extension")
    elif trunks.get(db, trunk) is None:
        raise PortError(T("trunk {name} does not exist", name=trunk), "trunk")


def set_port(
    db: Database,
    port: int,
    kind: str,
    *,
    extension: str = "",
    password: str = "",
    trunk: str = "",
    caller_id: str = "etsi-fsk",
) -> Port:
    """Create or replace port `port`'s configuration."""
    _check(db, port, kind, extension, trunk, caller_id)
    if kind == "fxs":
        trunk = ""
        if not password:
            password = extensions.set_password(db, extension)
    else:
        extension = password = ""
    row = Port(port, kind, extension, password, trunk, caller_id, board(db))
    with transaction(db) as conn:
        try:
            conn.execute(
                f"INSERT OR REPLACE INTO ports ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    row.port,
                    row.kind,
                    row.extension,
                    row.password,
                    row.trunk,
                    row.caller_id,
                    row.board,
                ],
            )
        except sqlite3.IntegrityError:
            raise PortError(
                T("extension {number} is already another port's", number=extension), "extension"
            ) from None
    return row


def get(db: Database, port: int) -> Port | None:
    row = db.execute(f"SELECT {_COLUMNS} FROM ports WHERE port = ?", [port]).fetchone()
    return Port(*row) if row else None


def list_all(db: Database) -> list[Port]:
    rows = db.execute(f"SELECT {_COLUMNS} FROM ports ORDER BY port").fetchall()
    return [Port(*row) for row in rows]


def remove(db: Database, port: int) -> None:
    with transaction(db) as conn:
        conn.execute("DELETE FROM ports WHERE port = ?", [port])


def demo_ports(db: Database) -> list[Port]:
    """When no port is configured: ports 1 and 2 FXS as extensions 201 and 202 (made with
    generated passwords if missing) and port 3 FXO as IP trunk `city-line` toward the gateway.
    Returns the ports as they are afterwards."""
    if list_all(db):
        return list_all(db)
    for port, number in ((1, "201"), (2, "202")):
        if extensions.get(db, number) is None:
            password = extensions.add(db, number, T("analog port {port}", port=port))
        else:
            password = extensions.set_password(db, number)
        set_port(db, port, "fxs", extension=number, password=password)
    if trunks.get(db, "city-line") is None:
        trunks.add(db, "city-line", kind="ip", server=f"{GATEWAY_HOST}:{FXO_PORT}", codecs="PCMU")
    set_port(db, 3, "fxo", trunk="city-line", caller_id="etsi-fsk")
    return list_all(db)
