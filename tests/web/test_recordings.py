"""Recordings on the setup page and in the API, over a real SQLite file and real Ogg/Opus
files: the Calls page's player and download link by role, HTTP range requests answered 206
with exactly the bytes asked for, every playback and download logged with the user, the rules
and storage settings page, and /api/v1/recordings."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import soundfile
from flask.testing import FlaskClient

from appliance.store import cdrs, events, recordings
from appliance.store.cdrs import Cdr
from appliance.store.db import open_db
from tests.web.conftest import Pages
from tests.web.test_api import Api, error, make_token

T0 = time.time() - 3600


def stereo_ogg(path: Path, seconds: float) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * 8000)) / 8000
    audio = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 1000 * t)], axis=1) * 0.3
    soundfile.write(str(path), audio, 8000, format="OGG", subtype="OPUS")
    return path.stat().st_size


def recorded_call(data: Path, call_id: str = "call1", seconds: float = 3.0) -> recordings.Recording:
    """An answered call in the CDRs with a recording on disk and its row."""
    db = open_db(data)
    try:
        cdrs.write(db, [Cdr(
            id=call_id, started_at=T0, answered_at=T0 + 2, ended_at=T0 + 2 + seconds,
            caller="101", dialled="102", answered_by="102", disposition="answered",
            hangup_side="caller", hangup_cause="normal",
        )])  # fmt: skip
        rel = recordings.relative_path(call_id, T0 + 2, 1)
        size = stereo_ogg(data / rel, seconds)
        return recordings.add(db, call_id, rel, T0 + 2, seconds, size)
    finally:
        db.conn.close()


def logged(data: Path) -> list[tuple[str, str, str]]:
    db = open_db(data)
    try:
        return [
            (e.kind, e.subject, e.data["user"])
            for e in reversed(events.recent(db, ("recording.played", "recording.downloaded")))
        ]
    finally:
        db.conn.close()


def test_the_calls_page_plays_with_ranges_and_logs_it(admin: Pages, data: Path) -> None:
    rec = recorded_call(data)
    whole = rec.file(data).read_bytes()
    page = admin.get("/calls").get_data(as_text=True)
    src = f"/recordings/{rec.id}/file"
    assert f'<audio controls preload="none" src="{src}"' in page
    assert f'href="{src}?download=1" download' in page

    client: FlaskClient = admin.client
    first = client.get(src, headers={"Range": "bytes=0-"})
    assert first.status_code == 206
    assert first.headers["Content-Range"] == f"bytes 0-{len(whole) - 1}/{len(whole)}"
    assert first.mimetype == "audio/ogg" and first.data == whole
    middle = client.get(src, headers={"Range": "bytes=100-1099"})
    assert middle.status_code == 206 and middle.data == whole[100:1100]
    assert middle.headers["Content-Range"] == f"bytes 100-1099/{len(whole)}"
    tail = client.get(src, headers={"Range": "bytes=-50"})
    assert tail.status_code == 206 and tail.data == whole[-50:]
    beyond = client.get(src, headers={"Range": f"bytes={len(whole) + 10}-"})
    assert beyond.status_code == 416
    plain = client.get(src)
    assert plain.status_code == 200 and plain.data == whole
    assert plain.headers["Accept-Ranges"] == "bytes"
    down = client.get(f"{src}?download=1")
    assert down.status_code == 200 and down.data == whole
    assert down.headers["Content-Disposition"].startswith("attachment;")
    assert f"call-call1-{rec.id}.ogg" in down.headers["Content-Disposition"]
    # one event per playback (the player's first request, and a plain GET) and download; the
    # seeking ranges are not playbacks
    assert logged(data) == [
        ("recording.played", str(rec.id), "admin"),
        ("recording.played", str(rec.id), "admin"),
        ("recording.downloaded", str(rec.id), "admin"),
    ]


def test_viewers_listen_only_when_allowed(admin: Pages, viewer: Pages, data: Path) -> None:
    rec = recorded_call(data)
    src = f"/recordings/{rec.id}/file"
    page = viewer.get("/calls").get_data(as_text=True)
    assert src not in page and "recorded" in page
    assert viewer.get(src).status_code == 403
    assert viewer.get("/recordings/").status_code == 403  # the rules page is the admin's
    assert logged(data) == []
    response = admin.submit("/recordings/", {
        "quota_mib": "100", "floor_mib": "50", "retention_days": "30", "feature_code": "*1",
        "viewers_listen": "y",
    }, "/recordings/settings")  # fmt: skip
    assert response.status_code == 302, response.get_data(as_text=True)
    assert src in viewer.get("/calls").get_data(as_text=True)
    heard = viewer.client.get(src, headers={"Range": "bytes=0-99"})
    assert heard.status_code == 206 and len(heard.data) == 100
    assert logged(data) == [("recording.played", str(rec.id), "viewer")]
    # deleted: gone from the page and the link answers 404
    assert admin.submit("/recordings/", {}, f"/recordings/{rec.id}/delete").status_code == 302
    assert not rec.file(data).exists()
    assert viewer.get(src).status_code == 404
    assert src not in admin.get("/calls").get_data(as_text=True)


def test_rules_and_settings_on_the_page(admin: Pages, data: Path) -> None:
    page = "/recordings/"
    response = admin.submit(
        page,
        {
            "match": "extension",
            "value": "101",
            "record": "1",
            "retention_days": "365",
            "consent": "y",
        },
        "/recordings/rules",
    )
    assert response.status_code == 302
    response = admin.submit(page, {"match": "direction", "value": "sideways", "record": "1"},
                            "/recordings/rules")  # fmt: skip
    assert response.status_code == 400
    assert "the direction must be one of inbound, outbound, internal" in response.get_data(
        as_text=True
    )
    response = admin.submit(page, {"quota_mib": "100", "floor_mib": "10", "retention_days": "7",
                                   "feature_code": "12"}, "/recordings/settings")  # fmt: skip
    assert response.status_code == 400
    assert "the feature code must be" in response.get_data(as_text=True)
    db = open_db(data)
    try:
        (rule,) = recordings.rules(db)
        assert (rule.match, rule.value, rule.record, rule.retention_days, rule.consent) == (
            "extension", "101", True, 365, True,
        )  # fmt: skip
        assert recordings.get_setting(db, "recording.quota_mib") == "2048"  # nothing half-saved
    finally:
        db.conn.close()
    html = admin.get(page).get_data(as_text=True)
    assert re.search(rf'<tr data-rule="{rule.id}">', html)
    assert admin.submit(page, {}, f"/recordings/rules/{rule.id}/delete").status_code == 302
    db = open_db(data)
    try:
        assert recordings.rules(db) == []
    finally:
        db.conn.close()


def test_the_api_lists_serves_ranges_and_deletes(admin: Pages, data: Path) -> None:
    rec = recorded_call(data)
    whole = rec.file(data).read_bytes()
    reader = Api(admin.client, make_token(data, "viewer"))
    writer = Api(admin.client, make_token(data, "admin"))
    listed = reader.get("/api/v1/recordings").get_json()["recordings"]
    assert [(r["id"], r["call_id"], r["format"], r["bytes"]) for r in listed] == [
        (rec.id, "call1", "ogg", len(whole))
    ]
    assert listed[0]["file"] == f"/api/v1/recordings/{rec.id}/file"
    assert reader.get("/api/v1/recordings?call_id=nope").get_json() == {"recordings": []}
    assert reader.get(f"/api/v1/recordings/{rec.id}").get_json()["seconds"] == 3.0
    # any token may fetch the file (the API's reads are every token's); logged with its name
    start = reader.get(f"/api/v1/recordings/{rec.id}/file", headers={"Range": "bytes=0-9"})
    assert start.status_code == 206 and start.data == whole[:10]
    part = writer.get(f"/api/v1/recordings/{rec.id}/file", headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.data == whole[10:20]  # seeking: not a new playback
    assert logged(data) == [("recording.played", str(rec.id), "token:viewer script")]
    error(reader.open("DELETE", f"/api/v1/recordings/{rec.id}"), 403)
    assert writer.open("DELETE", f"/api/v1/recordings/{rec.id}").status_code == 204
    assert not rec.file(data).exists()
    error(writer.get(f"/api/v1/recordings/{rec.id}/file"), 410)
    error(writer.get("/api/v1/recordings/999"), 404)
    made = writer.open("POST", "/api/v1/recording-rules", {"match": "did", "value": "+74951234567"})
    assert made.status_code == 201 and made.get_json()["record"] is True
    error(
        writer.open("POST", "/api/v1/recording-rules", {"match": "did", "value": "+74951234567"}),
        409,
    )
    error(writer.open("POST", "/api/v1/recording-rules", {"match": "caller", "value": "1"}), 400)
    assert [r["value"] for r in reader.get("/api/v1/recording-rules").get_json()["rules"]] == [
        "+74951234567"
    ]
    assert (
        writer.open("DELETE", f"/api/v1/recording-rules/{made.get_json()['id']}").status_code == 204
    )


def test_space_alerts_on_the_dashboard(admin: Pages, data: Path) -> None:
    db = open_db(data)
    try:
        events.write(db, [
            events.Event("recording.space", "recordings", {"quota": 2, "floor": 1,
                                                           "below_floor": False, "freed": 9}),
            events.Event("recording.space", "recordings", {"refused": True, "call": "c9"}),
        ])  # fmt: skip
    finally:
        db.conn.close()
    shown = admin.get("/dashboard/state").get_json()["alerts"]
    assert [a["text"] for a in shown] == [
        "A call was not recorded: the disk is at its free-space floor.",
        "Recordings were deleted to make room: 2 over the quota, 1 for the free-space floor.",
    ]
