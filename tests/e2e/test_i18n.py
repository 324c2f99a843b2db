"""The setup page in Russian in a real browser (Debian's Chromium, headless, `locale="ru-RU"`: it
sends Accept-Language ru-RU) against a real box started as the README starts it (`pbx run
--demo`: extensions 101-104 and the simulated board's analog ports 201-202 exist before anyone
logs in):

- the first-boot account form, the wizard (office; the phones, with the numbers it proposes)
  and the dashboard are in Russian, and so is every page reached from the menu (and every page
  those link to): no Latin word outside the allowed list (tests/web/i18n_text.py) in the text
  as rendered, after app.js ran;
- the wizard, completed with its defaults, creates every extension it proposed without an
  error (it used to propose 100-103 and fail on 101, the demo's);
- the user who switches to English gets every page in English (no Cyrillic but the data),
  and keeps English after logging out and in, in this browser and another; another user,
  whose browser says Russian, keeps Russian.

With PBX_SCREENSHOTS set, every page is saved at desktop and phone size in both languages as
docs/screenshots/PAGE-LANG-SIZE.png (see `shoot`)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from appliance import control
from appliance.store import dids, extensions, routes, settings, trunks, users
from appliance.store.db import open_db
from tests.conftest import CoreProcess, WebProcess
from tests.e2e.conftest import Box, new_context, shoot
from tests.web.i18n_text import page_language, report, untranslated

ADMIN = ("ivan", "Reception-Desk-2026!")
VIEWER = ("olga", "Accounts-Book-2026!")
OFFICE = "Стоматология «Улыбка»"
DEMO = ("101", "102", "103", "104", "201", "202")  # (201-202: the demo's FXS ports)
RUSSIAN = {"locale": "ru-RU"}


@pytest.fixture
def box(core_factory: type[CoreProcess], web_factory: type[WebProcess], tmp_path: Path) -> Box:
    """A fresh box as the README's `./setup.sh run` starts it: `pbx run --demo` (demo
    extensions 101-104, analog ports 201-202) beside `pbx web`; nobody has logged in yet."""
    data = tmp_path / "var"
    core = core_factory(data=data, run_args=("--demo",))
    core.start()
    db = open_db(data)
    try:
        if not extensions.list_all(db):  # (should --demo stop making them: the same case)
            for number in DEMO:
                extensions.add(db, number, f"Demo {number}")
        assert [e.number for e in extensions.list_all(db)] == list(DEMO)
    finally:
        db.conn.close()
    control.call(data, "reload")
    web = web_factory(data=data)
    web.start()
    return Box(core, web)


@pytest.fixture
def contexts() -> Iterator[ExitStack]:
    """Browser profiles the test opens (`open_page(contexts, ...)`), closed when it ends."""
    with ExitStack() as stack:
        yield stack


def open_page(stack: ExitStack, browser: Browser, box: Box, **options: str) -> Page:
    ctx: BrowserContext = new_context(browser, box, **options)
    stack.callback(ctx.close)
    return ctx.new_page()


def data_on_the_pages(box: Box) -> list[str]:
    """What the box holds and pages show as it is: names given by people (or the demo)."""
    db = open_db(box.data)
    try:
        names = [e.name for e in extensions.list_all(db)]
        names += [u.username for u in users.list_all(db)]
        names += [t.name for t in trunks.list_all(db)]  # (the demo's `city-line`)
    finally:
        db.conn.close()
    return [OFFICE, *filter(None, names)]


def page_name(url: str) -> str:
    """A page's name for its screenshot: its path without the objects' names and numbers
    (`/extensions/105/edit` -> `extensions-edit`; `/` -> `dashboard`)."""
    parts = [p for p in urlsplit(url).path.split("/") if p and not re.search(r"\d", p)]
    return "-".join(parts) or "dashboard"


class Reader:
    """Reads pages in one language: checks each, notes what is not in that language."""

    def __init__(self, box: Box, language: str) -> None:
        self.box, self.language = box, language
        self.found: dict[str, list[str]] = {}

    def read(self, page: Page, name: str) -> None:
        expect(page.locator("html")).to_have_attribute("lang", self.language)
        if page.locator("#live").count():  # the dashboard: once app.js has refreshed it
            expect(page.locator("#live")).to_have_attribute("data-updated", re.compile(r"\d"))
        html = page.content()
        words = untranslated(html, self.language, data_on_the_pages(self.box))
        self.found[f"{name} ({urlsplit(page.url).path})"] = words
        shoot(page, f"{name}-{self.language}")

    def walk(self, page: Page) -> list[str]:
        """Every page of the menu, and the pages they link to (one of each kind: one
        extension's edit page stands for all; not downloads, not the API), each read once;
        the paths read, in order."""
        menu = [a.get_attribute("href") or "" for a in page.locator("header nav a").all()]
        assert len(menu) >= 7, menu
        seen: dict[str, str] = {}  # page name -> path
        for url in menu:
            page.goto(url)
            seen[page_name(url)] = urlsplit(url).path
            self.read(page, page_name(url))
            links = page.locator("main a[href^='/']:not([download])")
            for href in [a.get_attribute("href") or "" for a in links.all()]:
                path = urlsplit(href).path
                if page_name(href) in seen or path.startswith("/api/") or "." in path:
                    continue
                page.goto(href)
                seen[page_name(href)] = path
                self.read(page, page_name(href))
        return list(seen.values())

    def wrong(self) -> str:
        """What was not in the language on the pages read ('' when all was)."""
        if not any(self.found.values()):
            return ""
        what = "untranslated words" if self.language == "ru" else "Cyrillic"
        return f"{what} on the {self.language} pages:\n{report(self.found)}"


def check(*readers: Reader) -> None:
    wrong = "\n".join(filter(None, (reader.wrong() for reader in readers)))
    if wrong:
        pytest.fail(wrong, pytrace=False)


def log_in(page: Page, username: str, password: str) -> None:
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("main button[type=submit]")
    expect(page.locator("header nav")).to_be_visible()


def log_out(page: Page) -> None:
    page.click("form.logout button[type=submit]")
    expect(page).to_have_url(re.compile(r"/login$"))


def stored_numbers(box: Box) -> list[str]:
    db = open_db(box.data)
    try:
        return [e.number for e in extensions.list_all(db)]
    finally:
        db.conn.close()


def first_boot(page: Page, reader: Reader, box: Box) -> list[str]:
    """Create the admin account and go through the wizard as a newcomer does: only the office's
    name typed, the phones as proposed; each page read. The extensions made."""
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/setup/account$"))
    reader.read(page, "first-boot-account")
    page.fill("#username", ADMIN[0])
    page.fill("#password", ADMIN[1])
    page.fill("#confirm", ADMIN[1])
    page.click("main button[type=submit]")

    expect(page).to_have_url(re.compile(r"/setup/office$"))
    reader.read(page, "wizard-office")
    page.fill("#office_name", OFFICE)
    page.click("main button[type=submit]")
    expect(page).to_have_url(re.compile(r"/setup/extensions$"))
    reader.read(page, "wizard-phones")
    first, count = page.input_value("#first"), int(page.input_value("#count"))
    assert first not in DEMO and count >= 1, (first, count)
    page.click("main button.primary")
    expect(page.locator(".phone-card")).to_have_count(count)
    expect(page.locator(".error, [role=alert]")).to_have_count(0)
    made = [n for n in stored_numbers(box) if n not in DEMO]
    assert len(made) == count and first in made, (first, count, made)
    for number in made:
        expect(page.locator(f"#pw-{number}")).to_have_text(re.compile(r"^\S{16,}$"))
    reader.read(page, "wizard-sheet")
    db = open_db(box.data)
    try:
        low, high = settings.get_int(db, "ext.number_min"), settings.get_int(db, "ext.number_max")
        assert all(low <= int(n) <= high for n in made), (low, high, made)
        # The office's language, proposed as the one the wizard was read in.
        assert settings.get_str(db, "office.language") == reader.language
    finally:
        db.conn.close()
    return made


def furnish(box: Box) -> None:
    """A trunk (to an address nobody answers at), an office number and a route, told to the
    core; named with digits, like data the page shows as it is."""
    db = open_db(box.data)
    try:
        trunks.add(db, "77", kind="ip", server="192.0.2.1:5060")
        dids.add(db, "+74951234567", "extension:101", trunk="77")
        routes.add(db, "8", ["8XXXXXXXXXX"], ["77"], caller_id="+74951234567")
    finally:
        db.conn.close()
    control.call(box.data, "reload")


def test_a_fresh_box_in_russian_the_wizard_with_its_defaults_then_each_users_language(
    box: Box, browser: Browser, contexts: ExitStack
) -> None:
    russian = Reader(box, "ru")
    page = open_page(contexts, browser, box, **RUSSIAN)
    first_boot(page, russian, box)

    # The dashboard, and every page from the menu (with a trunk, a number and a route, so that
    # their tables, edit pages and the dashboard's live trunk states have something to show).
    furnish(box)
    page.goto("/")
    expect(page.locator("h1")).to_have_text(OFFICE)
    russian.read(page, "dashboard")
    pages = russian.walk(page)
    assert {"/", "/extensions/", "/trunks/", "/numbers/", "/routes/", "/calls", "/system"} <= {
        urlsplit(p).path for p in pages
    }, pages

    # Ivan switches to English: every page is in English, and stays so.
    english = Reader(box, "en")
    page.goto("/extensions/")
    page.click("form.language button[value=en]")
    expect(page).to_have_url(re.compile(r"/extensions/$"))
    english.read(page, "extensions")
    english.walk(page)
    log_out(page)
    english.read(page, "login")
    log_in(page, *ADMIN)
    expect(page.locator("html")).to_have_attribute("lang", "en")
    elsewhere = open_page(contexts, browser, box, **RUSSIAN)  # another browser, in Russian
    log_in(elsewhere, *ADMIN)
    expect(elsewhere.locator("html")).to_have_attribute("lang", "en")

    # Another user, whose browser says Russian, keeps Russian.
    db = open_db(box.data)
    users.add(db, *VIEWER, "viewer")
    db.conn.close()
    olga = open_page(contexts, browser, box, **RUSSIAN)
    log_in(olga, *VIEWER)
    russian.read(olga, "viewer-dashboard")
    olga.goto("/extensions/")
    russian.read(olga, "viewer-extensions")
    log_out(olga)
    log_in(olga, *VIEWER)
    expect(olga.locator("html")).to_have_attribute("lang", "ru")
    assert page_language(olga.content()) == "ru"

    check(russian, english)


def test_a_fresh_box_in_english(box: Box, browser: Browser, contexts: ExitStack) -> None:
    """The same first boot in an English browser: every page in English."""
    english = Reader(box, "en")
    first_boot(open_page(contexts, browser, box, locale="en-US"), english, box)
    check(english)


def test_the_login_page_in_russian_and_the_choice_made_there_kept(
    box: Box, browser: Browser, contexts: ExitStack
) -> None:
    """A user who picks Russian on the login page of an English browser gets Russian after
    logging in, and in another English browser too."""
    db = open_db(box.data)
    users.add_first_admin(db, *ADMIN)
    settings.set_text(db, "web.setup_done", "1")
    db.conn.close()
    page = open_page(contexts, browser, box, locale="en-US")
    page.goto("/login")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.click("form.language button[value=ru]")
    reader = Reader(box, "ru")
    reader.read(page, "login")
    page.fill("#username", ADMIN[0])
    page.fill("#password", "Wrong-Password-1")
    page.click("main button[type=submit]")
    expect(page.locator("#password-error")).to_be_visible()
    reader.read(page, "login-refused")
    log_in(page, *ADMIN)
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    other = open_page(contexts, browser, box, locale="en-US")
    log_in(other, *ADMIN)
    expect(other.locator("html")).to_have_attribute("lang", "ru")
    check(reader)
