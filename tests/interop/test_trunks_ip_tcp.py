"""Two more kinds of SIP trunk against a real Kamailio provider (tests/interop/kamailio.py):
an IP-authenticated trunk and a registered trunk over TCP. sipp plays the PSTN caller at the
provider, the city the provider relays the office's calls to, and extension 101 (a caller
through an outbound route, or a registered callee); the audio of every call is the test's own
RTP sockets, each side a tone of its own, recognised by its frequency where it arrives.

* **IP trunk** `ipco` (`--kind ip --match 127.0.0.2/32,...`): the provider runs on 127.0.0.2,
  an address no phone or sipp here uses, and knows the office as an IP peer (`peers`): DID
  calls are sent statically to the box's address, and the box's INVITEs are taken without a
  challenge because of where they come from. Nothing registers; the box's OPTIONS keep the
  trunk "reachable". An INVITE to the same DID from 127.0.0.1 is no trunk's: it is challenged
  (407) as if from an extension and refused (403), and rings nothing.
* **TCP trunk** `tcpco` (`--transport tcp`): registers with digest over TCP and carries a DID
  call and an outbound call; the provider logs the transport of every request it received
  from the box and of every request it sent to the box (``log_requests``), and its location
  holds the box's Contact with `transport=tcp`. Kamailio sends the DID call to that Contact on
  a connection it opens itself (from a port of its own choosing), and the box must still know
  it for the trunk's; a provider that keeps the registration's flow (``deliver_on_flow``)
  sends it back on the box's own connection instead.

The office: RU, city code 495, DID +7 495 123-45-67 "Moscow" ringing 101, route `city` (9 and
a national number) through the trunk, presenting the DID. Helpers come from test_trunks.py
(`Office`, the PSTN and city sipps, audio and CDR checks) and the peers' modules.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance import control
from tests.conftest import CoreProcess, pbx_cli
from tests.interop.kamailio import (
    InviteRecord,
    Provider,
    RegisterRecord,
    RequestRecord,
    provider_factory,
)
from tests.interop.rtp_endpoint import RtpEndpoint
from tests.interop.sipp import (
    BackgroundSipp,
    credentials,
    free_media_port,
    free_port,
    run_sipp,
    ulaw_tone,
)
from tests.interop.test_trunks import (
    CALLER,
    CALLER_TONE,
    CITY,
    CITY_TONE,
    PASSWORD,
    TIMEOUT,
    Office,
    audio_frequency,
    cdrs,
    invites_for,
)

DID = "+74951234567"
LABEL = "Moscow"
CITY_E164 = "+74951112233"
"""CITY (8 495 111-22-33) as the box sends it: E.164."""
EXTENSION_TONE = 700.0
"""What extension 101's RTP socket plays (the PSTN caller plays CALLER_TONE, the city
CITY_TONE)."""
PROVIDER_HOST = "127.0.0.2"
"""The IP trunk's provider listens here: its address is the only one whose calls are the
trunk's; every sipp and phone uses 127.0.0.1."""
IP_MATCH = "127.0.0.2/32,198.51.100.0/24"
"""The IP trunk's networks (the provider's address and a documentation network)."""
TCP_ACCOUNT = ("office1", "Tcp-Secret-31q")
HOLD_MS = 3000
"""How long each call stays up (sipp's pause): time enough for a second of audio each way."""
PACKETS = 50
"""RTP packets (20 ms each) taken from each direction; the first 10 are skipped."""


def _set_up(
    data: Path, trunk: list[str], name: str, core_factory: type[CoreProcess], sip: str
) -> CoreProcess:
    """Configure the office with `trunk` (`pbx trunk add NAME ...` arguments) and start it."""
    for args in (
        ["config", "set", "office.country", "RU"],
        ["config", "set", "office.area_code", "495"],
        ["ext", "add", "101", "--name", "Alice", "--password", PASSWORD],
        ["trunk", "add", name, *trunk, "--options-interval", "10"],
        ["did", "add", DID, "--to", "extension:101", "--label", LABEL, "--trunk", name],
        ["route", "add", "city", "--pattern", "9|8XXXXXXXXXX", "--trunk", name,
         "--caller-id", DID],
    ):  # fmt: skip
        pbx_cli(data, *args)
    core = core_factory(data=data, sip=sip)
    core.start()
    return core


def _close(office: Office, made: Iterator[Callable[..., Provider]]) -> None:
    for peers in office.peers:
        peers.close()
    # The core first: its un-REGISTER is answered at once (a provider gone would keep it
    # waiting for its stop timeout).
    office.core.stop()
    for _ in made:  # closes the providers
        pass


@pytest.fixture
def ip_office(core_factory: type[CoreProcess], tmp_path: Path) -> Iterator[Office]:
    """The office with IP trunk `ipco` to a provider on 127.0.0.2 that knows the box as an IP
    peer; the trunk is reachable (its OPTIONS answered)."""
    box_port = free_port()  # the provider's static route must know the box's address
    city_port = free_port()
    made = provider_factory(tmp_path)
    provider = next(made)(
        subscribers={}, peers={"office": ("127.0.0.1", box_port)},
        dids={DID.lstrip("+"): "office"}, city=("127.0.0.1", city_port), host=PROVIDER_HOST,
        log_requests=True,
    )  # fmt: skip
    host, port = provider.address
    trunk = ["--kind", "ip", "--server", f"{host}:{port}", "--match", IP_MATCH]
    core = _set_up(tmp_path / "var", trunk, "ipco", core_factory, f"127.0.0.1:{box_port}")
    office = Office(core, {"ipco": provider}, city_port, tmp_path)
    core.wait_output("trunk ipco: reachable", timeout=15)  # the first OPTIONS was answered
    yield office
    _close(office, made)


@pytest.fixture
def tcp_office(
    core_factory: type[CoreProcess], tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Office]:
    """The office with trunk `tcpco`, registered over TCP to a provider logging the transport
    of every request; the provider delivers DID calls to the registered Contact (a connection
    of its own), or, parametrized (indirect) with True, back on the registration's connection
    (`deliver_on_flow`)."""
    city_port = free_port()
    user, password = TCP_ACCOUNT
    made = provider_factory(tmp_path)
    provider = next(made)(
        subscribers={user: password}, dids={DID.lstrip("+"): user},
        city=("127.0.0.1", city_port), log_requests=True,
        deliver_on_flow=bool(getattr(request, "param", False)),
    )  # fmt: skip
    host, port = provider.address
    trunk = ["--server", f"{host}:{port}", "--transport", "tcp", "--username", user,
             "--password", password, "--expires", "60"]  # fmt: skip
    core = _set_up(tmp_path / "var", trunk, "tcpco", core_factory, "127.0.0.1:0")
    office = Office(core, {"tcpco": provider}, city_port, tmp_path)
    provider.wait_registered(user, timeout=15)
    core.wait_output("trunk tcpco: registered", timeout=15)
    yield office
    _close(office, made)


# -- helpers -----------------------------------------------------------------------------------


def register_101(office: Office) -> int:
    """REGISTER extension 101 from a free port of 127.0.0.1 (where its sipp callee will
    answer); the port."""
    port = free_port()
    run = run_sipp("register.xml", office.target, [["101", credentials("101", PASSWORD), 300]],
                   workdir=office.workdir, port=port)  # fmt: skip
    run.assert_passed()
    return port


def callee_101(office: Office, port: int, rtp: RtpEndpoint) -> BackgroundSipp:
    """Extension 101 answering at once (sipp on `port`, media on `rtp`) until the far BYE."""
    row: list[str | int] = ["101", credentials("101", PASSWORD), rtp.port, "", 0]
    peers = office.sipp(office.target)
    return peers.start("pj_uas_answer.xml", [row], port=port, media_port=free_media_port(),
                       timeout=TIMEOUT)  # fmt: skip


def pstn_caller(office: Office, trunk: str, rtp: RtpEndpoint) -> BackgroundSipp:
    """A PSTN caller dials the DID at the trunk's provider (no credentials), media on `rtp`;
    it hangs up HOLD_MS after the answer."""
    peers = office.sipp(office.providers[trunk].address)
    row: list[str | int] = [CALLER, DID.lstrip("+"), HOLD_MS, rtp.port]
    return peers.start("provider_pstn_rtp.xml", [row], port=free_port(),
                       media_port=free_media_port(), timeout=TIMEOUT)  # fmt: skip


def two_way_audio(
    office: Office, a: RtpEndpoint, a_sipp: BackgroundSipp, a_tone: float,
    b: RtpEndpoint, b_sipp: BackgroundSipp, b_tone: float,
) -> None:  # fmt: skip
    """Each side plays its tone to the box's port its sipp reported; each must hear the
    other's (and only that: the dominant frequency)."""
    a.start((office.core.host, a_sipp.wait_media_port()), audio=ulaw_tone(a_tone))
    b.start((office.core.host, b_sipp.wait_media_port()), audio=ulaw_tone(b_tone))
    heard_by_b = b.wait_packets(lambda p: p.payload_type == 0, PACKETS)
    heard_by_a = a.wait_packets(lambda p: p.payload_type == 0, PACKETS)
    assert abs(audio_frequency(heard_by_b[10:]) - a_tone) < 20, "b did not hear a's tone"
    assert abs(audio_frequency(heard_by_a[10:]) - b_tone) < 20, "a did not hear b's tone"


def inbound_call(office: Office, trunk: str) -> InviteRecord:
    """The PSTN caller dials the DID; 101 answers; audio both ways; both sipps pass. The
    provider's record of the INVITE it relayed."""
    with RtpEndpoint() as pstn_rtp, RtpEndpoint() as ext_rtp:
        callee = callee_101(office, register_101(office), ext_rtp)
        caller = pstn_caller(office, trunk, pstn_rtp)
        two_way_audio(office, pstn_rtp, caller, CALLER_TONE, ext_rtp, callee, EXTENSION_TONE)
        caller.wait().assert_passed()
        run = callee.wait()
        run.assert_passed()
    (invite,) = run.requests("INVITE")
    # The box recognised the trunk's call: the phone sees the DID's label and the caller.
    assert invite.one("From").startswith(f'"{LABEL}: +{CALLER}" <sip:+{CALLER}@'), invite
    relayed = office.providers[trunk].wait_invite(lambda r: r.kind == "inbound")
    assert relayed.relayed, relayed
    return relayed


def outbound_call(office: Office, trunk: str) -> list[InviteRecord]:
    """101 dials 9 and the city number; the provider relays it to the city, which answers;
    audio both ways; the city hangs up. The provider's records of INVITEs to the number."""
    with RtpEndpoint() as ext_rtp, RtpEndpoint() as city_rtp:
        city = office.city(office.sipp(office.providers[trunk].address), city_rtp, HOLD_MS)
        caller = office.extension_caller(office.sipp(office.target), ext_rtp, "9" + CITY)
        two_way_audio(office, ext_rtp, caller, EXTENSION_TONE, city_rtp, city, CITY_TONE)
        city.wait().assert_passed()
        caller.wait().assert_passed()
    return invites_for(office.providers[trunk], CITY_E164)


def status_line(office: Office, trunk: str) -> str:
    shown = pbx_cli(office.core.data, "status").stdout
    found = re.search(rf"^  {trunk} +\S+ .*$", shown, re.M)
    assert found is not None, shown
    return found[0]


def assert_cdr(office: Office, **expected: Any) -> None:
    """The one CDR row (written when the call ended) has the `expected` fields."""
    (row,) = cdrs(office, 1)
    assert {key: row[key] for key in expected} == expected, row


# -- the IP trunk --------------------------------------------------------------------------------


def test_ip_trunk_is_reachable_without_registering_and_its_did_call_rings_101(
    ip_office: Office,
) -> None:
    provider = ip_office.providers["ipco"]
    trunk = ip_office.trunk("ipco")
    assert (trunk["kind"], trunk["state"]) == ("ip", "reachable"), trunk
    assert trunk["last_response"].startswith("200"), trunk  # the answer to its OPTIONS
    assert trunk["registered_until"] is None, trunk
    assert re.match(r"  ipco +reachable +127\.0\.0\.2:\d+ ", status_line(ip_office, "ipco"))
    # The keep-alive the provider answered came from the box's SIP port; nothing registers.
    options = provider.wait_request(
        lambda r: r.method == "OPTIONS" and r.address == ip_office.target
    )
    assert options.proto == "udp", options
    assert [r for r in provider.requests() if r.method == "REGISTER"] == []

    relayed = inbound_call(ip_office, "ipco")
    # The provider sent it by its static route to the box's address, from its own.
    assert relayed.dest == f"sip:{DID.lstrip('+')}@{ip_office.core.host}:{ip_office.core.port}"
    assert_cdr(ip_office, direction="inbound", trunk="ipco", did=DID, did_label=LABEL,
               caller=f"+{CALLER}", answered_by="101", disposition="answered")  # fmt: skip


def test_ip_trunk_carries_an_outbound_call_the_provider_takes_by_address(
    ip_office: Office,
) -> None:
    sent = outbound_call(ip_office, "ipco")
    # One INVITE, relayed at once: the provider trusted the box's address, asked no password.
    assert [(r.outcome, r.kind, r.auth_user) for r in sent] == [("relayed", "outbound", "")], sent
    (invite,) = sent
    assert invite.source == ip_office.target, invite  # from the box's own SIP port
    assert invite.from_user == DID, invite  # the route's caller ID
    assert_cdr(ip_office, direction="outbound", trunk="ipco", caller="101", dialled="9" + CITY,
               sent=CITY_E164, disposition="answered")  # fmt: skip


def test_an_invite_to_the_did_from_another_address_is_challenged_and_rings_nothing(
    ip_office: Office,
) -> None:
    with RtpEndpoint() as ext_rtp:
        callee = callee_101(ip_office, register_101(ip_office), ext_rtp)
        # Straight to the box from 127.0.0.1 (no trunk's address), as a provider would send it,
        # without credentials: challenged as if from an extension, then refused for the
        # made-up ones it offers.
        row: list[str | int] = [CALLER, credentials(CALLER, "guess-1234"), 0, DID.lstrip("+"),
                                "PSTN", "", 0]  # fmt: skip
        run = run_sipp("call_uac_rejected.xml", ip_office.target, [row],
                       workdir=ip_office.workdir, port=free_port())  # fmt: skip
        assert run.statuses[-1] == 403, run.describe()
        first_final = next(s for s in run.statuses if s >= 200)
        assert first_final == 407, run.describe()
        status = control.call(ip_office.core.data, "status")
        assert status["refused"] >= 1, status
        assert status["calls"] == [], status
        ringing = callee.stop()  # it ends at once: it had no call
    assert ringing.requests("INVITE") == [], ringing.describe()
    assert ip_office.providers["ipco"].invites() == []


# -- the TCP trunk -------------------------------------------------------------------------------


def call_requests(provider: Provider, call_id: str, direction: str) -> list[RequestRecord]:
    """The requests of one call (SIP Call-ID) that the provider received or sent on."""
    return [r for r in provider.requests() if r.call_id == call_id and r.direction == direction]


def registration(office: Office) -> list[RegisterRecord]:
    """The trunk's REGISTERs at the provider: digest (401, then 200), all over TCP, the
    binding's Contact saying so."""
    provider = office.providers["tcpco"]
    user, _ = TCP_ACCOUNT
    registers = [r for r in provider.registers() if r.user == user]
    assert [r.outcome for r in registers][:2] == ["challenged", "saved"], registers
    assert {r.proto for r in registers} == {"tcp"}, registers
    (contact,) = provider.registered(user)
    assert contact.endswith(";transport=tcp") and ";line=" in contact, contact
    assert office.trunk("tcpco")["state"] == "registered"
    return registers


def test_tcp_trunk_registers_over_tcp_and_carries_calls_both_ways(tcp_office: Office) -> None:
    provider = tcp_office.providers["tcpco"]
    registers = registration(tcp_office)

    # A DID call: the provider sends it to the box's registered Contact, on a connection of
    # its own (from a port of its choosing); every request of the call it sends the box
    # (INVITE, ACK, BYE) goes over TCP.
    relayed = inbound_call(tcp_office, "tcpco")
    assert relayed.dest.endswith(";transport=tcp"), relayed
    provider.wait_request(lambda r: r.call_id == relayed.call_id and r.method == "BYE"
                          and r.direction == "sent")  # fmt: skip
    to_box = call_requests(provider, relayed.call_id, "sent")
    assert [(r.method, r.proto) for r in to_box] == [
        ("INVITE", "tcp"), ("ACK", "tcp"), ("BYE", "tcp")], to_box  # fmt: skip
    assert to_box[0].address == tcp_office.target, to_box  # the Contact: the box's SIP port

    # An outbound call on the box's own connection (the one it registered on): its INVITEs
    # (challenged, then authenticated) and its ACK come over TCP, the city's BYE goes back so.
    # (The ACK to the 407 is not logged: Kamailio's sl module takes the ACKs to its own
    # stateless answers before the script runs.)
    sent = outbound_call(tcp_office, "tcpco")
    assert [(r.outcome, r.proto) for r in sent] == [("challenged", "tcp"), ("relayed", "tcp")]
    assert {r.source for r in sent} == {registers[-1].source}, (sent, registers)
    call_id = sent[-1].call_id
    provider.wait_request(lambda r: r.call_id == call_id and r.method == "BYE"
                          and r.direction == "sent")  # fmt: skip
    from_box = [(r.method, r.proto) for r in call_requests(provider, call_id, "received")
                if r.address != ("127.0.0.1", tcp_office.city_port)]  # fmt: skip
    assert from_box == [("INVITE", "tcp"), ("INVITE", "tcp"), ("ACK", "tcp")], provider.requests()
    bye = [r for r in call_requests(provider, call_id, "sent") if r.method == "BYE"]
    assert [r.proto for r in bye] == ["tcp"], bye

    rows = cdrs(tcp_office, 2)
    assert sorted((r["direction"], r["trunk"], r["disposition"]) for r in rows) == [
        ("inbound", "tcpco", "answered"), ("outbound", "tcpco", "answered")], rows  # fmt: skip


@pytest.mark.parametrize("tcp_office", [True], ids=["deliver-on-flow"], indirect=True)
def test_a_did_call_back_on_the_registration_connection_reaches_101(tcp_office: Office) -> None:
    provider = tcp_office.providers["tcpco"]
    registers = registration(tcp_office)
    # A provider that keeps the REGISTER's flow sends the call back on that very connection:
    # to the address it saw the REGISTER come from (the box's end of its own connection).
    relayed = inbound_call(tcp_office, "tcpco")
    source = registers[-1].source
    assert relayed.dest == f"sip:{source[0]}:{source[1]};transport=tcp", relayed
    invite = provider.wait_request(lambda r: r.call_id == relayed.call_id
                                   and r.method == "INVITE" and r.direction == "sent")  # fmt: skip
    assert (invite.proto, invite.address) == ("tcp", source), invite
    (row,) = cdrs(tcp_office, 1)
    assert (row["direction"], row["trunk"], row["did"], row["answered_by"]) == (
        "inbound", "tcpco", DID, "101"), row  # fmt: skip
