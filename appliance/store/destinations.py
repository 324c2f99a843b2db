"""Destinations: where the dial plan sends a call, written `KIND:TARGET` (`extension:101`,
`route:city`, `hangup:busy`).

Each kind is one entry in `KINDS` (how its target is checked and described for people), and
each place that sends calls somewhere is one entry in `REFERRERS`, so that a target still in use
is never removed from under a DID. Later features (ring groups, queues, IVR menus, voicemail,
conferences) add one entry to each. This module reads the tables it needs itself and imports no
other store module, so that settings, extensions and DIDs can all use it."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from appliance.i18n import T
from appliance.store.database import Database
from appliance.store.texts import joined, reason

HANGUP_CAUSES = ("busy", "not-found", "unavailable", "rejected", "congestion")
"""How a call may be refused: busy (486), not-found (404), unavailable (480), rejected (603),
congestion (503)."""

CAUSE_NAMES = {
    "busy": T("busy"),
    "not-found": T("not-found"),
    "unavailable": T("unavailable"),
    "rejected": T("rejected"),
    "congestion": T("congestion"),
}
"""Each hang-up cause as people read it ("hang up (busy)"): the code itself in English."""

_SYNTAX = re.compile(r"([a-zA-Z][a-zA-Z-]*):(\S+)\Z")


class DestinationError(ValueError):
    """A destination is malformed, of an unknown kind, or its target does not exist. `str()`
    says which, for a technician; `field` names the form field it came from."""

    def __init__(self, message: str, field: str = "destination") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of destination.

    `parse` checks a target's form without the database and returns it canonical; `exists`
    returns None when the target is there, else why not; `describe` names it for pages;
    `inbound` says whether calls from outside (DIDs) may be sent to it."""

    what: str
    parse: Callable[[str], str]
    exists: Callable[[Database, str], str | None]
    describe: Callable[[Database, str], str]
    inbound: bool = True


def _extension_target(target: str) -> str:
    if not re.fullmatch(r"[0-9]{2,6}", target):
        raise DestinationError(T("an extension is 2 to 6 digits, not {target!r}", target=target))
    return target


def _extension_name(db: Database, number: str) -> str | None:
    row = db.execute("SELECT name FROM extensions WHERE number = ?", [number]).fetchone()
    return None if row is None else str(row[0])


def _extension_exists(db: Database, number: str) -> str | None:
    if _extension_name(db, number) is not None:
        return None
    return T("there is no extension {number}", number=number)


def _extension_describe(db: Database, number: str) -> str:
    name = _extension_name(db, number)
    if name is None:
        return T("extension {number} (missing)", number=number)
    if name:
        return T("extension {number} ({name})", number=number, name=name)
    return T("extension {number}", number=number)


def _route_target(target: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,31}", target):
        raise DestinationError(T("{target!r} is not a route name", target=target))
    return target


def _route_exists(db: Database, name: str) -> str | None:
    row = db.execute("SELECT 1 FROM routes WHERE name = ?", [name]).fetchone()
    return None if row is not None else T("there is no outbound route {name}", name=name)


def _route_describe(db: Database, name: str) -> str:
    if _route_exists(db, name) is not None:
        return T("outbound route {name} (missing)", name=name)
    return T("outbound route {name}", name=name)


def _hangup_target(target: str) -> str:
    if target not in HANGUP_CAUSES:
        raise DestinationError(
            T(
                "a hang-up cause is one of {causes}, not {target!r}",
                causes=", ".join(HANGUP_CAUSES), target=target,
            )
        )  # fmt: skip
    return target


def _hangup_describe(db: Database, cause: str) -> str:
    return T("hang up ({cause})", cause=CAUSE_NAMES.get(cause, cause))


def _name_target(target: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,31}", target):
        raise DestinationError(T("{target!r} is not a name", target=target))
    return target


def _menu_exists(db: Database, name: str) -> str | None:
    row = db.execute("SELECT 1 FROM ivr_menus WHERE name = ?", [name]).fetchone()
    return None if row is not None else T("there is no menu {name}", name=name)


def _announcement_exists(db: Database, name: str) -> str | None:
    row = db.execute("SELECT 1 FROM announcements WHERE name = ?", [name]).fetchone()
    return None if row is not None else T("there is no announcement {name}", name=name)


def _mailbox_exists(db: Database, number: str) -> str | None:
    row = db.execute("SELECT 1 FROM voicemail_boxes WHERE number = ?", [number]).fetchone()
    return None if row is not None else T("extension {number} has no mailbox", number=number)


KINDS: dict[str, Kind] = {
    "voicemail": Kind(
        T("a mailbox"),
        _extension_target,
        _mailbox_exists,
        lambda db, number: T("voicemail of {number}", number=number),
    ),
    "ivr": Kind(
        T("an IVR menu"), _name_target, _menu_exists, lambda db, name: T("menu {name}", name=name)
    ),
    "announcement": Kind(
        T("an announcement"),
        _name_target,
        _announcement_exists,
        lambda db, name: T("announcement {name}", name=name),
    ),
    "extension": Kind(T("an extension"), _extension_target, _extension_exists, _extension_describe),
    "route": Kind(
        T("an outbound route"), _route_target, _route_exists, _route_describe, inbound=False
    ),
    "hangup": Kind(T("a hang-up"), _hangup_target, lambda db, cause: None, _hangup_describe),
}
"""Every kind of destination, by the word before the colon."""


def parse(text: str, *, inbound: bool = False, field: str = "destination") -> tuple[str, str]:
    """(kind, target) of a destination, checked for form only (no database); canonical."""
    match = _SYNTAX.match(text.strip())
    if match is None:
        raise DestinationError(
            T("a destination is KIND:TARGET (e.g. extension:101, hangup:busy), not {text!r}",
              text=text),
            field,
        )  # fmt: skip
    kind_name, target = match[1].lower(), match[2]
    kind = KINDS.get(kind_name)
    if kind is None:
        raise DestinationError(
            T("unknown destination kind {kind!r}; known: {known}", kind=kind_name,
              known=", ".join(sorted(KINDS))),
            field,
        )  # fmt: skip
    if inbound and not kind.inbound:
        raise DestinationError(
            T("calls from outside cannot go to {what} ({kind}:{target})", what=kind.what,
              kind=kind_name, target=target),
            field,
        )  # fmt: skip
    try:
        return kind_name, kind.parse(target)
    except DestinationError as exc:
        raise DestinationError(reason(exc), field) from None


def check_destination(
    db: Database, text: str, *, field: str = "destination", inbound: bool = False
) -> str:
    """Validate a destination (its kind is known, its target exists); return it canonical.

    `inbound` is for destinations of calls from outside (DIDs, unknown DIDs): those may not
    go out again through a route."""
    kind_name, target = parse(text, inbound=inbound, field=field)
    problem = KINDS[kind_name].exists(db, target)
    if problem is not None:
        raise DestinationError(problem, field)
    return f"{kind_name}:{target}"


def describe(db: Database, text: str) -> str:
    """The destination for people: "extension 101 (Reception)", "hang up (busy)"."""
    try:
        kind_name, target = parse(text)
    except DestinationError:
        return text
    return KINDS[kind_name].describe(db, target)


def _dids_to(db: Database, destination: str) -> list[str]:
    rows = db.execute(
        "SELECT number FROM dids WHERE destination = ? ORDER BY number", [destination]
    ).fetchall()
    return [T("DID {number}", number=number) for (number,) in rows]


def _unknown_did_to(db: Database, destination: str) -> list[str]:
    row = db.execute("SELECT value FROM settings WHERE key = 'dialplan.unknown_did'").fetchone()
    if row and row[0] == destination:
        return [T("the setting {key}", key="dialplan.unknown_did")]
    return []


def _menus_to(db: Database, destination: str) -> list[str]:
    rows = db.execute(
        "SELECT menu FROM ivr_choices WHERE destination = ? UNION SELECT name FROM ivr_menus"
        " WHERE on_timeout = ? OR on_invalid = ? ORDER BY 1",
        [destination, destination, destination],
    ).fetchall()
    return [T("menu {name}", name=name) for (name,) in rows]


def _announcements_to(db: Database, destination: str) -> list[str]:
    rows = db.execute(
        "SELECT name FROM announcements WHERE then_to = ? ORDER BY name", [destination]
    ).fetchall()
    return [T("announcement {name}", name=name) for (name,) in rows]


REFERRERS: list[Callable[[Database, str], list[str]]] = [
    _dids_to, _unknown_did_to, _menus_to, _announcements_to,
]  # fmt: skip
"""Everything that sends calls to a destination: each returns who sends calls to it."""


def referrers(db: Database, destination: str) -> list[str]:
    """Who sends calls to `destination` (canonical text), e.g. ["DID +74951234567"]."""
    return [who for find in REFERRERS for who in find(db, destination)]


def check_unused(db: Database, destination: str, what: str, field: str) -> None:
    """Refuse to remove `what` (e.g. "extension 101") while calls are sent to it."""
    users = referrers(db, destination)
    if users:
        raise DestinationError(
            T("{what} is the destination of {users}; change that first", what=what,
              users=joined(users)),
            field,
        )  # fmt: skip
