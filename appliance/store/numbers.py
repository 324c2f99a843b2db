"""One directory of the numbers the box answers: extensions and the office's DIDs today, then
feature codes, park slots, queues. A number that would shadow another is refused when it is
configured (docs: ARCHITECTURE, "Dial plan and destinations"), whichever table it goes in.

Numbers are compared as stored: extensions as their digits, DIDs normalised
(`numbering.normalize`: E.164 `+...`, or the digits of a short number), so that a DID short
code "100" and extension 100 are the same number."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from appliance.i18n import T
from appliance.store.database import Database


class NumberTaken(ValueError):
    """The number already belongs to something else. `str()` names the other owner, e.g.
    "100 is already extension 100 (Reception)"; `field` names the form field; `owner` is the
    other owner's description."""

    def __init__(self, message: str, field: str = "number", owner: str = "") -> None:
        super().__init__(message)
        self.field = field
        self.owner = owner


@dataclass(frozen=True, slots=True)
class Directory:
    """One table that owns numbers: `sql` takes the number and returns (key, label) rows;
    `what` describes an owner by its key and label, e.g. "extension 100 (Reception)"."""

    kind: str
    sql: str
    what: Callable[[str, str], str]


def _extension(number: str, name: str) -> str:
    if name:
        return T("extension {number} ({name})", number=number, name=name)
    return T("extension {number}", number=number)


def _did(number: str, label: str) -> str:
    if label:
        return T("the DID {number} ({label})", number=number, label=label)
    return T("the DID {number}", number=number)


DIRECTORIES: list[Directory] = [
    Directory("extension", "SELECT number, name FROM extensions WHERE number = ?", _extension),
    Directory("did", "SELECT number, label FROM dids WHERE number = ?", _did),
]
"""Every table whose rows own a number; a feature that owns numbers adds its table here."""


def owners(
    db: Database, number: str, ignore: tuple[str, str] | None = None
) -> list[tuple[str, str, str]]:
    """(kind, key, description) of everything that owns `number`, but `ignore` (kind, key)."""
    found = []
    for directory in DIRECTORIES:
        for key, label in db.execute(directory.sql, [number]).fetchall():
            if ignore != (directory.kind, key):
                found.append((directory.kind, key, directory.what(key, label)))
    return found


def owner(db: Database, number: str) -> str | None:
    """What owns `number` (its description, e.g. "extension 100 (Reception)"), or None."""
    found = owners(db, number)
    return found[0][2] if found else None


def check_free(
    db: Database, number: str, *, field: str = "number", ignore: tuple[str, str] | None = None
) -> str:
    """Raise NumberTaken unless `number` is free (`ignore` (kind, key) is the row being
    changed, e.g. ("did", "+74951234567")); return the number."""
    found = owners(db, number, ignore)
    if found:
        description = found[0][2]
        raise NumberTaken(
            T("{number} is already {owner}", number=number, owner=description), field, description
        )
    return number
