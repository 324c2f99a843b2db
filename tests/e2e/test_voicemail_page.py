"""The Voicemail page in a real Chromium against a real box, in English and in Russian, at
desktop and phone size: a mailbox is made on the page (a PIN typed, a custom greeting picked
from the custom prompts and heard first), a message left in it plays in the page's <audio>
element (its duration learnt from the Ogg/Opus file by range requests, its currentTime
advancing), is moved to saved and deleted (its file gone)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from playwright.sync_api import Browser, Page, expect

from appliance.store import prompts, voicemail
from appliance.store.db import open_db
from tests.e2e.conftest import Box, new_context, shoot
from tests.e2e.test_trunks_page import login
from tests.web.conftest import ADMIN, add_extensions, prepare

SECONDS = 4.0
GREETING = 1.5
PIN = "8642"


def office(data: Path) -> None:
    """An installed box with extensions 101 and 102 and a custom prompt `away` (a real WAV)."""
    prepare(data)
    add_extensions(data, "101", "102")
    db = open_db(data)
    try:
        rel = prompts.FOLDER / "away.wav"
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(int(GREETING * 16000)) / 16000
        soundfile.write(str(data / rel), 0.3 * np.sin(2 * np.pi * 660 * t), 16000,
                        subtype="PCM_16")  # fmt: skip
        prompts.add(db, "away", "en", "upload", "away.wav", str(rel), GREETING)
    finally:
        db.conn.close()


def leave_message(data: Path) -> voicemail.Message:
    """What the call side stores when 102 leaves a message for 101: an Ogg/Opus file, a row."""
    db = open_db(data)
    try:
        started = time.time() - 300
        rel = voicemail.message_path("101", started, "e2e")
        path = data / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(int(SECONDS * 8000)) / 8000
        soundfile.write(str(path), 0.3 * np.sin(2 * np.pi * 440 * t), 8000, format="OGG",
                        subtype="OPUS")  # fmt: skip
        return voicemail.add_message(db, "101", path=rel, started_at=started, seconds=SECONDS,
                                     caller="102", caller_name="Phone 102")  # fmt: skip
    finally:
        db.conn.close()


def plays(page: Page, player_selector: str, seconds: float) -> None:
    """The <audio> element learns the file's length (within 0.2 s of `seconds`) and plays."""
    player = page.locator(player_selector)
    expect(player).to_be_visible()
    handle = player.element_handle()
    player.evaluate("a => { a.muted = true; return a.play(); }")
    page.wait_for_function("a => a.duration > 0 && Number.isFinite(a.duration)", arg=handle)
    duration = player.evaluate("a => a.duration")
    assert abs(duration - seconds) < 0.2, duration
    first = player.evaluate("a => a.currentTime")
    page.wait_for_function("([a, t]) => a.currentTime > t + 0.3", arg=[handle, first])
    assert player.evaluate("a => a.error") is None


@pytest.mark.parametrize("language", ["en", "ru"])
def test_a_mailbox_is_saved_on_the_page_and_a_message_plays(
    box: Box, browser: Browser, language: str
) -> None:
    office(box.data)
    ctx = new_context(browser, box, locale="ru-RU" if language == "ru" else "en-US")
    try:
        page = ctx.new_page()
        login(page, *ADMIN)
        assert page.locator("html").get_attribute("lang") == language
        page.goto("/voicemail/")
        shoot(page, f"voicemail-empty-{language}")
        page.select_option("#new-mailbox", "101")
        page.click("form[action$='/voicemail/add'] button[type=submit]")
        expect(page.locator("#mailbox-form")).to_be_visible()
        page.fill("#pin", PIN)
        page.select_option("#greeting", "custom")
        page.fill("#greeting_prompt", "away")
        page.fill("#max_seconds", "90")
        page.fill("#email", "anna@example.com")
        page.locator('button.preview[data-for="greeting_prompt"]').click()
        plays(page, 'audio.preview-audio[data-for="greeting_prompt"]', GREETING)
        shoot(page, f"voicemail-mailbox-{language}")
        page.click("#mailbox-form button[type=submit]")
        row = page.locator('#mailboxes tr[data-mailbox="101"]')
        expect(row).to_contain_text("anna@example.com")
        expect(row.locator("td.new")).to_have_text("0")

        msg = leave_message(box.data)
        page.reload()
        expect(row.locator("td.new")).to_have_text("1")
        shoot(page, f"voicemail-{language}")
        row.locator("a[href='/voicemail/101']").click()
        plays(page, f'audio[data-message="{msg.id}"]', SECONDS)
        expect(
            page.locator(f'a[href="/voicemail/messages/{msg.id}/audio?download=1"]')
        ).to_be_visible()
        shoot(page, f"voicemail-messages-{language}")
        page.click(f"form[action='/voicemail/messages/{msg.id}/save'] button")
        expect(page.locator(f'#messages tr[data-message="{msg.id}"]')).to_have_attribute(
            "data-folder", "saved"
        )
        page.once("dialog", lambda dialog: dialog.accept())
        page.click(f"form[action='/voicemail/messages/{msg.id}/delete'] button")
        expect(page.locator(f'#messages tr[data-message="{msg.id}"]')).to_have_count(0)
    finally:
        ctx.close()
    db = open_db(box.data)
    try:
        saved = voicemail.mailbox(db, "101")
        assert saved is not None and saved.greeting == "custom" and saved.max_seconds == 90
        assert saved.greeting_file == str(prompts.FOLDER / "away.wav")
        assert voicemail.verify_pin(db, "101", PIN)
        assert voicemail.counts(db, "101") == (0, 0)
    finally:
        db.conn.close()
    assert not (box.data / msg.path).exists()
