"""Call records in the store: a batch is written whole or not at all; the search filters;
pruning by age and by number, in bounded batches."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from appliance.store import cdrs, settings
from appliance.store.database import Database
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


# -- retention --------------------------------------------------------------------------------

NOW = 1_800_000_000.0
DAY = cdrs.DAY


def ids(db: Database) -> list[str]:
    return sorted(r["id"] for r in cdrs.search(db, limit=1000))


def test_pruning_deletes_the_oldest_past_the_cutoff_in_bounded_batches(db: Database) -> None:
    retention = cdrs.Retention(days=30, max_rows=0)
    cutoff = NOW - 30 * DAY
    old = [record(f"old{i}", cutoff - 1 - i) for i in range(7)]
    cdrs.write(db, [*old, record("edge", cutoff), record("new", NOW)])
    batches = [cdrs.prune(db, retention, NOW, limit=3) for _ in range(4)]
    assert batches == [3, 3, 1, 0]
    assert ids(db) == ["edge", "new"]  # started at the cutoff itself: kept


def test_each_batch_takes_the_oldest_first(db: Database) -> None:
    cdrs.write(db, [record(f"r{i}", NOW - 100 * DAY + i) for i in range(5)])
    assert cdrs.prune(db, cdrs.Retention(days=1, max_rows=0), NOW, limit=2) == 2
    assert ids(db) == ["r2", "r3", "r4"]


def test_retention_zero_keeps_records_for_ever(db: Database) -> None:
    cdrs.write(db, [record("ancient", 1000.0), record("new", NOW)])
    assert cdrs.Retention(days=0, max_rows=0).cutoff(NOW) is None
    assert cdrs.prune(db, cdrs.Retention(days=0, max_rows=0), NOW) == 0
    assert ids(db) == ["ancient", "new"]


def test_beyond_max_rows_the_oldest_go_whatever_their_age(db: Database) -> None:
    cdrs.write(db, [record(f"r{i}", NOW - i) for i in range(10)])  # r9 the oldest
    retention = cdrs.Retention(days=0, max_rows=4)
    assert [cdrs.prune(db, retention, NOW, limit=4) for _ in range(3)] == [4, 2, 0]
    assert ids(db) == ["r0", "r1", "r2", "r3"]


def test_age_and_count_share_one_batch(db: Database) -> None:
    cdrs.write(db, [record("old", NOW - 400 * DAY), *(record(f"r{i}", NOW - i) for i in range(4))])
    retention = cdrs.Retention(days=365, max_rows=2)
    assert cdrs.prune(db, retention, NOW, limit=2) == 2  # the old one, then r3 beyond the count
    assert cdrs.prune(db, retention, NOW, limit=2) == 1
    assert ids(db) == ["r0", "r1"]


def test_retention_comes_from_validated_settings(db: Database) -> None:
    assert cdrs.Retention.read(db) == cdrs.Retention(days=365, max_rows=1_000_000)
    settings.set_value(db, "cdrs.retention_days", "0")
    settings.set_value(db, "cdrs.max_rows", "5000")
    assert cdrs.Retention.read(db) == cdrs.Retention(days=0, max_rows=5000)
    for key, value in (("cdrs.retention_days", "-1"), ("cdrs.retention_days", "3651"),
                       ("cdrs.max_rows", "10000001"), ("cdrs.max_rows", "lots")):  # fmt: skip
        with pytest.raises(settings.SettingError, match=key):
            settings.set_value(db, key, value)
