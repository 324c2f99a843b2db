"""SIP trunks against real providers: two Kamailio instances (tests/interop/kamailio.py) play
the office's providers, sipp plays the city on both sides (a PSTN caller dialling the office's
numbers, and the city numbers the office dials), a PJSIP phone or a sipp phone is extension 101.

The office (RU, city code 495) has two trunks: `moscow` (provider 1, account office1, DIDs
+7 495 123-45-67 "Moscow" and +7 343 234-56-78 "Ural") and `usa` (provider 2, account office2,
DID +1 212 555-0100 "USA"); all three DIDs ring 101. Outbound route `city`: `9` + a national
number (8 ...) or `9` + 810 + an international one, through `moscow` then `usa`, presenting the
Moscow number.

What each side saw is asserted where it arrived: the provider's log of every INVITE
(`Provider.invites()`), sipp's message traces, the PJSIP phone's events and recordings, the
audio on the test's RTP sockets (by its frequency), the box's status and its CDR rows.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from appliance import control
from appliance.media.codecs import make_decoder
from tests.conftest import CoreProcess, pbx_cli
from tests.interop.call_records import wait_cdrs
from tests.interop.kamailio import InviteRecord, Provider, provider_factory
from tests.interop.pjsip import PjsipPhone, free_rtp_port
from tests.interop.rtp_endpoint import RtpEndpoint, RtpPacket
from tests.interop.sipp import (
    BackgroundSipp,
    SippPeers,
    credentials,
    free_media_port,
    free_port,
    run_sipp,
    ulaw_tone,
)
from tests.interop.tones import dominant_frequency

PASSWORD = "Kq7vT9pLm2"
"""Extension 101's SIP password."""
ACCOUNTS = {"moscow": ("office1", "Tr1-Secret-42x"), "usa": ("office2", "Tr2-Secret-77y")}
DIDS = {
    "+74951234567": ("Moscow", "moscow"),
    "+73432345678": ("Ural", "moscow"),
    "+12125550100": ("USA", "usa"),
}
CALLER = "74997654321"
"""A PSTN caller, as providers write numbers (E.164 without the plus)."""
CITY = "84951112233"
"""A Moscow city number as people dial it (8, city code, number)."""
CALLER_TONE, CITY_TONE = 1000.0, 1600.0
TIMEOUT = 30.0


def _provider_number(did: str) -> str:
    return did.lstrip("+")


@dataclass
class Office:
    core: CoreProcess
    providers: dict[str, Provider]
    city_port: int
    workdir: Path
    peers: list[SippPeers] = field(default_factory=list)

    @property
    def target(self) -> tuple[str, int]:
        return self.core.host, self.core.port

    def trunk(self, name: str) -> dict[str, Any]:
        trunks = control.call(self.core.data, "status")["trunks"]
        return next(t for t in trunks if t["name"] == name)

    def wait_trunk(self, name: str, states: tuple[str, ...], timeout: float) -> dict[str, Any]:
        """Poll the core's status (with a deadline) until the trunk is in one of `states`."""
        deadline = time.monotonic() + timeout
        while True:
            trunk = self.trunk(name)
            if trunk["state"] in states:
                return trunk
            if time.monotonic() > deadline:
                raise AssertionError(f"trunk {name} never reached {states}: {trunk}")
            time.sleep(0.2)  # polling the core's status: it changes on its own

    def phone(self, **options: Any) -> PjsipPhone:
        return PjsipPhone(
            f"{self.core.host}:{self.core.port}", "101", PASSWORD, local_port=free_port(),
            rtp_port=free_rtp_port(), stderr_path=self.workdir / "pjsua-101.log", **options,
        )  # fmt: skip

    def sipp(self, target: tuple[str, int]) -> SippPeers:
        """Background sipps aimed at `target`, killed (by PID) when the test ends."""
        peers = SippPeers(target, self.workdir)
        self.peers.append(peers)
        return peers

    def extension_caller(self, peers: SippPeers, rtp: RtpEndpoint, dialled: str) -> BackgroundSipp:
        """Extension 101 (sipp, media on `rtp`) dials `dialled`; it waits for the far BYE."""
        row: list[str | int] = ["101", credentials("101", PASSWORD), rtp.port, dialled, 0]
        return peers.start("pj_uac_answer.xml", [row], port=free_port(),
                           media_port=free_media_port(), timeout=TIMEOUT)  # fmt: skip

    def city(self, peers: SippPeers, rtp: RtpEndpoint, pause_ms: int = 3000) -> BackgroundSipp:
        """The city number both providers relay outbound calls to (sipp, media on `rtp`)."""
        return peers.start("trunk_city.xml", [[rtp.port, pause_ms]], port=self.city_port,
                           media_port=free_media_port(), timeout=TIMEOUT)  # fmt: skip

    def pstn_call(self, provider: str, did: str, *, scenario: str = "provider_pstn_call.xml",
                  hold_ms: int = 1000) -> BackgroundSipp:  # fmt: skip
        """A PSTN caller dials `did` at `provider` (no credentials: the provider's own side)."""
        peers = self.sipp(self.providers[provider].address)
        return peers.start(scenario, [[CALLER, _provider_number(did), hold_ms]], port=free_port(),
                           media_port=free_media_port(), timeout=TIMEOUT)  # fmt: skip


@pytest.fixture
def office(core_factory: type[CoreProcess], tmp_path: Path) -> Iterator[Office]:
    city_port = free_port()
    made = provider_factory(tmp_path)
    make: Callable[..., Provider] = next(made)
    providers = {
        name: make(
            subscribers={user: password},
            dids={_provider_number(d): user for d, (_, trunk) in DIDS.items() if trunk == name},
            city=("127.0.0.1", city_port),
        )
        for name, (user, password) in ACCOUNTS.items()
    }
    data = tmp_path / "var"
    setup = [
        ["config", "set", "office.country", "RU"],
        ["config", "set", "office.area_code", "495"],
        ["ext", "add", "101", "--name", "Alice", "--password", PASSWORD],
    ]
    for name, (user, password) in ACCOUNTS.items():
        host, port = providers[name].address
        setup.append(["trunk", "add", name, "--server", f"{host}:{port}", "--username", user,
                      "--password", password, "--expires", "60",
                      "--options-interval", "10"])  # fmt: skip
    for did, (label, trunk) in DIDS.items():
        setup.append(["did", "add", did, "--to", "extension:101", "--label", label,
                      "--trunk", trunk])  # fmt: skip
    setup.append(["route", "add", "city", "--pattern", "9|8XXXXXXXXXX", "--pattern", "9|810.",
                  "--trunk", "moscow", "--trunk", "usa",
                  "--caller-id", "+74951234567"])  # fmt: skip
    for args in setup:
        pbx_cli(data, *args)
    core = core_factory(data=data)
    core.start()
    office = Office(core, providers, city_port, tmp_path)
    for name, (user, _) in ACCOUNTS.items():
        providers[name].wait_registered(user, timeout=15)
        office.wait_trunk(name, ("registered",), timeout=15)
    yield office
    for peers in office.peers:
        peers.close()
    for _ in made:  # closes the providers
        pass


def audio_frequency(packets: list[RtpPacket]) -> float:
    """The dominant frequency of G.711 µ-law packets' audio."""
    pcm = make_decoder("PCMU").decode(b"".join(p.payload for p in packets))
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return dominant_frequency(samples, 8000)


def cdrs(office: Office, count: int) -> list[dict[str, Any]]:
    """The CDR rows, once there are `count` (the core writes each when its call ends)."""
    rows = wait_cdrs(office.core.data, lambda rows: len(rows) >= count)
    assert len(rows) == count, rows
    return rows


def invites_for(provider: Provider, number: str) -> list[InviteRecord]:
    return [r for r in provider.invites() if r.ruri_user.lstrip("+") == number.lstrip("+")]


# -- registration -----------------------------------------------------------------------------


def test_trunks_register_with_digest_and_recover_after_the_provider_restarts(
    office: Office,
) -> None:
    moscow = office.providers["moscow"]
    user, _ = ACCOUNTS["moscow"]
    contacts = moscow.registered(user)
    # The box's Contact carries the trunk's own line parameter (so its calls are recognised).
    assert len(contacts) == 1 and ";line=" in contacts[0], contacts
    outcomes = [r.outcome for r in moscow.registers() if r.user == user]
    assert outcomes[:2] == ["challenged", "saved"], outcomes  # digest: 401, then 200
    assert office.trunk("moscow")["last_response"].startswith("200"), office.trunk("moscow")

    moscow.kill()
    down = office.wait_trunk("moscow", ("unreachable", "failed"), timeout=60)
    assert down["state"] in ("unreachable", "failed"), down
    assert office.trunk("usa")["state"] == "registered"  # the other provider is not affected
    shown = pbx_cli(office.core.data, "status").stdout
    assert re.search(r"^  moscow +(unreachable|failed) ", shown, re.M), shown
    assert re.search(r"^  usa +registered ", shown, re.M), shown

    moscow.restart()  # same port; its location table is empty now
    moscow.wait_registered(user, timeout=60)
    office.wait_trunk("moscow", ("registered",), timeout=15)


# -- inbound: DIDs -----------------------------------------------------------------------------


def test_three_dids_on_two_providers_ring_one_phone_showing_which_number_was_called(
    office: Office,
) -> None:
    with office.phone(auto_answer=True) as phone:
        phone.wait_registered()
        for did, (label, trunk) in DIDS.items():
            mark = phone.mark()
            caller = office.pstn_call(trunk, did, hold_ms=500)
            incoming = phone.wait_incoming(timeout=20, since=mark)
            # The phone sees the DID's label before the caller's number (normalised).
            assert f'From: "{label}: +{CALLER}" <sip:+{CALLER}@' in incoming["message"], incoming
            caller.wait().assert_passed()
    rows = cdrs(office, 3)
    seen = {(r["did"], r["did_label"], r["trunk"], r["direction"], r["answered_by"],
             r["disposition"], r["caller"]) for r in rows}  # fmt: skip
    assert seen == {
        (did, label, trunk, "inbound", "101", "answered", f"+{CALLER}")
        for did, (label, trunk) in DIDS.items()
    }, rows


def test_a_did_call_without_sdp_gets_the_box_offer_and_completes(office: Office) -> None:
    with office.phone(auto_answer=True) as phone:
        phone.wait_registered()
        caller = office.pstn_call("moscow", "+74951234567", scenario="provider_pstn_late.xml")
        port = int(caller.wait_stderr(lambda line: line.startswith("pj-media ")).split()[1])
        assert port > 0
        run = caller.wait()
        run.assert_passed()
    ok = run.responses_to("INVITE")[-1]
    assert ok.status == 200 and "m=audio" in ok.body and "a=sendrecv" in ok.body, ok
    (row,) = cdrs(office, 1)
    assert (row["disposition"], row["did"], row["trunk"]) == (
        "answered", "+74951234567", "moscow"), row  # fmt: skip


def test_an_invite_to_a_did_from_a_stranger_rings_nothing(office: Office) -> None:
    with office.phone(auto_answer=True) as phone:
        phone.wait_registered()
        # Straight to the box, from an address that is no trunk's: it must authenticate as an
        # extension (407), and the provider's account is no extension (403).
        row: list[str | int] = ["office1", credentials("office1", ACCOUNTS["moscow"][1]), 0,
                                "+74951234567", "PSTN", "", 0]  # fmt: skip
        run = run_sipp("call_uac_rejected.xml", office.target, [row], workdir=office.workdir,
                       port=free_port())  # fmt: skip
        assert run.statuses[-1] == 403, run.describe()
        assert 407 in run.statuses, run.describe()
        assert control.call(office.core.data, "status")["refused"] >= 1
        assert [e for e in phone.events if e["event"] == "incoming"] == []
        # The same number through the provider rings.
        caller = office.pstn_call("moscow", "+74951234567", hold_ms=300)
        phone.wait_incoming(timeout=20)
        caller.wait().assert_passed()


# -- outbound: routes ---------------------------------------------------------------------------


def test_an_extension_dials_9_and_a_city_number_and_audio_flows_both_ways(office: Office) -> None:
    with RtpEndpoint() as caller_rtp, RtpEndpoint() as city_rtp, office.sipp(
        office.target
    ) as peers:  # fmt: skip
        city = office.city(office.sipp(office.providers["moscow"].address), city_rtp, 6000)
        caller = office.extension_caller(peers, caller_rtp, "9" + CITY)
        caller_rtp.start((office.core.host, caller.wait_media_port()), audio=ulaw_tone(CALLER_TONE))
        city_rtp.start((office.core.host, city.wait_media_port()), audio=ulaw_tone(CITY_TONE))
        heard_by_city = city_rtp.wait_packets(lambda p: p.payload_type == 0, 50)
        heard_by_caller = caller_rtp.wait_packets(lambda p: p.payload_type == 0, 50)
        assert abs(audio_frequency(heard_by_city[10:]) - CALLER_TONE) < 20
        assert abs(audio_frequency(heard_by_caller[10:]) - CITY_TONE) < 20
        # Configuration changed mid-call reaches the running core and drops nothing: the call
        # goes on (the city's BYE is answered), no trunk registers again.
        registers = len(office.providers["moscow"].registers())
        pbx_cli(office.core.data, "did", "add", "+74951230000", "--to", "extension:101")
        pbx_cli(office.core.data, "route", "add", "mobile", "--pattern", "9|89XXXXXXXXX",
                "--trunk", "usa", "--position", "1")  # fmt: skip
        mark = city_rtp.mark()
        city_rtp.wait_packets(lambda p: p.payload_type == 0, 25, since=mark)
        city.wait().assert_passed()
        caller.wait().assert_passed()
        assert len(office.providers["moscow"].registers()) == registers
        assert office.trunk("moscow")["state"] == "registered"
    (invite,) = [r for r in invites_for(office.providers["moscow"], "+74951112233")
                 if r.relayed]  # fmt: skip
    # The prefix 9 stripped, the number normalised, the office's number presented.
    assert invite.ruri_user == "+74951112233", invite
    assert invite.from_user == "+74951234567", invite
    (row,) = cdrs(office, 1)
    assert (row["direction"], row["trunk"], row["dialled"], row["sent"], row["disposition"]) == (
        "outbound", "moscow", "9" + CITY, "+74951112233", "answered"), row  # fmt: skip


def test_a_503_from_the_first_provider_fails_over_to_the_second_within_a_second(
    office: Office,
) -> None:
    moscow = office.providers["moscow"]
    moscow.fail_outbound = 503
    moscow.restart()
    with RtpEndpoint() as caller_rtp, RtpEndpoint() as city_rtp, office.sipp(
        office.target
    ) as peers:  # fmt: skip
        city = office.city(office.sipp(office.providers["usa"].address), city_rtp, pause_ms=500)
        caller = office.extension_caller(peers, caller_rtp, "9" + CITY)
        city.wait().assert_passed()
        run = caller.wait()
        run.assert_passed()
    # Each provider challenged the box's INVITE (407), which answered with the trunk's account.
    assert [(r.outcome, r.status) for r in invites_for(moscow, "+74951112233")] == [
        ("challenged", 407), ("rejected", 503)]  # fmt: skip
    usa = invites_for(office.providers["usa"], "+74951112233")
    assert [r.outcome for r in usa] == ["challenged", "relayed"], usa
    invites = run.requests("INVITE", "sent")
    cseq = int(invites[-1].one("CSeq").split()[0])
    ok = run.responses_to("INVITE", cseq)[-1]
    assert ok.status == 200, run.describe()
    # Post-dial delay over the failover: the authenticated INVITE to the caller's 200.
    assert run.time_of(ok) - run.time_of(invites[-1]) < 1.0, run.describe()
    (row,) = cdrs(office, 1)
    assert (row["trunk"], row["disposition"]) == ("usa", "answered"), row


def test_a_trunk_set_to_late_offer_sends_no_sdp_and_answers_in_the_ack(office: Office) -> None:
    pbx_cli(office.core.data, "trunk", "set", "moscow", "--late-offer")
    office.wait_trunk("moscow", ("registered",), timeout=15)
    with RtpEndpoint() as caller_rtp, RtpEndpoint() as city_rtp, office.sipp(
        office.target
    ) as peers:  # fmt: skip
        city = office.city(office.sipp(office.providers["moscow"].address), city_rtp,
                           pause_ms=1500)  # fmt: skip
        caller = office.extension_caller(peers, caller_rtp, "9" + CITY)
        caller_rtp.start((office.core.host, caller.wait_media_port()), audio=ulaw_tone(CALLER_TONE))
        heard = city_rtp.wait_packets(lambda p: p.payload_type == 0, 30)
        assert abs(audio_frequency(heard[5:]) - CALLER_TONE) < 20
        run = city.wait()
        run.assert_passed()
        caller.wait().assert_passed()
    (invite,) = run.requests("INVITE")
    assert invite.body.strip() == "", invite
    (ack,) = run.requests("ACK")
    assert "m=audio" in ack.body, ack


# -- permissions --------------------------------------------------------------------------------


def test_international_is_refused_without_permission_and_112_always_goes_out(
    office: Office,
) -> None:
    row: list[str | int] = ["101", credentials("101", PASSWORD), 0, "9810442079460958", "Alice",
                            "", 0]  # fmt: skip
    run = run_sipp("call_uac_rejected.xml", office.target, [row], workdir=office.workdir,
                   port=free_port())  # fmt: skip
    final = run.final
    assert final.status == 403, run.describe()
    assert final.start_line == (
        "SIP/2.0 403 Forbidden (international calls are not allowed for 101)"
    ), final
    for provider in office.providers.values():
        assert invites_for(provider, "+442079460958") == [], provider.invites()

    with RtpEndpoint() as caller_rtp, RtpEndpoint() as city_rtp, office.sipp(
        office.target
    ) as peers:  # fmt: skip
        city = office.city(office.sipp(office.providers["moscow"].address), city_rtp,
                           pause_ms=500)  # fmt: skip
        caller = office.extension_caller(peers, caller_rtp, "112")
        city.wait().assert_passed()
        caller.wait().assert_passed()
    sent = invites_for(office.providers["moscow"], "112")
    assert [r.outcome for r in sent] == ["challenged", "relayed"], sent
