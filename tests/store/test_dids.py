"""The office's numbers (DIDs) in the store: normalised with the office's country and city
code, so one number written two ways is one DID; their destinations, labels and trunks
checked; a DID presented as caller ID is not removed."""

from __future__ import annotations

import pytest

from appliance import numbering
from appliance.store import destinations, dids, extensions, routes, settings, trunks
from appliance.store.database import Database
from appliance.store.dids import Did, DidError, DidTaken
from appliance.store.numbers import NumberTaken


@pytest.fixture
def db(office: Database) -> Database:
    extensions.add(office, "101", "Reception")
    trunks.add(office, "sipnet", server="sip.example.net", username="u1", password="Secret-1")
    return office


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("+74951234567", "+74951234567"),
        ("8 (495) 123-45-67", "+74951234567"),
        ("123-45-67", "+74951234567"),  # a local number: the office's city code 495
        ("8 800 555-35-35", "+78005553535"),
        ("100", "100"),  # a short number stays digits
    ],
)
def test_a_number_is_stored_normalised_and_found_as_dialled(
    db: Database, given: str, stored: str
) -> None:
    did = dids.add(db, given, "extension:101", "Main", "sipnet")
    assert did == Did(stored, "Main", "sipnet", "extension:101", did.created_at)
    assert dids.get(db, given) == did == dids.get(db, stored)
    assert dids.list_all(db) == [did]


def test_one_number_written_two_ways_is_one_did(db: Database) -> None:
    dids.add(db, "+74951234567", "extension:101", "Main")
    with pytest.raises(DidTaken) as taken:
        dids.add(db, "8 495 123 45 67", "hangup:busy")
    assert str(taken.value) == "+74951234567 is already the DID +74951234567 (Main)"
    assert taken.value.field == "number" and isinstance(taken.value, NumberTaken)
    assert [d.destination for d in dids.list_all(db)] == ["extension:101"]


def test_the_city_code_decides_local_numbers(db: Database) -> None:
    settings.set_value(db, "office.area_code", "812")
    assert dids.add(db, "1234567", "hangup:busy").number == "+78121234567"


def _number_error(text: str) -> str:
    with pytest.raises(numbering.NumberError) as exc:
        numbering.normalize(text, "RU", "495")
    return str(exc.value)


@pytest.mark.parametrize(
    ("number", "destination", "label", "trunk", "field", "message"),
    [
        ("84951234", "hangup:busy", "", "", "number",
         "84951234 is not a complete number in RU: give it in international form (+7...) or as"
         " a short number of up to 6 digits"),
        ("12a", "hangup:busy", "", "", "number", _number_error("12a")),
        ("", "hangup:busy", "", "", "number", _number_error("")),
        ("+74951234567", "hangup:busy", "x" * 33, "", "label",
         "label must be at most 32 printable characters"),
        ("+74951234567", "hangup:busy", "", "nope", "trunk", "there is no trunk 'nope'"),
        ("+74951234567", "extension:999", "", "", "destination", "there is no extension 999"),
        ("+74951234567", "route:city", "", "", "destination",
         "calls from outside cannot go to an outbound route (route:city)"),
        ("+74951234567", "fax:101", "", "", "destination",
         f"unknown destination kind 'fax'; known: {', '.join(sorted(destinations.KINDS))}"),
        ("+74951234567", "hangup:maybe", "", "", "destination",
         "a hang-up cause is one of busy, not-found, unavailable, rejected, congestion, not"
         " 'maybe'"),
        ("+74951234567", "101", "", "", "destination",
         "a destination is KIND:TARGET (e.g. extension:101, hangup:busy), not '101'"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_with_a_clear_message(
    db: Database, number: str, destination: str, label: str, trunk: str, field: str,
    message: str,
) -> None:  # fmt: skip
    with pytest.raises(DidError) as refused:
        dids.add(db, number, destination, label, trunk)
    assert (str(refused.value), refused.value.field) == (message, field)
    assert dids.list_all(db) == []


def test_update_changes_what_is_given(db: Database) -> None:
    did = dids.add(db, "+74951234567", "extension:101", "Main", "sipnet")
    changed = dids.update(db, "8 495 123-45-67", destination=" hangup:busy ", trunk="")
    assert changed == Did("+74951234567", "Main", "", "hangup:busy", did.created_at)
    assert dids.get(db, "+74951234567") == changed
    assert dids.update(db, "+74951234567", label="Sales").label == "Sales"
    with pytest.raises(DidError) as refused:
        dids.update(db, "+74951234567", destination="extension:555")
    assert (str(refused.value), refused.value.field) == ("there is no extension 555", "destination")
    with pytest.raises(DidError, match=r"^no DID \+74957654321$"):
        dids.update(db, "8 495 765 43 21", label="x")


def test_a_did_shown_as_caller_id_is_not_removed(db: Database) -> None:
    dids.add(db, "+74951234567", "extension:101")
    extensions.set_caller_id(db, "101", "+74951234567")
    routes.add(db, "city", ["8XXXXXXXXXX"], ["sipnet"], caller_id="84951234567")
    with pytest.raises(DidError) as refused:
        dids.remove(db, "+74951234567")
    assert str(refused.value) == (
        "DID +74951234567 is the caller ID of extension 101, route city; change that first"
    )
    extensions.set_caller_id(db, "101", "")
    routes.update(db, "city", caller_id="")
    dids.remove(db, "8 (495) 123-45-67")
    assert dids.list_all(db) == []
    with pytest.raises(DidError, match=r"^no DID \+74951234567$"):
        dids.remove(db, "+74951234567")
    with pytest.raises(DidError, match=r"^no DID garbage$"):
        dids.remove(db, "garbage")


def test_a_did_bound_to_a_trunk_is_listed_for_it(db: Database) -> None:
    first = dids.add(db, "+74951234567", "hangup:busy", trunk="sipnet")
    dids.add(db, "+74951234568", "hangup:busy")
    assert dids.on_trunk(db, "sipnet") == [first]
