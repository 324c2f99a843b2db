"""The Ports page: the configured analog ports with their live state from the analog gateway's
control socket (a real Unix socket served by the test), "not running" when there is none, the
edit form's validation and saving, and who may do what."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from appliance.store import ports, settings
from appliance.store.db import open_db
from tests.lines_peer import LinesPeer
from tests.web.conftest import Pages


def demo(data: Path) -> None:
    db = open_db(data)
    try:
        settings.set_value(db, "ext.number_max", "299")  # the demo's analog extensions: 201, 202
        ports.demo_ports(db)
    finally:
        db.conn.close()


def stored(data: Path) -> dict[int, ports.Port]:
    db = open_db(data)
    try:
        return {p.port: p for p in ports.list_all(db)}
    finally:
        db.conn.close()


def row(html: str, port: int) -> str:
    start = html.index(f'<tr data-port="{port}"')
    return html[start : html.index("</tr>", start)]


def test_gateway_down_is_said_and_states_unknown(admin: Pages, data: Path) -> None:
    demo(data)
    html = admin.get("/ports/").get_data(as_text=True)
    assert 'id="gateway-down"' in html
    assert "The analog gateway is not running" in html
    assert "201" in row(html, 1) and "202" in row(html, 2) and "city-line" in row(html, 3)
    assert "unknown" in row(html, 1)
    assert "FXO (a city line)" in row(html, 3)


def test_live_states_from_the_gateway(admin: Pages, data: Path) -> None:
    demo(data)
    with LinesPeer(data) as peer:
        html = admin.get("/ports/").get_data(as_text=True)
    assert [r["cmd"] for r in peer.requests] == ["status"]
    assert 'id="gateway-down"' not in html
    assert "connected" in html
    assert "off hook" in row(html, 1) and "not registered" not in row(html, 1)
    assert "ringing" in row(html, 2) and "not registered" in row(html, 2)
    assert 'data-state="fault"' in row(html, 3) and "loop current lost" in row(html, 3)


def test_board_down_is_shown(admin: Pages, data: Path) -> None:
    demo(data)
    with LinesPeer(data, {"board": "down", "ports": []}):
        html = admin.get("/ports/").get_data(as_text=True)
    assert "disconnected" in html


def test_dashboard_card_lists_the_ports(admin: Pages, data: Path) -> None:
    demo(data)
    with LinesPeer(data):
        html = admin.get("/").get_data(as_text=True)
        state = admin.get("/dashboard/state").get_json()
    assert 'id="dashboard-ports"' in html and "off hook" in row(html, 1)
    assert [p["state"] for p in state["lines"]["ports"]] == ["off-hook", "ringing", "fault"]
    html = admin.get("/").get_data(as_text=True)
    assert 'id="lines-down"' in html


def test_edit_saves_caller_id_and_extension(admin: Pages, data: Path) -> None:
    demo(data)
    before = stored(data)[1]
    answer = admin.submit("/ports/1/edit", {"extension": before.extension, "caller_id": "dtmf"})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    assert stored(data)[1].caller_id == "dtmf"
    answer = admin.submit("/ports/2/edit", {"extension": "201", "caller_id": "bell202"})
    assert answer.status_code == 200  # two ports as one extension: refused, form shown again
    assert stored(data)[2].extension == "202" and stored(data)[2].caller_id != "bell202"


def test_edit_refuses_unknown_caller_id_and_extension(admin: Pages, data: Path) -> None:
    demo(data)
    answer = admin.submit("/ports/1/edit", {"extension": "201", "caller_id": "morse"})
    assert answer.status_code == 200 and "Not a valid choice" in answer.get_data(as_text=True)
    answer = admin.submit("/ports/1/edit", {"extension": "999", "caller_id": "dtmf"})
    assert answer.status_code == 200
    assert stored(data)[1].extension == "201" and stored(data)[1].caller_id != "dtmf"


def test_fxo_port_keeps_its_trunk(admin: Pages, data: Path) -> None:
    demo(data)
    answer = admin.submit("/ports/3/edit", {"extension": "201", "caller_id": "etsi-fsk"})
    assert answer.status_code == 302
    port = stored(data)[3]
    assert port.trunk == "city-line" and not port.extension and port.caller_id == "etsi-fsk"


def test_unknown_port_is_404(admin: Pages, data: Path) -> None:
    demo(data)
    assert admin.get("/ports/9/edit").status_code == 404


def test_viewer_sees_but_does_not_edit(viewer: Pages, data: Path) -> None:
    demo(data)
    html = viewer.get("/ports/").get_data(as_text=True)
    assert "201" in row(html, 1) and "/ports/1/edit" not in html
    assert viewer.get("/ports/1/edit").status_code == 403
    answer = viewer.client.post("/ports/1/edit", data={"extension": "202", "caller_id": "none"})
    assert answer.status_code in (400, 403)
    assert stored(data)[1].extension == "201"


def test_login_needed(app: Flask, data: Path, admin: Pages) -> None:
    answer = app.test_client().get("/ports/")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]
