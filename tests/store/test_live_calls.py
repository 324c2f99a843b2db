"""The live-call checkpoint (migration 9, `appliance.store.live_calls`): what a crash leaves is
closed as `interrupted` at the next start, a call that ended is never recorded twice, and the
migration keeps every CDR of a box that had them."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from appliance.store import cdrs, live_calls
from appliance.store.database import Database
from appliance.store.db import open_db
from appliance.store.migrations import MIGRATIONS, migrate


def call(call_id: str, started: float, answered: float | None = None) -> cdrs.Cdr:
    """A live call's record as the core's checkpoint builds it (ended_at 0, no RTP)."""
    return cdrs.Cdr(
        id=call_id, started_at=started, ended_at=0.0, caller="101", dialled="102",
        disposition="interrupted", hangup_side="system", hangup_cause=live_calls.INTERRUPTED_CAUSE,
        answered_at=answered, answered_by="102" if answered else None, codec_caller="PCMU",
    )  # fmt: skip


def test_a_crash_leaves_calls_closed_as_interrupted_at_their_last_checkpoint(db: Database) -> None:
    live_calls.save(db, 1010.0, [call("a", 1000.0, 1002.0), call("b", 1005.0)], [])
    live_calls.save(db, 1012.0, [], [])  # nothing changed: only the checkpoint's time moves
    records = live_calls.recover(db)
    assert [(r.id, r.disposition, r.ended_at, r.duration, r.billsec) for r in records] == [
        ("a", "interrupted", 1012.0, 12.0, 10.0), ("b", "interrupted", 1012.0, 7.0, 0.0),
    ]  # fmt: skip
    rows = {row["id"]: row for row in cdrs.recent(db)}
    assert rows["a"]["hangup_side"] == "system"
    assert rows["a"]["hangup_cause"] == live_calls.INTERRUPTED_CAUSE
    assert rows["a"]["answered_by"] == "102" and rows["b"]["answered_by"] is None
    assert live_calls.count(db) == 0
    assert live_calls.recover(db) == []  # a second start finds nothing left


def test_a_call_answered_after_a_checkpoint_is_saved_again(db: Database) -> None:
    live_calls.save(db, 1001.0, [call("a", 1000.0)], [])
    live_calls.save(db, 1003.0, [call("a", 1000.0, answered=1002.5)], [])
    (record,) = live_calls.recover(db)
    assert (record.answered_at, record.billsec, record.duration) == (1002.5, 0.5, 3.0)


def test_an_ended_call_is_recorded_once_whenever_the_crash_comes(db: Database) -> None:
    live_calls.save(db, 1001.0, [call("a", 1000.0), call("b", 1000.0), call("c", 1000.0)], [])
    ended = replace(call("a", 1000.0, 1000.5), ended_at=1004.0, disposition="answered",
                    hangup_side="caller", hangup_cause="BYE")  # fmt: skip
    live_calls.close(db, ended)  # its CDR, and its row gone, together
    live_calls.save(db, 1005.0, [], ["b"])  # b ended: its row goes at the next checkpoint
    # c's CDR written by a core that did not remove its row (the row must not win).
    cdrs.write(db, [replace(call("c", 1000.0), ended_at=1003.0, disposition="busy")])
    assert [r.id for r in live_calls.recover(db)] == []
    assert {row["id"]: row["disposition"] for row in cdrs.recent(db)} == {
        "a": "answered", "c": "busy",
    }  # fmt: skip


def test_interrupted_is_a_disposition_the_database_accepts_and_others_are_not(
    db: Database,
) -> None:
    cdrs.write(db, [replace(call("a", 1000.0), ended_at=1001.0)])
    with pytest.raises(sqlite3.IntegrityError):
        db.execute(
            "INSERT INTO cdrs (id, started_at, ended_at, caller, dialled, disposition, duration,"
            " billsec, hangup_side, hangup_cause) VALUES ('x', 0, 1, '1', '2', 'lost', 1, 0,"
            " 'system', '')"
        )


def test_0009_widens_the_cdrs_check_and_keeps_their_rows_and_indexes(tmp_path: Path) -> None:
    db = open_db(tmp_path, migrate_schema=False)
    step9 = MIGRATIONS.index(next(m for m in MIGRATIONS if m[0] == 9))
    saved = MIGRATIONS[step9:]
    del MIGRATIONS[step9:]
    try:
        migrate(db)
        cdrs.write(db, [replace(call(f"c{i}", 1000.0 + i), ended_at=1100.0, disposition="busy",
                                direction="outbound", trunk="moscow", sent="+74951112233")
                        for i in range(50)])  # fmt: skip
        before = _schema(db)
        with pytest.raises(sqlite3.IntegrityError):
            db.execute(
                "INSERT INTO cdrs (id, started_at, ended_at, caller, dialled, disposition,"
                " duration, billsec, hangup_side, hangup_cause) VALUES ('x', 0, 1, '1', '2',"
                " 'interrupted', 1, 0, 'system', '')"
            )
    finally:
        MIGRATIONS.extend(saved)
    assert migrate(db)[0] == 9
    assert cdrs.count(db) == 50
    assert cdrs.search(db, cdrs.Filter(trunk="moscow"), limit=1)[0]["sent"] == "+74951112233"
    after = _schema(db)
    assert after["indexes"] == before["indexes"]  # every index of cdrs made again
    assert after["columns"] == before["columns"]
    table = str(after["table"])
    assert "'interrupted'" in table and "'cancelled'" in table
    cdrs.write(db, [replace(call("new", 2000.0), ended_at=2001.0)])
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []


def _schema(db: Database) -> dict[str, object]:
    (table,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'cdrs'").fetchone()
    indexes = sorted(
        db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'cdrs'"
        ).fetchall(),
        key=str,
    )
    columns = db.execute("PRAGMA table_info(cdrs)").fetchall()
    return {"table": table, "indexes": indexes, "columns": columns}
