"""The pages for SIP trunks, the office's numbers (DIDs) and outbound routes, and what they
add to the extension, dashboard and call pages, through the Flask test client over a real
SQLite file: each refused form shows the store's message under its field with what was typed
kept and nothing saved; a trunk's password is never in a page or a log; a DID that is an
extension's number is refused naming the extension; routes keep their order and move up and
down; a removal something still needs is refused with the store's reason, not an error page.
The running core's side (the Test button against a real `pbx run`) is in test_live_core.py."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from appliance.store import cdrs, dids, extensions, routes, settings, trunks
from tests.web.conftest import Pages, add_extensions, csrf_token
from tests.web.test_pages import (
    Dom,
    call,
    dom,
    dump,
    error,
    flashes,
    post,
    store,
    table_rows,
    value,
)  # fmt: skip

TRUNK_PASSWORD = "Provider-Pass-3141"
DID = "+493012345678"

TRUNK_FORM = {
    "name": "city", "kind": "register", "server": "sip.example.net", "username": "0301234567",
    "password": "Sip-Secret-2718", "auth_user": "", "transport": "udp", "outbound_proxy": "",
    "from_user": "", "from_domain": "", "codecs": "PCMA,PCMU,G722", "max_calls": "2",
    "expires": "300", "options_interval": "30", "external_address": "", "match_cidrs": "",
    "did_from": "auto", "enabled": "y",
}  # fmt: skip
"""What the new-trunk form sends when filled in (a browser sends every field)."""


@pytest.fixture
def lines(admin: Pages, data: Path) -> Pages:
    """Extensions 100-102, trunk main (with a password), the DID to 102 on it, route local."""
    add_extensions(data, "100", "101", "102")
    with store(data) as db:
        trunks.add(db, "main", server="sip.example.net", username="office",
                   password=TRUNK_PASSWORD)  # fmt: skip
        dids.add(db, DID, "extension:102", "Main line", "main")
        routes.add(db, "local", ["NXXXXXX"], ["main"])
    return admin


def options(page: Dom, select_id: str) -> list[str]:
    select = page.by_id(select_id)
    assert select is not None, select_id
    return [o.attrs["value"] for o in page.find_all("option") if o.within("select", id=select_id)]


def selected(page: Dom, select_id: str) -> list[str]:
    return [
        o.attrs["value"]
        for o in page.find_all("option")
        if o.within("select", id=select_id) and "selected" in o.attrs
    ]


def route_order(data: Path) -> list[str]:
    with store(data) as db:
        return [r.name for r in routes.list_all(db)]


# --- trunks -------------------------------------------------------------------------------------


def test_a_trunk_added_on_the_page_is_listed_and_its_password_shown_nowhere(
    lines: Pages, data: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = lines.submit("/trunks/new", TRUNK_FORM)
    assert response.status_code == 302 and response.headers["Location"] == "/trunks/"
    with store(data) as db:
        trunk = trunks.get(db, "city")
    assert trunk is not None
    assert (trunk.username, trunk.password, trunk.max_calls, trunk.enabled) == (
        "0301234567", "Sip-Secret-2718", 2, True,
    )  # fmt: skip
    listed = lines.get("/trunks/")
    page = dom(listed)
    assert "Trunk city added." in " ".join(flashes(page))
    rows = {row[0]: row for row in table_rows(page, "trunks")}
    assert rows["city"][:5] == ["city", "register", "sip.example.net", "unknown", "0 / 2"]
    assert rows["main"][4] == "0 / ∞"

    edit = lines.get("/trunks/city/edit")
    assert value(dom(edit), "password") == ""  # never rendered back, not even masked
    assert value(dom(edit), "username") == "0301234567"
    shown = [listed, edit, lines.get("/trunks/main/edit"), lines.get("/"),
             lines.get("/dashboard/state"), post(lines, "/trunks/city/test"),
             lines.submit("/trunks/city/edit", {**TRUNK_FORM, "server": "?"})]  # fmt: skip
    for text in (r.get_data(as_text=True) for r in shown):
        assert "Sip-Secret-2718" not in text and TRUNK_PASSWORD not in text
    assert "Sip-Secret-2718" not in caplog.text


@pytest.mark.parametrize(
    ("changes", "field_id", "message"),
    [
        ({"name": "City Line"}, "name", "trunk name must be 1 to 32 lower-case letters"),
        ({"name": "main"}, "name", "trunk main already exists"),
        ({"server": "not a host!"}, "server", "server must be HOST or HOST:PORT"),
        ({"server": ""}, "server", "This field is required."),
        ({"username": ""}, "username", "a register trunk needs a username"),
        ({"password": ""}, "password", "a register trunk needs a password"),
        ({"max_calls": "lots"}, "max_calls", "max calls must be a whole number"),
        ({"codecs": "GSM"}, "codecs", "codecs must list some of PCMA, PCMU, G722"),
        ({"did_from": "header:bad header"}, "did_from", "is not a SIP header name"),
        ({"transport": "tls"}, "transport", "Not a valid choice"),
    ],
)
def test_a_refused_trunk_shows_why_at_its_field_keeps_what_was_typed_and_saves_nothing(
    lines: Pages, data: Path, changes: dict[str, str], field_id: str, message: str
) -> None:
    before = dump(data)
    form = {**TRUNK_FORM, **changes}
    response = lines.submit("/trunks/new", form)
    assert response.status_code == 200
    page = dom(response)
    assert message in error(page, field_id)
    for name in ("name", "server", "username", "max_calls", "codecs"):
        assert value(page, name) == form[name], name
    assert value(page, "password") == ""  # what was typed there is not sent back
    if field_id in ("max_calls", "codecs", "did_from", "transport"):
        (more,) = page.find_all("details")
        assert "open" in more.attrs  # the error is in the part that folds away: unfolded
    assert dump(data) == before


def test_editing_a_trunk_keeps_its_password_unless_a_new_one_is_typed(
    lines: Pages, data: Path
) -> None:
    page = dom(lines.get("/trunks/main/edit"))
    assert value(page, "server") == "sip.example.net" and value(page, "name") is None
    form = {**TRUNK_FORM, "username": "office", "server": "sip2.example.net:5080"}
    del form["name"]
    response = lines.submit("/trunks/main/edit", {**form, "password": ""})
    assert response.status_code == 302
    with store(data) as db:
        trunk = trunks.get(db, "main")
    assert trunk is not None
    assert (trunk.server, trunk.password) == ("sip2.example.net:5080", TRUNK_PASSWORD)

    del form["enabled"]  # the box unticked: not sent
    assert lines.submit("/trunks/main/edit", {**form, "password": "N3w-Secret"}).status_code == 302
    with store(data) as db:
        trunk = trunks.get(db, "main")
    assert trunk is not None and (trunk.password, trunk.enabled) == ("N3w-Secret", False)
    assert table_rows(dom(lines.get("/trunks/")), "trunks")[0][3] == "disabled"


def test_a_trunk_in_use_is_not_deleted_and_the_page_says_by_what(lines: Pages, data: Path) -> None:
    response = post(lines, "/trunks/main/delete")
    assert response.status_code == 302
    assert flashes(dom(lines.get("/trunks/"))) == [
        f"Trunk main was not deleted: trunk main is used by route local, DID {DID}; change"
        " that first."
    ]
    with store(data) as db:
        routes.remove(db, "local")
        dids.update(db, DID, trunk="")
    assert post(lines, "/trunks/main/delete").status_code == 302
    assert table_rows(dom(lines.get("/trunks/")), "trunks") == []


def test_the_test_button_without_a_core_says_the_core_is_not_running(lines: Pages) -> None:
    response = post(lines, "/trunks/main/test")
    assert response.status_code == 200
    page = dom(response)
    result = page.by_id("trunk-test")
    assert result is not None
    assert "Test of trunk main" in result.text and "The core is not running" in result.text
    assert table_rows(page, "trunks")[0][0] == "main"  # the list is shown with it
    assert post(lines, "/trunks/nope/test").status_code == 404


# --- the office's numbers (DIDs) ------------------------------------------------------------------


def test_a_did_that_is_an_extensions_number_is_refused_naming_the_extension(
    lines: Pages, data: Path
) -> None:
    before = dump(data)
    response = lines.submit(
        "/numbers/new",
        {"number": "100", "label": "Short", "destination": "extension:101", "trunk": "main"},
    )
    assert response.status_code == 200
    page = dom(response)
    assert error(page, "number") == "100 is already extension 100 (Phone 100)"
    assert value(page, "number") == "100" and value(page, "label") == "Short"
    assert selected(page, "destination") == ["extension:101"]
    assert selected(page, "trunk") == ["main"]
    assert dump(data) == before


def test_a_did_is_added_in_any_written_form_and_listed_with_where_its_calls_go(
    lines: Pages, data: Path
) -> None:
    page = dom(lines.get("/numbers/new"))
    # The destinations offered are the store's: its extensions, then each way to hang up.
    assert options(page, "destination") == [
        "extension:100", "extension:101", "extension:102", "hangup:busy", "hangup:not-found",
        "hangup:unavailable", "hangup:rejected", "hangup:congestion",
    ]  # fmt: skip
    assert options(page, "trunk") == ["", "main"]
    response = lines.submit(
        "/numbers/new",
        {"number": "+49 (30) 9999-9999", "label": "Fax", "destination": "hangup:busy",
         "trunk": ""},
    )  # fmt: skip
    assert response.status_code == 302
    rows = table_rows(dom(lines.get("/numbers/")), "dids")
    assert [row[:4] for row in rows] == [
        [DID, "Main line", "main", "extension 102 (Phone 102)"],
        ["+493099999999", "Fax", "any", "hang up (busy)"],
    ]

    page = dom(lines.get("/numbers/+49 30 9999 9999/edit"))  # any written form finds it
    assert value(page, "label") == "Fax" and selected(page, "destination") == ["hangup:busy"]
    response = lines.submit(
        "/numbers/+493099999999/edit",
        {"label": "Fax line", "destination": "extension:100", "trunk": "main"},
    )
    assert response.status_code == 302
    with store(data) as db:
        did = dids.get(db, "+493099999999")
    assert did is not None and (did.label, did.destination, did.trunk) == (
        "Fax line", "extension:100", "main",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("form", "field_id", "message"),
    [
        ({"number": "abc"}, "number", "unexpected character"),
        ({"number": "12345678"}, "number", "not a complete number in US"),
        ({"number": DID}, "number", f"{DID} is already the DID {DID} (Main line)"),
        ({"label": "x" * 33}, "label", "label must be at most 32 printable characters"),
        ({"destination": "extension:199"}, "destination", "Not a valid choice"),
    ],
)
def test_a_refused_did_shows_why_at_its_field_and_saves_nothing(
    lines: Pages, data: Path, form: dict[str, str], field_id: str, message: str
) -> None:
    before = dump(data)
    sent = {"number": "+493055555555", "label": "", "destination": "hangup:busy", "trunk": "",
            **form}  # fmt: skip
    response = lines.submit("/numbers/new", sent)
    assert response.status_code == 200
    page = dom(response)
    assert message in error(page, field_id)
    assert value(page, "number") == sent["number"]
    assert dump(data) == before


def test_a_did_presented_as_caller_id_is_not_deleted_and_the_page_says_why(
    lines: Pages, data: Path
) -> None:
    with store(data) as db:
        extensions.set_caller_id(db, "101", DID)
    assert post(lines, f"/numbers/{DID}/delete").status_code == 302
    assert flashes(dom(lines.get("/numbers/"))) == [
        f"Number {DID} was not deleted: DID {DID} is the caller ID of extension 101; change"
        " that first."
    ]
    with store(data) as db:
        extensions.set_caller_id(db, "101", "")
    assert post(lines, f"/numbers/{DID}/delete").status_code == 302
    assert table_rows(dom(lines.get("/numbers/")), "dids") == []


# --- outbound routes ----------------------------------------------------------------------------


def add_trunk(data: Path, name: str) -> None:
    with store(data) as db:
        trunks.add(db, name, server=f"{name}.example.net", kind="ip")


def test_routes_are_added_with_patterns_and_trunks_in_failover_order(
    lines: Pages, data: Path
) -> None:
    add_trunk(data, "backup")
    page = dom(lines.get("/routes/new"))
    assert [options(page, f"trunks-{i}") for i in range(2)] == [["", "backup", "main"]] * 2
    assert options(page, "caller_id") == ["", DID]
    response = lines.submit(
        "/routes/new",
        {"name": "mobile", "patterns": "1NXXNXXXXXX\n011., 00.", "trunks-0": "backup",
         "trunks-1": "main", "prepend": "", "caller_id": DID},
    )  # fmt: skip
    assert response.status_code == 302
    with store(data) as db:
        route = routes.get(db, "mobile")
    assert route is not None
    assert (route.position, route.patterns, route.trunks, route.caller_id) == (
        2, ("1NXXNXXXXXX", "011.", "00."), ("backup", "main"), DID,
    )  # fmt: skip
    rows = table_rows(dom(lines.get("/routes/")), "routes")
    assert [row[:4] for row in rows] == [
        ["⠿ 1", "local", "NXXXXXX", "main"],
        ["⠿ 2", "mobile", "1NXXNXXXXXX, 011., 00.", "backup → main"],
    ]

    page = dom(lines.get("/routes/mobile/edit"))
    assert [selected(page, f"trunks-{i}") for i in range(2)] == [["backup"], ["main"]]
    assert page.by_id("trunks-2") is None  # as many choices as there are trunks
    response = lines.submit(
        "/routes/mobile/edit",
        {"patterns": "011.", "trunks-0": "", "trunks-1": "main", "prepend": "+",
         "caller_id": ""},
    )  # fmt: skip
    assert response.status_code == 302
    with store(data) as db:
        route = routes.get(db, "mobile")
    assert route is not None
    assert (route.position, route.patterns, route.trunks, route.prepend, route.caller_id) == (
        2, ("011.",), ("main",), "+", "",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "field_id", "message"),
    [
        ({"patterns": "0Q"}, "patterns", "0Q"),
        ({"patterns": "00.\n00."}, "patterns", "pattern 00. is listed twice"),
        ({"trunks-0": ""}, "trunks-0", "a route needs at least one trunk"),
        ({"trunks-1": "main"}, "trunks-0", "trunk main is listed twice"),
        ({"prepend": "9x"}, "prepend", "prepend may hold only digits"),
        ({"name": "local"}, "name", "route local already exists"),
        ({"name": "Long Distance"}, "name", "route name must be 1 to 32"),
    ],
)
def test_a_refused_route_shows_why_at_its_field_keeps_what_was_typed_and_saves_nothing(
    lines: Pages, data: Path, changes: dict[str, str], field_id: str, message: str
) -> None:
    add_trunk(data, "backup")
    before = dump(data)
    form = {"name": "intl", "patterns": "011.\n00.", "trunks-0": "main", "trunks-1": "",
            "prepend": "", "caller_id": "", **changes}  # fmt: skip
    response = lines.submit("/routes/new", form)
    assert response.status_code == 200
    page = dom(response)
    assert message in error(page, field_id)
    assert value(page, "name") == form["name"]
    textarea = page.by_id("patterns")
    assert textarea is not None and textarea.text == " ".join(form["patterns"].split())
    assert selected(page, "trunks-0") == [form["trunks-0"]]
    assert dump(data) == before


def test_routes_move_up_and_down_with_the_buttons_and_the_order_is_saved(
    lines: Pages, data: Path
) -> None:
    with store(data) as db:
        routes.add(db, "mobile", ["1NXXNXXXXXX"], ["main"])
        routes.add(db, "intl", ["011."], ["main"])
    page = dom(lines.get("/routes/"))
    buttons = {b.attrs["aria-label"]: b for b in page.find_all("button") if "aria-label" in b.attrs}
    assert sorted(buttons) == [
        "Move intl up", "Move local down", "Move mobile down", "Move mobile up",
    ]  # fmt: skip
    moves = [
        (inp.parent.attrs["action"], inp.attrs["value"])
        for inp in page.find_all("input", name="position")
        if inp.parent is not None
    ]
    assert moves == [("/routes/local/move", "2"), ("/routes/mobile/move", "1"),
                     ("/routes/mobile/move", "3"), ("/routes/intl/move", "2")]  # fmt: skip
    rows = page.find_all("tr", draggable="true")
    assert [(r.attrs["data-name"], r.attrs["data-move"]) for r in rows] == [
        (name, f"/routes/{name}/move") for name in ("local", "mobile", "intl")
    ]

    assert post(lines, "/routes/intl/move", {"position": "2"}).status_code == 302  # up
    assert route_order(data) == ["local", "intl", "mobile"]
    assert "Route intl is now number 2." in " ".join(flashes(dom(lines.get("/routes/"))))
    assert post(lines, "/routes/local/move", {"position": "3"}).status_code == 302  # dragged
    assert route_order(data) == ["intl", "mobile", "local"]

    before = dump(data)
    assert post(lines, "/routes/local/move", {"position": "4"}).status_code == 302
    assert "position must be 1 to 3" in " ".join(flashes(dom(lines.get("/routes/"))))
    assert post(lines, "/routes/local/move", {"position": "x"}).status_code == 302
    assert "no position was given" in " ".join(flashes(dom(lines.get("/routes/"))))
    assert dump(data) == before
    assert post(lines, "/routes/nope/move", {"position": "1"}).status_code == 404


def test_deleting_a_route_closes_up_the_order(lines: Pages, data: Path) -> None:
    with store(data) as db:
        routes.add(db, "mobile", ["1NXXNXXXXXX"], ["main"], position=1)
    assert route_order(data) == ["mobile", "local"]
    assert post(lines, "/routes/mobile/delete").status_code == 302
    assert [row[:2] for row in table_rows(dom(lines.get("/routes/")), "routes")] == [
        ["⠿ 1", "local"]
    ]


# --- extensions: permissions, caller ID, and removal refused while referred to -------------------


def test_an_extensions_permissions_and_caller_id_are_edited_on_its_page(
    lines: Pages, data: Path
) -> None:
    page = dom(lines.get("/extensions/101/edit"))
    boxes = {b.attrs["value"]: b.attrs for b in page.find_all("input", type="checkbox")}
    assert list(boxes) == ["internal", "local", "mobile", "long-distance", "international",
                           "premium"]  # fmt: skip
    assert "disabled" in boxes["internal"] and "checked" in boxes["internal"]
    assert [v for v, a in boxes.items() if "checked" in a] == [
        "internal", "local", "mobile", "long-distance",
    ]  # fmt: skip
    assert options(page, "caller_id") == ["", DID]

    response = lines.client.post(
        "/extensions/101/edit",
        data={"csrf_token": csrf_token(lines.get("/extensions/101/edit").get_data(as_text=True)),
              "name": "Anna", "permissions": ["local", "international"], "caller_id": DID},
    )  # fmt: skip
    assert response.status_code == 302
    with store(data) as db:
        ext = extensions.get(db, "101")
    assert ext is not None
    assert (ext.name, ext.permissions, ext.caller_id) == (
        "Anna", ("internal", "local", "international"), DID,
    )  # fmt: skip
    row = next(r for r in table_rows(dom(lines.get("/extensions/")), "extensions")
               if r[0] == "101")  # fmt: skip
    assert row[3:5] == ["local, international", DID]

    # All of it or nothing: a refused name leaves the permissions and caller ID as they were.
    before = dump(data)
    response = lines.submit("/extensions/101/edit", {"name": 'say "hi"', "caller_id": ""})
    assert response.status_code == 200
    page = dom(response)
    assert "without quotes" in error(page, "name")
    assert value(page, "name") == 'say "hi"'
    assert dump(data) == before


@pytest.mark.parametrize(
    ("number", "says"),
    [
        ("102", f"extension 102 is the destination of DID {DID}; change that first"),
        ("100", "extension 100 is the destination of the setting dialplan.unknown_did"),
    ],
)
def test_deleting_an_extension_calls_are_sent_to_says_why_instead_of_failing(
    lines: Pages, data: Path, number: str, says: str
) -> None:
    with store(data) as db:
        settings.set_value(db, "dialplan.unknown_did", "extension:100")
    before = dump(data)
    response = post(lines, f"/extensions/{number}/delete")
    assert response.status_code == 302 and response.headers["Location"] == "/extensions/"
    (shown,) = flashes(dom(lines.get("/extensions/")))
    assert shown.startswith(f"Extension {number} was not deleted: {says}")
    assert dump(data) == before


# --- dashboard and calls ------------------------------------------------------------------------


def test_the_dashboard_shows_each_trunk_and_its_state(lines: Pages, data: Path) -> None:
    add_trunk(data, "backup")
    with store(data) as db:
        trunks.update(db, "backup", enabled=False)
    rows = table_rows(dom(lines.get("/")), "trunks")
    assert [row[:3] for row in rows] == [
        ["backup", "backup.example.net", "disabled"],
        ["main", "sip.example.net", "unknown"],
    ]
    state = lines.get("/dashboard/state").get_json()
    assert [(t["name"], t["state"], t["calls"]) for t in state["trunks"]] == [
        ("backup", "disabled", 0), ("main", "unknown", 0),
    ]  # fmt: skip


@pytest.fixture
def trunk_calls(lines: Pages, data: Path) -> Iterator[Pages]:
    inbound = call("in1", 1_700_000_000.0, "+4915112345678", DID, "answered", answered_by="102",
                   direction="inbound", trunk="main", did=DID, did_label="Main line")  # fmt: skip
    outbound = call("out1", 1_700_000_100.0, "101", "5550100", "answered",
                    answered_by="5550100", direction="outbound", trunk="main",
                    sent="+12125550100")  # fmt: skip
    elsewhere = call("out2", 1_700_000_200.0, "102", "5550101", "failed", direction="outbound",
                     trunk="backup")  # fmt: skip
    internal = call("int1", 1_700_000_300.0, "101", "102", "answered")
    with store(data) as db:
        cdrs.write(db, [inbound, outbound, elsewhere, internal])
    add_trunk(data, "backup")
    yield lines


@pytest.mark.parametrize(
    ("query", "ids"),
    [
        ("", ["int1", "out2", "out1", "in1"]),
        ("direction=inbound", ["in1"]),
        ("direction=outbound", ["out2", "out1"]),
        ("trunk=main", ["out1", "in1"]),
        ("trunk=main&direction=outbound", ["out1"]),
        ("direction=internal", ["int1"]),
    ],
)
def test_the_call_list_shows_and_filters_by_direction_and_trunk(
    trunk_calls: Pages, query: str, ids: list[str]
) -> None:
    page = dom(trunk_calls.get(f"/calls?{query}"))
    assert options(page, "trunk") == ["", "backup", "main"]
    rows = table_rows(page, "cdrs")
    callers = {"in1": "+4915112345678", "out1": "101", "out2": "102", "int1": "101"}
    assert [row[1].split()[0] for row in rows] == [callers[i] for i in ids]
    exported = trunk_calls.get(f"/calls/export.csv?{query}").get_data(as_text=True)
    assert [row["id"] for row in csv.DictReader(io.StringIO(exported))] == ids


def test_a_call_shows_its_direction_trunk_and_did_and_the_csv_has_them(
    trunk_calls: Pages,
) -> None:
    rows = {row[1].split()[0]: row for row in table_rows(dom(trunk_calls.get("/calls")), "cdrs")}
    assert rows["+4915112345678"][2:6] == [DID, "inbound", "main", f"{DID} Main line"]
    assert rows["102"][3:6] == ["outbound", "backup", "–"]
    assert rows["101"][2] == "5550100 sent +12125550100"  # out1 (int1 is newer, listed first)
    exported = trunk_calls.get("/calls/export.csv").get_data(as_text=True)
    by_id: dict[str, dict[str, Any]] = {
        row["id"]: row for row in csv.DictReader(io.StringIO(exported))
    }
    assert {k: by_id["in1"][k] for k in ("direction", "trunk", "did", "did_label", "sent")} == {
        "direction": "inbound", "trunk": "main", "did": f"'{DID}", "did_label": "Main line",
        "sent": "",
    }  # fmt: skip
    assert by_id["out1"]["sent"] == "'+12125550100"  # formula-safe: a leading + is quoted


# --- CSRF on the new forms ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "form"),
    [
        ("/trunks/new", TRUNK_FORM),
        ("/trunks/main/edit", {**TRUNK_FORM, "username": "office"}),
        ("/trunks/main/test", {}),
        ("/numbers/new", {"number": "+493099999999", "destination": "hangup:busy", "trunk": ""}),
        (f"/numbers/{DID}/edit", {"label": "x", "destination": "hangup:busy", "trunk": ""}),
        ("/routes/new", {"name": "intl", "patterns": "011.", "trunks-0": "main",
                         "caller_id": ""}),
        ("/routes/local/move", {"position": "1"}),
        ("/routes/local/delete", {}),
        (f"/numbers/{DID}/delete", {}),
    ],
)  # fmt: skip
def test_a_new_form_posted_without_its_csrf_token_is_refused_and_changes_nothing(
    lines: Pages, data: Path, url: str, form: dict[str, str]
) -> None:
    before = dump(data)
    response = lines.client.post(url, data=form)
    assert response.status_code == 400
    assert "CSRF check failed" in response.get_data(as_text=True)
    assert dump(data) == before
    assert post(lines, url, form).status_code in (200, 302)


def test_the_menu_leads_to_the_new_pages(app: Flask, lines: Pages) -> None:
    page = dom(lines.get("/routes/"))
    links = {a.text: a.attrs for a in page.find_all("a") if a.within("nav")}
    assert [links[name]["href"] for name in ("Trunks", "Numbers", "Routes")] == [
        "/trunks/", "/numbers/", "/routes/",
    ]  # fmt: skip
    assert links["Routes"].get("aria-current") == "page"


def test_a_backup_brings_back_the_trunks_numbers_and_routes(lines: Pages, data: Path) -> None:
    backup_file = post(lines, "/system/backup").get_data()
    with store(data) as db:
        routes.remove(db, "local")
        dids.remove(db, DID)
        trunks.remove(db, "main")
    response = lines.client.post(
        "/system/restore",
        data={"csrf_token": csrf_token(lines.get("/system").get_data(as_text=True)),
              "restore-backup": (io.BytesIO(backup_file), "b.json")},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert response.status_code == 302
    assert flashes(dom(lines.get("/system"))) == [
        "Configuration restored: 3 extensions, 2 users, 0 API tokens, 1 trunk, 1 number, 1 route."
    ]
    with store(data) as db:
        trunk = trunks.get(db, "main")
        assert trunk is not None and trunk.password == TRUNK_PASSWORD
        assert [d.number for d in dids.list_all(db)] == [DID]
        assert [r.name for r in routes.list_all(db)] == ["local"]
    page = lines.get("/system").get_data(as_text=True)
    assert "the trunks&#39; passwords in clear" in page or "the trunks' passwords in clear" in page
