"""The dial plan and the trunks' matching rules, in process, over a real SQLite store: where a
number goes from each context, and which requests count as a trunk's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.pbx.destinations.extension import Extension
from appliance.pbx.destinations.hangup import Hangup
from appliance.pbx.destinations.route import Outbound, fails_over
from appliance.pbx.dialplan import DialPlan
from appliance.pbx.directory import Directory
from appliance.pbx.legs import Origin
from appliance.pbx.trunks import Trunks
from appliance.sip.endpoint import SipEndpoint
from appliance.sip.message import Request, parse
from appliance.sip.transaction import Destination
from appliance.store import dids, extensions, routes, settings, trunks
from appliance.store.database import Database
from appliance.store.db import open_db

INTERNAL = Origin()
"""A call from an extension."""


class _Media:
    signalled_from = "192.0.2.1"
    """Where the caller's SIP came from (an unknown number is counted against it)."""


class _Leg:
    def __init__(self, number: str) -> None:
        self.number = number
        self.media = _Media()


class _Call:
    """What the dial plan reads of a call: where it comes from and who calls."""

    def __init__(self, caller: str, origin: Origin = INTERNAL) -> None:
        self.a = _Leg(caller)
        self.origin = origin


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    handle = open_db(tmp_path / "var")
    settings.set_value(handle, "office.country", "RU")
    settings.set_value(handle, "office.area_code", "495")
    extensions.add(handle, "101", "Alice")
    extensions.add(handle, "102", "Bob")
    extensions.set_permissions(handle, "102", ["local", "international"])
    for name, port in (("moscow", 5070), ("spare", 5080)):
        trunks.add(handle, name, server=f"127.0.0.1:{port}", username=f"acc-{name}",
                   password="Secret-123x")  # fmt: skip
    trunks.add(handle, "gw", kind="ip", server="192.0.2.10", match_cidrs="198.51.100.0/24")
    dids.add(handle, "+74951234567", "extension:101", label="Moscow", trunk="moscow")
    dids.add(handle, "+74951234568", "hangup:busy", label="Fax")
    extensions.set_caller_id(handle, "101", "+74951234567")
    routes.add(handle, "city", ["9|8XXXXXXXXXX"], ["moscow", "spare"])
    routes.add(handle, "abroad", ["9|810X."], ["spare"], caller_id="+74951234568")
    yield handle
    handle.conn.close()


@pytest.fixture
def plan(db: Database) -> DialPlan:
    lines = Trunks(SipEndpoint(), lambda: "127.0.0.1", lambda n: n)
    lines.reload(trunks.list_all(db))  # (not started: no registrations, no SIP here)
    directory = Directory()
    directory.load(db)
    dial_plan = DialPlan(directory, lines)
    dial_plan.load(db)
    return dial_plan


def resolve(plan: DialPlan, number: str, caller: str = "101", origin: Origin = INTERNAL) -> Any:
    return plan.resolve(number, _Call(caller, origin))  # type: ignore[arg-type]


def test_an_extension_number_is_the_extension(plan: DialPlan) -> None:
    assert resolve(plan, "102") == Extension("102")


def test_a_route_strips_its_prefix_and_sends_e164_with_the_extension_caller_id(
    plan: DialPlan,
) -> None:
    assert resolve(plan, "984951112233") == Outbound(
        "+74951112233", ("moscow", "spare"), "+74951234567"
    )


def test_the_route_caller_id_wins_over_the_extension_one(plan: DialPlan) -> None:
    assert resolve(plan, "9810442079460958", caller="102") == Outbound(
        "+442079460958", ("spare",), "+74951234568"
    )


def test_a_class_the_extension_may_not_call_is_refused_with_the_reason(plan: DialPlan) -> None:
    assert resolve(plan, "9810442079460958") == Hangup(
        403, "Forbidden (international calls are not allowed for 101)"
    )
    # 102 may call international and local numbers, but not long-distance ones.
    assert resolve(plan, "988432345678", caller="102") == Hangup(
        403, "Forbidden (long-distance calls are not allowed for 102)"
    )


def test_emergency_numbers_go_out_on_every_trunk_whatever_the_permissions(
    db: Database, plan: DialPlan
) -> None:
    every = ("gw", "moscow", "spare")
    assert resolve(plan, "112", caller="102") == Outbound("112", every, "")
    assert resolve(plan, "103", caller="102") == Outbound("103", every, "")
    # An extension numbered like an emergency service (101 in Russia) keeps its number...
    assert resolve(plan, "101", caller="102") == Extension("101")
    # ... and the service is reached through a route's prefix, on every trunk, not the
    # route's own, whatever the caller may call.
    routes.add(db, "short", ["9|XXX"], ["moscow"])
    plan.load(db)
    assert resolve(plan, "9101", caller="102") == Outbound("101", every, "")


def test_unknown_numbers_are_not_found(plan: DialPlan) -> None:
    assert resolve(plan, "555") == Hangup(404, "Not Found (no extension 555)")
    # ... and counted against the caller's address (which, having authenticated, is not banned)
    assert plan.trunks.gate.counters.refused["unknown_number"] == 1


def test_a_did_from_its_trunk_goes_to_its_destination_with_its_label(plan: DialPlan) -> None:
    origin = plan.inbound_origin("moscow", "74951234567")  # as providers write it
    assert origin == Origin("trunk", "moscow", "+74951234567", "Moscow")
    assert resolve(plan, "+74951234567", origin=origin) == Extension("101")
    # Bound to its trunk: from another trunk it is an unknown number of the office.
    other = plan.inbound_origin("spare", "84951234567")
    assert other == Origin("trunk", "spare", "+74951234567", "")
    assert resolve(plan, "+74951234567", origin=other) == Hangup(404, "Not Found")
    # A DID for any trunk, to a hang-up destination.
    fax = plan.inbound_origin("spare", "+7 495 123-45-68")
    assert resolve(plan, fax.did or "", origin=fax) == Hangup(486, "Busy Here")


def test_the_office_number_dialled_inside_goes_where_its_calls_go(plan: DialPlan) -> None:
    assert resolve(plan, "+74951234567") == Extension("101")


def test_failover_statuses() -> None:
    assert [s for s in (404, 408, 480, 486, 500, 503, 603) if fails_over(s)] == [408, 500, 503]


# -- who is a trunk -------------------------------------------------------------------------


def _invite(uri: str, display: str = "") -> Request:
    data = (
        f"INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
        f"From: {display}<sip:74997654321@127.0.0.1>;tag=1\r\nTo: <sip:74951234567@127.0.0.1>\r\n"
        "Call-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    req = parse(data)
    assert isinstance(req, Request)
    return req


def test_a_trunk_is_recognised_by_its_server_address_and_port_alone(plan: DialPlan) -> None:
    lines = plan.trunks
    req = _invite("sip:74951234567@127.0.0.1:5060")
    found = lines.match(req, Destination("UDP", "127.0.0.1", 5070))
    assert found is not None and found.name == "moscow"
    assert lines.match(req, Destination("UDP", "127.0.0.1", 5071)) is None  # another port
    # Over TCP a connection the provider opened comes from any port of its host (to the
    # registered Contact: its line parameter tells the two trunks of 127.0.0.1 apart).
    moscow = lines.get("moscow")
    assert moscow is not None
    to_contact = _invite(f"sip:acc-moscow@127.0.0.1:5060;line={moscow.config.instance}")
    over_tcp = lines.match(to_contact, Destination("TCP", "127.0.0.1", 40001))
    assert over_tcp is moscow
    spare = lines.match(req, Destination("TCP", "127.0.0.1", 5080))  # its own server's port
    assert spare is not None and spare.name == "spare"
    assert lines.match(req, Destination("TCP", "203.0.113.9", 5070)) is None
    gateway = lines.match(req, Destination("UDP", "198.51.100.7", 40000))  # inside its CIDR
    assert gateway is not None and gateway.name == "gw"
    assert lines.match(req, Destination("UDP", "203.0.113.9", 5060)) is None


def test_the_did_is_read_where_the_provider_puts_it(plan: DialPlan) -> None:
    line = plan.trunks.get("moscow")
    assert line is not None
    instance = line.config.instance
    # To the box's registered Contact: the DID is in To.
    assert line.did_of(_invite(f"sip:acc-moscow@127.0.0.1:5060;line={instance}")) == ("74951234567")
    # The DID in the Request-URI.
    assert line.did_of(_invite("sip:74951230000@127.0.0.1:5060")) == "74951230000"
    assert line.caller_of(_invite("sip:x@127.0.0.1")) == ("74997654321", "")
    # The name as a person reads it: the box quotes it once more when it presents the caller.
    quoted = _invite("sip:x@127.0.0.1", '"Ivan \\"Boss\\" Petrov" ')
    assert line.caller_of(quoted) == ("74997654321", 'Ivan "Boss" Petrov')
    assert line.caller_of(_invite("sip:x@127.0.0.1", "Ivan ")) == ("74997654321", "Ivan")


def test_a_full_trunk_takes_no_new_call_in_either_direction(db: Database, plan: DialPlan) -> None:
    trunks.update(db, "moscow", max_calls=2)
    lines = plan.trunks
    lines.reload(trunks.list_all(db))
    busy = {"moscow": 2, "spare": 5}
    lines.calls_on = lambda name: busy.get(name, 0)
    moscow, spare = lines.get("moscow"), lines.get("spare")
    assert moscow is not None and spare is not None
    assert not moscow.has_room() and not moscow.usable()
    assert spare.has_room()  # no limit
    busy["moscow"] = 1
    assert moscow.has_room()


def test_a_number_no_one_can_dial_is_refused_as_incomplete(plan: DialPlan) -> None:
    refused = "number '8104*31#4420794609': '*' and '#' only in short codes (6 or fewer)"
    assert resolve(plan, "98104*31#4420794609") == Hangup(484, f"Address Incomplete ({refused})")
    too_long = "+4420794609581234567: more than 15 digits, the most E.164 allows"
    assert resolve(plan, "98104420794609581234567", caller="102") == Hangup(
        484, f"Address Incomplete ({too_long})"
    )
