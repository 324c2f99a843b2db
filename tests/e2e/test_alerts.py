"""The dashboard's toll-fraud alerts in a real browser against a real box: an event the core's
outbox wrote appears on the open dashboard at its next refresh (app.js redraws the list from
the state, with the acknowledge button), and pressing the button makes it go."""

from __future__ import annotations

import time

from playwright.sync_api import Page, expect

from appliance.store import events
from appliance.store.db import open_db
from tests.e2e.conftest import Box, shoot
from tests.e2e.test_trunks_page import login
from tests.web.conftest import ADMIN, prepare


def test_an_alert_appears_live_and_goes_when_acknowledged(box: Box, page: Page) -> None:
    prepare(box.data)
    login(page, *ADMIN)
    page.goto("/")
    expect(page.locator("#alerts")).to_be_hidden()
    db = open_db(box.data)
    try:  # as the core writes it, while the page is open
        events.write(db, [events.Event(
            "tollfraud.new_country", "NG",
            {"number": "+2348012345678", "caller": "101", "call": "c1"}, time.time(),
        )])  # fmt: skip
    finally:
        db.conn.close()
    alert = page.locator("#alerts li.alert")
    expect(alert).to_contain_text("First call to a new country: NG (+2348012345678, from")
    shoot(page, "30-dashboard-alert")
    alert.get_by_role("button", name="Acknowledge").click()
    expect(page.locator(".flash")).to_contain_text("Alert acknowledged.")
    expect(page.locator("#alerts")).to_be_hidden()
