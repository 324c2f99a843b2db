"""Outbound routes: which dialled numbers leave by which trunks, tried in order.

Routes are kept in an order (`position` 1..n, dense); the dial plan takes the first whose
pattern matches (`numbering.DialPattern`), prepends `prepend` to the number it sends, and tries
the route's trunks in failover order. `caller_id`, when set, is the office number presented."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass

from appliance.i18n import T
from appliance.numbering import DialPattern, PatternError
from appliance.store import destinations, dids
from appliance.store import trunks as trunk_store
from appliance.store.database import Database
from appliance.store.db import transaction
from appliance.store.texts import reason

NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}\Z")
PREPEND_RE = re.compile(r"\+?[0-9]{0,15}\Z")


class RouteError(ValueError):
    """A request about a route cannot be done. `str()` says why, for a technician; `field`
    names what was wrong (name, patterns, trunks, prepend, caller_id, position)."""

    def __init__(self, message: str, field: str = "name") -> None:
        super().__init__(message)
        self.field = field


class RouteExists(RouteError):
    """Another route has that name."""


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    position: int
    """1 for the route tried first."""
    patterns: tuple[str, ...]
    """Dial patterns, canonical (`str(DialPattern)`)."""
    prepend: str
    trunks: tuple[str, ...]
    """In failover order."""
    caller_id: str
    """One of the office's DIDs, or "" for the extension's or the trunk's."""
    created_at: float


_COLUMNS = "name, position, patterns, prepend, trunks, caller_id, created_at"


def _route(row: tuple[str, int, str, str, str, str, float]) -> Route:
    name, position, patterns, prepend, names, caller_id, created_at = row
    return Route(
        name, position, tuple(patterns.split(",")), prepend, tuple(names.split(",")), caller_id,
        created_at,
    )  # fmt: skip


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise RouteError(
            T(
                "route name must be 1 to 32 lower-case letters, digits, '-' or '_', starting with"
                " a letter or digit, not {name!r}",
                name=name,
            )
        )
    return name


def check_patterns(patterns: Sequence[str]) -> tuple[str, ...]:
    """Each pattern parsed and made canonical; at least one, each once."""
    if isinstance(patterns, str):
        patterns = [patterns]
    found: list[str] = []
    for text in (p.strip() for p in patterns):
        if not text:
            continue
        try:
            canonical = str(DialPattern.parse(text))
        except PatternError as exc:
            raise RouteError(reason(exc), "patterns") from None  # names the pattern and the place
        if canonical in found:
            raise RouteError(T("pattern {pattern} is listed twice", pattern=canonical), "patterns")
        found.append(canonical)
    if not found:
        raise RouteError(T("a route needs at least one dial pattern"), "patterns")
    return tuple(found)


def check_trunks(db: Database, names: Sequence[str]) -> tuple[str, ...]:
    """Trunks that exist, each once, in failover order; at least one."""
    if isinstance(names, str):
        names = [names]
    found: list[str] = []
    for name in (n.strip() for n in names):
        if not name:
            continue
        if trunk_store.get(db, name) is None:
            raise RouteError(T("there is no trunk {trunk!r}", trunk=name), "trunks")
        if name in found:
            raise RouteError(T("trunk {name} is listed twice", name=name), "trunks")
        found.append(name)
    if not found:
        raise RouteError(T("a route needs at least one trunk"), "trunks")
    return tuple(found)


def check_prepend(prepend: str) -> str:
    prepend = prepend.strip()
    if not PREPEND_RE.match(prepend):
        raise RouteError(
            T(
                "prepend may hold only digits, after an optional leading +, not {prepend!r}",
                prepend=prepend,
            ),
            "prepend",
        )
    return prepend


def check_caller_id(db: Database, text: str) -> str:
    """'' or one of the office's DIDs; return it as stored (normalised)."""
    text = text.strip()
    if not text:
        return ""
    did = dids.get(db, text)
    if did is None:
        raise RouteError(
            T(
                "caller ID {number} is not one of the office's numbers (DIDs)",
                number=dids.normalize_or_text(db, text),
            ),
            "caller_id",
        )
    return did.number


def _count(db: Database) -> int:
    return int(db.execute("SELECT COUNT(*) FROM routes").fetchone()[0])


def _check_position(position: int, high: int) -> int:
    if isinstance(position, bool) or not isinstance(position, int) or not 1 <= position <= high:
        raise RouteError(
            T("position must be 1 to {high}, not {position!r}", high=high, position=position),
            "position",
        )
    return position


def add(
    db: Database, name: str, patterns: Sequence[str], trunks: Sequence[str], prepend: str = "",
    caller_id: str = "", position: int | None = None,
) -> Route:  # fmt: skip
    """Add a route at `position` (the others move down), or last; return it as stored."""
    check_name(name)
    with transaction(db) as conn:
        last = _count(db) + 1
        route = Route(
            name, last if position is None else _check_position(position, last),
            check_patterns(patterns), check_prepend(prepend), check_trunks(db, trunks),
            check_caller_id(db, caller_id), time.time(),
        )  # fmt: skip
        if get(db, name) is not None:
            raise RouteExists(T("route {name} already exists", name=name))
        conn.execute(
            "UPDATE routes SET position = position + 1 WHERE position >= ?", [route.position]
        )
        try:
            conn.execute(
                f"INSERT INTO routes ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [route.name, route.position, ",".join(route.patterns), route.prepend,
                 ",".join(route.trunks), route.caller_id, route.created_at],
            )  # fmt: skip
        except sqlite3.IntegrityError:
            raise RouteExists(T("route {name} already exists", name=name)) from None
    return route


def update(
    db: Database, name: str, *, patterns: Sequence[str] | None = None,
    trunks: Sequence[str] | None = None, prepend: str | None = None,
    caller_id: str | None = None, position: int | None = None,
) -> Route:  # fmt: skip
    """Change what is given of a route (a new position moves it); return it as stored."""
    with transaction(db) as conn:
        route = get(db, name)
        if route is None:
            raise RouteError(T("no route {name}", name=name))
        changed = Route(
            route.name, route.position,
            route.patterns if patterns is None else check_patterns(patterns),
            route.prepend if prepend is None else check_prepend(prepend),
            route.trunks if trunks is None else check_trunks(db, trunks),
            route.caller_id if caller_id is None else check_caller_id(db, caller_id),
            route.created_at,
        )  # fmt: skip
        conn.execute(
            "UPDATE routes SET patterns = ?, prepend = ?, trunks = ?, caller_id = ?"
            " WHERE name = ?",
            [",".join(changed.patterns), changed.prepend, ",".join(changed.trunks),
             changed.caller_id, name],
        )  # fmt: skip
        if position is not None:
            return move(db, name, position)
    return changed


def move(db: Database, name: str, position: int) -> Route:
    """Put a route at `position` (1 is tried first); the others close up around it."""
    with transaction(db) as conn:
        route = get(db, name)
        if route is None:
            raise RouteError(T("no route {name}", name=name))
        _check_position(position, _count(db))
        if position < route.position:
            conn.execute(
                "UPDATE routes SET position = position + 1 WHERE position >= ? AND position < ?",
                [position, route.position],
            )
        elif position > route.position:
            conn.execute(
                "UPDATE routes SET position = position - 1 WHERE position > ? AND position <= ?",
                [route.position, position],
            )
        conn.execute("UPDATE routes SET position = ? WHERE name = ?", [position, name])
        moved = get(db, name)
    assert moved is not None
    return moved


def remove(db: Database, name: str) -> None:
    """Delete a route (refused while calls are sent to it); the ones after it move up."""
    with transaction(db) as conn:
        route = get(db, name)
        if route is None:
            raise RouteError(T("no route {name}", name=name))
        try:
            destinations.check_unused(db, f"route:{name}", T("route {name}", name=name), "name")
        except destinations.DestinationError as exc:
            raise RouteError(reason(exc), exc.field) from None
        conn.execute("DELETE FROM routes WHERE name = ?", [name])
        conn.execute(
            "UPDATE routes SET position = position - 1 WHERE position > ?", [route.position]
        )


def get(db: Database, name: str) -> Route | None:
    row = db.execute(f"SELECT {_COLUMNS} FROM routes WHERE name = ?", [name]).fetchone()
    return None if row is None else _route(row)


def list_all(db: Database) -> list[Route]:
    """Every route in the order they are tried."""
    rows = db.execute(f"SELECT {_COLUMNS} FROM routes ORDER BY position").fetchall()
    return [_route(row) for row in rows]
