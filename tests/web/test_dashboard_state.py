"""The dashboard's state (`/dashboard/state`, which app.js renders) says what the page shows in
the page's language beside the codes: a `state_label` for each call, trunk and service, each
service's `detail`, and `phrases`, the counts as sentences with their plural forms; and the
talk time of the last 24 hours (`minutes_24h`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from appliance.store import cdrs, trunks
from appliance.store.db import open_db
from appliance.web import corectl
from tests.web.conftest import Pages

CORE = {
    "uptime": 120,
    "sip": "127.0.0.1:5060",
    "registrations": [{"aor": "101", "contact": "sip:101@x", "source": "udp:127.0.0.1:5070",
                       "user_agent": "", "expires_in": 300}],
    "calls": [
        {"id": "c1", "caller": "101", "dialled": "102", "state": "ringing", "answered_by": None,
         "direction": "internal", "trunk": None, "duration": 3.0, "codecs": ["PCMA"]},
        {"id": "c2", "caller": "103", "dialled": "104", "state": "answered", "answered_by": "104",
         "direction": "internal", "trunk": None, "duration": 65.0, "codecs": ["PCMA", "PCMA"]},
    ],
    "trunks": [{"name": "main", "state": "registered"}],
}  # fmt: skip


def call(ident: str, started: float, talk: float | None) -> cdrs.Cdr:
    answered = started + 5 if talk is not None else None
    return cdrs.Cdr(
        id=ident, started_at=started, ended_at=(answered or started + 5) + (talk or 0),
        caller="101", dialled="102", disposition="answered" if talk is not None else "busy",
        hangup_side="caller", hangup_cause="normal", answered_at=answered,
        answered_by="102" if talk is not None else None,
    )  # fmt: skip


@pytest.fixture
def box(admin: Pages, data: Path) -> Pages:
    now = time.time()
    db = open_db(data)
    try:
        trunks.add(db, "main", server="sip.example.net", username="u", password="Tr-Secret-77")
        trunks.add(db, "spare", server="sip.example.org", username="u", password="Tr-Secret-77",
                   enabled=False)  # fmt: skip
        cdrs.write(db, [
            call("a", now - 3600, 90.0), call("b", now - 1800, 45.5), call("c", now - 600, None),
            call("old", now - 2 * 86400, 600.0),  # older than a day: not counted
        ])  # fmt: skip
    finally:
        db.conn.close()
    return admin


def test_the_state_carries_labels_and_plural_phrases(
    box: Pages, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(corectl, "status", lambda: CORE)
    state: dict[str, Any] = box.get("/dashboard/state").get_json()
    assert [(c["state"], c["state_label"]) for c in state["calls"]] == [
        ("ringing", "ringing"),
        ("answered", "answered"),
    ]
    assert {t["name"]: (t["state"], t["state_label"]) for t in state["trunks"]} == {
        "main": ("registered", "registered"),
        "spare": ("disabled", "disabled"),
    }
    core, web = state["services"]
    assert (core["name"], core["state_label"], core["detail"]) == (
        "pbx-core", "running", "SIP 127.0.0.1:5060",
    )  # fmt: skip
    assert (web["name"], web["state_label"]) == ("pbx-web", "running")
    assert (state["calls_24h"], state["answered_24h"], state["minutes_24h"]) == (3, 2, 2)
    assert state["phrases"] == {
        "phones": "1 phone registered",
        "calls_now": "2 calls now",
        "calls_24h": "3 calls in the last 24 hours",
        "answered_24h": "2 answered",
        "minutes_24h": "2 minutes of talk",
    }


def test_without_the_core_the_state_says_so(box: Pages) -> None:
    state: dict[str, Any] = box.get("/dashboard/state").get_json()
    core, web = state["services"]
    assert (core["state"], core["state_label"]) == ("stopped", "stopped")
    assert core["detail"] == "registrations shown as stored"
    assert (web["state_label"], web["detail"].startswith("pid ")) == ("running", True)
    assert state["calls"] == []
    assert state["phrases"]["phones"] == "0 phones registered"
    assert state["phrases"]["calls_now"] == "0 calls now"


def test_the_dashboard_page_gets_the_same_phrases(box: Pages) -> None:
    page = box.get("/").get_data(as_text=True)
    assert "3 calls in the last 24 hours" in page
    assert "2 minutes of talk" in page
