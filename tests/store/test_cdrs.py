"""Call records in the store: a batch is written whole or not at all; the search filters."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from appliance.store import cdrs
from appliance.store.db import open_db


def record(call_id: str, started: float, caller: str = "101", disposition: str = "answered",
           dialled: str = "102") -> cdrs.Cdr:  # fmt: skip
    return cdrs.Cdr(
        id=call_id, started_at=started, ended_at=started + 30, caller=caller, dialled=dialled,
        disposition=disposition, hangup_side="caller", hangup_cause="BYE",
        answered_at=started + 2 if disposition == "answered" else None,
        answered_by=dialled if disposition == "answered" else None,
    )  # fmt: skip


def test_a_batch_with_a_bad_record_writes_nothing(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    first, second = record("a", 1000.0), record("b", 1001.0)
    with pytest.raises(sqlite3.IntegrityError):
        cdrs.write(db, [first, second, first])  # the same id twice
    assert cdrs.count(db) == 0
    cdrs.write(db, [first, second])
    assert [r["id"] for r in cdrs.recent(db)] == ["b", "a"]


def test_search_filters_by_time_extension_and_disposition(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    cdrs.write(db, [
        record("a", 1000.0, caller="101", dialled="102"),
        record("b", 2000.0, caller="103", dialled="101", disposition="busy"),
        record("c", 3000.0, caller="104", dialled="105", disposition="no-answer"),
    ])  # fmt: skip
    assert cdrs.count(db, cdrs.Filter(since=1500.0)) == 2
    assert cdrs.count(db, cdrs.Filter(until=2000.0)) == 1  # until is exclusive
    assert [r["id"] for r in cdrs.search(db, cdrs.Filter(extension="101"))] == ["b", "a"]
    assert [r["id"] for r in cdrs.search(db, cdrs.Filter(disposition="busy"))] == ["b"]
    assert [r["id"] for r in cdrs.search(db, limit=1, offset=1)] == ["b"]


def test_trunk_calls_carry_direction_trunk_and_did(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    inbound = record("in", 1000.0, caller="+74997654321", dialled="101")
    inbound.direction, inbound.trunk = "inbound", "sipnet"
    inbound.did, inbound.did_label = "+74951234567", "Main"
    outbound = record("out", 2000.0, caller="101", dialled="84997654321")
    outbound.direction, outbound.trunk, outbound.sent = "outbound", "backup", "+74997654321"
    cdrs.write(db, [inbound, outbound, record("int", 3000.0)])
    row = cdrs.get(db, "in")
    assert row is not None
    assert (row["direction"], row["trunk"], row["did"], row["did_label"], row["sent"]) == (
        "inbound",
        "sipnet",
        "+74951234567",
        "Main",
        None,
    )
    internal = cdrs.get(db, "int")
    assert internal is not None and (internal["direction"], internal["trunk"]) == ("internal", None)
    assert [r["id"] for r in cdrs.search(db, cdrs.Filter(direction="outbound"))] == ["out"]
    assert [r["id"] for r in cdrs.search(db, cdrs.Filter(trunk="sipnet"))] == ["in"]
    assert cdrs.count(db, cdrs.Filter(direction="internal")) == 1
    bad = record("bad", 4000.0)
    bad.direction = "sideways"
    with pytest.raises(ValueError, match="unknown CDR direction"):
        cdrs.write(db, [bad])
    assert cdrs.count(db) == 3
