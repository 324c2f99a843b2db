"""An extension's and a trunk's media encryption (SRTP policy) on their pages, by the API and
with the CLI: shown, changed, kept in the store, and a wrong value refused in both languages."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.i18n import Text
from appliance.store import encryption, trunks
from appliance.store.db import open_db
from appliance.store.extensions import ExtensionError
from tests.conftest import pbx_cli
from tests.web.conftest import Pages, add_extensions
from tests.web.test_api import API, Api, error, make_token
from tests.web.test_i18n import choose, html, text
from tests.web.test_trunk_pages import TRUNK_FORM


def test_an_extensions_encryption_is_edited_on_its_page(admin: Pages, data: Path) -> None:
    add_extensions(data, "150")
    page = "/extensions/150/edit"
    shown = text(admin.get(page))
    assert "Media encryption" in shown and "Optional: SRTP when the phone offers it" in shown
    assert admin.submit(page, {"name": "Desk", "media_encryption": "required"}).status_code == 302
    db = open_db(data)
    assert encryption.of_extension(db, "150") == "required"
    assert '<option selected value="required">' in html(admin.get(page))
    refused = text(admin.submit(page, {"name": "Desk", "media_encryption": "always"}))
    assert "Not a valid choice" in refused
    assert encryption.of_extension(db, "150") == "required"
    choose(admin, "ru", page)
    ru = text(admin.get(page))
    assert "Шифрование голоса" in ru and "Обязательно: только SRTP" in ru


def test_a_trunks_encryption_is_set_when_added_and_edited(admin: Pages, data: Path) -> None:
    form = {**TRUNK_FORM, "media_encryption": "none"}
    assert admin.submit("/trunks/new", form).status_code == 302
    db = open_db(data)
    assert encryption.of_trunk(db, "city") == "none"
    page = "/trunks/city/edit"
    assert '<option selected value="none">' in html(admin.get(page))
    del form["name"]
    answer = admin.submit(page, {**form, "password": "", "media_encryption": "required"})
    assert answer.status_code == 302
    assert encryption.of_trunk(db, "city") == "required"


def test_media_encryption_by_the_api(app: object, admin: Pages, data: Path) -> None:
    add_extensions(data, "150")
    db = open_db(data)
    trunks.add(db, "main", server="sip.example.net", kind="ip")
    api = Api(admin.client, make_token(data, "admin"))
    url = f"{API}/extensions/150"
    assert api.get(url).get_json()["media_encryption"] == "optional"
    changed = api.open("PATCH", url, {"media_encryption": "none"})
    assert changed.status_code == 200 and changed.get_json()["media_encryption"] == "none"
    assert error(api.open("PATCH", url, {"media_encryption": "always"}), 400) == (
        "media_encryption must be one of none, optional, required"
    )
    trunk = f"{API}/trunks/main"
    assert api.get(trunk).get_json()["media_encryption"] == "optional"
    changed = api.open("PATCH", trunk, {"media_encryption": "required"})
    assert changed.status_code == 200 and changed.get_json()["media_encryption"] == "required"
    assert encryption.of_trunk(db, "main") == "required"
    made = api.open(
        "POST", f"{API}/trunks",
        {"name": "peer", "server": "10.0.0.9", "kind": "ip", "media_encryption": "none"},
    )  # fmt: skip
    assert made.status_code == 201 and made.get_json()["media_encryption"] == "none"


def test_media_encryption_with_the_cli(tmp_path: Path) -> None:
    pbx_cli(tmp_path, "ext", "add", "201", "--name", "Reception")
    out = pbx_cli(tmp_path, "ext", "set", "201", "--media-encryption", "required").stdout
    assert "media encryption required" in out
    assert "[media encryption required]" in pbx_cli(tmp_path, "ext", "list").stdout
    bad = pbx_cli(tmp_path, "ext", "set", "201", "--media-encryption", "always", check=False)
    assert bad.returncode != 0 and "invalid choice: 'always'" in bad.stderr
    pbx_cli(tmp_path, "trunk", "add", "peer", "--server", "10.0.0.9", "--kind", "ip",
            "--media-encryption", "none")  # fmt: skip
    assert "media-encryption none" in pbx_cli(tmp_path, "trunk", "list").stdout
    pbx_cli(tmp_path, "trunk", "set", "peer", "--media-encryption", "required")
    assert "media-encryption required" in pbx_cli(tmp_path, "trunk", "list").stdout


def test_the_store_refuses_other_policies_in_both_languages(data: Path) -> None:
    add_extensions(data, "150")
    db = open_db(data)
    with pytest.raises(ExtensionError) as refused:
        encryption.set_for_extension(db, "150", "maybe")
    message = refused.value.args[0]
    assert isinstance(message, Text) and refused.value.field == "media_encryption"
    assert message == "media encryption must be one of none, optional, required, not 'maybe'"
    assert encryption.set_for_extension(db, "150", " Required ") == "required"


def test_a_backup_keeps_the_policies(data: Path) -> None:
    from appliance.store import backup, users

    add_extensions(data, "150", "151")
    db = open_db(data)
    users.add(db, "admin", "Adm1n-Passw0rd", "admin")
    trunks.add(db, "main", server="sip.example.net", kind="ip")
    encryption.set_for_extension(db, "150", "required")
    encryption.set_for_trunk(db, "main", "none")
    saved = backup.dumps(db)
    encryption.set_for_extension(db, "150", "none")
    encryption.set_for_trunk(db, "main", "optional")
    backup.restore(db, saved)
    assert encryption.of_extensions(db) == {"150": "required", "151": "optional"}
    assert encryption.of_trunks(db) == {"main": "none"}
    broken = saved.replace(b'"required"', b'"sometimes"')
    with pytest.raises(backup.BackupError, match="media encryption must be one of"):
        backup.restore(db, broken)
    assert encryption.of_extension(db, "150") == "required"  # nothing changed
