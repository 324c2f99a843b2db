"""Extensions: short internal numbers with SIP credentials stored only as digest HA1 values,
the classes of numbers each may call out to, and the office number it presents outside."""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import string
import time
from collections.abc import Iterable
from dataclasses import dataclass

from appliance.i18n import T
from appliance.numbering import DEFAULT_PERMISSIONS, PERMISSION_CLASSES
from appliance.store import destinations, dids, numbers, settings
from appliance.store.database import Database
from appliance.store.db import transaction
from appliance.store.numbers import NumberTaken
from appliance.store.texts import reason

NUMBER_RE = re.compile(r"[0-9]{2,6}\Z")
MIN_PASSWORD = 10
_ALPHABET = string.ascii_letters + string.digits


class ExtensionError(ValueError):
    """A request about an extension cannot be done. `str()` says why, for a technician;
    `field` names what was wrong (number, name or password) so a form can show it there."""

    def __init__(self, message: str, field: str = "number") -> None:
        super().__init__(message)
        self.field = field


class ExtensionExists(ExtensionError, NumberTaken):
    """The number is taken: by another extension ("extension 101 already exists"), or by
    another of the numbers the box answers ("100 is already the DID 100 (Ural)"). Both are
    conflicts (the API's 409); `owner` describes the other owner."""

    def __init__(self, message: str, field: str = "number", owner: str = "") -> None:
        super().__init__(message, field)
        self.owner = owner


@dataclass(frozen=True, slots=True)
class Extension:
    number: str
    name: str
    permissions: tuple[str, ...] = DEFAULT_PERMISSIONS
    """Classes of numbers it may call (`numbering.PERMISSION_CLASSES`); always "internal"."""
    caller_id: str = ""
    """A DID of the office presented on its outbound calls; "" for the route's or trunk's."""
    max_outbound_calls: int | None = None
    """Outbound calls it may have up at once (0: no limit); None: the office's default,
    `tollfraud.max_outbound_calls`."""


_COLUMNS = "number, name, permissions, caller_id, max_outbound_calls"

MAX_CALLS_LIMIT = 1000


def _extension(
    number: str, name: str, permissions: str, caller_id: str, max_outbound_calls: int | None
) -> Extension:
    return Extension(number, name, tuple(permissions.split(",")), caller_id, max_outbound_calls)


@dataclass(frozen=True, slots=True)
class Credentials:
    """What digest authentication needs: the realm and HA1 for each algorithm (RFC 7616 §3.4.2)."""

    realm: str
    ha1: dict[str, str]


def digest_ha1(algorithm: str, user: str, realm: str, password: str) -> str:
    """HA1 = H(username ":" realm ":" password) for MD5 or SHA-256 (RFC 7616 §3.4.2)."""
    name = {"MD5": "md5", "SHA-256": "sha256"}[algorithm]
    return hashlib.new(name, f"{user}:{realm}:{password}".encode()).hexdigest()


def generate_password(length: int = 16) -> str:
    while True:
        pw = "".join(secrets.choice(_ALPHABET) for _ in range(length))
        if any(c.isdigit() for c in pw) and any(c.isalpha() for c in pw):
            return pw


def check_number(number: str) -> str:
    if not NUMBER_RE.match(number):
        raise ExtensionError(
            T("extension number must be 2 to 6 digits, not {number!r}", number=number)
        )
    return number


def check_range(db: Database, number: str) -> str:
    """The number is well formed and inside the configured range (settings ext.number_*)."""
    check_number(number)
    low = settings.get_int(db, "ext.number_min")
    high = settings.get_int(db, "ext.number_max")
    if not low <= int(number) <= high:
        raise ExtensionError(
            T(
                "extension {number} is outside the allowed range {low}-{high}",
                number=number,
                low=low,
                high=high,
            )
        )
    return number


def check_password(number: str, password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ExtensionError(
            T("SIP password must be at least {length} characters", length=MIN_PASSWORD),
            "password",
        )
    if number in password or password.isdigit() or password.isalpha():
        raise ExtensionError(
            T("SIP password is too weak: mix letters and digits, and do not include the number"),
            "password",
        )
    if not password.isprintable() or any(c in password for c in ' "\\'):
        raise ExtensionError(
            T("SIP password may not contain spaces, quotes or backslashes"), "password"
        )
    return password


def check_name(name: str) -> str:
    if len(name) > 64 or not name.isprintable() or '"' in name or "\\" in name:
        raise ExtensionError(
            T("name must be at most 64 printable characters, without quotes"), "name"
        )
    return name


def _hashes(db: Database, number: str, password: str) -> dict[str, str]:
    realm = settings.get_text(db, "sip.realm")
    return {
        "realm": realm,
        "ha1_md5": digest_ha1("MD5", number, realm, password),
        "ha1_sha256": digest_ha1("SHA-256", number, realm, password),
    }


def add(db: Database, number: str, name: str = "", password: str | None = None) -> str:
    """Create an extension; return its password (generated when none is given)."""
    check_range(db, number)
    check_name(name)
    password = generate_password() if password is None else check_password(number, password)
    now = time.time()
    row = {"number": number, "name": name, **_hashes(db, number, password)}
    with transaction(db) as conn:
        _check_free(db, number)
        try:
            conn.execute(
                "INSERT INTO extensions (number, name, realm, ha1_md5, ha1_sha256, created_at,"
                " updated_at) VALUES (:number, :name, :realm, :ha1_md5, :ha1_sha256, :now, :now)",
                {**row, "now": now},
            )
        except sqlite3.IntegrityError:
            raise ExtensionExists(
                T("extension {number} already exists", number=number),
                owner=T("extension {number}", number=number),
            ) from None
    return password


def _check_free(db: Database, number: str) -> None:
    """Raise ExtensionExists when anything the box answers already has `number`."""
    for kind, _, description in numbers.owners(db, number):
        if kind == "extension":
            raise ExtensionExists(
                T("extension {number} already exists", number=number), owner=description
            )
        raise ExtensionExists(
            T("{number} is already {owner}", number=number, owner=description), owner=description
        )


def check_permissions(classes: Iterable[str]) -> tuple[str, ...]:
    """The classes an extension may call, canonical: known, in PERMISSION_CLASSES' order,
    "internal" always among them (calls between extensions are never barred)."""
    wanted = {c.strip().lower() for c in classes if c.strip()}
    unknown = sorted(wanted - set(PERMISSION_CLASSES))
    if unknown:
        raise ExtensionError(
            T(
                "unknown permission class {permission!r}; known: {known}",
                permission=unknown[0],
                known=", ".join(PERMISSION_CLASSES),
            ),
            "permissions",
        )
    wanted.add("internal")
    return tuple(c for c in PERMISSION_CLASSES if c in wanted)


def set_permissions(db: Database, number: str, classes: Iterable[str]) -> tuple[str, ...]:
    """Set which classes of numbers an extension may call; return them, canonical."""
    allowed = check_permissions(classes)
    cur = db.execute(
        "UPDATE extensions SET permissions = ?, updated_at = ? WHERE number = ?",
        [",".join(allowed), time.time(), number],
    )
    if cur.rowcount == 0:
        raise ExtensionError(T("no extension {number}", number=number))
    return allowed


def check_caller_id(db: Database, text: str) -> str:
    """'' or one of the office's DIDs (normalised); return it as stored."""
    text = text.strip()
    if not text:
        return ""
    did = dids.get(db, text)
    if did is None:
        shown = dids.normalize_or_text(db, text)
        raise ExtensionError(
            T("caller ID {number} is not one of the office's numbers (DIDs)", number=shown),
            "caller_id",
        )
    return did.number


def set_caller_id(db: Database, number: str, caller_id: str) -> str:
    """Set the office number an extension presents outside ('' for the route's or trunk's);
    return it as stored (normalised)."""
    with transaction(db) as conn:
        value = check_caller_id(db, caller_id)
        cur = conn.execute(
            "UPDATE extensions SET caller_id = ?, updated_at = ? WHERE number = ?",
            [value, time.time(), number],
        )
        if cur.rowcount == 0:
            raise ExtensionError(T("no extension {number}", number=number))
    return value


def check_max_outbound_calls(value: object) -> int | None:
    """A per-extension limit of outbound calls: a whole number 0-1000 (0: no limit), or
    None, '' or "default" for the office's default."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "default")):
        return None
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if number is None or not 0 <= number <= MAX_CALLS_LIMIT:
        raise ExtensionError(
            T(
                "max outbound calls must be a whole number from 0 (no limit) to {high},"
                " or empty for the default",
                high=MAX_CALLS_LIMIT,
            ),
            "max_outbound_calls",
        )
    return number


def set_max_outbound_calls(db: Database, number: str, value: object) -> int | None:
    """Set how many outbound calls an extension may have up at once (None: the default)."""
    limit = check_max_outbound_calls(value)
    cur = db.execute(
        "UPDATE extensions SET max_outbound_calls = ?, updated_at = ? WHERE number = ?",
        [limit, time.time(), number],
    )
    if cur.rowcount == 0:
        raise ExtensionError(T("no extension {number}", number=number))
    return limit


def set_password(db: Database, number: str, password: str | None = None) -> str:
    """Replace an extension's password; return it (generated when none is given)."""
    password = generate_password() if password is None else check_password(number, password)
    row = _hashes(db, number, password)
    cur = db.execute(
        "UPDATE extensions SET realm = :realm, ha1_md5 = :ha1_md5, ha1_sha256 = :ha1_sha256,"
        " updated_at = :now WHERE number = :number",
        {**row, "number": number, "now": time.time()},
    )
    if cur.rowcount == 0:
        raise ExtensionError(T("no extension {number}", number=number))
    return password


def rename(db: Database, number: str, name: str) -> None:
    """Change an extension's display name (its caller ID)."""
    check_name(name)
    cur = db.execute(
        "UPDATE extensions SET name = ?, updated_at = ? WHERE number = ?",
        [name, time.time(), number],
    )
    if cur.rowcount == 0:
        raise ExtensionError(T("no extension {number}", number=number))


def get(db: Database, number: str) -> Extension | None:
    row = db.execute(f"SELECT {_COLUMNS} FROM extensions WHERE number = ?", [number]).fetchone()
    return None if row is None else _extension(*row)


def remove(db: Database, number: str) -> None:
    """Delete an extension and its registrations, in one transaction; refused while calls
    are sent to it (a DID, the unknown-DID setting)."""
    with transaction(db) as conn:
        try:
            destinations.check_unused(
                db, f"extension:{number}", T("extension {number}", number=number), "number"
            )
        except destinations.DestinationError as exc:
            raise ExtensionError(reason(exc), exc.field) from None
        cur = conn.execute("DELETE FROM extensions WHERE number = ?", [number])
        conn.execute("DELETE FROM registrations WHERE aor = ?", [number])
        if cur.rowcount == 0:
            raise ExtensionError(T("no extension {number}", number=number))


def list_all(db: Database) -> list[Extension]:
    rows = db.execute(f"SELECT {_COLUMNS} FROM extensions ORDER BY CAST(number AS INTEGER)")
    return [_extension(*row) for row in rows.fetchall()]


def all_credentials(db: Database) -> dict[str, Credentials]:
    """Every extension's credentials, by number (what the registrar serves from)."""
    rows = db.execute("SELECT number, realm, ha1_md5, ha1_sha256 FROM extensions").fetchall()
    return {n: Credentials(realm, {"MD5": md5, "SHA-256": sha}) for n, realm, md5, sha in rows}
