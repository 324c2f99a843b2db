"""The Prompts page in Chromium: a Russian and an English text are typed, previewed (the
<audio> element plays the synthesised file: its duration is known and its currentTime
advances), saved, and listed with a player of their own; an upload is previewed too."""

from __future__ import annotations

import subprocess
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

from appliance.store import prompts
from appliance.store.db import open_db
from tests.e2e.conftest import Box, shoot
from tests.e2e.test_trunks_page import login
from tests.web.conftest import ADMIN, prepare


def plays(page: Page, player: Locator) -> float:
    """Start `player` (muted: the test machine has no loudspeaker to spare) and wait until its
    duration is known and its currentTime has moved on; its duration."""
    player.evaluate("a => { a.muted = true; return a.play(); }")
    handle = player.element_handle()
    page.wait_for_function("a => a.duration > 0 && Number.isFinite(a.duration)", arg=handle)
    page.wait_for_function("a => a.currentTime > 0.3", arg=handle)
    duration = float(player.evaluate("a => a.duration"))
    return duration


def stored(data: Path) -> dict[str, prompts.CustomPrompt]:
    db = open_db(data)
    try:
        return {p.name: p for p in prompts.list_all(db)}
    finally:
        db.conn.close()


def test_typed_prompts_are_previewed_then_saved_and_listed(box: Box, page: Page) -> None:
    prepare(box.data)
    login(page, *ADMIN)
    texts = {
        "privet": ("ru", "Здравствуйте! Вы позвонили в нашу компанию."),
        "hello": ("en", "Hello! You have reached our company."),
    }
    for name, (language, text) in texts.items():
        page.goto("/prompts/new")
        form = page.locator("#prompt-form")
        form.get_by_label("Name").fill(name)
        form.get_by_label("Language").select_option(language)
        form.get_by_label("Text", exact=True).fill(text)
        player = page.locator("#preview-audio")
        expect(player).to_be_hidden()
        page.get_by_role("button", name="Preview").click()
        expect(player).to_be_visible()
        assert "/prompts/preview/" in str(player.get_attribute("src"))
        duration = plays(page, player)
        assert 1.5 < duration < 8.0, duration
        assert stored(box.data).get(name) is None  # heard, not saved yet
        if name == "privet":
            shoot(page, "prompt-form")
        page.get_by_role("button", name="Save").click()
        expect(page).to_have_url(f"{box.web.url}/prompts/")
        made = stored(box.data)[name]
        assert made.language == language and made.text == text
        assert abs(made.duration - duration) < 0.1
    row = page.locator('#prompts tr[data-name="privet"]')
    expect(row).to_contain_text("Здравствуйте! Вы позвонили в нашу компанию.")
    listed = page.locator('#prompts tr[data-name="hello"] audio')
    assert abs(plays(page, listed) - stored(box.data)["hello"].duration) < 0.1
    shoot(page, "prompts")


def test_an_upload_is_previewed_and_a_refusal_shown(box: Box, page: Page, tmp_path: Path) -> None:
    prepare(box.data)
    login(page, *ADMIN)
    tone = tmp_path / "tone.ogg"
    subprocess.run(["sox", "-n", "-r", "44100", str(tone), "synth", "2", "sine", "500"],
                   check=True, capture_output=True, timeout=30)  # fmt: skip
    page.goto("/prompts/new")
    form = page.locator("#prompt-form")
    form.get_by_label("Made from").select_option("upload")
    expect(form.get_by_label("Text", exact=True)).to_be_hidden()
    form.get_by_label("Audio file").set_input_files(str(tone))
    page.get_by_role("button", name="Preview").click()
    duration = plays(page, page.locator("#preview-audio"))
    assert abs(duration - 2.0) < 0.1, duration
    notes = tmp_path / "notes.mp3"
    notes.write_text("not audio at all\n")
    form.get_by_label("Audio file").set_input_files(str(notes))
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#preview-error")).to_have_text(
        "the file is not audio in WAV, MP3 or OGG format"
    )
