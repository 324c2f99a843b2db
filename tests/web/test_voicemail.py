"""Voicemail on the setup page and in the API, over a real SQLite file and real Ogg/Opus message
files: the mailbox list with its counts, the mailbox form (PIN set and cleared but never shown,
a custom greeting picked from the custom prompts, refusals under their field), a message played
with HTTP range requests, downloaded, moved to saved and deleted (its file gone), viewers
reading but never changing; /api/v1/voicemail; and the SMTP relay on the System page, its
password write-only."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import soundfile
from flask import Flask

from appliance.store import prompts, settings, voicemail
from appliance.store.db import open_db
from appliance.store.voicemail import Message
from tests.web.conftest import Pages, add_extensions, csrf_token
from tests.web.test_api import Api, error, make_token

T0 = time.time() - 3600
PIN = "4321"


def message_on_disk(data: Path, number: str, seconds: float = 2.0, caller: str = "102") -> Message:
    """A message left in `number`'s mailbox: a 440 Hz Ogg/Opus file and its row."""
    db = open_db(data)
    try:
        if voicemail.mailbox(db, number) is None:
            voicemail.set_mailbox(db, number)
        rel = f"{voicemail.FOLDER}/{number}/{int(T0 * 1000)}-{caller}.ogg"
        path = data / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(int(seconds * 8000)) / 8000
        soundfile.write(str(path), 0.3 * np.sin(2 * np.pi * 440 * t), 8000, format="OGG",
                        subtype="OPUS")  # fmt: skip
        return voicemail.add_message(
            db, number, path=rel, started_at=T0, seconds=seconds, caller=caller,
            caller_name=f"Phone {caller}",
        )  # fmt: skip
    finally:
        db.conn.close()


def stored(data: Path, number: str) -> voicemail.Mailbox | None:
    db = open_db(data)
    try:
        return voicemail.mailbox(db, number)
    finally:
        db.conn.close()


def pin_opens(data: Path, number: str, pin: str) -> bool:
    db = open_db(data)
    try:
        return voicemail.verify_pin(db, number, pin)
    finally:
        db.conn.close()


FORM = {
    "enabled": "y", "pin": "", "greeting": "default", "greeting_prompt": "",
    "max_seconds": "90", "email": "", "attach": "y", "on_busy": "y", "on_no_answer": "y",
    "unsolicited_mwi": "y",
}  # fmt: skip


# -- the page --------------------------------------------------------------------------------


def test_a_mailbox_is_made_on_the_page_its_pin_stored_never_shown(admin: Pages, data: Path) -> None:
    add_extensions(data, "101", "102")
    page = admin.get("/voicemail/").get_data(as_text=True)
    assert 'id="new-mailbox"' in page and '<option value="101">' in page
    assert admin.get("/voicemail/add?number=101").headers["Location"] == "/voicemail/101/edit"
    form = admin.get("/voicemail/101/edit").get_data(as_text=True)
    assert "No PIN is set." in form
    answer = admin.submit("/voicemail/101/edit", {**FORM, "pin": PIN,
                                                  "email": "anna@example.com"})  # fmt: skip
    assert answer.status_code == 302, answer.get_data(as_text=True)
    box = stored(data, "101")
    assert box is not None and box.has_pin and box.max_seconds == 90
    assert box.email == "anna@example.com" and box.enabled and box.on_busy
    assert pin_opens(data, "101", PIN) and not pin_opens(data, "101", "0000")
    listing = admin.get("/voicemail/").get_data(as_text=True)
    assert 'data-mailbox="101"' in listing and "anna@example.com" in listing
    assert '<option value="101">' not in listing  # it has one now
    form = admin.get("/voicemail/101/edit").get_data(as_text=True)
    assert "A PIN is set." in form and PIN not in form
    # saving again without a PIN keeps it; ticking "remove" clears it
    assert admin.submit("/voicemail/101/edit", {**FORM, "on_busy": ""}).status_code == 302
    box = stored(data, "101")
    assert box is not None and box.has_pin and not box.on_busy and box.email == ""
    assert admin.submit("/voicemail/101/edit", {**FORM, "clear_pin": "y"}).status_code == 302
    box = stored(data, "101")
    assert box is not None and not box.has_pin


def test_a_refused_mailbox_shows_why_under_the_field_and_nothing_is_saved(
    admin: Pages, data: Path
) -> None:
    add_extensions(data, "101")
    for changed, field, words in (
        ({"pin": "12"}, "pin", "4 to 10 digits"),
        ({"email": "not-an-address"}, "email", "not an e-mail address"),
        ({"greeting": "custom"}, "greeting_prompt", "custom greeting needs"),
        ({"greeting": "custom", "greeting_prompt": "nope"}, "greeting_prompt", "no custom prompt"),
        ({"max_seconds": "5"}, "max_seconds", "10"),
    ):
        answer = admin.submit("/voicemail/101/edit", {**FORM, **changed})
        page = answer.get_data(as_text=True)
        assert answer.status_code == 400, changed
        start = page.index(f'id="{field}-error"')
        assert words in page[start : start + 300], (changed, page[start : start + 300])
    assert stored(data, "101") is None
    assert admin.get("/voicemail/999/edit").status_code == 404


def test_a_custom_greeting_is_a_custom_prompt_picked_and_previewed(
    admin: Pages, data: Path
) -> None:
    add_extensions(data, "101")
    db = open_db(data)
    try:
        rel = prompts.FOLDER / "away.wav"
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(str(data / rel), np.zeros(8000), 8000, subtype="PCM_16")
        prompts.add(db, "away", "en", "upload", "away.wav", str(rel), 1.0)
    finally:
        db.conn.close()
    form = admin.get("/voicemail/101/edit").get_data(as_text=True)
    assert '<option value="away">' in form and 'class="prompt-picker"' in form
    answer = admin.submit("/voicemail/101/edit",
                          {**FORM, "greeting": "custom", "greeting_prompt": "away"})  # fmt: skip
    assert answer.status_code == 302
    box = stored(data, "101")
    assert box is not None and box.greeting == "custom" and box.greeting_file == str(rel)
    form = admin.get("/voicemail/101/edit").get_data(as_text=True)
    shown = 'name="greeting_prompt" type="text" value="away"'
    assert shown in form and 'id="greeting_prompt" list="prompt-names"' in form
    assert admin.get("/prompts/away/audio").status_code == 200  # what Preview plays


def test_a_message_plays_with_ranges_downloads_moves_to_saved_and_is_deleted(
    admin: Pages, data: Path
) -> None:
    add_extensions(data, "101", "102")
    msg = message_on_disk(data, "101")
    whole = (data / msg.path).read_bytes()
    assert '<td class="new">1</td><td class="saved">0</td>' in admin.get("/voicemail/").get_data(
        as_text=True
    )
    page = admin.get("/voicemail/101").get_data(as_text=True)
    src = f"/voicemail/messages/{msg.id}/audio"
    assert f'<audio controls preload="none" src="{src}" data-message="{msg.id}"' in page
    assert f'href="{src}?download=1" download' in page and "Phone 102" in page
    first = admin.client.get(src, headers={"Range": "bytes=0-"})
    assert first.status_code == 206 and first.mimetype == "audio/ogg" and first.data == whole
    middle = admin.client.get(src, headers={"Range": "bytes=100-599"})
    assert middle.status_code == 206 and middle.data == whole[100:600]
    assert middle.headers["Content-Range"] == f"bytes 100-599/{len(whole)}"
    download = admin.client.get(f"{src}?download=1")
    assert download.status_code == 200 and download.data == whole
    assert "attachment" in download.headers["Content-Disposition"]

    token = csrf_token(page)
    moved = admin.client.post(f"/voicemail/messages/{msg.id}/save", data={"csrf_token": token})
    assert moved.status_code == 302
    db = open_db(data)
    try:
        assert voicemail.counts(db, "101") == (0, 1)
    finally:
        db.conn.close()
    page = admin.get("/voicemail/101").get_data(as_text=True)
    assert f'data-message="{msg.id}" data-folder="saved"' in page and "Move to saved" not in page
    gone = admin.client.post(f"/voicemail/messages/{msg.id}/delete", data={"csrf_token": token})
    assert gone.status_code == 302
    assert not (data / msg.path).exists()
    assert admin.client.get(src).status_code == 404
    assert "No messages." in admin.get("/voicemail/101").get_data(as_text=True)


def test_deleting_a_mailbox_removes_its_messages_files(admin: Pages, data: Path) -> None:
    add_extensions(data, "101")
    first, second = message_on_disk(data, "101"), message_on_disk(data, "101", caller="103")
    page = admin.get("/voicemail/").get_data(as_text=True)
    answer = admin.client.post("/voicemail/101/delete", data={"csrf_token": csrf_token(page)})
    assert answer.status_code == 302
    assert stored(data, "101") is None
    assert not (data / first.path).exists() and not (data / second.path).exists()
    assert not (data / voicemail.FOLDER / "101").exists()


def test_a_viewer_sees_mailboxes_and_listens_but_changes_nothing(viewer: Pages, data: Path) -> None:
    add_extensions(data, "101")
    msg = message_on_disk(data, "101")
    listing = viewer.get("/voicemail/").get_data(as_text=True)
    assert 'data-mailbox="101"' in listing
    for word in ("new-mailbox", ">Edit<", ">Delete<"):
        assert word not in listing, word
    page = viewer.get("/voicemail/101").get_data(as_text=True)
    assert "Move to saved" not in page and ">Delete<" not in page
    assert viewer.get(f"/voicemail/messages/{msg.id}/audio").status_code == 200
    token = csrf_token(viewer.get("/system").get_data(as_text=True))
    for url in (
        "/voicemail/101/edit",
        "/voicemail/101/delete",
        f"/voicemail/messages/{msg.id}/save",
        f"/voicemail/messages/{msg.id}/delete",
    ):
        assert viewer.client.post(url, data={"csrf_token": token}).status_code == 403, url
    assert viewer.get("/voicemail/101/edit").status_code == 403
    assert (data / msg.path).exists()


def test_the_voicemail_pages_answer_in_russian(admin: Pages, data: Path) -> None:
    add_extensions(data, "101")
    message_on_disk(data, "101")
    for url in ("/voicemail/", "/voicemail/101", "/voicemail/101/edit"):
        answer = admin.client.get(url, headers={"Accept-Language": "ru-RU,ru"})
        assert answer.status_code == 200, url
        assert '<html lang="ru"' in answer.get_data(as_text=True), url


# -- the API ---------------------------------------------------------------------------------


def test_the_api_makes_reads_changes_and_deletes_a_mailbox(app: Flask, data: Path) -> None:
    from tests.web.conftest import prepare

    prepare(data)
    add_extensions(data, "101", "102")
    api = Api(app.test_client(), make_token(data, "admin"))
    base = "/api/v1/voicemail/mailboxes"
    assert api.get(base).get_json() == {"mailboxes": []}
    error(api.get(f"{base}/101"), 404)
    made = api.open("PUT", f"{base}/101", {"pin": PIN, "email": "anna@example.com"})
    assert made.status_code == 201, made.get_data(as_text=True)
    body = made.get_json()
    assert body["has_pin"] is True and "pin" not in body and PIN not in made.get_data(as_text=True)
    assert (body["email"], body["new"], body["greeting"]) == ("anna@example.com", 0, "default")
    changed = api.open("PUT", f"{base}/101", {"on_busy": False, "max_seconds": 60})
    assert changed.status_code == 200
    assert changed.get_json()["on_busy"] is False and changed.get_json()["has_pin"] is True
    assert pin_opens(data, "101", PIN)
    assert "pin" in error(api.open("PUT", f"{base}/101", {"pin": "12"}), 400)
    assert "greeting" in error(api.open("PUT", f"{base}/101", {"greeting": "custom"}), 400)
    error(api.open("PUT", f"{base}/101", {"colour": "red"}), 400)
    error(api.open("PUT", f"{base}/101", {"enabled": "yes"}), 400)
    error(api.open("PUT", f"{base}/999", {}), 404)
    assert [b["number"] for b in api.get(base).get_json()["mailboxes"]] == ["101"]
    assert api.open("DELETE", f"{base}/101").status_code == 204
    error(api.open("DELETE", f"{base}/101"), 404)


def test_the_api_lists_plays_moves_and_deletes_messages(app: Flask, data: Path) -> None:
    from tests.web.conftest import prepare

    prepare(data)
    add_extensions(data, "101", "102")
    msg = message_on_disk(data, "101")
    admin = Api(app.test_client(), make_token(data, "admin"))
    viewer = Api(app.test_client(), make_token(data, "viewer"))
    listed = viewer.get("/api/v1/voicemail/mailboxes/101/messages").get_json()["messages"]
    audio = f"/api/v1/voicemail/messages/{msg.id}/audio"
    assert listed == [{
        "id": msg.id, "mailbox": "101", "caller": "102", "caller_name": "Phone 102",
        "started_at": T0, "seconds": 2.0, "folder": "new", "audio": audio,
    }]  # fmt: skip
    assert viewer.get("/api/v1/voicemail/mailboxes/101").get_json()["new"] == 1
    whole = (data / msg.path).read_bytes()
    part = viewer.get(audio, headers={"Range": "bytes=10-109"})
    assert part.status_code == 206 and part.data == whole[10:110]
    error(viewer.get("/api/v1/voicemail/mailboxes/101/messages?folder=trash"), 400)
    url = f"/api/v1/voicemail/messages/{msg.id}"
    assert "viewer" in error(viewer.open("DELETE", url), 403)
    assert "viewer" in error(viewer.open("PATCH", url, {"folder": "saved"}), 403)
    assert "viewer" in error(viewer.open("DELETE", "/api/v1/voicemail/messages/x"), 403)
    assert "viewer" in error(viewer.open("PUT", "/api/v1/voicemail/mailboxes/101", {}), 403)
    moved = admin.open("PATCH", url, {"folder": "saved"})
    assert moved.status_code == 200 and moved.get_json()["folder"] == "saved"
    assert admin.get("/api/v1/voicemail/mailboxes/101").get_json()["saved"] == 1
    error(admin.open("PATCH", url, {"folder": "trash"}), 400)
    assert admin.open("DELETE", url).status_code == 204
    assert not (data / msg.path).exists()
    error(admin.get(url), 404)
    error(admin.get(audio), 404)
    error(admin.open("DELETE", url), 404)
    error(admin.open("DELETE", "/api/v1/voicemail/messages/abc"), 404)


# -- the mail relay on the System page ---------------------------------------------------------

MAIL = {
    "mail-host": "smtp.example.com", "mail-port": "587", "mail-starttls": "y",
    "mail-user": "pbx", "mail-password": "Relay-Pass-2718", "mail-sender": "pbx@example.com",
}  # fmt: skip


def mail_settings(data: Path) -> dict[str, str]:
    db = open_db(data)
    try:
        return {key: str(settings.get(db, key)) for key in settings.SETTINGS
                if key.startswith("mail.")}  # fmt: skip
    finally:
        db.conn.close()


def test_the_mail_relay_is_saved_its_password_never_shown(admin: Pages, data: Path) -> None:
    page = admin.get("/system").get_data(as_text=True)
    assert 'id="mail-relay"' in page and "No password is stored." in page
    answer = admin.submit("/system", MAIL, "/system/mail")
    assert answer.status_code == 302, answer.get_data(as_text=True)
    assert mail_settings(data) == {
        "mail.host": "smtp.example.com", "mail.port": "587", "mail.starttls": "yes",
        "mail.user": "pbx", "mail.password": "Relay-Pass-2718", "mail.from": "pbx@example.com",
    }  # fmt: skip
    page = admin.get("/system").get_data(as_text=True)
    assert "A password is stored." in page and "Relay-Pass-2718" not in page
    assert 'value="smtp.example.com"' in page
    # saved again without a password: kept; STARTTLS unticked: off
    kept = {**MAIL, "mail-password": "", "mail-starttls": "", "mail-port": "25"}
    assert admin.submit("/system", kept, "/system/mail").status_code == 302
    now = mail_settings(data)
    assert now["mail.password"] == "Relay-Pass-2718" and now["mail.starttls"] == "no"
    assert now["mail.port"] == "25"
    cleared = {**kept, "mail-clear_password": "y"}
    assert admin.submit("/system", cleared, "/system/mail").status_code == 302
    assert mail_settings(data)["mail.password"] == ""


def test_a_refused_mail_relay_says_why_and_changes_nothing(admin: Pages, data: Path) -> None:
    before = mail_settings(data)
    answer = admin.submit("/system", {**MAIL, "mail-port": "70000"}, "/system/mail")
    assert answer.status_code == 400
    assert 'id="mail-port-error"' in answer.get_data(as_text=True)
    answer = admin.submit("/system", {**MAIL, "mail-host": "smtp\x01bad"}, "/system/mail")
    assert answer.status_code == 400
    assert 'id="mail-host-error"' in answer.get_data(as_text=True)
    assert mail_settings(data) == before


def test_a_viewer_does_not_see_or_change_the_mail_relay(viewer: Pages, data: Path) -> None:
    page = viewer.get("/system").get_data(as_text=True)
    assert 'id="mail-relay"' not in page
    answer = viewer.client.post("/system/mail", data={"csrf_token": csrf_token(page), **MAIL})
    assert answer.status_code == 403
    assert mail_settings(data)["mail.host"] == ""
