"""The office's own numbers (DIDs, virtual numbers): where calls to each go, and on which
trunk it is expected.

A number is stored normalised (`numbering.normalize` with the office's country and city code:
E.164 `+...`, or the digits of a short number), so "8 (495) 123-45-67" and "+74951234567"
are one DID, and it shares one directory with the extensions (`numbers`)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from appliance import numbering
from appliance.i18n import T
from appliance.store import destinations, numbers, settings, trunks
from appliance.store.database import Database
from appliance.store.db import transaction
from appliance.store.numbers import NumberTaken
from appliance.store.texts import joined, reason

MAX_LABEL = 32


class DidError(ValueError):
    """A request about a DID cannot be done. `str()` says why, for a technician; `field`
    names what was wrong (number, destination, label or trunk)."""

    def __init__(self, message: str, field: str = "number") -> None:
        super().__init__(message)
        self.field = field


class DidTaken(DidError, NumberTaken):
    """The number already belongs to an extension or another DID (`owner` says which)."""

    def __init__(self, message: str, field: str = "number", owner: str = "") -> None:
        super().__init__(message, field)
        self.owner = owner


@dataclass(frozen=True, slots=True)
class Did:
    number: str
    """Normalised: E.164 `+...`, or a short number's digits."""
    label: str
    """For people and call records ("Main line", "Ural office")."""
    trunk: str
    """The trunk its calls come in on; "" for any trunk."""
    destination: str
    """Where its calls go (`destinations`: extension:101, hangup:busy...)."""
    created_at: float


_COLUMNS = "number, label, trunk, destination, created_at"


def normalize(db: Database, number: str, field: str = "number") -> str:
    """`number` as the store keeps it, in the office's country and city code."""
    country = settings.get_str(db, "office.country")
    area_code = settings.get_str(db, "office.area_code")
    try:
        normal = numbering.normalize(number.strip(), country, area_code)
    except numbering.NumberError as exc:
        raise DidError(reason(exc), field) from None
    if not normal.startswith("+") and len(normal) > numbering.SHORT_NUMBER_LENGTH:
        raise DidError(
            T(
                "{number} is not a complete number in {country}: give it in international"
                " form (+{code}...) or as a short number of up to {length} digits",
                number=number.strip(), country=country, code=numbering.country_code(country),
                length=numbering.SHORT_NUMBER_LENGTH,
            ),
            field,
        )  # fmt: skip
    return normal


def normalize_or_text(db: Database, number: str) -> str:
    """The normalised number when it is one, else the text as given (for messages)."""
    try:
        return normalize(db, number)
    except DidError:
        return number.strip()


def check_label(label: str) -> str:
    label = label.strip()
    if len(label) > MAX_LABEL or not label.isprintable():
        raise DidError(
            T("label must be at most {length} printable characters", length=MAX_LABEL), "label"
        )
    return label


def check_trunk(db: Database, trunk: str) -> str:
    """'' (any trunk) or the name of a trunk that exists."""
    trunk = trunk.strip()
    if trunk and trunks.get(db, trunk) is None:
        raise DidError(T("there is no trunk {trunk!r}", trunk=trunk), "trunk")
    return trunk


def check_destination(db: Database, destination: str) -> str:
    try:
        return destinations.check_destination(db, destination, inbound=True)
    except destinations.DestinationError as exc:
        raise DidError(reason(exc), "destination") from None


def add(db: Database, number: str, destination: str, label: str = "", trunk: str = "") -> Did:
    """Add one of the office's numbers and where its calls go; return it as stored."""
    with transaction(db) as conn:
        normal = normalize(db, number)
        try:
            numbers.check_free(db, normal)
        except NumberTaken as exc:
            raise DidTaken(reason(exc), exc.field, exc.owner) from None
        row = Did(
            normal, check_label(label), check_trunk(db, trunk),
            check_destination(db, destination), time.time(),
        )  # fmt: skip
        conn.execute(
            f"INSERT INTO dids ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
            [row.number, row.label, row.trunk, row.destination, row.created_at],
        )
    return row


def update(
    db: Database, number: str, *, destination: str | None = None, label: str | None = None,
    trunk: str | None = None,
) -> Did:  # fmt: skip
    """Change what is given of a DID (its number stays); return it as stored."""
    with transaction(db) as conn:
        did = get(db, number)
        if did is None:
            raise DidError(T("no DID {number}", number=normalize_or_text(db, number)))
        changed = Did(
            did.number,
            did.label if label is None else check_label(label),
            did.trunk if trunk is None else check_trunk(db, trunk),
            did.destination if destination is None else check_destination(db, destination),
            did.created_at,
        )
        conn.execute(
            "UPDATE dids SET label = ?, trunk = ?, destination = ? WHERE number = ?",
            [changed.label, changed.trunk, changed.destination, did.number],
        )
    return changed


def _presented_by(db: Database, number: str) -> list[str]:
    """Who presents `number` as caller ID on outbound calls."""
    found: list[str] = [
        T("extension {number}", number=ext)
        for (ext,) in db.execute(
            "SELECT number FROM extensions WHERE caller_id = ? ORDER BY CAST(number AS INTEGER)",
            [number],
        ).fetchall()
    ]
    found += [
        T("route {name}", name=name)
        for (name,) in db.execute(
            "SELECT name FROM routes WHERE caller_id = ? ORDER BY position", [number]
        ).fetchall()
    ]
    return found


def remove(db: Database, number: str) -> None:
    """Delete a DID; refused while an extension or a route presents it as caller ID."""
    with transaction(db) as conn:
        did = get(db, number)
        if did is None:
            raise DidError(T("no DID {number}", number=normalize_or_text(db, number)))
        users = _presented_by(db, did.number)
        if users:
            raise DidError(
                T(
                    "DID {number} is the caller ID of {users}; change that first",
                    number=did.number,
                    users=joined(users),
                )
            )
        conn.execute("DELETE FROM dids WHERE number = ?", [did.number])


def get(db: Database, number: str) -> Did | None:
    """The DID `number` is (as the office dials it or normalised), or None."""
    try:
        normal = normalize(db, number)
    except DidError:
        return None
    row = db.execute(f"SELECT {_COLUMNS} FROM dids WHERE number = ?", [normal]).fetchone()
    return None if row is None else Did(*row)


def list_all(db: Database) -> list[Did]:
    return [Did(*row) for row in db.execute(f"SELECT {_COLUMNS} FROM dids ORDER BY number")]


def on_trunk(db: Database, trunk: str) -> list[Did]:
    """The DIDs bound to `trunk`."""
    rows = db.execute(f"SELECT {_COLUMNS} FROM dids WHERE trunk = ? ORDER BY number", [trunk])
    return [Did(*row) for row in rows]
