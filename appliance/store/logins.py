"""Failed logins per source address, and the lock-out they lead to (kept across restarts)."""

from __future__ import annotations

from appliance.store.database import Database
from appliance.store.db import transaction

MAX_FAILURES = 5
WINDOW = 15 * 60.0
"""MAX_FAILURES failed logins from one source within WINDOW seconds lock it out for LOCKOUT."""
LOCKOUT = 15 * 60.0


def locked_for(db: Database, source: str, now: float) -> float:
    """Seconds this source must still wait before it may try again (0 when it may)."""
    row = db.execute(
        "SELECT locked_until FROM login_failures WHERE source = ?", [source]
    ).fetchone()
    if row is None or row[0] is None:
        return 0.0
    return max(0.0, float(row[0]) - now)


def failed(db: Database, source: str, now: float) -> float:
    """Count a failure; return the lock-out in seconds that is on (0 when none).

    A failure during a lock-out (a request that was checked just before it began) changes
    nothing: it must not shorten or end the lock. A successful login clears nothing either,
    or a guesser with any account of their own could reset the count between guesses."""
    with transaction(db) as conn:
        row = conn.execute(
            "SELECT failures, first_at, locked_until FROM login_failures WHERE source = ?",
            [source],
        ).fetchone()
        if row is not None and row[2] is not None and row[2] > now:
            return float(row[2]) - now
        if row is None or now - row[1] > WINDOW:
            failures, first_at = 1, now
        else:
            failures, first_at = row[0] + 1, row[1]
        locked_until = now + LOCKOUT if failures >= MAX_FAILURES else None
        conn.execute(
            "INSERT INTO login_failures (source, failures, first_at, locked_until)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (source) DO UPDATE SET"
            " failures = excluded.failures, first_at = excluded.first_at,"
            " locked_until = excluded.locked_until",
            [source, 0 if locked_until else failures, first_at, locked_until],
        )
    return LOCKOUT if locked_until else 0.0
