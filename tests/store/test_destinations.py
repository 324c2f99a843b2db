"""Destinations (`KIND:TARGET`): the kind known, the target there, calls from outside kept
from going out again, a description for pages, and a target in use kept from removal."""

from __future__ import annotations

import pytest

from appliance.store import destinations, dids, extensions, routes, settings, trunks
from appliance.store.database import Database
from appliance.store.destinations import DestinationError, Kind
from appliance.store.extensions import ExtensionError
from appliance.store.settings import SettingError


@pytest.fixture
def db(office: Database) -> Database:
    extensions.add(office, "101", "Reception")
    extensions.add(office, "102")
    trunks.add(office, "sipnet", kind="ip", server="192.0.2.1")
    routes.add(office, "city", ["8XXXXXXXXXX"], ["sipnet"])
    return office


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("extension:101", "extension:101"),
        (" Extension:102 ", "extension:102"),
        ("route:city", "route:city"),
        ("hangup:busy", "hangup:busy"),
        ("HANGUP:congestion", "hangup:congestion"),
    ],
)
def test_a_good_destination_comes_back_canonical(db: Database, text: str, canonical: str) -> None:
    assert destinations.check_destination(db, text) == canonical


@pytest.mark.parametrize(
    ("text", "inbound", "message"),
    [
        ("extension:999", False, "there is no extension 999"),
        ("extension:1", False, "an extension is 2 to 6 digits, not '1'"),
        ("route:town", False, "there is no outbound route town"),
        ("route:Town Calls", False,
         "a destination is KIND:TARGET (e.g. extension:101, hangup:busy), not 'route:Town Calls'"),
        ("route:city", True, "calls from outside cannot go to an outbound route (route:city)"),
        ("hangup:later", False,
         "a hang-up cause is one of busy, not-found, unavailable, rejected, congestion, not"
         " 'later'"),
        ("fax:5", False,
         f"unknown destination kind 'fax'; known: {', '.join(sorted(destinations.KINDS))}"),
        ("101", False, "a destination is KIND:TARGET (e.g. extension:101, hangup:busy), not '101'"),
        ("", False, "a destination is KIND:TARGET (e.g. extension:101, hangup:busy), not ''"),
    ],
)  # fmt: skip
def test_a_bad_destination_is_refused_with_a_clear_message(
    db: Database, text: str, inbound: bool, message: str
) -> None:
    with pytest.raises(DestinationError) as refused:
        destinations.check_destination(db, text, field="to", inbound=inbound)
    assert (str(refused.value), refused.value.field) == (message, "to")


def test_destinations_are_described_for_people(db: Database) -> None:
    assert destinations.describe(db, "extension:101") == "extension 101 (Reception)"
    assert destinations.describe(db, "extension:102") == "extension 102"
    assert destinations.describe(db, "extension:999") == "extension 999 (missing)"
    assert destinations.describe(db, "route:city") == "outbound route city"
    assert destinations.describe(db, "route:gone") == "outbound route gone (missing)"
    assert destinations.describe(db, "hangup:busy") == "hang up (busy)"
    assert destinations.describe(db, "nonsense") == "nonsense"


def test_a_feature_adds_its_kind_with_one_entry(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def exists(db_: Database, target: str) -> str | None:
        return None if target == "7" else f"there is no conference {target}"

    conference = Kind("a conference", str, exists, lambda db_, target: f"conference {target}")
    monkeypatch.setitem(destinations.KINDS, "conference", conference)
    assert destinations.check_destination(db, "conference:7", inbound=True) == "conference:7"
    with pytest.raises(DestinationError, match=r"^there is no conference 8$"):
        destinations.check_destination(db, "conference:8")
    assert destinations.describe(db, "conference:7") == "conference 7"


def test_an_extension_calls_are_sent_to_is_not_removed(db: Database) -> None:
    dids.add(db, "+74951234567", "extension:101", "Main")
    settings.set_value(db, "dialplan.unknown_did", "extension:101")
    assert destinations.referrers(db, "extension:101") == [
        "DID +74951234567",
        "the setting dialplan.unknown_did",
    ]
    with pytest.raises(ExtensionError) as refused:
        extensions.remove(db, "101")
    assert str(refused.value) == (
        "extension 101 is the destination of DID +74951234567, the setting"
        " dialplan.unknown_did; change that first"
    )
    assert extensions.get(db, "101") is not None
    dids.update(db, "+74951234567", destination="hangup:busy")
    settings.set_value(db, "dialplan.unknown_did", "hangup:not-found")
    extensions.remove(db, "101")
    assert extensions.get(db, "101") is None


def test_the_unknown_did_setting_is_a_checked_inbound_destination(db: Database) -> None:
    assert settings.get(db, "dialplan.unknown_did") == "hangup:not-found"
    assert settings.set_value(db, "dialplan.unknown_did", " Extension:101") == "extension:101"
    for value, message in [
        ("extension:999", "dialplan.unknown_did: there is no extension 999"),
        ("route:city",
         "dialplan.unknown_did: calls from outside cannot go to an outbound route (route:city)"),
        ("busy", "dialplan.unknown_did: a destination is KIND:TARGET (e.g. extension:101,"
                 " hangup:busy), not 'busy'"),
    ]:  # fmt: skip
        with pytest.raises(SettingError) as refused:
            settings.set_value(db, "dialplan.unknown_did", value)
        assert str(refused.value) == message
    assert settings.get(db, "dialplan.unknown_did") == "extension:101"


def test_the_area_code_is_up_to_five_digits(db: Database) -> None:
    assert settings.set_value(db, "office.area_code", " 812 ") == "812"
    assert settings.set_value(db, "office.area_code", "") == ""
    for value in ("812a", "123456", "+7"):
        with pytest.raises(SettingError) as refused:
            settings.set_value(db, "office.area_code", value)
        assert str(refused.value) == f"office.area_code must be at most 5 digits, not {value!r}"
