"""A call's recording played on the Calls page in a real Chromium against a real box: the
player fetches the Ogg/Opus file by HTTP range requests, learns its duration, and its
`currentTime` advances while it plays; seeking works (the server answers ranges); the playback
is in the access log with the user."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import soundfile
from playwright.sync_api import Page, expect

from appliance.store import cdrs, events, recordings
from appliance.store.cdrs import Cdr
from appliance.store.db import open_db
from tests.e2e.conftest import Box, shoot
from tests.e2e.test_trunks_page import login
from tests.web.conftest import ADMIN, prepare

SECONDS = 6.0


def recorded_call(data: Path) -> recordings.Recording:
    started = time.time() - 600
    db = open_db(data)
    try:
        cdrs.write(db, [Cdr(
            id="e2e-call", started_at=started, answered_at=started + 3,
            ended_at=started + 3 + SECONDS, caller="101", dialled="102", answered_by="102",
            disposition="answered", hangup_side="caller", hangup_cause="normal",
        )])  # fmt: skip
        rel = recordings.relative_path("e2e-call", started + 3, 1)
        path = data / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(int(SECONDS * 8000)) / 8000
        audio = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 1000 * t)], axis=1)
        soundfile.write(str(path), audio * 0.3, 8000, format="OGG", subtype="OPUS")
        return recordings.add(db, "e2e-call", rel, started + 3, SECONDS, path.stat().st_size)
    finally:
        db.conn.close()


def test_the_calls_page_plays_a_recording(box: Box, page: Page) -> None:
    prepare(box.data)
    rec = recorded_call(box.data)
    login(page, *ADMIN)
    ranges: list[str] = []
    page.on(
        "request",
        lambda r: ranges.append(r.headers.get("range", "")) if "/recordings/" in r.url else None,
    )
    page.goto("/calls")
    player = page.locator(f'audio[data-recording="{rec.id}"]')
    expect(player).to_be_visible()
    expect(page.locator("#cdrs").get_by_role("link", name="Download")).to_have_attribute(
        "href", f"/recordings/{rec.id}/file?download=1"
    )
    shoot(page, "calls-recording")
    player.evaluate("a => { a.muted = true; return a.play(); }")
    page.wait_for_function(
        "a => a.duration > 0 && Number.isFinite(a.duration)", arg=player.element_handle()
    )
    duration = player.evaluate("a => a.duration")
    assert abs(duration - SECONDS) < 0.5, duration
    first = player.evaluate("a => a.currentTime")
    page.wait_for_function(
        "([a, t]) => a.currentTime > t + 0.5", arg=[player.element_handle(), first]
    )
    assert player.evaluate("a => a.error") is None
    # a seek near the end: the browser asks for it by range, and it plays on from there
    player.evaluate("a => { a.currentTime = 4.5; }")
    page.wait_for_function("a => a.currentTime >= 4.5 && !a.seeking", arg=player.element_handle())
    assert any(r.startswith("bytes=") for r in ranges), ranges
    db = open_db(box.data)
    try:
        played = events.recent(db, ("recording.played",))
    finally:
        db.conn.close()
    assert played and all(e.data["user"] == "admin" and e.subject == str(rec.id) for e in played)
