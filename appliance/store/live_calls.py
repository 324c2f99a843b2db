"""The checkpoint of calls in progress, so that a crash of pbx-core costs no call record.

A call's CDR is written when the call ends; a core killed mid-call (kill -9, an abort, the
power) would leave no trace of the calls it carried. So the core saves every few seconds, in
one small transaction on its writer thread, the CDR each live call would get if it ended now
(`save`), and the CDR written at a call's end takes its row away in the same transaction
(`close`). The next start turns the rows left over into CDRs with disposition `interrupted`,
ended at the last checkpoint that saw them (`recover`): a duration at most one checkpoint
interval short of the truth.

A table of its own rather than rows of `cdrs` with a state: every reader of `cdrs` (pages,
API, CSV, counts, retention) sees finished calls only, as before, and the checkpoint's writes
never touch the indexes of a table of a million rows.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields, replace
from typing import Any

from appliance.store import cdrs
from appliance.store.database import Database
from appliance.store.db import transaction

INTERRUPTED_CAUSE = "pbx-core stopped during the call"
"""The hang-up cause of a recovered call (its side is "system")."""

_FIELDS = {f.name for f in fields(cdrs.Cdr)}


def save(db: Database, at: float, changed: list[cdrs.Cdr], gone: list[str]) -> None:
    """One checkpoint at time `at`: rows for the calls new or changed since the last one
    (`changed`, as their CDRs would read now, RTP statistics left out), none for those that
    ended (`gone`), and `at` as the checkpoint of every row still there."""
    with transaction(db) as conn:
        conn.executemany("DELETE FROM live_calls WHERE id = ?", [(i,) for i in gone])
        conn.executemany(
            "INSERT INTO live_calls (id, started_at, checkpoint_at, record) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET record = excluded.record",
            [(r.id, r.started_at, at, _dumps(r)) for r in changed],
        )
        conn.execute("UPDATE live_calls SET checkpoint_at = ?", [at])


def close(db: Database, record: cdrs.Cdr) -> None:
    """Write a finished call's CDR and drop its checkpoint row, in one transaction: after a
    crash the call is either recorded as it ended or recovered as interrupted, never both."""
    with transaction(db) as conn:
        cdrs.write(db, [record])
        conn.execute("DELETE FROM live_calls WHERE id = ?", [record.id])


def recover(db: Database) -> list[cdrs.Cdr]:
    """Close every call the checkpoint holds (what a core that stopped without ending them
    left): a CDR `interrupted`, ended at the call's last checkpoint, for each that has no CDR
    yet; the rows go, all in one transaction. Returns the CDRs written."""
    with transaction(db) as conn:
        rows = conn.execute(
            "SELECT checkpoint_at, record FROM live_calls"
            " WHERE id NOT IN (SELECT id FROM cdrs) ORDER BY started_at"
        ).fetchall()
        records = [_interrupted(json.loads(record), at) for at, record in rows]
        cdrs.write(db, records)
        conn.execute("DELETE FROM live_calls")
    return records


def count(db: Database) -> int:
    return int(db.execute("SELECT COUNT(*) FROM live_calls").fetchone()[0])


def _dumps(record: cdrs.Cdr) -> str:
    row = asdict(replace(record, rtp_caller=None, rtp_callee=None))
    return json.dumps(row, separators=(",", ":"))


def _interrupted(data: dict[str, Any], at: float) -> cdrs.Cdr:
    record = cdrs.Cdr(**{k: v for k, v in data.items() if k in _FIELDS})
    return replace(
        record, ended_at=max(at, record.started_at), disposition="interrupted",
        hangup_side="system", hangup_cause=INTERRUPTED_CAUSE,
    )  # fmt: skip
