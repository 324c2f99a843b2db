"""Trunks, the office's numbers and outbound routes in a real browser (Debian's Chromium,
headless) against a real box: a trunk added on its page and tested with the Test button (the
answer swapped into the page without reloading it), a DID refused because it is an
extension's number and then added, two routes added and one dragged above the other with the
new order saved, an extension's permissions and caller ID, and the dashboard's trunks.

Every page is checked at desktop and phone size, and saved under docs/screenshots/ when asked
(`PBX_SCREENSHOTS`, see `shoot`)."""

from __future__ import annotations

import re
import socket

from playwright.sync_api import Page, expect

from appliance import control
from appliance.store import extensions, routes, trunks
from appliance.store.db import open_db
from tests.e2e.conftest import Box, shoot
from tests.web.conftest import ADMIN, add_extensions, prepare


def closed_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def login(page: Page, username: str, password: str) -> None:
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("main button[type=submit]")
    expect(page.locator("header nav")).to_be_visible()


def test_trunk_number_and_routes_set_up_on_the_pages_and_a_route_dragged_above_another(
    box: Box, page: Page
) -> None:
    prepare(box.data)
    add_extensions(box.data, "100", "101")
    control.call(box.data, "reload")
    login(page, *ADMIN)

    # A trunk: added on its page, then tested (a closed port: no answer, and no reload).
    page.get_by_role("link", name="Trunks").click()
    expect(page.locator("#trunks")).to_contain_text("No trunks yet.")
    page.click("text=Add trunk")
    page.fill("#name", "city")
    page.select_option("#kind", "ip")
    page.fill("#server", f"127.0.0.1:{closed_udp_port()}")
    page.click("details.more summary")
    page.fill("#max_calls", "4")
    shoot(page, "17-trunk-new")
    page.click("main button[type=submit]")
    expect(page).to_have_url(re.compile(r"/trunks/$"))
    row = page.locator("#trunks tr[data-name='city']")
    expect(row).to_contain_text("0 / 4")
    page.evaluate("window.sameDocument = true")  # gone if the page reloads
    row.get_by_role("button", name="Test").click()
    result = page.locator("#trunk-test")
    expect(result).to_contain_text("Test of trunk city", timeout=12_000)
    expect(result).to_contain_text("no answer")
    expect(result.locator(".state")).to_have_text(re.compile(r"^(unknown|unreachable)$"))
    assert page.evaluate("window.sameDocument") is True, "the Test button reloaded the page"
    shoot(page, "18-trunk-test")

    # A number: 100 is an extension's, refused naming it; then the office's real number.
    page.get_by_role("link", name="Numbers").click()
    page.click("text=Add number")
    page.fill("#number", "100")
    page.fill("#label", "Main line")
    page.select_option("#destination", "extension:101")
    page.select_option("#trunk", "city")
    page.click("main button[type=submit]")
    expect(page.locator("#number-error")).to_have_text("100 is already extension 100 (Phone 100)")
    expect(page.locator("#label")).to_have_value("Main line")  # what was typed is kept
    shoot(page, "19-number-refused")
    page.fill("#number", "+1 (212) 555-0100")
    page.click("main button[type=submit]")
    expect(page).to_have_url(re.compile(r"/numbers/$"))
    expect(page.locator("#dids tr[data-number='+12125550100']")).to_contain_text(
        "extension 101 (Phone 101)"
    )
    shoot(page, "20-numbers")

    # Two routes, then the second dragged above the first.
    for name, patterns in (("local", "NXXXXXX"), ("intl", "011.\n1NXXNXXXXXX")):
        page.get_by_role("link", name="Routes").click()
        page.click("text=Add route")
        page.fill("#name", name)
        page.fill("#patterns", patterns)
        page.select_option("#trunks-0", "city")
        if name == "intl":
            page.select_option("#caller_id", "+12125550100")
            shoot(page, "21-route-new")
        page.click("main button[type=submit]")
        expect(page).to_have_url(re.compile(r"/routes/$"))
    names = page.locator("#routes tbody tr")
    expect(names).to_have_count(2)
    assert [r.get_attribute("data-name") for r in names.all()] == ["local", "intl"]
    page.evaluate("window.sameDocument = true")
    page.locator("tr[data-name='intl']").drag_to(
        page.locator("tr[data-name='local']"), target_position={"x": 30, "y": 4}
    )
    expect(page.locator("#flashes")).to_contain_text("Route intl is now number 1.")
    assert page.evaluate("window.sameDocument") is True, "the drop reloaded the page"
    expect(page.locator("#routes tbody tr").first).to_have_attribute("data-name", "intl")
    db = open_db(box.data)
    assert [r.name for r in routes.list_all(db)] == ["intl", "local"]  # the order was saved
    db.conn.close()
    page.reload()
    assert [r.get_attribute("data-name") for r in page.locator("#routes tbody tr").all()] == [
        "intl", "local",
    ]  # fmt: skip
    shoot(page, "22-routes")
    page.get_by_role("button", name="Move intl down").click()  # the same without dragging
    expect(page.locator("#routes tbody tr").first).to_have_attribute("data-name", "local")

    # An extension may call abroad and shows the office number.
    page.goto("/extensions/101/edit")
    expect(page.locator("#permissions-0")).to_be_disabled()
    page.check("#permissions-4")  # international
    page.select_option("#caller_id", "+12125550100")
    shoot(page, "23-extension-edit")
    page.click("main button[type=submit]")
    expect(page.locator("#extensions tr[data-number='101']")).to_contain_text("international")
    db = open_db(box.data)
    ext = extensions.get(db, "101")
    db.conn.close()
    assert ext is not None and "international" in ext.permissions
    assert ext.caller_id == "+12125550100"

    page.goto("/")
    expect(page.locator("#trunks tr[data-name='city']")).to_contain_text("city")
    expect(page.locator("#trunks tr[data-name='city'] .state")).to_have_text(
        re.compile(r"^(unknown|unreachable)$")
    )
    shoot(page, "24-dashboard-trunks")
    # The panel follows the core without a reload: the trunk taken out of use shows so.
    page.evaluate("window.sameDocument = true")
    db = open_db(box.data)
    trunks.update(db, "city", enabled=False)
    db.conn.close()
    control.call(box.data, "reload")
    expect(page.locator("#trunks tbody tr", has_text="city").locator(".state")).to_have_text(
        "disabled", timeout=10_000
    )
    assert page.evaluate("window.sameDocument") is True, "the dashboard reloaded itself"
