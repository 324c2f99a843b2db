"""The Menus page and /api/v1/menus, /api/v1/announcements over a real SQLite file: a menu and
the menu under one of its keys are made by the form and by the API and shown as a tree; a
refused form or body names the field and changes nothing; a menu a DID sends calls to cannot be
removed; viewers see and never change; the pack sounds are served for the preview (a real WAV
of the office language's pack) and nothing outside the pack folder is."""

from __future__ import annotations

import io
import re
import wave
from pathlib import Path

from flask import Flask

from appliance.store import dids, menus, settings
from appliance.store.db import open_db
from appliance.store.menus import Announcement, Menu
from tests.web.conftest import Pages, add_extensions
from tests.web.test_api import Api, error, make_token
from tests.web.test_forms import unexplained

PACKS = Path("/usr/share/asterisk/sounds")


def stored(data: Path) -> tuple[list[Menu], list[Announcement]]:
    db = open_db(data)
    try:
        return menus.list_menus(db), menus.list_announcements(db)
    finally:
        db.conn.close()


def menu_form(name: str, greeting: str = "sound:hello-world", **keys: str) -> dict[str, str]:
    form = {
        "name": name, "label": name.title(), "greeting": greeting,
        "invalid_prompt": "sound:pbx-invalid", "timeout": "5", "repeats": "3",
        "on_timeout": "hangup:unavailable", "on_invalid": "hangup:busy",
    }  # fmt: skip
    return form | keys


def tree(html: str) -> str:
    """The menu tree's markup, tags kept (nesting is what is asserted)."""
    start = html.index('id="menu-tree"')
    return html[start : html.index("<h2>", start)]


def test_a_menu_and_the_menu_under_its_key_are_made_by_the_form_and_shown_as_a_tree(
    admin: Pages, data: Path
) -> None:
    add_extensions(data, "101", "102")
    made = admin.submit("/menus/new", menu_form("sales", key_1="extension:101"))
    assert made.status_code == 302, made.get_data(as_text=True)
    page = admin.get("/menus/new").get_data(as_text=True)
    assert '<option value="ivr:sales">' in page  # the new menu is offered to the keys
    made = admin.submit(
        "/menus/new",
        menu_form("main", key_1="ivr:sales", key_2="extension:102", key_hash="hangup:busy"),
    )
    assert made.status_code == 302, made.get_data(as_text=True)
    found, _ = stored(data)
    main = next(m for m in found if m.name == "main")
    assert main.choices == (("1", "ivr:sales"), ("2", "extension:102"), ("#", "hangup:busy"))
    assert main.on_invalid == "hangup:busy"

    shown = tree(admin.get("/menus/").get_data(as_text=True))
    # main is a root; sales is nested in main's key 1 and not shown again as a root
    assert re.findall(r'data-menu="(\w+)" data-depth="(\d)"', shown) == [
        ("main", "0"),
        ("sales", "1"),
    ]
    key1 = shown[shown.index('data-key="1"') :]
    assert key1.index('data-menu="sales"') < key1.index('data-key="2"')
    assert "extension 101 (Phone 101)" in shown and "extension 102 (Phone 102)" in shown

    # edited: key 1 now leads to an extension, so sales becomes a root of its own
    edited = admin.submit(
        "/menus/main/edit", menu_form("main", key_1="extension:101") | {"name": ""}
    )
    assert edited.status_code == 302
    shown = tree(admin.get("/menus/").get_data(as_text=True))
    assert re.findall(r'data-menu="(\w+)"', shown) == ["main", "sales"]


def test_a_refused_form_names_the_field_and_changes_nothing(admin: Pages, data: Path) -> None:
    add_extensions(data, "101")
    admin.submit("/menus/new", menu_form("main", key_1="extension:101"))
    before = stored(data)
    for form, field in [
        (menu_form("main", key_1="extension:101"), "name"),  # exists already
        (menu_form("other", greeting="no-such-prompt"), "greeting"),
        (menu_form("other", greeting="sound:../../etc/passwd"), "greeting"),
        (menu_form("other", key_star="extension:199"), "key_star"),
        (menu_form("Bad Name!"), "name"),
    ]:
        page = admin.submit("/menus/new", form)
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert f'id="{field}-error"' in html, (field, re.findall(r'id="(\w+)-error"', html))
        assert len(re.findall(r'class="error" id="\w+-error"', html)) == 1
    # an edit of main that leads key 5 to main itself
    page = admin.submit("/menus/main/edit", menu_form("main", key_5="ivr:main"))
    assert 'id="key_0-error"' in page.get_data(as_text=True)
    assert stored(data) == before


def test_a_menu_a_did_sends_calls_to_is_not_removed(admin: Pages, data: Path) -> None:
    admin.submit("/menus/new", menu_form("main"))
    db = open_db(data)
    try:
        dids.add(db, "+74951234567", "ivr:main")
    finally:
        db.conn.close()
    page = admin.get("/numbers/+74951234567/edit").get_data(as_text=True)
    assert '<option selected value="ivr:main">menu main</option>' in page
    refused = admin.submit("/menus/", {}, action="/menus/main/delete")
    assert refused.status_code == 302
    assert "+74951234567" in admin.get("/menus/").get_data(as_text=True)  # the flash says who
    assert [m.name for m in stored(data)[0]] == ["main"]
    db = open_db(data)
    try:
        dids.update(db, "+74951234567", destination="hangup:busy")
    finally:
        db.conn.close()
    admin.submit("/menus/", {}, action="/menus/main/delete")
    assert stored(data)[0] == []


def test_announcements_by_form_and_the_did_form_offers_them(admin: Pages, data: Path) -> None:
    admin.submit("/menus/new", menu_form("main"))
    made = admin.submit(
        "/menus/announcements/new",
        {"name": "closed", "label": "Closed", "prompt": "sound:vm-goodbye", "then": "ivr:main"},
    )
    assert made.status_code == 302, made.get_data(as_text=True)
    assert stored(data)[1] == [Announcement("closed", "Closed", "sound:vm-goodbye", "ivr:main")]
    listing = admin.get("/menus/").get_data(as_text=True)
    assert 'data-name="closed"' in listing and "menu main" in listing
    offered = admin.get("/numbers/new").get_data(as_text=True)
    assert 'value="announcement:closed"' in offered and 'value="ivr:main"' in offered
    refused = admin.submit(
        "/menus/announcements/closed/edit", {"label": "x", "prompt": "", "then": ""}
    )
    assert 'id="prompt-error"' in refused.get_data(as_text=True)
    assert stored(data)[1][0].label == "Closed"


def test_viewers_see_and_never_change(viewer: Pages, admin: Pages, data: Path) -> None:
    admin.submit("/menus/new", menu_form("main"))
    page = viewer.get("/menus/")
    assert page.status_code == 200 and 'data-menu="main"' in page.get_data(as_text=True)
    assert "/menus/main/edit" not in page.get_data(as_text=True)
    for url in ("/menus/new", "/menus/main/edit", "/menus/announcements/new"):
        assert viewer.get(url).status_code == 403, url
    token = re.search(r'value="([^"]+)"', page.get_data(as_text=True).split("csrf_token")[1])
    assert token
    viewer.client.post("/menus/main/delete", data={"csrf_token": token.group(1)})
    assert [m.name for m in stored(data)[0]] == ["main"]


def test_the_api_makes_reads_replaces_and_deletes_menus(
    app: Flask, admin: Pages, data: Path
) -> None:
    add_extensions(data, "101")
    api = Api(app.test_client(), make_token(data, "admin"))
    body = {"name": "sales", "greeting": "sound:hello-world", "choices": {"1": "extension:101"}}
    made = api.open("POST", "/api/v1/menus", body)
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["choices"] == {"1": "extension:101"}
    assert made.get_json()["timeout"] == 5
    body = {"name": "main", "greeting": "sound:hello-world", "choices": {"1": "ivr:sales"}}
    assert api.open("POST", "/api/v1/menus", body).status_code == 201
    assert "already a menu main" in error(api.open("POST", "/api/v1/menus", body), 409)
    listed = api.get("/api/v1/menus").get_json()["menus"]
    assert [m["name"] for m in listed] == ["main", "sales"]

    before = stored(data)
    assert "no extension 109" in error(
        api.open(
            "PUT", "/api/v1/menus/main", {"greeting": "sound:x", "choices": {"2": "extension:109"}}
        ),
        400,
    )
    assert "timeout must be" in error(
        api.open("PUT", "/api/v1/menus/main", {"greeting": "sound:x", "timeout": "5"}), 400
    )
    assert "unknown fields: name" in error(
        api.open("PUT", "/api/v1/menus/main", {"greeting": "sound:x", "name": "x"}), 400
    )
    assert "choices must be" in error(
        api.open("PUT", "/api/v1/menus/main", {"greeting": "sound:x", "choices": ["1"]}), 400
    )
    assert stored(data) == before
    replaced = api.open("PUT", "/api/v1/menus/main", {"greeting": "sound:vm-goodbye", "timeout": 9})
    assert replaced.status_code == 200
    assert replaced.get_json()["choices"] == {} and replaced.get_json()["timeout"] == 9
    assert api.get("/api/v1/menus/main").get_json()["greeting"] == "sound:vm-goodbye"

    db = open_db(data)
    try:
        dids.add(db, "+74951234567", "ivr:sales")
    finally:
        db.conn.close()
    assert "DID +74951234567" in error(api.open("DELETE", "/api/v1/menus/sales"), 409)
    assert api.open("DELETE", "/api/v1/menus/main").status_code == 204
    error(api.get("/api/v1/menus/main"), 404)

    viewer = Api(app.test_client(), make_token(data, "viewer"))
    assert viewer.get("/api/v1/menus").status_code == 200
    error(viewer.open("DELETE", "/api/v1/menus/sales"), 403)
    error(viewer.open("POST", "/api/v1/announcements", {"name": "a", "prompt": "sound:x"}), 403)


def test_the_api_makes_announcements(app: Flask, admin: Pages, data: Path) -> None:
    api = Api(app.test_client(), make_token(data, "admin"))
    made = api.open(
        "POST", "/api/v1/announcements", {"name": "closed", "prompt": "sound:vm-goodbye"}
    )
    assert made.status_code == 201
    assert made.get_json() == {
        "name": "closed", "label": "", "prompt": "sound:vm-goodbye", "then": "",
        "then_description": "",
    }  # fmt: skip
    assert "no menu nowhere" in error(
        api.open(
            "PUT", "/api/v1/announcements/closed", {"prompt": "sound:x", "then": "ivr:nowhere"}
        ),
        400,
    )
    put = api.open(
        "PUT", "/api/v1/announcements/closed", {"prompt": "sound:x", "then": "hangup:busy"}
    )
    assert put.get_json()["then_description"] == "hang up (busy)"
    assert [a["name"] for a in api.get("/api/v1/announcements").get_json()["announcements"]] == [
        "closed"
    ]
    assert api.open("DELETE", "/api/v1/announcements/closed").status_code == 204
    assert stored(data)[1] == []
    spec = api.get("/api/v1/openapi.json").get_json()
    assert {"/menus", "/menus/{name}", "/announcements", "/announcements/{name}"} <= set(
        spec["paths"]
    )


def test_the_preview_route_serves_the_office_language_pack_and_nothing_else(
    admin: Pages, data: Path
) -> None:
    for language, pack in (("en", "en_US_f_Allison"), ("ru", "ru_RU_f_IvrvoiceRU")):
        db = open_db(data)
        try:
            settings.set_value(db, "office.language", language)
        finally:
            db.conn.close()
        served = admin.get("/menus/sounds/hello-world")
        assert served.status_code == 200 and served.mimetype == "audio/wav"
        assert served.get_data() == (PACKS / pack / "hello-world.wav").read_bytes()
        with wave.open(io.BytesIO(served.get_data())) as wav:
            assert wav.getnframes() / wav.getframerate() > 0.5
        nested = admin.get("/menus/sounds/digits/5")
        assert nested.get_data() == (PACKS / pack / "digits" / "5.wav").read_bytes()
    for bad in (
        "/menus/sounds/../en_US_f_Allison/hello-world",
        "/menus/sounds/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/menus/sounds/..%2f..%2fetc%2fpasswd",
        "/menus/sounds/digits/../../en_US_f_Allison/hello-world",
        "/menus/sounds//etc/passwd",
        "/menus/sounds/no-such-sound",
    ):
        answer = admin.client.get(bad, follow_redirects=True)  # // is merged by a redirect
        assert answer.status_code == 404, bad
        assert b"RIFF" not in answer.get_data() and b"root:" not in answer.get_data()
    # the page links a custom prompt's preview to the Prompts page's route
    page = admin.get("/menus/new").get_data(as_text=True)
    assert 'data-prompt-url="/prompts/NAME/audio"' in page
    assert 'data-sound-url="/menus/sounds/NAME"' in page
    assert '<option value="sound:hello-world">' in page


def test_the_feature_codes_are_listed(admin: Pages) -> None:
    page = admin.get("/menus/").get_data(as_text=True)
    codes = page[page.index('id="feature-codes"') :]
    assert "<kbd>*1</kbd>" in codes


def test_every_field_of_the_menu_pages_has_a_label_and_a_description(
    admin: Pages, data: Path
) -> None:
    admin.submit("/menus/new", menu_form("main"))
    admin.submit("/menus/announcements/new", {"name": "closed", "prompt": "sound:vm-goodbye"})
    pages = {
        url: admin.get(url).get_data(as_text=True)
        for url in ("/menus/", "/menus/new", "/menus/main/edit", "/menus/announcements/new",
                    "/menus/announcements/closed/edit")
    }  # fmt: skip
    pages["refused"] = admin.submit("/menus/new", menu_form("x", greeting="")).get_data(
        as_text=True
    )
    assert 'id="greeting-error"' in pages["refused"]
    for url, html in pages.items():
        assert unexplained(html) == [], url
