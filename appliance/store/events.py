"""The event outbox: one table (`events`) where every feature of the core writes what happened
(a first call to a new country, a toll-fraud limit reached), for the dashboard's alerts, and
later statistics and webhooks (which mark what they sent in `delivered_at`).

The core writes events only through the store's writer thread (`store.db.Writer`, via
`appliance.pbx.outbox.Outbox`), never on its event loop; the setup page reads them and
acknowledges alerts. Old events are pruned by `events.retention_days`, in bounded batches,
as call records are.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from appliance.store.database import Database
from appliance.store.db import transaction

PRUNE_BATCH = 5_000
"""Most events one pruning transaction deletes (as `cdrs.PRUNE_BATCH`)."""

DAY = 86_400.0

ALERT_KINDS = ("tollfraud.new_country", "tollfraud.limit", "recording.space")
"""Kinds shown on the dashboard until a user acknowledges them."""


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened: `kind` is dotted (`tollfraud.new_country`), `subject` what it
    is about (an extension, a trunk, a country), `data` the rest, as JSON."""

    kind: str
    subject: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: int
    at: float
    kind: str
    subject: str
    data: dict[str, Any]
    delivered_at: float | None
    acknowledged_at: float | None
    acknowledged_by: str | None


_COLUMNS = "id, at, kind, subject, data, delivered_at, acknowledged_at, acknowledged_by"


def _stored(row: tuple[Any, ...]) -> StoredEvent:
    id_, at, kind, subject, data, delivered, acked, by = row
    return StoredEvent(id_, at, kind, subject, json.loads(data), delivered, acked, by)


def write(db: Database, events: Iterable[Event]) -> None:
    """Insert events in one transaction (on the writer thread, in the core)."""
    rows = [(e.at, e.kind, e.subject, json.dumps(e.data, sort_keys=True)) for e in events]
    if not rows:
        return
    with transaction(db) as conn:
        conn.executemany("INSERT INTO events (at, kind, subject, data) VALUES (?, ?, ?, ?)", rows)


def recent(
    db: Database, kinds: Iterable[str] = (), limit: int = 100, *, unacknowledged: bool = False
) -> list[StoredEvent]:
    """The newest events first, of `kinds` (all when none), only those no user acknowledged
    when asked."""
    clauses, args = [], []
    wanted = list(kinds)
    if wanted:
        clauses.append(f"kind IN ({', '.join('?' * len(wanted))})")
        args += wanted
    if unacknowledged:
        clauses.append("acknowledged_at IS NULL")
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM events{where} ORDER BY id DESC LIMIT ?", [*args, limit]
    ).fetchall()
    return [_stored(row) for row in rows]


def alerts(db: Database, limit: int = 20) -> list[StoredEvent]:
    """What the dashboard shows until it is acknowledged: the newest first."""
    return recent(db, ALERT_KINDS, limit, unacknowledged=True)


def acknowledge(db: Database, event_id: int, user: str, now: float | None = None) -> bool:
    """Mark an alert seen by `user`; False when there is no such unacknowledged alert."""
    cur = db.execute(
        f"UPDATE events SET acknowledged_at = ?, acknowledged_by = ? WHERE id = ?"
        f" AND acknowledged_at IS NULL AND kind IN ({', '.join('?' * len(ALERT_KINDS))})",
        [time.time() if now is None else now, user, event_id, *ALERT_KINDS],
    )
    return cur.rowcount == 1


def undelivered(db: Database, limit: int = 100) -> list[StoredEvent]:
    """The oldest events not yet sent on (for a webhook sender)."""
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM events WHERE delivered_at IS NULL ORDER BY id LIMIT ?", [limit]
    ).fetchall()
    return [_stored(row) for row in rows]


def mark_delivered(db: Database, ids: Iterable[int], now: float | None = None) -> None:
    at = time.time() if now is None else now
    with transaction(db) as conn:
        conn.executemany("UPDATE events SET delivered_at = ? WHERE id = ?", [(at, i) for i in ids])


def prune(db: Database, retention_days: int, now: float, limit: int = PRUNE_BATCH) -> int:
    """Delete at most `limit` of the events older than `retention_days` (0 keeps them for
    ever), in one transaction; while it returns `limit`, there may be more."""
    if not retention_days:
        return 0
    with transaction(db) as conn:
        return conn.execute(
            "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < ? ORDER BY id"
            " LIMIT ?)",
            [now - retention_days * DAY, limit],
        ).rowcount


# -- countries called ---------------------------------------------------------------------


def countries_called(db: Database) -> set[str]:
    """Every country an outbound call has gone to from this box (`numbering.country_of`)."""
    return {row[0] for row in db.execute("SELECT country FROM countries_called")}


def add_country(db: Database, country: str, number: str, caller: str, at: float) -> bool:
    """Remember a country called for the first time; False if it was known already."""
    cur = db.execute(
        "INSERT OR IGNORE INTO countries_called (country, first_at, number, caller)"
        " VALUES (?, ?, ?, ?)",
        [country, at, number, caller],
    )
    return cur.rowcount == 1
