"""The security page and /api/v1/bans: bans listed and lifted, with the core stopped (the
stored bans, which it loads when it starts) and running (its live bans, through the control
socket: a lifted source is answered again at once), and the allow-list setting, in English
and Russian."""

from __future__ import annotations

import time
from pathlib import Path

from flask import Flask

from appliance.store import bans, settings, tokens
from appliance.store.db import open_db
from appliance.web import create_app
from tests.conftest import CoreProcess
from tests.interop.test_sipvicious import probe
from tests.pbx.test_security import SOURCE, ban, stored
from tests.web.conftest import ADMIN, Pages, prepare

ADDRESS = "192.0.2.7"


def store_ban(data: Path, address: str = ADDRESS) -> None:
    db = open_db(data)
    try:
        now = time.time()
        bans.save(db, bans.Ban(address, "REGISTER 101: wrong credentials", now - 60, now + 3540))
    finally:
        db.conn.close()


def stored_addresses(data: Path) -> list[str]:
    db = open_db(data)
    try:
        return [b.address for b in bans.active(db, time.time())]
    finally:
        db.conn.close()


def api_token(data: Path, role: str) -> dict[str, str]:
    db = open_db(data)
    try:
        return {"Authorization": f"Bearer {tokens.create(db, role, role)[1]}"}
    finally:
        db.conn.close()


def test_the_page_lists_stored_bans_and_an_admin_lifts_one(
    admin: Pages, viewer: Pages, data: Path
) -> None:
    store_ban(data)
    page = admin.get("/security").get_data(as_text=True)
    assert f'data-address="{ADDRESS}"' in page and "REGISTER 101: wrong credentials" in page
    assert "The core is not running" in page and "Lift ban" in page
    shown = viewer.get("/security").get_data(as_text=True)
    assert f'data-address="{ADDRESS}"' in shown and "Lift ban" not in shown
    assert viewer.submit("/security", {}, f"/security/bans/{ADDRESS}/delete").status_code == 403
    assert stored_addresses(data) == [ADDRESS]

    done = admin.submit("/security", {}, f"/security/bans/{ADDRESS}/delete")
    assert done.status_code == 302
    assert stored_addresses(data) == []
    after = admin.get("/security").get_data(as_text=True)
    assert f"The ban of {ADDRESS} is lifted." in after and "No address is banned." in after
    again = admin.submit("/security", {}, f"/security/bans/{ADDRESS}/delete")
    assert again.status_code == 302
    assert f"{ADDRESS} is not banned." in admin.get("/security").get_data(as_text=True)


def test_the_allow_list_is_checked_and_saved(admin: Pages, data: Path) -> None:
    page = admin.get("/security").get_data(as_text=True)
    assert 'value="127.0.0.1,::1"' in page  # the default: the box itself
    bad = admin.submit("/security", {"allow": "192.168.1.0/24, the office"}, "/security/allow")
    assert bad.status_code == 400
    assert "security.allow: &#39;the office&#39; is not an IP address or network" in (
        bad.get_data(as_text=True)
    )
    good = admin.submit("/security", {"allow": " 192.168.1.7/24 , 10.0.0.5/32 "}, "/security/allow")
    assert good.status_code == 302
    db = open_db(data)
    try:
        assert settings.get_str(db, "security.allow") == "192.168.1.0/24,10.0.0.5"
    finally:
        db.conn.close()


def test_the_page_speaks_russian(app: Flask, data: Path) -> None:
    prepare(data)
    store_ban(data)
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "ru"
    russian = Pages(client)
    assert russian.login(*ADMIN).status_code == 302
    page = russian.get("/security").get_data(as_text=True)
    for text in ("Безопасность", "Заблокированные адреса", "Снять блокировку",
                 "Никогда не блокировать", "Ядро не запущено"):  # fmt: skip
        assert text in page, text
    bad = russian.submit("/security", {"allow": "nonsense"}, "/security/allow")
    assert "не IP-адрес и не сеть" in bad.get_data(as_text=True)


def test_the_api_lists_and_lifts_stored_bans(app: Flask, data: Path) -> None:
    prepare(data)
    store_ban(data)
    client = app.test_client()
    viewer, admin = api_token(data, "viewer"), api_token(data, "admin")
    listed = client.get("/api/v1/bans", headers=viewer)
    assert listed.status_code == 200
    (row,) = listed.get_json()["bans"]
    assert (row["address"], row["count"], row["reason"]) == (
        ADDRESS, 1, "REGISTER 101: wrong credentials",
    )  # fmt: skip
    assert 3400 < row["remaining"] <= 3540
    assert client.delete(f"/api/v1/bans/{ADDRESS}", headers=viewer).status_code == 403
    assert client.delete(f"/api/v1/bans/{ADDRESS}", headers=admin).status_code == 204
    assert stored_addresses(data) == []
    missing = client.delete(f"/api/v1/bans/{ADDRESS}", headers=admin)
    assert missing.status_code == 404
    assert missing.get_json()["error"]["message"] == f"{ADDRESS} is not banned"
    assert client.delete("/api/v1/bans/nonsense", headers=admin).status_code == 404


def test_a_running_cores_ban_is_listed_and_lifted_through_it(
    core: CoreProcess, tmp_path: Path
) -> None:
    prepare(core.data)
    core.add_extension("101", "Kq7vT9pLm2")
    target = (core.host, core.port)
    ban(core, tmp_path)
    stored(core.data, 1)
    app = create_app({"DATA_DIR": core.data, "TESTING": True})
    client = app.test_client()
    admin = api_token(core.data, "admin")
    assert [b["address"] for b in client.get("/api/v1/bans", headers=admin).get_json()["bans"]] == [
        SOURCE
    ]
    page = Pages(app.test_client())
    assert page.login(*ADMIN).status_code == 302
    html = page.get("/security").get_data(as_text=True)
    assert f'data-address="{SOURCE}"' in html and "The core is not running" not in html
    assert probe(SOURCE, target) is None
    assert client.delete(f"/api/v1/bans/{SOURCE}", headers=admin).status_code == 204
    assert probe(SOURCE, target) is not None  # the core itself lifted it, at once
    assert stored(core.data, 0) == []
