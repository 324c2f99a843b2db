"""Changes made on the setup page reach a running core through its control socket, whole and
at once, without dropping a call or a registration; and the core restarts from the page keeping
its phones registered. A real `pbx run`, real sipp phones, the Flask app over the same data."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from flask import Flask

from appliance import control
from appliance.store import extensions, tokens
from appliance.store.db import open_db
from appliance.web import create_app
from tests.conftest import READY_PREFIX, CoreProcess
from tests.interop.sipp import SippPeers, credentials, free_media_port, free_port, run_sipp
from tests.web.conftest import ADMIN, Pages, prepare


@pytest.fixture
def live(core: CoreProcess) -> tuple[CoreProcess, Pages, dict[str, str]]:
    """The running core, an admin's page client over its data, and extensions 101-102."""
    prepare(core.data)
    db = open_db(core.data)
    passwords = {n: extensions.add(db, n, f"Phone {n}") for n in ("101", "102")}
    db.conn.close()
    control.call(core.data, "reload")
    app: Flask = create_app({"DATA_DIR": core.data, "TESTING": True})
    admin = Pages(app.test_client())
    assert admin.login(*ADMIN).status_code == 302
    return core, admin, passwords


def register(core: CoreProcess, number: str, password: str, workdir: Path) -> int:
    port = free_port()
    run = run_sipp(
        "register.xml", (core.host, core.port), [[number, credentials(number, password), 3600]],
        workdir=workdir, port=port,
    )  # fmt: skip
    run.assert_passed()
    assert run.statuses == [401, 200], run.describe()
    return port


def answered_calls(core: CoreProcess) -> list[dict[str, object]]:
    return [c for c in control.call(core.data, "status")["calls"] if c["state"] == "answered"]


def wait_answered(core: CoreProcess, timeout: float = 10.0) -> None:
    """Until the core reports a call answered (a state with no event: polled, bounded)."""
    deadline = time.monotonic() + timeout
    while not answered_calls(core):
        assert time.monotonic() < deadline, "the call was never answered"
        time.sleep(0.05)


def test_edits_apply_to_the_running_core_without_dropping_a_call_or_a_registration(
    live: tuple[CoreProcess, Pages, dict[str, str]], tmp_path: Path
) -> None:
    core, admin, passwords = live
    peers = SippPeers((core.host, core.port), tmp_path)
    try:
        port = register(core, "102", passwords["102"], tmp_path)
        media = free_media_port()
        callee = peers.start("call_uas_answer.xml", [[media, 0, 1, 0]], port=port,
                             media_port=media)  # fmt: skip
        caller = peers.start(
            "call_uac.xml", [["101", credentials("101", passwords["101"]), 5000, "102",
                              "Alice", "", 1]],
            port=free_port(), media_port=free_media_port(),
        )  # fmt: skip
        wait_answered(core)

        # Edits while the call is up: rename, a new extension, a new password elsewhere.
        assert admin.submit("/extensions/101/edit", {"name": "Front Desk"}).status_code == 302
        sheet = admin.submit("/extensions/new", {"number": "103", "name": "Lab"})
        assert sheet.status_code == 200 and b"pw-103" in sheet.data
        new_103 = sheet.get_data(as_text=True).split('id="pw-103">', 1)[1].split("<", 1)[0]

        assert len(answered_calls(core)) == 1, "an edit dropped the call"
        status = control.call(core.data, "status")
        assert [r["aor"] for r in status["registrations"]] == ["102"]
        register(core, "103", new_103, tmp_path)  # the new extension works at once

        caller.wait().assert_passed()  # the caller's BYE got its 200: the call lived on
        callee.wait().assert_passed()
    finally:
        peers.close()
    aors = sorted(r["aor"] for r in control.call(core.data, "status")["registrations"])
    assert aors == ["102", "103"]


def test_the_core_restarts_from_the_system_page_and_keeps_its_phones(
    live: tuple[CoreProcess, Pages, dict[str, str]], tmp_path: Path
) -> None:
    core, admin, passwords = live
    register(core, "102", passwords["102"], tmp_path)
    assert core.proc is not None
    pid = core.proc.pid
    mark = core.lines.mark()
    response = admin.submit("/system", {"restart-service": "core"}, action="/system/restart")
    assert response.status_code == 302
    core.lines.wait(lambda line: line.startswith(READY_PREFIX), 30, since=mark)
    status = control.call(core.data, "status")
    assert status["pid"] == pid and core.proc.poll() is None  # restarted in place
    assert status["uptime"] <= 5
    assert [r["aor"] for r in status["registrations"]] == ["102"]
    page = admin.get("/system")
    assert b"pbx-core is restarting" in page.data


def test_an_extension_made_through_the_api_registers_at_once(
    live: tuple[CoreProcess, Pages, dict[str, str]], tmp_path: Path
) -> None:
    core, _admin, _passwords = live
    db = open_db(core.data)
    _token, clear = tokens.create(db, "CRM", "admin")
    db.conn.close()
    app: Flask = create_app({"DATA_DIR": core.data, "TESTING": True})
    answer = app.test_client().post(
        "/api/v1/extensions", json={"number": "150", "name": "Sales"},
        headers={"Authorization": f"Bearer {clear}"},
    )  # fmt: skip
    assert answer.status_code == 201, answer.get_json()
    register(core, "150", answer.get_json()["password"], tmp_path)
    live_rows = (
        app.test_client()
        .get("/api/v1/registrations", headers={"Authorization": f"Bearer {clear}"})
        .get_json()["registrations"]
    )
    assert [r["aor"] for r in live_rows] == ["150"]
