"""The event outbox over a real SQLite file: events written and read back newest first, alerts
acknowledged once, what a webhook sender would take and mark, pruning by age in batches, the
countries called; and the per-extension limit of outbound calls, which a backup carries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appliance.store import backup, events, extensions, users
from appliance.store.db import open_db

NOW = 1_800_000_000.0
DAY = 86_400.0


def test_events_are_written_read_and_acknowledged(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    events.write(db, [
        events.Event("tollfraud.new_country", "UK", {"number": "+442079460958"}, NOW - 10),
        events.Event("call.ended", "101", {"id": "c1"}, NOW - 5),
        events.Event("tollfraud.limit", "101", {"limit": "extension_calls"}, NOW),
    ])  # fmt: skip
    assert [e.kind for e in events.recent(db)] == [
        "tollfraud.limit", "call.ended", "tollfraud.new_country",
    ]  # fmt: skip
    limit, country = events.alerts(db)  # only the alert kinds, newest first
    assert (country.subject, country.data, country.at) == ("UK", {"number": "+442079460958"},
                                                           NOW - 10)  # fmt: skip
    assert events.acknowledge(db, country.id, "admin", NOW + 1)
    assert not events.acknowledge(db, country.id, "admin")  # once
    other = next(e for e in events.recent(db) if e.kind == "call.ended")
    assert not events.acknowledge(db, other.id, "admin")  # no alert: nothing to acknowledge
    assert [e.id for e in events.alerts(db)] == [limit.id]
    (seen,) = [e for e in events.recent(db) if e.id == country.id]
    assert (seen.acknowledged_at, seen.acknowledged_by) == (NOW + 1, "admin")


def test_a_sender_takes_the_undelivered_oldest_first(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    events.write(db, [events.Event("k", str(n), {}, NOW + n) for n in range(5)])
    first = events.undelivered(db, 2)
    assert [e.subject for e in first] == ["0", "1"]
    events.mark_delivered(db, [e.id for e in first], NOW + 10)
    assert [e.subject for e in events.undelivered(db)] == ["2", "3", "4"]


def test_old_events_are_pruned_in_batches(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    events.write(db, [events.Event("k", "old", {}, NOW - 31 * DAY) for _ in range(7)])
    events.write(db, [events.Event("k", "new", {}, NOW - 29 * DAY)])
    assert events.prune(db, 0, NOW) == 0  # 0 keeps them for ever
    assert events.prune(db, 30, NOW, limit=5) == 5  # a full batch: call again
    assert events.prune(db, 30, NOW, limit=5) == 2
    assert [e.subject for e in events.recent(db)] == ["new"]


def test_countries_called_are_remembered_once(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    assert events.add_country(db, "UK", "+442079460958", "101", NOW)
    assert not events.add_country(db, "UK", "+442079460000", "102", NOW + 1)
    assert events.countries_called(db) == {"UK"}
    row = db.execute("SELECT number, caller FROM countries_called").fetchone()
    assert row == ("+442079460958", "101")


@pytest.mark.parametrize(
    ("value", "stored"), [(None, None), ("", None), ("default", None), ("0", 0), (7, 7)]
)
def test_an_extensions_limit_is_checked(tmp_path: Path, value: object, stored: int | None) -> None:
    db = open_db(tmp_path)
    extensions.add(db, "101", "A", "Secret123456")
    assert extensions.set_max_outbound_calls(db, "101", value) == stored
    ext = extensions.get(db, "101")
    assert ext is not None and ext.max_outbound_calls == stored


@pytest.mark.parametrize("value", ["-1", "1001", "two", True, 2.5])
def test_a_bad_limit_is_refused_naming_its_field(tmp_path: Path, value: object) -> None:
    db = open_db(tmp_path)
    extensions.add(db, "101", "A", "Secret123456")
    with pytest.raises(extensions.ExtensionError) as caught:
        extensions.set_max_outbound_calls(db, "101", value)
    assert caught.value.field == "max_outbound_calls"
    assert str(caught.value) == (
        "max outbound calls must be a whole number from 0 (no limit) to 1000, or empty for the"
        " default"
    )
    with pytest.raises(extensions.ExtensionError, match="no extension 102"):
        extensions.set_max_outbound_calls(db, "102", 1)


def test_a_backup_carries_the_limit(tmp_path: Path) -> None:
    db = open_db(tmp_path / "a")
    extensions.add(db, "101", "A", "Secret123456")
    extensions.add(db, "102", "B", "Secret123456")
    extensions.set_max_outbound_calls(db, "101", 3)
    users.add_first_admin(db, "admin", "Adm1n-Secret!")
    doc = backup.export(db)
    doc.pop("media_encryption", None)  # (another part's, optional: not what this test checks)
    other = open_db(tmp_path / "b")
    backup.restore(other, json.dumps(doc).encode())
    limits = {e.number: e.max_outbound_calls for e in extensions.list_all(other)}
    assert limits == {"101": 3, "102": None}
    doc["extensions"][0]["max_outbound_calls"] = "3"
    with pytest.raises(backup.BackupError, match="max outbound calls must be a whole number"):
        backup.restore(other, json.dumps(doc).encode())
    del doc["extensions"][0]["max_outbound_calls"]  # a backup from before the limits
    backup.restore(other, json.dumps(doc).encode())
    assert extensions.get(other, "101") is not None
