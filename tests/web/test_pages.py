"""The setup page's HTML pages through the Flask test client over a real SQLite file: the
first-boot account and wizard, extensions (add, refuse with the typed values kept, edit, delete,
new passwords on the sheet), CSRF, the login lock-out, the system page (own password, users and
roles, API tokens, backup and restore), the call records page and its CSV export, security
headers and cookies, and that no page shows a SIP password or token after the one time it is
meant to."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_datetime
from flask import Flask
from werkzeug.test import TestResponse

from appliance.store import cdrs, dids, extensions, routes, settings, tokens, trunks, users
from appliance.store.cdrs import Cdr
from appliance.store.database import Database
from appliance.store.db import open_db
from tests.web.conftest import ADMIN, VIEWER, Pages, add_extensions, csrf_token, prepare

# --- reading pages ----------------------------------------------------------------------------

VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                  "source", "track", "wbr"})  # fmt: skip


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    parent: Element | None
    raw_text: str = ""
    children: list[Element] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(self.raw_text.split())

    @property
    def classes(self) -> list[str]:
        return self.attrs.get("class", "").split()

    def within(self, tag: str, **attrs: str) -> bool:
        node = self.parent
        while node is not None:
            if node.tag == tag and all(node.attrs.get(k) == v for k, v in attrs.items()):
                return True
            node = node.parent
        return False


class Dom(HTMLParser):
    """Every element of a page with its attributes and text (enough for these templates)."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#root", {}, None)
        self.elements: list[Element] = []
        self._open = [self.root]
        self.feed(html)
        self.close()

    def _add(self, tag: str, attrs: list[tuple[str, str | None]]) -> Element:
        element = Element(tag, {k: v or "" for k, v in attrs}, self._open[-1])
        self._open[-1].children.append(element)
        self.elements.append(element)
        return element

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = self._add(tag, attrs)
        if tag not in VOID:
            self._open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._add(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._open) - 1, 0, -1):
            if self._open[i].tag == tag:
                del self._open[i:]
                return

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element.raw_text += data

    def find_all(self, tag: str, **attrs: str) -> list[Element]:
        return [
            e
            for e in self.elements
            if e.tag == tag and all(e.attrs.get(k) == v for k, v in attrs.items())
        ]

    def by_id(self, ident: str) -> Element | None:
        found = [e for e in self.elements if e.attrs.get("id") == ident]
        assert len(found) <= 1, f"id {ident} twice"
        return found[0] if found else None


def dom(response: TestResponse) -> Dom:
    return Dom(response.get_data(as_text=True))


def value(page: Dom, name: str) -> str | None:
    """What an input called `name` shows (None when there is no such input)."""
    found = page.find_all("input", name=name)
    return found[0].attrs.get("value", "") if found else None


def error(page: Dom, field_id: str) -> str:
    """The error message shown under a field ('' when none)."""
    element = page.by_id(f"{field_id}-error")
    return "" if element is None else element.text


def flashes(page: Dom) -> list[str]:
    return [e.text for e in page.find_all("p") if "flash" in e.classes]


def sheet(page: Dom) -> dict[str, str]:
    """The printable sheet's passwords: {extension number: password}."""
    return {
        e.attrs["id"].removeprefix("pw-"): e.text
        for e in page.find_all("code")
        if "secret" in e.classes and e.attrs.get("id", "").startswith("pw-")
    }


def table_rows(page: Dom, table_id: str) -> list[list[str]]:
    """The body rows of a table (the "nothing here" row left out), as cell texts."""
    return [
        [cell.text for cell in row.children if cell.tag == "td"]
        for row in page.find_all("tr")
        if row.within("table", id=table_id) and row.within("tbody") and "empty" not in row.classes
    ]


# --- reading the store ------------------------------------------------------------------------


@contextmanager
def store(data: Path) -> Iterator[Database]:
    db = open_db(data, migrate_schema=False)
    try:
        yield db
    finally:
        db.conn.close()


def dump(data: Path) -> list[str]:
    with store(data) as db:
        return list(db.conn.iterdump())


def password_works(data: Path, number: str, password: str) -> bool:
    """The stored digest credentials of `number` are those of `password`."""
    with store(data) as db:
        row = db.execute(
            "SELECT realm, ha1_md5, ha1_sha256 FROM extensions WHERE number = ?", [number]
        ).fetchone()
    assert row is not None, f"no extension {number}"
    realm, md5, sha256 = row
    if extensions.digest_ha1("MD5", number, realm, password) != md5:
        return False
    assert extensions.digest_ha1("SHA-256", number, realm, password) == sha256
    return True


def extension_names(data: Path) -> dict[str, str]:
    with store(data) as db:
        return {e.number: e.name for e in extensions.list_all(db)}


def token_of(pages: Pages) -> str:
    return csrf_token(pages.get("/system").get_data(as_text=True))


def post(pages: Pages, url: str, data: dict[str, Any] | None = None) -> TestResponse:
    """POST with this session's CSRF token (what a button on a page does)."""
    return pages.client.post(url, data={"csrf_token": token_of(pages), **(data or {})})


# --- first boot ------------------------------------------------------------------------------

STRONG = "Sup3r-Secret!"


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("Sh0rt-pw!", "password must be at least 10 characters"),
        ("abcdefghijkl", "password is too weak"),
        ("tech-Secret-1", "password is too easy to guess"),
    ],
)
def test_first_boot_a_weak_password_is_refused_the_name_kept_and_nobody_created(
    pages: Pages, data: Path, password: str, message: str
) -> None:
    response = pages.submit(
        "/setup/account", {"username": "tech", "password": password, "confirm": password}
    )
    assert response.status_code == 200
    page = dom(response)
    assert message in error(page, "password")
    assert value(page, "username") == "tech"
    with store(data) as db:
        assert users.count(db) == 0
    assert pages.get("/").headers["Location"] == "/setup/account"


def test_first_boot_a_bad_user_name_is_shown_at_the_user_name(pages: Pages, data: Path) -> None:
    response = pages.submit(
        "/setup/account", {"username": "Tech Guy", "password": STRONG, "confirm": STRONG}
    )
    assert response.status_code == 200
    page = dom(response)
    assert "user name must be 2 to 32 characters" in error(page, "username")
    assert error(page, "password") == ""
    assert value(page, "username") == "Tech Guy"
    with store(data) as db:
        assert users.count(db) == 0


def test_first_boot_differing_passwords_are_refused(pages: Pages, data: Path) -> None:
    response = pages.submit(
        "/setup/account", {"username": "tech", "password": STRONG, "confirm": STRONG + "x"}
    )
    assert response.status_code == 200
    assert "The passwords differ." in error(dom(response), "confirm")
    with store(data) as db:
        assert users.count(db) == 0


@pytest.fixture
def first_admin(pages: Pages, data: Path) -> Pages:
    """First boot, the admin account just created: the wizard's office step is next."""
    response = pages.submit(
        "/setup/account", {"username": "tech", "password": STRONG, "confirm": STRONG}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/setup/office"
    return pages


OFFICE = {
    "office_name": "Dental Clinic",
    "country": "DE",
    "timezone": "Europe/Berlin",
    "number_min": "100",
    "number_max": "199",
}


@pytest.mark.parametrize(
    ("changes", "field_id", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone", "Not a valid choice"),
        ({"number_min": "300", "number_max": "200"}, "number_max", "must not be lower than"),
        ({"number_min": "5"}, "number_min", "ext.number_min must be between 10 and 999999"),
        ({"country": "XX"}, "country", "Not a valid choice"),
        ({"office_name": ""}, "office_name", "This field is required"),
    ],
)
def test_the_office_step_refuses_bad_input_with_a_message_and_saves_nothing(
    first_admin: Pages, data: Path, changes: dict[str, str], field_id: str, message: str
) -> None:
    before = dump(data)
    response = first_admin.submit("/setup/office", {**OFFICE, **changes})
    assert response.status_code == 200
    page = dom(response)
    assert message in error(page, field_id)
    assert value(page, "office_name") == {**OFFICE, **changes}["office_name"]
    assert dump(data) == before


def test_the_wizard_saves_the_office_makes_the_phones_and_opens_the_dashboard(
    first_admin: Pages, data: Path
) -> None:
    assert first_admin.get("/").headers["Location"] == "/setup/office"  # not done yet
    form = dom(first_admin.get("/setup/office"))
    assert value(form, "number_min") == "100" and value(form, "number_max") == "199"

    response = first_admin.submit("/setup/office", OFFICE)
    assert response.status_code == 302
    assert response.headers["Location"] == "/setup/extensions"
    with store(data) as db:
        assert settings.get(db, "office.name") == "Dental Clinic"
        assert settings.get(db, "office.country") == "DE"
        assert settings.get(db, "office.timezone") == "Europe/Berlin"
        assert (settings.get(db, "ext.number_min"), settings.get(db, "ext.number_max")) == (
            100,
            199,
        )
    assert value(dom(first_admin.get("/setup/extensions")), "first") == "100"

    response = first_admin.submit("/setup/extensions", {"first": "120", "count": "3"})
    assert response.status_code == 200
    passwords = sheet(dom(response))
    assert sorted(passwords) == ["120", "121", "122"]
    assert len(set(passwords.values())) == 3
    for number, password in passwords.items():
        assert password_works(data, number, password), number
        assert not password_works(data, number, password[:-1] + "#")
    with store(data) as db:
        assert settings.get_text(db, "web.setup_done") == "1"

    dashboard = first_admin.get("/")
    assert dashboard.status_code == 200
    assert dom(dashboard).find_all("h1")[0].text == "Dental Clinic"
    listed = first_admin.get("/extensions/").get_data(as_text=True)
    assert all(p not in listed for p in passwords.values())


def test_the_phones_step_refuses_numbers_outside_the_range_and_makes_none(
    first_admin: Pages, data: Path
) -> None:
    assert first_admin.submit("/setup/office", OFFICE).status_code == 302
    before = dump(data)
    response = first_admin.submit("/setup/extensions", {"first": "198", "count": "4"})
    assert response.status_code == 200
    assert "outside the allowed range 100-199" in error(dom(response), "first")
    assert dump(data) == before  # 198 and 199 were not kept either


# --- extensions ---------------------------------------------------------------------------------


def test_adding_an_extension_shows_its_password_once_on_the_sheet(admin: Pages, data: Path) -> None:
    response = admin.submit("/extensions/new", {"number": "150", "name": "Reception"})
    assert response.status_code == 200
    passwords = sheet(dom(response))
    assert list(passwords) == ["150"]
    assert password_works(data, "150", passwords["150"])
    assert extension_names(data) == {"150": "Reception"}

    response = admin.submit(
        "/extensions/new", {"number": "151", "name": "", "password": "Front-Desk-77"}
    )
    assert sheet(dom(response)) == {"151": "Front-Desk-77"}
    assert password_works(data, "151", "Front-Desk-77")

    listed = admin.get("/extensions/")
    assert [row[:2] for row in table_rows(dom(listed), "extensions")] == [
        ["150", "Reception"],
        ["151", ""],
    ]
    assert passwords["150"] not in listed.get_data(as_text=True)


@pytest.mark.parametrize(
    ("number", "password", "field_id", "message"),
    [
        ("150", "", "number", "extension 150 already exists"),
        ("250", "", "number", "extension 250 is outside the allowed range 100-199"),
        ("99", "", "number", "outside the allowed range 100-199"),
        ("1x", "", "number", "extension number must be 2 to 6 digits"),
        ("151", "abcdefghijkl", "password", "SIP password is too weak"),
        ("151", "Ab1", "password", "SIP password must be at least 10 characters"),
        ("151", "Phone-151-xyz", "password", "do not include the number"),
    ],
)
def test_a_refused_extension_keeps_what_was_typed_and_saves_nothing(
    admin: Pages, data: Path, number: str, password: str, field_id: str, message: str
) -> None:
    add_extensions(data, "150")
    before = dump(data)
    response = admin.submit(
        "/extensions/new", {"number": number, "name": "Dr. Weber", "password": password}
    )
    assert response.status_code == 200
    page = dom(response)
    assert message in error(page, field_id)
    assert value(page, "number") == number
    assert value(page, "name") == "Dr. Weber"
    assert sheet(page) == {}
    assert dump(data) == before


def test_editing_an_extension_changes_its_name_and_keeps_its_password(
    admin: Pages, data: Path
) -> None:
    passwords = add_extensions(data, "150", "151")
    page = dom(admin.get("/extensions/150/edit"))
    assert value(page, "name") == "Phone 150"
    response = admin.submit("/extensions/150/edit", {"name": "Front desk"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/extensions/"
    assert extension_names(data) == {"150": "Front desk", "151": "Phone 151"}
    assert password_works(data, "150", passwords["150"])
    rows = table_rows(dom(admin.get("/extensions/")), "extensions")
    assert rows[0][:2] == ["150", "Front desk"]

    refused = admin.submit("/extensions/150/edit", {"name": 'say "hi"'})
    assert refused.status_code == 200
    assert "without quotes" in error(dom(refused), "name")
    assert extension_names(data)["150"] == "Front desk"


def test_deleting_an_extension_removes_only_it(admin: Pages, data: Path) -> None:
    add_extensions(data, "150", "151")
    response = post(admin, "/extensions/150/delete")
    assert response.status_code == 302
    assert extension_names(data) == {"151": "Phone 151"}
    assert admin.get("/extensions/150/edit").status_code == 404


def test_a_new_password_is_shown_once_and_the_old_one_stops_working(
    admin: Pages, data: Path
) -> None:
    old = add_extensions(data, "150", "151")
    response = post(admin, "/extensions/150/password")
    assert response.status_code == 200
    new = sheet(dom(response))
    assert list(new) == ["150"] and new["150"] != old["150"]
    assert password_works(data, "150", new["150"])
    assert not password_works(data, "150", old["150"])
    assert password_works(data, "151", old["151"])  # the others keep theirs
    assert new["150"] not in admin.get("/extensions/").get_data(as_text=True)


def test_the_sheet_for_all_gives_every_extension_a_new_password(admin: Pages, data: Path) -> None:
    old = add_extensions(data, "150", "151", "152")
    response = post(admin, "/extensions/sheet")
    assert response.status_code == 200
    new = sheet(dom(response))
    assert sorted(new) == ["150", "151", "152"]
    for number, password in new.items():
        assert password != old[number]
        assert password_works(data, number, password), number
        assert not password_works(data, number, old[number]), number


# --- CSRF ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "form"),
    [
        ("/extensions/new", {"number": "151", "name": "Forged"}),
        ("/extensions/150/edit", {"name": "Forged"}),
        ("/extensions/150/delete", {}),
        ("/extensions/150/password", {}),
        ("/extensions/sheet", {}),
        ("/system/users", {"user-username": "mallory", "user-password": "Mall0ry-Pass!",
                           "user-role": "admin"}),
        ("/system/users/viewer/role", {"role": "admin"}),
        ("/system/tokens", {"token-name": "forged", "token-role": "admin"}),
        ("/system/backup", {}),
    ],
)  # fmt: skip
def test_a_post_without_a_valid_csrf_token_is_refused_and_changes_nothing(
    admin: Pages, data: Path, url: str, form: dict[str, str]
) -> None:
    add_extensions(data, "150")
    before = dump(data)
    for sent in (form, {**form, "csrf_token": "forged-token"}):
        response = admin.client.post(url, data=sent)
        assert response.status_code == 400, sent
        assert "CSRF check failed" in response.get_data(as_text=True)
        assert dump(data) == before
    assert post(admin, url, form).status_code in (200, 302)  # the same POST with the token works


# --- login lock-out ------------------------------------------------------------------------------


def test_five_wrong_passwords_lock_the_address_out_but_not_another(
    app: Flask, data: Path, pages: Pages
) -> None:
    prepare(data)
    for attempt in range(5):
        response = pages.login(ADMIN[0], f"Wr0ng-guess-{attempt}")
        assert response.status_code in (401, 429), attempt
        assert "Location" not in response.headers
    response = pages.login(*ADMIN)  # the sixth attempt, with the right password
    assert response.status_code == 429
    assert "Too many failed logins" in response.get_data(as_text=True)
    assert pages.get("/system").headers["Location"].startswith("/login")

    other = app.test_client()
    env = {"REMOTE_ADDR": "10.0.0.9"}
    token = csrf_token(other.get("/login", environ_base=env).get_data(as_text=True))
    response = other.post(
        "/login",
        data={"csrf_token": token, "username": ADMIN[0], "password": ADMIN[1]},
        environ_base=env,
    )
    assert response.status_code == 302
    assert other.get("/system", environ_base=env).status_code == 200


def test_a_wrong_password_says_so_without_telling_which_part_was_wrong(
    pages: Pages, data: Path
) -> None:
    prepare(data)
    wrong_password = pages.login(ADMIN[0], "Wr0ng-guess!")
    no_such_user = pages.login("nobody", "Wr0ng-guess!")
    for response in (wrong_password, no_such_user):
        assert response.status_code == 401
        assert error(dom(response), "password") == "Wrong user name or password."


# --- the system page ----------------------------------------------------------------------------

NEW_PASSWORD = "N3w-Adm1n-Pass!"


def test_changing_the_own_password_ends_the_other_sessions_of_that_user(
    app: Flask, admin: Pages, data: Path
) -> None:
    other = Pages(app.test_client())
    assert other.login(*ADMIN).status_code == 302

    form = {"pw-current": "Not-the-0ne!", "pw-password": NEW_PASSWORD, "pw-confirm": NEW_PASSWORD}
    refused = admin.submit("/system", form, "/system/password")
    assert refused.status_code == 400
    assert error(dom(refused), "pw-current") == "This is not your current password."
    with store(data) as db:
        assert users.authenticate(db, *ADMIN) is not None
    assert other.get("/system").status_code == 200

    weak = admin.submit(
        "/system", {"pw-current": ADMIN[1], "pw-password": "weak", "pw-confirm": "weak"},
        "/system/password",
    )  # fmt: skip
    assert weak.status_code == 400
    assert "at least 10 characters" in error(dom(weak), "pw-password")

    form["pw-current"] = ADMIN[1]
    response = admin.submit("/system", form, "/system/password")
    assert response.status_code == 302
    with store(data) as db:
        assert users.authenticate(db, ADMIN[0], NEW_PASSWORD) is not None
        assert users.authenticate(db, *ADMIN) is None
    assert admin.get("/system").status_code == 200  # this session goes on
    logged_out = other.get("/system")
    assert logged_out.status_code == 302
    assert logged_out.headers["Location"].startswith("/login")
    assert other.get("/").headers["Location"].startswith("/login")  # and stays out


def test_an_admin_adds_a_viewer_changes_roles_and_removes_users(
    app: Flask, admin: Pages, data: Path
) -> None:
    response = admin.submit(
        "/system", {"user-username": "anna", "user-password": "Lemon-Tree-42",
                    "user-role": "viewer"}, "/system/users",
    )  # fmt: skip
    assert response.status_code == 302
    page = dom(admin.get("/system"))
    assert "User anna added as viewer." in flashes(page)
    assert table_rows(page, "users")[1][:2] == ["anna", "viewer"]

    anna = Pages(app.test_client())
    assert anna.login("anna", "Lemon-Tree-42").status_code == 302
    assert anna.get("/system").status_code == 200

    assert post(admin, "/system/users/anna/role", {"role": "admin"}).status_code == 302
    with store(data) as db:
        promoted = users.get(db, "anna")
        assert promoted is not None and promoted.role == "admin"
    assert anna.get("/system").headers["Location"].startswith("/login")  # role change: log in

    assert post(admin, "/system/users/anna/role", {"role": "viewer"}).status_code == 302
    with store(data) as db:
        user = users.get(db, "anna")
        assert user is not None and user.role == "viewer"

    assert post(admin, "/system/users/anna/delete").status_code == 302
    with store(data) as db:
        assert [u.username for u in users.list_all(db)] == ["admin", "viewer"]
    assert "User anna removed." in flashes(dom(admin.get("/system")))


@pytest.mark.parametrize(
    ("form", "field_id", "message"),
    [
        ({"user-username": "viewer", "user-password": "Lemon-Tree-42"}, "user-username",
         "user viewer already exists"),
        ({"user-username": "Bad Name", "user-password": "Lemon-Tree-42"}, "user-username",
         "user name must be 2 to 32 characters"),
        ({"user-username": "anna", "user-password": "anna-Pass-123"}, "user-password",
         "too easy to guess"),
    ],
)  # fmt: skip
def test_a_refused_user_keeps_the_name_and_saves_nothing(
    admin: Pages, data: Path, form: dict[str, str], field_id: str, message: str
) -> None:
    before = dump(data)
    response = admin.submit("/system", {**form, "user-role": "admin"}, "/system/users")
    assert response.status_code == 400
    page = dom(response)
    assert message in error(page, field_id)
    assert value(page, "user-username") == form["user-username"]
    assert dump(data) == before


def test_the_last_admin_cannot_be_removed_or_made_a_viewer(admin: Pages, data: Path) -> None:
    before = dump(data)
    assert post(admin, "/system/users/admin/delete").status_code == 302
    assert "the last admin cannot be removed" in flashes(dom(admin.get("/system")))
    assert post(admin, "/system/users/admin/role", {"role": "viewer"}).status_code == 302
    assert "the last admin cannot become a viewer" in flashes(dom(admin.get("/system")))
    assert dump(data) == before
    assert admin.get("/system").status_code == 200  # still logged in, still admin


def test_an_api_token_is_shown_once_then_masked_and_can_be_revoked(
    admin: Pages, data: Path
) -> None:
    response = admin.submit(
        "/system", {"token-name": "CRM", "token-role": "viewer"}, "/system/tokens"
    )
    assert response.status_code == 200
    shown = dom(response).by_id("token")
    assert shown is not None
    clear = shown.text
    assert clear.startswith("pbx_") and len(clear) > 20
    with store(data) as db:
        found = tokens.lookup(db, clear)
        assert found is not None and (found.name, found.role) == ("CRM", "viewer")

    system = admin.get("/system")
    assert clear not in system.get_data(as_text=True)
    rows = table_rows(dom(system), "tokens")
    assert [row[:3] for row in rows] == [["CRM", "viewer", "pbx_********"]]

    response = post(admin, f"/system/tokens/{found.id}/delete")
    assert response.status_code == 302
    with store(data) as db:
        assert tokens.lookup(db, clear) is None
        assert tokens.list_all(db) == []
    assert table_rows(dom(admin.get("/system")), "tokens") == []


def test_the_backup_download_is_a_json_attachment_without_clear_secrets(
    admin: Pages, data: Path
) -> None:
    passwords = add_extensions(data, "150", "151")
    response = admin.submit(
        "/system", {"token-name": "CRM", "token-role": "admin"}, "/system/tokens"
    )
    clear = sheet_token(response)

    response = post(admin, "/system/backup")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment; filename=pbx-backup-") and disposition.endswith(
        ".json"
    )
    body = response.get_data()
    doc = json.loads(body)
    assert doc["format"] == "pbx-appliance-backup"
    assert [e["number"] for e in doc["extensions"]] == ["150", "151"]
    leaked = [s for s in [*passwords.values(), clear, ADMIN[1], VIEWER[1]] if s.encode() in body]
    assert leaked == []
    with store(data) as db:
        for key in ("web.secret_key", "sip.nonce_secret"):
            assert settings.get_text(db, key).encode() not in body


def sheet_token(response: TestResponse) -> str:
    element = dom(response).by_id("token")
    assert element is not None, "no token shown"
    return element.text


def upload(pages: Pages, content: bytes) -> TestResponse:
    return pages.client.post(
        "/system/restore",
        data={"csrf_token": token_of(pages), "restore-backup": (io.BytesIO(content), "b.json")},
        content_type="multipart/form-data",
    )


def configuration(data: Path) -> dict[str, Any]:
    """What a restore brings back (not the times of the rows)."""
    with store(data) as db:
        return {
            "extensions": db.execute(
                "SELECT number, name, realm, ha1_md5, ha1_sha256 FROM extensions ORDER BY number"
            ).fetchall(),
            "users": db.execute(
                "SELECT username, role, password_hash FROM users ORDER BY username"
            ).fetchall(),
            "tokens": db.execute("SELECT name, role, token_hash FROM api_tokens").fetchall(),
            "settings": db.execute("SELECT key, value FROM settings ORDER BY key").fetchall(),
        }


def test_a_downloaded_backup_restores_the_configuration(admin: Pages, data: Path) -> None:
    passwords = add_extensions(data, "150", "151")
    clear = sheet_token(
        admin.submit("/system", {"token-name": "CRM", "token-role": "admin"}, "/system/tokens")
    )
    saved = configuration(data)
    backup_file = post(admin, "/system/backup").get_data()

    # Then things change: an extension goes, a user comes, the token is revoked.
    with store(data) as db:
        extensions.remove(db, "150")
        extensions.rename(db, "151", "Renamed")
        users.add(db, "anna", "Lemon-Tree-42", "admin")
        for token in tokens.list_all(db):
            tokens.revoke(db, token.id)
        settings.set_value(db, "office.name", "Changed")

    response = upload(admin, backup_file)
    assert response.status_code == 302
    restored = "Configuration restored: 2 extensions, 2 users, 1 API token, 0 trunks, 0 numbers,"
    assert f"{restored} 0 routes." in flashes(dom(admin.get("/system")))
    assert configuration(data) == saved
    assert all(password_works(data, n, p) for n, p in passwords.items())
    with store(data) as db:
        assert users.authenticate(db, *VIEWER) is not None
        assert users.get(db, "anna") is None
        assert tokens.lookup(db, clear) is not None


def test_a_restore_does_not_bring_back_sessions_a_password_change_ended(
    app: Flask, admin: Pages
) -> None:
    stolen = Pages(app.test_client())
    assert stolen.login(*ADMIN).status_code == 302
    cookie = stolen.client.get_cookie("pbx_session")
    assert cookie is not None
    form = {"pw-current": ADMIN[1], "pw-password": NEW_PASSWORD, "pw-confirm": NEW_PASSWORD}
    assert admin.submit("/system", form, "/system/password").status_code == 302
    assert stolen.get("/system").headers["Location"].startswith("/login")
    stolen.client.set_cookie("pbx_session", cookie.value)  # the old cookie, kept by a thief
    assert stolen.get("/system").headers["Location"].startswith("/login")

    backup_file = post(admin, "/system/backup").get_data()  # made after the change
    assert upload(admin, backup_file).status_code == 302
    stolen.client.set_cookie("pbx_session", cookie.value)
    response = stolen.get("/system")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


@pytest.mark.parametrize(
    "content",
    [b"", b"not json at all", b'{"format": "something-else"}', b"[1, 2, 3]"],
)
def test_a_broken_backup_file_says_nothing_was_changed_and_changes_nothing(
    admin: Pages, data: Path, content: bytes
) -> None:
    add_extensions(data, "150")
    before = dump(data)
    response = upload(admin, content)
    assert response.status_code == 400
    assert error(dom(response), "restore-backup").startswith("Nothing was changed")
    assert dump(data) == before


# --- call records -------------------------------------------------------------------------------

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BERLIN).timestamp()


def call(
    ident: str, started: float, caller: str, dialled: str, disposition: str, **extra: Any
) -> Cdr:
    answered = started + 5 if disposition == "answered" else None
    return Cdr(
        id=ident, started_at=started, ended_at=started + 65, caller=caller, dialled=dialled,
        disposition=disposition, hangup_side="caller", hangup_cause="normal",
        answered_at=answered, answered_by=extra.pop("answered_by", dialled if answered else None),
        **extra,
    )  # fmt: skip


CALLS = [
    ("a", "2024-03-10 23:30:00", "101", "102", "answered", {}),
    ("b", "2024-03-11 00:30:00", "103", "101", "busy", {"caller_name": '=HYPERLINK("x")'}),
    ("c", "2024-03-11 23:59:00", "104", "105", "no-answer", {}),
    ("d", "2024-03-12 00:00:30", "102", "103", "answered", {}),
    ("e", "2024-03-12 12:00:00", "105", "106", "answered", {"answered_by": "101"}),
]
"""b is on the 11th in Berlin but the 10th in UTC; d the other way round."""


@pytest.fixture
def calls(admin: Pages, data: Path) -> Pages:
    with store(data) as db:
        settings.set_value(db, "office.timezone", "Europe/Berlin")
        cdrs.write(db, [call(i, berlin(t), a, b, d, **dict(x)) for i, t, a, b, d, x in CALLS])
    return admin


def started(ids: str) -> list[str]:
    """The start times the page shows for these calls, newest first (in English, in Berlin;
    spaces as the page's text has them)."""
    times = {i: t for i, t, *_ in CALLS}
    shown = (format_datetime(datetime.fromtimestamp(berlin(t), BERLIN), "medium", locale="en")
             for t in sorted((times[i] for i in ids), reverse=True))  # fmt: skip
    return [" ".join(t.split()) for t in shown]


@pytest.mark.parametrize(
    ("query", "ids"),
    [
        ("", "abcde"),
        ("since=2024-03-11&until=2024-03-11", "bc"),
        ("since=2024-03-12", "de"),
        ("until=2024-03-10", "a"),
        ("extension=101", "abe"),
        ("disposition=answered", "ade"),
        ("extension=101&disposition=busy", "b"),
        ("since=2024-03-11&extension=103", "bd"),
        ("extension=199", ""),
    ],
)
def test_the_call_list_filters_by_office_day_extension_and_result(
    calls: Pages, query: str, ids: str
) -> None:
    response = calls.get(f"/calls?{query}")
    assert response.status_code == 200
    page = dom(response)
    assert [row[0] for row in table_rows(page, "cdrs")] == started(ids)
    count = next(e.text for e in page.find_all("p") if "count" in e.classes)
    assert count.startswith(f"{len(ids)} call{'' if len(ids) == 1 else 's'} ")
    assert "Europe/Berlin" in count


def test_the_csv_export_has_the_same_selection_and_formula_safe_cells(calls: Pages) -> None:
    response = calls.get("/calls/export.csv?since=2024-03-11&until=2024-03-11")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == "attachment; filename=calls.csv"
    header, *rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert header == [
        "id", "started", "answered", "ended", "caller", "caller_name", "dialled", "answered_by",
        "disposition", "duration", "billsec", "hangup_side", "hangup_cause", "codec_caller",
        "codec_callee", "direction", "trunk", "did", "did_label", "sent",
    ]  # fmt: skip
    by_id = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    assert sorted(by_id) == ["b", "c"]
    assert by_id["b"]["started"] == "2024-03-11 00:30:00"
    assert by_id["b"]["caller_name"] == '\'=HYPERLINK("x")'
    assert (by_id["b"]["caller"], by_id["b"]["dialled"], by_id["b"]["disposition"]) == (
        "103", "101", "busy",
    )  # fmt: skip

    everything = calls.get("/calls/export.csv").get_data(as_text=True)
    assert len(list(csv.reader(io.StringIO(everything)))) == 1 + len(CALLS)
    answered = calls.get("/calls/export.csv?disposition=answered&extension=101")
    assert [row[0] for row in list(csv.reader(io.StringIO(answered.get_data(as_text=True))))[1:]] \
        == ["e", "a"]  # fmt: skip


def test_the_call_list_shows_50_calls_a_page_and_keeps_the_filter_when_paging(
    admin: Pages, data: Path
) -> None:
    base = berlin("2024-05-01 08:00:00")
    records = [call(f"m{i:03d}", base + 60 * i, "101", "102", "answered") for i in range(120)]
    records += [call(f"x{i}", base + 60 * i + 30, "109", "108", "busy") for i in range(5)]
    with store(data) as db:
        cdrs.write(db, records)

    seen: list[str] = []
    url: str | None = "/calls?extension=101"
    pages_seen = 0
    while url is not None:
        page = dom(admin.get(url))
        rows = table_rows(page, "cdrs")
        assert len(rows) == (50 if pages_seen < 2 else 20), url
        assert all(row[1] == "101" for row in rows)
        seen += [row[0] for row in rows]
        count = next(e.text for e in page.find_all("p") if "count" in e.classes)
        assert count.startswith(f"120 calls, page {pages_seen + 1} of 3")
        older = [a for a in page.find_all("a") if a.text.startswith("Older")]
        url = older[0].attrs["href"] if older else None
        if url is not None:
            assert "extension=101" in url and f"page={pages_seen + 2}" in url
        pages_seen += 1
    assert pages_seen == 3
    assert seen == sorted(seen, reverse=True) and len(set(seen)) == 120

    exported = admin.get("/calls/export.csv?extension=101").get_data(as_text=True)
    assert len(list(csv.reader(io.StringIO(exported)))) == 121  # the export is not paged


# --- headers, cookies, scripts ------------------------------------------------------------------


def test_pages_carry_the_security_headers(app: Flask, admin: Pages) -> None:
    anonymous = app.test_client()
    for response in (admin.get("/system"), admin.get("/extensions/"), anonymous.get("/login")):
        csp = response.headers["Content-Security-Policy"]
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"


def test_the_session_cookie_is_httponly_and_samesite_strict(pages: Pages, data: Path) -> None:
    prepare(data)
    response = pages.login(*ADMIN)
    assert response.status_code == 302
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("pbx_session=")]
    assert cookies, response.headers
    attributes = [part.strip() for part in cookies[-1].split(";")]
    assert "HttpOnly" in attributes
    assert "SameSite=Strict" in attributes


def every_page(app: Flask, data: Path, admin: Pages) -> dict[str, TestResponse]:
    """Every kind of page an admin or a visitor sees, sheets and errors included."""
    add_extensions(data, "150")
    with store(data) as db:
        cdrs.write(db, [call("a", berlin("2024-03-10 23:30:00"), "150", "151", "answered")])
        trunks.add(db, "main", server="sip.example.net", username="u", password="Tr-Secret-77")
        dids.add(db, "+493012345678", "extension:150", "Main line", "main")
        routes.add(db, "local", ["NXXXXXX"], ["main"])
    found = {
        url: admin.get(url)
        for url in ("/", "/extensions/", "/extensions/new", "/extensions/150/edit", "/calls",
                    "/system", "/setup/office", "/setup/extensions", "/no-such-page",
                    "/trunks/", "/trunks/new", "/trunks/main/edit", "/numbers/", "/numbers/new",
                    "/numbers/+493012345678/edit", "/routes/", "/routes/new",
                    "/routes/local/edit")
    }  # fmt: skip
    found["trunk test"] = post(admin, "/trunks/main/test")
    found["refused trunk"] = admin.submit("/trunks/new", {"name": "x", "server": "?"})
    found["sheet"] = post(admin, "/extensions/150/password")
    found["token"] = admin.submit("/system", {"token-name": "t", "token-role": "viewer"},
                                  "/system/tokens")  # fmt: skip
    found["refused form"] = admin.submit("/extensions/new", {"number": "999"})
    found["/login"] = app.test_client().get("/login")
    return found


def test_no_page_has_inline_script_or_style(app: Flask, data: Path, admin: Pages) -> None:
    inline = []
    for name, response in every_page(app, data, admin).items():
        assert response.status_code in (200, 400, 404), name
        page = dom(response)
        assert page.find_all("script"), name  # the check below sees the page's scripts
        for script in page.find_all("script"):
            if not script.attrs.get("src") or script.raw_text.strip():
                inline.append(f"{name}: <script> without src")
        for element in page.elements:
            if element.tag == "style" or "style" in element.attrs:
                inline.append(f"{name}: inline style on <{element.tag}>")
            handlers = [a for a in element.attrs if a.startswith("on")]
            if handlers:
                inline.append(f"{name}: {handlers} on <{element.tag}>")
    assert inline == []


# --- secrets stay hidden ------------------------------------------------------------------------


def test_no_page_or_backup_shows_a_sip_password_or_token(admin: Pages, data: Path) -> None:
    secrets = {}
    for number in ("150", "151"):
        shown = sheet(dom(admin.submit("/extensions/new", {"number": number, "name": "x"})))
        secrets[number] = shown[number]
    given = "Given-Pass-77"
    admin.submit("/extensions/new", {"number": "152", "name": "y", "password": given})
    secrets["152"] = given
    renewed = sheet(dom(post(admin, "/extensions/151/password")))
    secrets["151 new"] = renewed["151"]
    clear = sheet_token(
        admin.submit("/system", {"token-name": "CRM", "token-role": "admin"}, "/system/tokens")
    )
    secrets["token"] = clear
    secrets["token body"] = clear.removeprefix("pbx_")
    assert all(len(s) >= 10 for s in secrets.values())

    shown_later = {
        "extensions": admin.get("/extensions/").get_data(as_text=True),
        "edit": admin.get("/extensions/150/edit").get_data(as_text=True),
        "system": admin.get("/system").get_data(as_text=True),
        "dashboard": admin.get("/").get_data(as_text=True),
        "backup": post(admin, "/system/backup").get_data(as_text=True),
    }
    leaks = [
        f"{what} on {where}"
        for where, text in shown_later.items()
        for what, secret in secrets.items()
        if secret in text
    ]
    assert leaks == []
    assert "pbx_********" in shown_later["system"]
    assert [row[0] for row in table_rows(Dom(shown_later["extensions"]), "extensions")] == [
        "150", "151", "152",
    ]  # fmt: skip
