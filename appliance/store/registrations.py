"""Registration bindings (RFC 3261 §10): written by the core's registrar, read by anyone.

Kept in SQLite so that a restart of the core keeps every phone registered.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from appliance.store.database import Database

COLUMNS = (
    "aor, contact_key, contact, expires_at, call_id, cseq, q, transport, source, user_agent,"
    " registered_at"
)


class Registration(NamedTuple):
    """One binding; a tuple in the table's column order (cheap to make, to store and to read)."""

    aor: str
    contact_key: str
    contact: str
    expires_at: float
    call_id: str
    cseq: int
    q: float | None
    transport: str
    source: str
    user_agent: str
    registered_at: float


def current(db: Database, aor: str, now: float) -> list[Registration]:
    rows = db.conn.execute(
        f"SELECT {COLUMNS} FROM registrations WHERE aor = ? AND expires_at > ?", (aor, now)
    ).fetchall()
    return [Registration(*row) for row in rows]


def all_current(db: Database, now: float) -> list[Registration]:
    rows = db.conn.execute(
        f"SELECT {COLUMNS} FROM registrations WHERE expires_at > ? ORDER BY aor, registered_at",
        (now,),
    ).fetchall()
    return [Registration(*row) for row in rows]


def summary(db: Database) -> list[dict[str, Any]]:
    """Current bindings as people read them (the control socket, `pbx status`, the web page)."""
    now = time.time()
    return describe(all_current(db, now), now)


def describe(bindings: list[Registration], now: float) -> list[dict[str, Any]]:
    """Bindings as people read them."""
    return [
        {
            "aor": r.aor,
            "contact": r.contact,
            "source": r.source,
            "transport": r.transport,
            "user_agent": r.user_agent,
            "registered_at": r.registered_at,
            "expires_in": int(r.expires_at - now),
        }
        for r in bindings
    ]


_UPSERT = (
    f"INSERT INTO registrations ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (aor, contact_key) DO UPDATE SET contact = excluded.contact,"
    " expires_at = excluded.expires_at, call_id = excluded.call_id, cseq = excluded.cseq,"
    " q = excluded.q, transport = excluded.transport, source = excluded.source,"
    " user_agent = excluded.user_agent, registered_at = excluded.registered_at"
)


def write(
    db: Database,
    upserts: list[Registration],
    deletes: list[tuple[str, str]],
) -> None:
    """Write many REGISTERs' outcomes in one transaction: `deletes` are (aor, contact_key)."""
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany("DELETE FROM registrations WHERE aor = ? AND contact_key = ?", deletes)
        conn.executemany(_UPSERT, upserts)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def purge_expired(db: Database, now: float) -> int:
    cur = db.conn.execute("DELETE FROM registrations WHERE expires_at <= ?", (now,))
    return cur.rowcount
