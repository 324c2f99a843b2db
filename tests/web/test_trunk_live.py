"""The trunks page and API against a running core: a trunk saved on the page is run by the core
at once, the page and the dashboard show the state the core reports, and the Test button (and
POST /api/v1/trunks/{name}/test) asks the core for an OPTIONS round trip now: a trunk pointing
at a SIP endpoint that answers (the core's own) shows the time, one pointing at a closed
loopback port shows no answer. A real `pbx run`; no provider (Kamailio tests are elsewhere)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from flask import Flask

from appliance import control
from appliance.store import tokens, trunks
from appliance.store.db import open_db
from appliance.web import create_app
from tests.conftest import CoreProcess
from tests.web.conftest import ADMIN, Pages, prepare
from tests.web.test_pages import dom, table_rows

IP_TRUNK = {
    "kind": "ip", "username": "", "password": "", "auth_user": "", "transport": "udp",
    "outbound_proxy": "", "from_user": "", "from_domain": "", "codecs": "PCMA,PCMU",
    "max_calls": "0", "expires": "300", "options_interval": "10", "external_address": "",
    "match_cidrs": "", "did_from": "auto", "enabled": "y",
}  # fmt: skip


def closed_udp_port() -> int:
    """A loopback UDP port nothing listens on (bound, then let go)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def live(core: CoreProcess) -> tuple[CoreProcess, Pages, Flask]:
    prepare(core.data)
    control.call(core.data, "reload")
    app: Flask = create_app({"DATA_DIR": core.data, "TESTING": True})
    admin = Pages(app.test_client())
    assert admin.login(*ADMIN).status_code == 302
    return core, admin, app


def core_trunks(core: CoreProcess) -> dict[str, str]:
    return {t["name"]: t["state"] for t in control.call(core.data, "status")["trunks"]}


def test_the_test_button_shows_the_state_and_the_options_round_trip_from_the_core(
    live: tuple[CoreProcess, Pages, Flask], tmp_path: Path
) -> None:
    core, admin, app = live
    dead = closed_udp_port()
    for name, server in (("echo", f"{core.host}:{core.port}"), ("dead", f"127.0.0.1:{dead}")):
        response = admin.submit("/trunks/new", {**IP_TRUNK, "name": name, "server": server})
        assert response.status_code == 302, response.get_data(as_text=True)
    assert set(core_trunks(core)) == {"dead", "echo"}  # saving told the core: it runs them

    page = dom(admin.submit("/trunks/", {}, "/trunks/echo/test"))
    result = page.by_id("trunk-test")
    assert result is not None and "Test of trunk echo" in result.text
    state, rtt = (e.text for e in page.find_all("dd")[:2])
    assert state.startswith("reachable"), result.text  # the core answers OPTIONS itself
    assert rtt.startswith("answered in ") and rtt.endswith(" ms"), rtt

    started = time.monotonic()
    page = dom(admin.submit("/trunks/", {}, "/trunks/dead/test"))
    result = page.by_id("trunk-test")
    assert result is not None and "Test of trunk dead" in result.text
    state, rtt = (e.text for e in page.find_all("dd")[:2])
    assert rtt == "no answer", result.text
    assert state.split()[0] in ("unknown", "unreachable"), state
    assert time.monotonic() - started < 8.5  # the core gives up; the page does not hang

    # The list shows what the core reports, and so does the dashboard.
    rows = {row[0]: row for row in table_rows(page, "trunks")}
    assert rows["echo"][3].startswith("reachable")
    states = {t["name"]: t["state"] for t in admin.get("/dashboard/state").get_json()["trunks"]}
    assert states["echo"] == "reachable" and states["dead"] in ("unknown", "unreachable")

    db = open_db(core.data)
    _token, clear = tokens.create(db, "script", "admin")
    db.conn.close()
    api = app.test_client()
    headers = {"Authorization": f"Bearer {clear}"}
    answer = api.post("/api/v1/trunks/echo/test", headers=headers)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["reachable"] is True and body["rtt_ms"] >= 0 and body["state"] == "reachable"
    answer = api.post("/api/v1/trunks/dead/test", headers=headers)
    assert answer.status_code == 200 and answer.get_json()["reachable"] is False
    assert answer.get_json()["rtt_ms"] is None
    listed = api.get("/api/v1/trunks/echo", headers=headers).get_json()
    assert listed["status"]["state"] == "reachable"


def test_a_trunk_the_core_does_not_run_yet_is_not_tested_and_the_page_says_why(
    live: tuple[CoreProcess, Pages, Flask],
) -> None:
    core, admin, _app = live
    db = open_db(core.data)
    trunks.add(db, "late", server="127.0.0.1:5099", kind="ip")  # saved, the core not told
    db.conn.close()
    page = dom(admin.submit("/trunks/", {}, "/trunks/late/test"))
    result = page.by_id("trunk-test")
    assert result is not None, page
    assert "The core did not test it: no trunk 'late' is running." in result.text, result.text
    assert table_rows(page, "trunks")[0][3] == "unknown"

    form = {**IP_TRUNK, "username": "", "server": "127.0.0.1:5099"}
    del form["enabled"]  # unticked: kept, but not in use
    assert admin.submit("/trunks/late/edit", form).status_code == 302
    assert core_trunks(core) == {"late": "disabled"}
    page = dom(admin.submit("/trunks/", {}, "/trunks/late/test"))
    assert page.find_all("dd")[0].text == "disabled"
    assert table_rows(page, "trunks")[0][3] == "disabled"
