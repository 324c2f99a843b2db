"""Call detail records: one row per call attempt, written by the core when the call ends, and
pruned by age (`cdrs.retention_days`) and number (`cdrs.max_rows`) in bounded batches."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from appliance.i18n import T
from appliance.store import settings
from appliance.store.database import Database
from appliance.store.db import transaction

DISPOSITIONS = ("answered", "busy", "no-answer", "failed", "cancelled", "interrupted")
"""How a call ended; `interrupted`: it was in progress when pbx-core stopped without ending it
(a crash, a power cut), closed by the next start from the last checkpoint (`live_calls`)."""
DIRECTIONS = ("internal", "inbound", "outbound")
"""Between extensions; from a trunk (to one of the office's DIDs); out through a trunk."""


@dataclass(slots=True)
class Cdr:
    """One call attempt. Times are Unix seconds; `rtp_*` are per-leg statistics as dicts."""

    id: str
    started_at: float
    ended_at: float
    caller: str
    dialled: str
    disposition: str
    hangup_side: str
    """"caller", "callee" or "system" (the box: timeouts, errors, transfers)."""
    hangup_cause: str
    caller_name: str = ""
    answered_at: float | None = None
    answered_by: str | None = None
    codec_caller: str | None = None
    codec_callee: str | None = None
    rtp_caller: dict[str, Any] | None = None
    rtp_callee: dict[str, Any] | None = None
    direction: str = "internal"
    trunk: str | None = None
    """The trunk an inbound call came in on, or an outbound call left by."""
    did: str | None = None
    """The office's number an inbound call was made to (E.164 as stored in `dids`)."""
    did_label: str | None = None
    """That DID's label when the call came in (a later rename keeps what it was)."""
    sent: str | None = None
    """An outbound call's number as sent to the provider (after the route's prepend)."""

    @property
    def duration(self) -> float:
        return round(self.ended_at - self.started_at, 3)

    @property
    def billsec(self) -> float:
        if self.answered_at is None:
            return 0.0
        return round(self.ended_at - self.answered_at, 3)

    def row(self) -> dict[str, Any]:
        row = asdict(self)
        row["duration"], row["billsec"] = self.duration, self.billsec
        for key in ("rtp_caller", "rtp_callee"):
            row[key] = json.dumps(row[key]) if row[key] is not None else None
        return row


COLUMNS = (
    "id, started_at, answered_at, ended_at, caller, caller_name, dialled, answered_by,"
    " disposition, duration, billsec, hangup_side, hangup_cause, codec_caller, codec_callee,"
    " rtp_caller, rtp_callee, direction, trunk, did, did_label, sent"
)

_NAMES = [name.strip() for name in COLUMNS.split(",")]


def write(db: Database, records: list[Cdr]) -> None:
    """Insert records in one transaction."""
    if not records:
        return
    for r in records:
        if r.disposition not in DISPOSITIONS:
            raise ValueError(
                T("unknown CDR disposition {disposition!r}; known: {known}",
                  disposition=r.disposition, known=", ".join(DISPOSITIONS))
            )  # fmt: skip
        if r.direction not in DIRECTIONS:
            raise ValueError(
                T("unknown CDR direction {direction!r}; known: {known}",
                  direction=r.direction, known=", ".join(DIRECTIONS))
            )  # fmt: skip
    sql = f"INSERT INTO cdrs ({COLUMNS}) VALUES ({', '.join('?' * len(_NAMES))})"
    with transaction(db) as conn:
        conn.executemany(sql, [[row[n] for n in _NAMES] for row in map(Cdr.row, records)])


def _decode(cursor: Any) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    out = []
    for values in cursor.fetchall():
        row = dict(zip(names, values, strict=True))
        for key in ("rtp_caller", "rtp_callee"):
            if row[key] is not None:
                row[key] = json.loads(row[key])
        out.append(row)
    return out


def recent(db: Database, limit: int = 100) -> list[dict[str, Any]]:
    """The newest records first, with RTP statistics decoded."""
    return search(db, limit=limit)


@dataclass(frozen=True, slots=True)
class Filter:
    """Which records to find: started in [since, until), involving `extension`, ending so,
    going that way (`direction`), through `trunk`."""

    since: float | None = None
    until: float | None = None
    extension: str | None = None
    disposition: str | None = None
    direction: str | None = None
    trunk: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if self.since is not None:
            clauses.append("started_at >= ?")
            args.append(self.since)
        if self.until is not None:
            clauses.append("started_at < ?")
            args.append(self.until)
        if self.extension:
            clauses.append("(caller = ? OR dialled = ? OR answered_by = ?)")
            args += [self.extension] * 3
        if self.disposition:
            clauses.append("disposition = ?")
            args.append(self.disposition)
        if self.direction:
            clauses.append("direction = ?")
            args.append(self.direction)
        if self.trunk:
            clauses.append("trunk = ?")
            args.append(self.trunk)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


def search(
    db: Database, where: Filter = Filter(), limit: int = 100, offset: int = 0
) -> list[dict[str, Any]]:
    """Matching records, newest first, with RTP statistics decoded."""
    sql, args = where.where()
    cursor = db.conn.execute(
        f"SELECT {COLUMNS} FROM cdrs{sql} ORDER BY started_at DESC LIMIT ? OFFSET ?",
        [*args, limit, offset],
    )
    return _decode(cursor)


def count(db: Database, where: Filter = Filter()) -> int:
    sql, args = where.where()
    return int(db.conn.execute(f"SELECT COUNT(*) FROM cdrs{sql}", args).fetchone()[0])


def talk_seconds(db: Database, where: Filter = Filter()) -> float:
    """The talk time of the matching records: the seconds from answer to end (`billsec`) of
    each answered call, added up (0 when none)."""
    sql, args = where.where()
    sql += " AND answered_at IS NOT NULL" if sql else " WHERE answered_at IS NOT NULL"
    total = db.conn.execute(f"SELECT TOTAL(billsec) FROM cdrs{sql}", args).fetchone()[0]
    return round(float(total), 3)


def answered_outbound(
    db: Database, ended_since: float, longest: float
) -> list[tuple[str, float, float]]:
    """(sent, answered_at, ended_at) of the outbound calls answered that ended at or after
    `ended_since`; `longest` is the longest a call may last (`calls.max_duration`), so the
    start-time index bounds the search."""
    rows = db.execute(
        "SELECT sent, answered_at, ended_at FROM cdrs WHERE started_at >= ? AND ended_at >= ?"
        " AND direction = 'outbound' AND answered_at IS NOT NULL AND sent IS NOT NULL",
        [ended_since - longest - 3600.0, ended_since],  # (an hour for ringing and set-up)
    ).fetchall()
    return [(str(sent), float(answered), float(ended)) for sent, answered, ended in rows]


def get(db: Database, call_id: str) -> dict[str, Any] | None:
    rows = _decode(db.conn.execute(f"SELECT {COLUMNS} FROM cdrs WHERE id = ?", [call_id]))
    return rows[0] if rows else None


# -- retention --------------------------------------------------------------------------------

PRUNE_BATCH = 5_000
"""Most records one pruning transaction deletes (about 70 ms of write lock on the development
machine), so that a large backlog never holds the database's write lock for long."""

DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class Retention:
    """How long call records are kept: `days` after they started (0: for ever), and at most
    the newest `max_rows` of them (0: no limit)."""

    days: int = 365
    max_rows: int = 1_000_000

    @classmethod
    def read(cls, db: Database) -> Retention:
        return cls(
            settings.get_int(db, "cdrs.retention_days"), settings.get_int(db, "cdrs.max_rows")
        )

    def cutoff(self, now: float) -> float | None:
        """Records that started before this are past their time; None: none ever are."""
        return now - self.days * DAY if self.days else None


def prune(db: Database, retention: Retention, now: float, limit: int = PRUNE_BATCH) -> int:
    """Delete at most `limit` of the oldest records that `retention` no longer keeps, in one
    transaction: those started before its cutoff, then the oldest beyond `max_rows`. Returns
    how many went; while that is `limit`, there may be more (call again)."""
    cutoff = retention.cutoff(now)
    with transaction(db) as conn:
        removed = 0
        if cutoff is not None:
            removed = conn.execute(
                "DELETE FROM cdrs WHERE rowid IN (SELECT rowid FROM cdrs WHERE started_at < ?"
                " ORDER BY started_at LIMIT ?)",
                [cutoff, limit],
            ).rowcount
        if retention.max_rows and removed < limit:
            excess = conn.execute("SELECT COUNT(*) FROM cdrs").fetchone()[0] - retention.max_rows
            if excess > 0:
                removed += conn.execute(
                    "DELETE FROM cdrs WHERE rowid IN (SELECT rowid FROM cdrs"
                    " ORDER BY started_at LIMIT ?)",
                    [min(excess, limit - removed)],
                ).rowcount
    return removed
