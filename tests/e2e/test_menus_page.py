"""The Menus page in a real Chromium against a real box, in Russian: a menu is made on the page
(its greeting picked from the Russian pack and heard first: the <audio> element loads the WAV,
learns its length and plays, its currentTime advancing), and it then shows in the tree with the
menu its key leads to nested under that key."""

from __future__ import annotations

import wave
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from appliance import tts
from appliance.store import menus, prompts, settings
from appliance.store.db import open_db
from appliance.store.menus import Menu
from tests.e2e.conftest import Box, new_context, shoot
from tests.e2e.test_trunks_page import login
from tests.web.conftest import ADMIN, add_extensions, prepare

PROMPT = Path("/usr/share/asterisk/sounds/ru_RU_f_IvrvoiceRU/hello-world.wav")


def russian_box(data: Path) -> None:
    prepare(data)
    add_extensions(data, "101")
    db = open_db(data)
    try:
        settings.set_value(db, "office.language", "ru")
        menus.save_menu(db, Menu("sales", "Sales", "sound:hello-world"), create=True)
    finally:
        db.conn.close()


def test_a_menu_is_made_on_the_russian_page_its_greeting_heard_first(
    box: Box, browser: Browser
) -> None:
    russian_box(box.data)
    with wave.open(str(PROMPT)) as wav:
        seconds = wav.getnframes() / wav.getframerate()
    ctx = new_context(browser, box, locale="ru-RU")
    try:
        page: Page = ctx.new_page()
        login(page, *ADMIN)
        assert page.locator("html").get_attribute("lang") == "ru"
        page.goto("/menus/new")
        page.fill("#name", "main")
        page.fill("#label", "Главное")
        page.fill("#greeting", "sound:hello-world")
        page.select_option("#key_1", "ivr:sales")
        page.select_option("#key_2", "extension:101")
        page.locator('button.preview[data-for="greeting"]').click()
        player = page.locator('audio.preview-audio[data-for="greeting"]')
        expect(player).to_be_visible()
        handle = player.element_handle()
        page.wait_for_function("a => a.duration > 0 && Number.isFinite(a.duration)", arg=handle)
        assert abs(player.evaluate("a => a.duration") - seconds) < 0.1
        assert player.evaluate("a => a.currentSrc").endswith("/menus/sounds/hello-world")
        first = player.evaluate("a => a.currentTime")
        page.wait_for_function("([a, t]) => a.currentTime > t + 0.3", arg=[handle, first])
        assert player.evaluate("a => a.error") is None
        page.click("#menu-form button[type=submit]")
        tree = page.locator("#menu-tree")
        expect(tree).to_be_visible()
        main = tree.locator('li[data-menu="main"][data-depth="0"]')
        expect(main).to_contain_text("Главное")
        nested = main.locator('li[data-key="1"] li[data-menu="sales"][data-depth="1"]')
        expect(nested).to_be_visible()
        expect(main.locator('li[data-key="2"]').first).to_contain_text("101")
        shoot(page, "menus")
    finally:
        ctx.close()
    db = open_db(box.data)
    try:
        saved = menus.get_menu(db, "main")
    finally:
        db.conn.close()
    assert saved is not None and saved.label == "Главное"
    assert saved.choices == (("1", "ivr:sales"), ("2", "extension:101"))


def test_an_announcement_previews_a_custom_prompt_through_the_prompts_route(
    box: Box, browser: Browser
) -> None:
    russian_box(box.data)
    db = open_db(box.data)
    try:
        made = prompts.create(
            db, box.data, "welcome", "ru", "tts", "Добро пожаловать в наш офис",
            lambda target: tts.synthesize("Добро пожаловать в наш офис", "ru", target),
        )  # fmt: skip
    finally:
        db.conn.close()
    ctx = new_context(browser, box, locale="ru-RU")
    try:
        page = ctx.new_page()
        login(page, *ADMIN)
        page.goto("/menus/announcements/new")
        page.fill("#name", "closed")
        page.fill("#prompt", "welcome")
        page.select_option("#then", "ivr:sales")
        page.locator('button.preview[data-for="prompt"]').click()
        player = page.locator('audio.preview-audio[data-for="prompt"]')
        handle = player.element_handle()
        page.wait_for_function("a => a.duration > 0 && Number.isFinite(a.duration)", arg=handle)
        assert abs(player.evaluate("a => a.duration") - made.duration) < 0.1
        assert player.evaluate("a => a.currentSrc").endswith("/prompts/welcome/audio")
        first = player.evaluate("a => a.currentTime")
        page.wait_for_function("([a, t]) => a.currentTime > t + 0.3", arg=[handle, first])
        page.click("#announcement-form button[type=submit]")
        row = page.locator('#announcements tr[data-name="closed"]')
        expect(row).to_contain_text("welcome")
        expect(row).to_contain_text("sales")
    finally:
        ctx.close()
