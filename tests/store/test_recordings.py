"""Recordings in the store over a real SQLite file: the rules that decide which calls are
recorded (most specific kind first, a "no" as an exception), their validation messages, the
storage settings, and the recordings' rows (kept, by call, expired by their rule's retention,
deleted with a reason)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from appliance.store import recordings, settings
from appliance.store.database import Database
from appliance.store.migrations import current_version
from appliance.store.recordings import Facts, RecordingError

NOW = 1_800_000_000.0
DAY = 86_400.0


def stereo_ogg(path: Path, seconds: float, left: float = 440.0, right: float = 1000.0) -> int:
    """A real stereo Ogg/Opus file at 8 kHz (as the recorder writes); its size in bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * 8000)) / 8000
    audio = np.stack([np.sin(2 * np.pi * left * t), np.sin(2 * np.pi * right * t)], axis=1) * 0.3
    soundfile.write(str(path), audio, 8000, format="OGG", subtype="OPUS")
    return path.stat().st_size


def test_migration_11_makes_the_tables(db: Database) -> None:
    assert current_version(db) >= 11
    assert {"recordings", "recording_rules"} <= set(db.table_names())


def test_the_most_specific_rule_decides(db: Database) -> None:
    inbound = recordings.add_rule(db, "direction", "Inbound", retention_days=30, now=NOW)
    assert inbound.value == "inbound"  # stored as the word the call engine uses
    no_101 = recordings.add_rule(db, "extension", "101", record=False, now=NOW)
    did = recordings.add_rule(db, "did", "+74951234567", consent=True, now=NOW)
    route = recordings.add_rule(db, "route", "city", now=NOW)
    assert [r.match for r in recordings.rules(db)] == ["extension", "did", "route", "direction"]
    found = recordings.rules(db)

    # an inbound call to 102: the direction rule records it
    d = recordings.decide(found, Facts(("+79161234567", "102"), None, ("sip-provider",),
                                       "inbound"))  # fmt: skip
    assert (d.record, d.rule) == (True, inbound)
    # the same call answered by 101: 101's "no" is more specific than the direction's "yes"
    d = recordings.decide(found, Facts(("+79161234567", "101"), "+74951234567", (), "inbound"))
    assert (d.record, d.rule) == (False, no_101)
    # a call on the DID to 103: the DID rule (with consent)
    d = recordings.decide(found, Facts(("+79161234567", "103"), "+74951234567", (), "inbound"))
    assert (d.record, d.rule) == (True, did) and d.rule is not None and d.rule.consent
    # out by the route "city"
    d = recordings.decide(found, Facts(("104", "+74957654321"), None, ("city",), "outbound"))
    assert (d.record, d.rule) == (True, route)
    # an internal call no rule matches is not recorded
    assert recordings.decide(found, Facts(("103", "104"))) == recordings.Decision(False, None)


def test_rules_are_validated_with_messages(db: Database) -> None:
    with pytest.raises(RecordingError, match="a rule matches one of extension, did, route,"):
        recordings.add_rule(db, "caller", "101")
    with pytest.raises(RecordingError, match="the direction must be one of inbound, outbound"):
        recordings.add_rule(db, "direction", "sideways")
    with pytest.raises(RecordingError, match="'10a' is not a phone number"):
        recordings.add_rule(db, "extension", "10a")
    with pytest.raises(RecordingError, match="a route or trunk name is 1 to 32"):
        recordings.add_rule(db, "route", "no spaces")
    with pytest.raises(RecordingError, match="the retention must be between 0 and 36500"):
        recordings.add_rule(db, "extension", "101", retention_days=-1)
    rule = recordings.add_rule(db, "extension", "101")
    with pytest.raises(RecordingError, match=f"rule {rule.id} already matches extension 101"):
        recordings.add_rule(db, "extension", "101", record=False)
    recordings.remove_rule(db, rule.id)
    assert recordings.rules(db) == []
    with pytest.raises(RecordingError, match=f"there is no recording rule {rule.id}"):
        recordings.remove_rule(db, rule.id)


def test_settings_have_defaults_and_are_validated(db: Database) -> None:
    assert recordings.all_settings(db) == {
        "recording.quota_mib": "2048", "recording.floor_mib": "256",
        "recording.retention_days": "90", "recording.viewers_listen": "0",
        "recording.feature_code": "*1", "recording.format": "opus",
    }  # fmt: skip
    assert recordings.set_setting(db, "recording.quota_mib", " 100 ") == "100"
    assert recordings.Storage.read(db).quota_bytes == 100 * 1024 * 1024
    assert recordings.set_setting(db, "recording.feature_code", "*7") == "*7"
    with pytest.raises(RecordingError, match=r"recording\.floor_mib must be a whole number"):
        recordings.set_setting(db, "recording.floor_mib", "lots")
    with pytest.raises(RecordingError, match=r"recording\.viewers_listen must be between 0 and 1"):
        recordings.set_setting(db, "recording.viewers_listen", "2")
    with pytest.raises(RecordingError, match="the feature code must be"):
        recordings.set_setting(db, "recording.feature_code", "12")
    with pytest.raises(RecordingError, match="the format must be opus, flac or wav"):
        recordings.set_setting(db, "recording.format", "mp3")
    with pytest.raises(RecordingError, match=r"unknown setting 'recording\.colour'"):
        recordings.set_setting(db, "recording.colour", "red")
    assert recordings.get_setting(db, "recording.feature_code") == "*7"


def test_the_recording_code_is_not_another_features(db: Database) -> None:
    """Both ways: the voicemail code cannot become the recording code, nor the reverse."""
    with pytest.raises(RecordingError, match=r"\*97 is already the feature code of features"):
        recordings.set_setting(db, "recording.feature_code", "*97")
    assert recordings.get_setting(db, "recording.feature_code") == "*1"
    with pytest.raises(settings.SettingError, match=r"\*1 is already the feature code"):
        settings.set_value(db, "features.voicemail", "*1")


def test_rows_by_call_expiry_and_deletion(db: Database, tmp_path: Path) -> None:
    data = tmp_path / "var"
    keep_long = recordings.add_rule(db, "extension", "101", retention_days=365)
    rows = []
    for n, (call, age) in enumerate([("c1", 400), ("c2", 100), ("c3", 100), ("c3", 1)]):
        started = NOW - age * DAY
        rel = recordings.relative_path(call, started, n + 1)
        size = stereo_ogg(data / rel, 0.5)
        rule = keep_long.id if call == "c2" else None
        rows.append(recordings.add(db, call, rel, started, 0.5, size, rule))
    assert rows[0].path == "recordings/2025/12/11/c1-1.ogg"
    assert rows[0].mimetype == "audio/ogg"
    assert recordings.add(db, "c1", rows[0].path, 0, 0, 0) == rows[0]  # once per path
    by_call = recordings.for_calls(db, ["c1", "c3", "c9"])
    assert [r.id for r in by_call["c3"]] == [rows[2].id, rows[3].id] and "c9" not in by_call
    assert recordings.kept_bytes(db) == sum(r.bytes for r in rows)
    # default retention 90 days: c1 (400 days) and c3's first (100); c2's rule keeps it a year
    assert [r.id for r in recordings.expired(db, 90, NOW)] == [rows[0].id, rows[2].id]
    assert recordings.expired(db, 0, NOW) == []  # 0: for ever; c2 (100 days) is in its 365
    assert [r.id for r in recordings.oldest(db, 2)] == [rows[0].id, rows[1].id]

    assert recordings.delete(db, data, rows[0].id)
    assert not rows[0].file(data).exists()
    assert not recordings.delete(db, data, rows[0].id)  # once
    gone = recordings.get(db, rows[0].id)
    assert gone is not None and gone.deleted_reason == "user" and gone.deleted_at is not None
    assert rows[0].id not in [r.id for r in recordings.listing(db)]
    assert rows[0].id in [r.id for r in recordings.listing(db, include_deleted=True)]
    assert [r.id for r in recordings.listing(db, call_id="c3")] == [rows[3].id, rows[2].id]
