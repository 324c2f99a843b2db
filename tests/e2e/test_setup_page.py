"""The setup page in a real browser (Debian's Chromium, headless) against a real box: first boot,
the wizard, an extension whose shown password a real SIP client (sipp) registers with, the
dashboard updating without a reload, a call in the CDR list, a viewer refused everywhere it
could change something, a form without its CSRF token refused, and the login lock-out.

Every page is checked at desktop and phone size, and saved under docs/screenshots/ when asked
(`PBX_SCREENSHOTS`, see `shoot`)."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

from appliance import control
from appliance.store import extensions
from appliance.store.db import open_db
from appliance.web import create_app
from tests.e2e.conftest import Box, shoot
from tests.interop.call_records import wait_cdrs
from tests.interop.sipp import SippPeers, credentials, free_media_port, free_port, run_sipp
from tests.web.conftest import ADMIN, VIEWER, add_extensions, prepare
from tests.web.test_access import routes

ADMIN_PASSWORD = "Install-2026-Box"


def login(page: Page, username: str, password: str) -> None:
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("main button[type=submit]")
    expect(page.locator("header nav")).to_be_visible()


def installed(box: Box, *numbers: str) -> dict[str, str]:
    """The box after its wizard (admin and viewer exist), with extensions `numbers`; the
    running core is told, as the page would."""
    prepare(box.data)
    passwords = add_extensions(box.data, *numbers)
    control.call(box.data, "reload")
    return passwords


def register(box: Box, number: str, password: str, tmp_path: Path) -> int:
    """Register `number` with sipp from a port of its own; return that port."""
    port = free_port()
    run = run_sipp(
        "register.xml", box.sip, [[number, credentials(number, password), 3600]],
        workdir=tmp_path, port=port,
    )  # fmt: skip
    run.assert_passed()
    assert run.statuses == [401, 200], run.describe()
    return port


def test_first_boot_wizard_then_a_phone_registers_with_the_password_the_page_showed(
    box: Box, page: Page, tmp_path: Path
) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/setup/account$"))
    expect(page.locator("h1")).to_contain_text("create the admin account")
    shoot(page, "01-first-boot-account")

    page.fill("#password", "short1A")
    page.fill("#confirm", "short1A")
    page.click("main button[type=submit]")
    expect(page.locator("#password-error")).to_contain_text("at least 10 characters")
    expect(page.locator("#username")).to_have_value("admin")  # what was typed is kept
    page.fill("#password", ADMIN_PASSWORD)
    page.fill("#confirm", ADMIN_PASSWORD)
    page.click("main button[type=submit]")

    expect(page).to_have_url(re.compile(r"/setup/office$"))
    expect(page.locator("#sip-server")).to_contain_text(f"{box.core.host}:{box.core.port}")
    page.fill("#office_name", "Acme Dental")
    page.select_option("#country", "DE")
    page.select_option("#timezone", "Europe/Berlin")
    page.fill("#number_min", "100")
    page.fill("#number_max", "199")
    shoot(page, "02-wizard-office")
    page.click("main button[type=submit]")

    expect(page).to_have_url(re.compile(r"/setup/extensions$"))
    expect(page.locator("#first")).to_have_value("100")
    page.fill("#count", "2")
    shoot(page, "03-wizard-phones")
    page.click("main button.primary")
    expect(page.locator(".phone-card")).to_have_count(2)
    expect(page.locator("#pw-100")).to_have_text(re.compile(r"^\S{16}$"))
    page.get_by_role("link", name="Done").click()
    expect(page.locator("h1")).to_have_text("Acme Dental")

    page.goto("/extensions/new")
    page.fill("#number", "150")
    page.fill("#name", "Reception")
    shoot(page, "04-extension-new")
    page.click("main button[type=submit]")
    expect(page.locator(".phone-card")).to_have_count(1)
    expect(page.locator(".phone-card .server")).to_have_text(f"{box.core.host}:{box.core.port}")
    password = page.inner_text("#pw-150").strip()
    shoot(page, "05-phone-sheet")

    page.goto("/")
    expect(page.locator("#registrations")).to_contain_text("No phone is registered.")
    page.evaluate("window.sameDocument = true")  # gone if the page reloads
    register(box, "150", password, tmp_path)
    expect(page.locator("#registrations tbody")).to_contain_text("150", timeout=10_000)
    expect(page.locator("#reg-count")).to_have_text("1")
    assert page.evaluate("window.sameDocument") is True, "the dashboard reloaded itself"
    expect(page.locator("#services")).to_contain_text("running")
    shoot(page, "06-dashboard")

    page.goto("/extensions/")
    expect(page.locator("tr[data-number='150']")).to_contain_text("yes (1)")
    shoot(page, "07-extensions")


def test_the_dashboard_shows_a_live_call_and_the_calls_page_lists_it(
    box: Box, page: Page, tmp_path: Path
) -> None:
    passwords = installed(box, "101", "102")
    peers = SippPeers(box.sip, tmp_path)
    try:
        port = register(box, "102", passwords["102"], tmp_path)
        media = free_media_port()
        callee = peers.start("call_uas_answer.xml", [[media, 200, 1, 0]], port=port,
                             media_port=media)  # fmt: skip
        login(page, *ADMIN)
        caller = peers.start(
            "call_uac.xml", [["101", credentials("101", passwords["101"]), 6000, "102",
                              "Alice", "", 1]],
            port=free_port(), media_port=free_media_port(),
        )  # fmt: skip
        live = page.locator("#calls tbody tr", has_text="answered")
        expect(live).to_contain_text("101", timeout=10_000)
        expect(live).to_contain_text("PCMU / PCMU")
        expect(page.locator("#call-count")).to_have_text("1")
        shoot(page, "08-dashboard-live-call")
        caller.wait().assert_passed()
        callee.wait().assert_passed()
    finally:
        peers.close()
    expect(page.locator("#calls tbody")).to_contain_text("No calls right now.", timeout=10_000)

    wait_cdrs(box.data, lambda rows: len(rows) == 1)
    page.goto("/calls")
    row = page.locator("#cdrs tbody tr").first
    expect(row).to_contain_text("101")
    expect(row).to_contain_text("102")
    expect(row).to_contain_text("answered")
    expect(row).to_contain_text("PCMU / PCMU")
    shoot(page, "09-calls")
    page.select_option("#disposition", "busy")
    page.click("form.filters button[type=submit]")
    expect(page.locator("#cdrs tbody")).to_contain_text("No calls match.")
    with page.expect_download() as download:
        page.goto("/calls")
        page.click("text=Export CSV")
    csv_text = Path(download.value.path()).read_text()
    assert csv_text.startswith("id,started,") and ",101,Phone 101,102,102,answered," in csv_text


def test_a_viewer_cannot_reach_any_editing_route(box: Box, page: Page) -> None:
    installed(box, "150")
    login(page, *VIEWER)
    page.goto("/extensions/")
    expect(page.locator("#extensions")).to_contain_text("150")
    expect(page.locator("text=Add extension")).to_have_count(0)
    shoot(page, "10-viewer-extensions")
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert token

    app = create_app({"DATA_DIR": box.data})
    checked = {}
    for method, url in routes(app, "admin"):
        if url.startswith("/api/"):
            continue  # token-authenticated: tests/web/test_api.py
        response = page.request.fetch(url, method=method, form={"csrf_token": token},
                                      max_redirects=0)  # fmt: skip
        checked[f"{method} {url}"] = response.status
    assert len(checked) >= 15 and set(checked.values()) == {403}, checked
    page.goto("/extensions/150/edit")
    expect(page.locator("h1")).to_have_text("403 Forbidden")
    shoot(page, "11-viewer-forbidden")
    db = open_db(box.data)
    assert [e.number for e in extensions.list_all(db)] == ["150"]  # nothing changed
    db.conn.close()


def test_a_form_posted_without_its_csrf_token_is_rejected(box: Box, page: Page) -> None:
    installed(box)
    login(page, *ADMIN)
    response = page.request.post("/extensions/new", form={"number": "160", "name": "Forged"})
    assert response.status == 400
    assert "CSRF" in response.text()
    page.goto("/extensions/")
    expect(page.locator("#extensions")).not_to_contain_text("160")
    # The same form with its token works: the refusal was the token's doing.
    page.goto("/extensions/new")
    page.fill("#number", "160")
    page.click("main button[type=submit]")
    expect(page.locator(".phone-card")).to_have_count(1)


def test_login_locks_out_after_repeated_failures(box: Box, page: Page) -> None:
    installed(box)
    page.goto("/login")
    shoot(page, "12-login")
    for attempt in range(1, 6):
        page.fill("#username", "admin")
        page.fill("#password", f"wrong-guess-{attempt}")
        page.click("main button[type=submit]")
        message = "Wrong user name" if attempt < 5 else "Too many failed logins"
        expect(page.locator("#password-error")).to_contain_text(message)
    page.fill("#username", ADMIN[0])
    page.fill("#password", ADMIN[1])  # right, but too late
    page.click("main button[type=submit]")
    expect(page.locator("#password-error")).to_contain_text("Too many failed logins")
    expect(page).to_have_url(re.compile(r"/login$"))
    shoot(page, "13-login-locked")


def test_system_page_users_tokens_and_backup(box: Box, page: Page) -> None:
    installed(box, "150")
    login(page, *ADMIN)
    page.goto("/system")
    page.fill("#user-username", "anna")
    page.fill("#user-password", "weakpassword")
    page.click("text=Add user")
    expect(page.locator("#user-password-error")).to_contain_text("too weak")
    expect(page.locator("#user-username")).to_have_value("anna")
    shoot(page, "14-system-form-error")
    page.fill("#user-password", "Reads-Calls-2026")
    page.click("text=Add user")
    expect(page.locator("#users")).to_contain_text("anna")

    page.fill("#token-name", "CRM")
    page.select_option("#token-role", "admin")
    page.click("text=Create token")
    clear = page.inner_text("#token").strip()
    assert clear.startswith("pbx_") and len(clear) > 40
    shoot(page, "15-token-created")
    page.goto("/system")
    expect(page.locator("#tokens")).to_contain_text("CRM")
    assert clear not in page.content()
    response = page.request.get("/api/v1/extensions", headers={"Authorization": f"Bearer {clear}"})
    assert response.status == 200 and response.json()["extensions"][0]["number"] == "150"
    shoot(page, "16-system")

    with page.expect_download() as download:
        page.click("text=Download backup")
    backup = Path(download.value.path()).read_text()
    assert '"format": "pbx-appliance-backup"' in backup and clear not in backup
