"""Toll fraud on the setup page, the API and the CLI: the dashboard shows the outbox's alerts
(a first call to a new country, a limit reached) in the page's language until an admin
acknowledges them (a viewer sees them and cannot); an extension's limit of outbound calls is
edited on its page, by the API and with `pbx ext set`, with refusals in both languages."""

from __future__ import annotations

import time
from pathlib import Path

from appliance.store import events, extensions
from appliance.store.db import open_db
from tests.conftest import pbx_cli
from tests.web.conftest import Pages, add_extensions
from tests.web.test_api import API, Api, error, make_token
from tests.web.test_i18n import choose, html, text


def emit(data: Path) -> tuple[int, int]:
    """Two alerts as the core writes them: a new country, and the daily ceiling reached."""
    db = open_db(data)
    try:
        now = time.time()
        events.write(db, [
            events.Event("tollfraud.new_country", "UK",
                         {"number": "+442079460958", "caller": "101", "call": "c1"}, now - 60),
            events.Event("tollfraud.limit", "101",
                         {"limit": "international_minutes", "action": "cut", "value": 300,
                          "number": "+2348012345678", "call": "c2"}, now - 30),
            events.Event("call.other", "x", {}, now),  # no alert
        ])  # fmt: skip
        first, second = (e.id for e in reversed(events.recent(db, events.ALERT_KINDS)))
        return first, second
    finally:
        db.conn.close()


NEW_COUNTRY = "First call to a new country: United Kingdom (+442079460958, from extension 101)."
CUT = (
    "The daily limit of 300 international minutes was reached: the call from 101 to"
    " +2348012345678 was cut."
)


def test_the_dashboard_shows_alerts_until_an_admin_acknowledges_them(
    admin: Pages, viewer: Pages, data: Path
) -> None:
    country, cut = emit(data)
    page = text(admin.get("/"))
    assert NEW_COUNTRY in page and CUT in page
    state = admin.get("/dashboard/state").get_json()
    assert [(a["id"], a["text"]) for a in state["alerts"]] == [(cut, CUT), (country, NEW_COUNTRY)]

    # A viewer sees them, without the button, and may not acknowledge.
    seen = html(viewer.get("/"))
    assert NEW_COUNTRY in text(viewer.get("/")) and "alert-ack" not in seen
    assert f"/alerts/{country}/acknowledge" not in seen
    refused = viewer.submit("/", {}, action=f"/alerts/{country}/acknowledge")  # its own token
    assert refused.status_code == 403

    answer = admin.submit("/", {}, action=f"/alerts/{country}/acknowledge")
    assert answer.status_code == 302
    page = text(admin.get("/"))
    assert "Alert acknowledged." in page
    assert NEW_COUNTRY not in page and CUT in page
    assert [a["id"] for a in admin.get("/dashboard/state").get_json()["alerts"]] == [cut]
    again = admin.submit("/", {}, action=f"/alerts/{country}/acknowledge")
    assert "That alert was acknowledged already." in text(admin.get(again.headers["Location"]))
    db = open_db(data)
    (done,) = [e for e in events.recent(db) if e.id == country]
    assert done.acknowledged_by == "admin" and done.acknowledged_at is not None


def test_alerts_speak_russian(admin: Pages, data: Path) -> None:
    emit(data)
    choose(admin, "ru", "/")
    page = text(admin.get("/"))
    assert "Первый звонок в новую страну: Великобритания (+442079460958" in page
    assert "Дневной предел в 300 международных минут исчерпан" in page
    assert "Принять к сведению" in page
    state = admin.get("/dashboard/state").get_json()
    assert state["alerts"][0]["text"].startswith("Дневной предел")


def test_an_extensions_limit_is_edited_on_its_page(admin: Pages, data: Path) -> None:
    add_extensions(data, "150")
    page = "/extensions/150/edit"
    assert "Outside calls at once" in text(admin.get(page))
    answer = admin.submit(page, {"name": "Desk", "max_outbound_calls": "3"})
    assert answer.status_code == 302
    db = open_db(data)
    ext = extensions.get(db, "150")
    assert ext is not None and ext.max_outbound_calls == 3
    assert 'value="3"' in html(admin.get(page))
    admin.submit(page, {"name": "Desk", "max_outbound_calls": ""})  # back to the default
    ext = extensions.get(db, "150")
    assert ext is not None and ext.max_outbound_calls is None

    refused = text(admin.submit(page, {"name": "Desk", "max_outbound_calls": "lots"}))
    assert ("max outbound calls must be a whole number from 0 (no limit) to 1000, or empty for"
            " the default") in refused  # fmt: skip
    choose(admin, "ru", page)
    refused = text(admin.submit(page, {"name": "Desk", "max_outbound_calls": "1001"}))
    assert "число внешних звонков должно быть целым от 0 (без ограничения) до 1000" in refused
    assert "Внешних звонков одновременно" in refused


def test_an_extensions_limit_by_the_api(app: object, admin: Pages, data: Path) -> None:
    add_extensions(data, "150")
    api = Api(admin.client, make_token(data, "admin"))
    url = f"{API}/extensions/150"
    assert api.get(url).get_json()["max_outbound_calls"] is None
    changed = api.open("PATCH", url, {"max_outbound_calls": 4})
    assert changed.status_code == 200 and changed.get_json()["max_outbound_calls"] == 4
    assert api.open("PATCH", url, {"max_outbound_calls": None}).get_json()[
        "max_outbound_calls"
    ] is None  # fmt: skip
    assert error(api.open("PATCH", url, {"max_outbound_calls": "4"}), 400) == (
        "max_outbound_calls must be a whole number or null"
    )
    assert error(api.open("PATCH", url, {"max_outbound_calls": 1001}), 400) == (
        "max outbound calls must be a whole number from 0 (no limit) to 1000, or empty for the"
        " default"
    )


def test_an_extensions_limit_with_the_cli(tmp_path: Path) -> None:
    pbx_cli(tmp_path, "ext", "add", "201", "--name", "Reception")
    out = pbx_cli(tmp_path, "ext", "set", "201", "--max-calls", "3").stdout
    assert "outbound calls at once 3" in out
    assert "at most 3 outbound calls" in pbx_cli(tmp_path, "ext", "list").stdout
    out = pbx_cli(tmp_path, "ext", "set", "201", "--max-calls", "default").stdout
    assert "outbound calls at once the default (tollfraud.max_outbound_calls)" in out
    bad = pbx_cli(tmp_path, "ext", "set", "201", "--max-calls", "-1", check=False)
    assert bad.returncode != 0
    assert "max outbound calls must be a whole number from 0 (no limit) to 1000" in bad.stderr
    bad = pbx_cli(tmp_path, "config", "set", "tollfraud.international_minutes_per_day", "x",
                  check=False)  # fmt: skip
    assert "tollfraud.international_minutes_per_day must be a whole number" in bad.stderr
