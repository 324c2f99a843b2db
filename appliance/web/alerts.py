"""The dashboard's alerts: the outbox's toll-fraud events (`appliance.store.events`) no user
has acknowledged yet, as sentences in the page's language."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from babel.dates import format_datetime
from flask_babel import get_locale

from appliance.store import events, settings
from appliance.store.database import Database
from appliance.web.i18n import _, translate


def country_name(code: str) -> str:
    """An office country by its name in the page's language; any other by its code (`NG`,
    or `+881` for a code of no country)."""
    name = settings.COUNTRIES.get(code)
    return translate(name) if name is not None else code


def sentence(event: events.StoredEvent) -> str:
    """What happened, for people."""
    d = event.data
    if event.kind == "tollfraud.new_country":
        return str(_(
            "First call to a new country: %(country)s (%(number)s, from extension %(caller)s).",
            country=country_name(event.subject), number=d.get("number", ""),
            caller=d.get("caller", ""),
        ))  # fmt: skip
    if event.kind == "recording.space":
        if d.get("refused"):
            return str(_("A call was not recorded: the disk is at its free-space floor."))
        if d.get("below_floor"):
            return str(_(
                "The disk is below the free-space floor for recordings and no recording is"
                " left to delete: free some space."
            ))  # fmt: skip
        return str(_(
            "Recordings were deleted to make room: %(quota)s over the quota, %(floor)s for"
            " the free-space floor.",
            quota=d.get("quota", 0), floor=d.get("floor", 0),
        ))  # fmt: skip
    limit, value = d.get("limit"), d.get("value", "")
    number = d.get("number", "")
    if limit == "extension_calls":
        return str(_(
            "Extension %(caller)s was refused a call to %(number)s: it had %(limit)s outside"
            " calls up, its limit.",
            caller=event.subject, number=number, limit=value,
        ))  # fmt: skip
    if limit == "trunk_calls":
        return str(_(
            "Trunk %(trunk)s was at its limit of %(limit)s calls: a call to %(number)s was"
            " refused.",
            trunk=event.subject, limit=value, number=number,
        ))  # fmt: skip
    if limit == "international_minutes" and d.get("action") == "cut":
        return str(_(
            "The daily limit of %(limit)s international minutes was reached: the call from"
            " %(caller)s to %(number)s was cut.",
            limit=value, caller=event.subject, number=number,
        ))  # fmt: skip
    if limit == "international_minutes":
        return str(_(
            "The daily limit of %(limit)s international minutes is reached: a call from"
            " %(caller)s to %(number)s was refused.",
            limit=value, caller=event.subject, number=number,
        ))  # fmt: skip
    return f"{event.kind} {event.subject}"


def shown(db: Database) -> list[dict[str, Any]]:
    """The unacknowledged alerts, newest first, as the dashboard's state carries them."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(settings.get_str(db, "office.timezone"))
    locale = get_locale() or "en"
    return [
        {
            "id": e.id,
            "kind": e.kind,
            "subject": e.subject,
            "at": e.at,
            "when": format_datetime(
                datetime.fromtimestamp(e.at, zone), "medium", tzinfo=zone, locale=locale
            ),
            "text": sentence(e),
        }
        for e in events.alerts(db)
    ]
