"""Calls between PJSIP and sipp through the box: early media, hold and resume, RFC 4733 DTMF,
BYE from either side, CANCEL while ringing, each with PJSIP calling sipp and sipp calling PJSIP.

Each test starts the core (extensions 101 "Alice" and 102 "Bob"), a PJSIP phone in a child
process (``pjsip_peer.py``: pjsua2, null audio device, a 440 Hz tone into every call) and
one sipp (a ``pj_*.xml`` scenario) that does the other side's signalling. The sipp side's media
is a UDP socket of the test (:class:`RtpEndpoint`): sipp's SDP names its port, so the test
counts the RTP and reads the RFC 4733 events the box sends to that phone, and sends audio and
events from the very address the SDP advertised (the box latches on it). A sipp callee
registers as 102 from the port it then answers on; a sipp caller authenticates as 101.

What each side received is asserted where it arrived: sipp's message log for sipp, the events
PJSIP reports (messages received, SDP offers, media state, RTP counters, DTMF digits) for PJSIP,
the test's socket for the sipp side's RTP, and the CDR row the box wrote.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from appliance import control
from appliance.store import cdrs
from appliance.store.db import open_db
from tests.conftest import CoreProcess
from tests.interop.pjsip import Event, PjsipPhone, free_rtp_port
from tests.interop.rtp_endpoint import RtpEndpoint, RtpPacket
from tests.interop.sipp import (
    BackgroundSipp,
    SipMessage,
    SippRun,
    credentials,
    free_media_port,
    free_port,
    run_sipp,
)
from tests.interop.tones import dominant_frequency

PASSWORDS = {"101": "Kq7vT9pLm2", "102": "Zr4wX8nQa6"}
NAMES = {"101": "Alice", "102": "Bob"}
PCMU = 0
BOX_DTMF_PT = 101
"""The telephone-event payload type the box offers a callee, which the sipp callee takes."""
SIPP_CALLER_DTMF_PT = 96
"""The telephone-event payload type the sipp caller offers: not the box's, to show mapping."""
FLOWING = 25
"""RTP packets (half a second) that show audio is flowing one way."""
EARLY_MS = 4000
"""How long the sipp callee plays early media before it answers."""
PAUSE_MS = 1000
"""The sipp scenarios' pause before a hold, a resume or a BYE."""
SIPP_TIMEOUT = 60.0
"""sipp's own -timeout for each scenario, seconds."""


@dataclass
class Box:
    """The core under test with extensions 101 and 102."""

    core: CoreProcess
    workdir: Path

    @property
    def target(self) -> tuple[str, int]:
        return self.core.host, self.core.port

    def uri(self, number: str) -> str:
        return f"sip:{number}@{self.core.host}:{self.core.port}"

    def phone(self, number: str) -> PjsipPhone:
        """A PJSIP phone registering as `number` (started by the caller)."""
        return PjsipPhone(
            f"{self.core.host}:{self.core.port}", number, PASSWORDS[number],
            local_port=free_port(), rtp_port=free_rtp_port(),
            stderr_path=self.workdir / f"pjsua-{number}.log",
        )  # fmt: skip

    def sipp(
        self, scenario: str, number: str, rtp: RtpEndpoint, *, port: int, dialled: str = "",
        pause_ms: int = PAUSE_MS,
    ) -> BackgroundSipp:  # fmt: skip
        auth = credentials(number, PASSWORDS[number])
        row: list[str | int] = [number, auth, rtp.port, dialled, pause_ms]
        return BackgroundSipp(
            scenario, self.target, [row], workdir=self.workdir, port=port,
            media_port=free_media_port(), timeout=SIPP_TIMEOUT,
        )  # fmt: skip

    def register_sipp(self, number: str, port: int) -> None:
        """REGISTER `number` from 127.0.0.1:`port`, where its sipp callee will answer."""
        run = run_sipp(
            "register.xml", self.target, [[number, credentials(number, PASSWORDS[number]), 300]],
            workdir=self.workdir, port=port,
        )  # fmt: skip
        run.assert_passed()

    def cdr(self, timeout: float = 15.0) -> dict[str, Any]:
        """The one CDR row of the test's call (the core writes it when the call ends)."""
        deadline = time.monotonic() + timeout
        while True:
            db = open_db(self.core.data, migrate_schema=False)
            try:
                rows = cdrs.recent(db)
            finally:
                db.conn.close()
            if rows or time.monotonic() > deadline:
                break
            time.sleep(0.1)  # polling the table with a deadline: the core writes on its own
        assert len(rows) == 1, rows
        return rows[0]

    def assert_idle(self) -> None:
        """No call left in the core."""
        assert control.call(self.core.data, "status")["calls"] == []


@pytest.fixture
def box(core: CoreProcess, tmp_path: Path) -> Box:
    for number, password in PASSWORDS.items():
        core.cli("ext", "add", number, "--name", NAMES[number], "--password", password)
    return Box(core, tmp_path)


@dataclass
class Call:
    """One call between the PJSIP phone and sipp, while it is set up."""

    phone: PjsipPhone
    call: int
    sipp: BackgroundSipp
    rtp: RtpEndpoint
    box_host: str

    def hangup(self) -> Event:
        """PJSIP ends the call (CANCEL, BYE); return its DISCONNECTED event."""
        mark = self.phone.mark()
        self.phone.send(f"hangup {self.call}")
        return self.phone.wait_state(self.call, "DISCONNECTED", since=mark)

    def media_to_box(self) -> None:
        """Start the sipp side's RTP, to the port the box gave sipp in SDP."""
        self.rtp.start((self.box_host, self.sipp.wait_media_port()))

    def audio_flows(self, since: int = 0) -> None:
        """Both ways: PJSIP's audio reaches the sipp side's socket (from packet `since` on),
        and the sipp side's reaches PJSIP."""
        self.rtp.wait_packets(lambda p: p.payload_type == PCMU, FLOWING, since=since)
        event = self.phone.wait_rtp(self.call, FLOWING)
        assert event["event"] == "rtp", event

    def finish(self) -> SippRun:
        """Wait for sipp's end; it must have played its whole scenario."""
        run = self.sipp.wait()
        run.assert_passed()
        return run


@contextmanager
def pjsip_calls_sipp(box: Box, scenario: str, *, pause_ms: int = PAUSE_MS) -> Iterator[Call]:
    """PJSIP (101) calls 102, a sipp callee playing `scenario`; yields once PJSIP has dialled."""
    with ExitStack() as stack:
        rtp = stack.enter_context(RtpEndpoint())
        port = free_port()
        box.register_sipp("102", port)
        sipp = stack.enter_context(box.sipp(scenario, "102", rtp, port=port, pause_ms=pause_ms))
        phone = stack.enter_context(box.phone("101"))
        phone.wait_registered()
        call = phone.place_call(box.uri("102"))
        yield Call(phone, call, sipp, rtp, box.core.host)


@contextmanager
def sipp_calls_pjsip(box: Box, scenario: str, *, pause_ms: int = PAUSE_MS) -> Iterator[Call]:
    """sipp (101, `scenario`) calls PJSIP (102); yields once PJSIP has the INVITE."""
    with ExitStack() as stack:
        rtp = stack.enter_context(RtpEndpoint())
        phone = stack.enter_context(box.phone("102"))
        phone.wait_registered()
        sipp = box.sipp(scenario, "101", rtp, port=free_port(), dialled="102", pause_ms=pause_ms)
        stack.enter_context(sipp)
        incoming = phone.wait_incoming(timeout=20)
        # The box's own caller ID: the name configured for 101, not what sipp claimed ("sipp").
        assert re.search(r'^From: "Alice" <sip:101@', incoming["message"], re.M), incoming
        yield Call(phone, int(incoming["call"]), sipp, rtp, box.core.host)


def answer(call: Call) -> None:
    """PJSIP, the callee, rings (180) and answers (200)."""
    call.phone.send(f"answer {call.call} 180")
    call.phone.send(f"answer {call.call} 200")
    call.phone.wait_state(call.call, "CONFIRMED")


# -- helpers on what sipp logged ------------------------------------------------------------


def distinct(messages: list[SipMessage]) -> list[SipMessage]:
    """`messages` without retransmissions: the first of each start line and CSeq."""
    seen: set[tuple[str, str]] = set()
    found = []
    for message in messages:
        key = (message.start_line, message.one("CSeq"))
        if key not in seen:
            seen.add(key)
            found.append(message)
    return found


def requests(run: SippRun, method: str, way: str = "received") -> list[SipMessage]:
    """Requests of `method` sipp received (or sent), in order, without retransmissions."""
    return distinct([
        m for m in run.messages
        if m.direction == way and m.status is None and m.start_line.split()[0] == method
    ])  # fmt: skip


def responses(run: SippRun, method: str, way: str = "received") -> list[SipMessage]:
    """Responses to requests of `method` sipp received (or sent), in order, without
    retransmissions."""
    return distinct([
        m for m in run.messages
        if m.direction == way and m.status is not None and m.one("CSeq").split()[1] == method
    ])  # fmt: skip


def direction(sdp: str) -> str:
    """The a= direction attribute of an SDP body (sendrecv when there is none)."""
    found = re.findall(r"^a=(sendrecv|sendonly|recvonly|inactive)\s*$", sdp, re.M)
    assert len(found) <= 1, sdp
    return found[0] if found else "sendrecv"


def body_of(message: str) -> str:
    """The body of a whole SIP message as PJSIP reported it."""
    return message.replace("\r\n", "\n").partition("\n\n")[2]


def assert_answered(row: dict[str, Any], *, hung_up_by: str, pjsip: str) -> None:
    """The CDR of an answered call from 101 to 102 that `hung_up_by` ("caller" or "callee")
    ended with a BYE; the box counted the RTP of the PJSIP phone (`pjsip`: its role), which
    always sends its tone."""
    assert (row["caller"], row["dialled"], row["answered_by"]) == ("101", "102", "102"), row
    assert row["caller_name"] == NAMES["101"], row
    assert (row["disposition"], row["hangup_side"], row["hangup_cause"]) == (
        "answered", hung_up_by, "BYE"), row  # fmt: skip
    assert row["answered_at"] is not None and row["billsec"] > 0, row
    assert (row["codec_caller"], row["codec_callee"]) == ("PCMU", "PCMU"), row
    assert row[f"rtp_{pjsip}"]["packets"] > 0, row


# -- PJSIP calls sipp -----------------------------------------------------------------------


def pjsip_holds_and_resumes(call: Call) -> None:
    """PJSIP puts the answered call on hold, then resumes it; audio flows again after."""
    mark = call.phone.mark()
    call.phone.send(f"hold {call.call}")
    held = call.phone.wait_rx(call.call, "INVITE", role="uac", since=mark)
    assert held["status"] == 200 and direction(body_of(held["message"])) == "recvonly", held
    call.phone.wait_media(call.call, "LOCAL_HOLD", since=mark)

    mark = call.phone.mark()
    call.phone.send(f"unhold {call.call}")
    resumed = call.phone.wait_rx(call.call, "INVITE", role="uac", since=mark)
    assert resumed["status"] == 200, resumed
    assert direction(body_of(resumed["message"])) == "sendrecv", resumed
    call.phone.wait_media(call.call, "ACTIVE", since=mark)
    call.audio_flows(since=call.rtp.mark())


def pjsip_is_held_and_resumed(call: Call) -> None:
    """The sipp side holds and resumes: PJSIP sees a sendonly offer, then a sendrecv one."""
    hold = call.phone.wait_event(lambda e: e["event"] == "offer", timeout=20)
    assert direction(hold["sdp"]) == "sendonly", hold
    call.phone.wait_media(call.call, "REMOTE_HOLD")
    mark = call.phone.mark()
    resume = call.phone.wait_event(lambda e: e["event"] == "offer", 20, mark)
    assert direction(resume["sdp"]) == "sendrecv", resume
    call.phone.wait_media(call.call, "ACTIVE", since=mark)
    call.audio_flows(since=call.rtp.mark())


def pjsip_receives_rfc4733_digits(call: Call, payload_type: int) -> None:
    """Digits the sipp side sends as RFC 4733 events in `payload_type` reach PJSIP as such."""
    mark = call.phone.mark()
    call.rtp.send_digits("1234", payload_type)
    assert call.phone.digits(call.call, 4, since=mark) == "1234"
    methods = {e["method"] for e in call.phone.events[mark:] if e["event"] == "dtmf"}
    assert methods == {"RFC2833"}


def pjsip_hangs_up(call: Call) -> None:
    mark = call.phone.mark()
    call.hangup()
    call.phone.wait_received("Response msg 200/BYE", since=mark)


def pjsip_is_hung_up(call: Call) -> None:
    call.phone.wait_rx(call.call, "BYE", role="uas", timeout=20)
    call.phone.wait_state(call.call, "DISCONNECTED")


def test_pjsip_caller_gets_early_media_before_the_answer(box: Box) -> None:
    with pjsip_calls_sipp(box, "pj_uas_early.xml", pause_ms=EARLY_MS) as call:
        call.media_to_box()  # the callee's RTP, from the moment it has sent its 183
        first = call.phone.wait_event(
            lambda e: e["event"] == "rtp" and e["call"] == call.call, timeout=20
        )
        assert first["state"] == "EARLY", f"RTP first reached PJSIP in state {first}"
        confirmed = call.phone.wait_state(call.call, "CONFIRMED", timeout=20)
        events = call.phone.events
        assert events.index(first) < events.index(confirmed)
        early = [e for e in events if e["event"] == "state" and e["state"] == "EARLY"]
        assert early and early[0]["code"] == 183, events
        media = [e for e in events if e["event"] == "media"]
        assert media[0]["status"] == "ACTIVE" and media[0]["state"] == "EARLY", media
        call.audio_flows()
        call.hangup()
        run = call.finish()
    assert [m.status for m in responses(run, "INVITE", "sent")] == [183, 200], run.describe()
    assert_answered(box.cdr(), hung_up_by="caller", pjsip="caller")
    box.assert_idle()


def test_pjsip_caller_holds_and_resumes(box: Box) -> None:
    with pjsip_calls_sipp(box, "pj_uas_held.xml") as call:
        call.media_to_box()
        call.phone.wait_state(call.call, "CONFIRMED")
        call.audio_flows()

        pjsip_holds_and_resumes(call)
        call.hangup()
        run = call.finish()
    invites = requests(run, "INVITE")
    assert [direction(m.body) for m in invites] == ["sendrecv", "sendonly", "sendrecv"], invites
    assert_answered(box.cdr(), hung_up_by="caller", pjsip="caller")
    box.assert_idle()


def test_sipp_callee_holds_and_resumes(box: Box) -> None:
    with pjsip_calls_sipp(box, "pj_uas_hold.xml") as call:
        call.media_to_box()
        call.phone.wait_state(call.call, "CONFIRMED")
        pjsip_is_held_and_resumed(call)
        call.hangup()
        run = call.finish()
    answers = [m for m in responses(run, "INVITE") if m.status == 200]
    assert [direction(m.body) for m in answers] == ["recvonly", "sendrecv"], answers
    assert_answered(box.cdr(), hung_up_by="caller", pjsip="caller")
    box.assert_idle()


def test_pjsip_caller_sends_rfc4733_dtmf_to_sipp(box: Box) -> None:
    with pjsip_calls_sipp(box, "pj_uas_answer.xml") as call:
        call.media_to_box()
        call.phone.wait_state(call.call, "CONFIRMED")
        call.audio_flows()
        since = call.rtp.mark()
        call.phone.send(f"dtmf {call.call} 1234")
        assert call.rtp.wait_digits(BOX_DTMF_PT, 4, since=since) == "1234"
        call.hangup()
        run = call.finish()
    invite = requests(run, "INVITE")[0]
    assert f"a=rtpmap:{BOX_DTMF_PT} telephone-event/8000" in invite.body, invite
    assert_answered(box.cdr(), hung_up_by="caller", pjsip="caller")
    box.assert_idle()


def test_sipp_callee_sends_rfc4733_dtmf_to_pjsip(box: Box) -> None:
    with pjsip_calls_sipp(box, "pj_uas_answer.xml") as call:
        call.media_to_box()
        call.phone.wait_state(call.call, "CONFIRMED")
        call.audio_flows()
        pjsip_receives_rfc4733_digits(call, BOX_DTMF_PT)
        call.hangup()
        call.finish()
    assert_answered(box.cdr(), hung_up_by="caller", pjsip="caller")
    box.assert_idle()


def test_pjsip_caller_hangs_up(box: Box) -> None:
    with pjsip_calls_sipp(box, "pj_uas_answer.xml") as call:
        call.media_to_box()
        call.phone.wait_state(call.call, "CONFIRMED")
        call.audio_flows()
        pjsip_hangs_up(call)
        run = call.finish()
    assert len(requests(run, "BYE")) == 1, run.describe()
    assert_answered(box.cdr(), hung_up_by="caller", pjsip="caller")
    box.assert_idle()


def test_sipp_callee_hangs_up(box: Box) -> None:
    with pjsip_calls_sipp(box, "pj_uas_bye.xml") as call:
        call.media_to_box()
        call.phone.wait_state(call.call, "CONFIRMED")
        pjsip_is_hung_up(call)
        run = call.finish()
    assert [m.status for m in responses(run, "BYE")] == [200], run.describe()
    assert_answered(box.cdr(), hung_up_by="callee", pjsip="caller")
    box.assert_idle()


def test_pjsip_caller_cancels_while_ringing(box: Box) -> None:
    with pjsip_calls_sipp(box, "pj_uas_cancel.xml") as call:
        ringing = call.phone.wait_state(call.call, "EARLY", timeout=20)
        assert ringing["code"] == 180, ringing
        mark = call.phone.mark()
        call.hangup()
        call.phone.wait_received("Response msg 200/CANCEL", since=mark)
        call.phone.wait_received("Response msg 487/INVITE", since=mark)
        run = call.finish()
    assert len(requests(run, "CANCEL")) == 1, run.describe()
    assert_cancelled(box.cdr(), "101", "102")
    box.assert_idle()


def assert_cancelled(row: dict[str, Any], caller: str, callee: str) -> None:
    assert (row["caller"], row["dialled"], row["answered_by"]) == (caller, callee, None), row
    assert (row["disposition"], row["hangup_side"], row["hangup_cause"]) == (
        "cancelled", "caller", "487 Request Terminated"), row  # fmt: skip
    assert row["answered_at"] is None and row["billsec"] == 0, row


# -- sipp calls PJSIP -----------------------------------------------------------------------


def test_sipp_caller_gets_early_media_before_the_answer(box: Box) -> None:
    with sipp_calls_pjsip(box, "pj_uac_early.xml") as call:
        call.phone.send(f"answer {call.call} 183")
        call.phone.wait_media(call.call, "ACTIVE")
        early: list[RtpPacket] = call.rtp.wait_packets(lambda p: p.payload_type == PCMU, FLOWING)
        # The test answers only now: all of that RTP reached the caller before any 200.
        assert not [e for e in call.phone.events if e["event"] == "state"
                    and e["state"] in ("CONNECTING", "CONFIRMED")]  # fmt: skip
        call.phone.send(f"answer {call.call} 200")
        call.phone.wait_state(call.call, "CONFIRMED")
        call.hangup()
        run = call.finish()
    assert len({p.ssrc for p in early}) == 1 and early[0].source[0] == box.core.host
    statuses = [m.status for m in responses(run, "INVITE")]
    assert statuses.index(183) < statuses.index(200), statuses
    progress = responses(run, "INVITE")[statuses.index(183)]
    assert progress.one("Content-Type") == "application/sdp", progress
    # The early RTP came from the port the 183's SDP named: the box's end of the caller leg.
    assert re.search(rf"^m=audio {early[0].source[1]} ", progress.body, re.M), progress
    assert_answered(box.cdr(), hung_up_by="callee", pjsip="callee")
    box.assert_idle()


def test_sipp_caller_holds_and_resumes(box: Box) -> None:
    with sipp_calls_pjsip(box, "pj_uac_hold.xml") as call:
        answer(call)
        call.media_to_box()
        pjsip_is_held_and_resumed(call)
        call.hangup()
        run = call.finish()
    answers = [m for m in responses(run, "INVITE") if m.status == 200]
    assert [direction(m.body) for m in answers] == ["sendrecv", "recvonly", "sendrecv"], answers
    assert_answered(box.cdr(), hung_up_by="callee", pjsip="callee")
    box.assert_idle()


def test_pjsip_callee_holds_and_resumes(box: Box) -> None:
    with sipp_calls_pjsip(box, "pj_uac_held.xml") as call:
        answer(call)
        call.media_to_box()
        call.audio_flows()

        pjsip_holds_and_resumes(call)
        call.hangup()
        run = call.finish()
    invites = requests(run, "INVITE")
    assert [direction(m.body) for m in invites] == ["sendonly", "sendrecv"], invites
    assert_answered(box.cdr(), hung_up_by="callee", pjsip="callee")
    box.assert_idle()


def test_pjsip_callee_sends_rfc4733_dtmf_to_sipp(box: Box) -> None:
    with sipp_calls_pjsip(box, "pj_uac_answer.xml") as call:
        answer(call)
        call.media_to_box()
        call.audio_flows()
        since = call.rtp.mark()
        call.phone.send(f"dtmf {call.call} 1234")
        # In the payload type sipp offered, not the one the box and PJSIP agreed on.
        assert call.rtp.wait_digits(SIPP_CALLER_DTMF_PT, 4, since=since) == "1234"
        call.hangup()
        call.finish()
    assert_answered(box.cdr(), hung_up_by="callee", pjsip="callee")
    box.assert_idle()


def test_sipp_caller_sends_rfc4733_dtmf_to_pjsip(box: Box) -> None:
    with sipp_calls_pjsip(box, "pj_uac_answer.xml") as call:
        answer(call)
        call.media_to_box()
        call.audio_flows()
        pjsip_receives_rfc4733_digits(call, SIPP_CALLER_DTMF_PT)
        call.hangup()
        call.finish()
    assert_answered(box.cdr(), hung_up_by="callee", pjsip="callee")
    box.assert_idle()


def test_sipp_caller_hangs_up(box: Box) -> None:
    with sipp_calls_pjsip(box, "pj_uac_bye.xml") as call:
        answer(call)
        pjsip_is_hung_up(call)
        run = call.finish()
    assert [m.status for m in responses(run, "BYE")] == [200], run.describe()
    assert_answered(box.cdr(), hung_up_by="caller", pjsip="callee")
    box.assert_idle()


def test_pjsip_callee_hangs_up(box: Box) -> None:
    with sipp_calls_pjsip(box, "pj_uac_answer.xml") as call:
        answer(call)
        call.media_to_box()
        call.audio_flows()
        pjsip_hangs_up(call)
        run = call.finish()
    assert len(requests(run, "BYE")) == 1, run.describe()
    assert_answered(box.cdr(), hung_up_by="callee", pjsip="callee")
    box.assert_idle()


def test_sipp_caller_cancels_while_ringing(box: Box) -> None:
    with sipp_calls_pjsip(box, "pj_uac_cancel.xml") as call:
        mark = call.phone.mark()
        call.phone.send(f"answer {call.call} 180")
        cancel = call.phone.wait_rx(call.call, "CANCEL", role="uas", since=mark, timeout=20)
        assert cancel["message"].startswith("CANCEL "), cancel
        ended = call.phone.wait_state(call.call, "DISCONNECTED", since=mark)
        assert ended["code"] == 487, ended
        run = call.finish()
    assert [m.status for m in responses(run, "INVITE")][-1] == 487, run.describe()
    assert_cancelled(box.cdr(), "101", "102")
    box.assert_idle()


def test_the_held_party_hears_hold_music_and_resume_restores_the_relay(box: Box) -> None:
    """PJSIP holds its call to sipp: sipp hears the office's hold music (the default class's
    first track, from its start), not silence; resuming gives it PJSIP's audio again."""
    from tests.interop.test_ivr import best_correlation, decoded

    track, rate = soundfile.read("/usr/share/asterisk/moh/macroform-cold_day.wav", dtype="float64")
    assert rate == 8000
    with pjsip_calls_sipp(box, "pj_uas_held.xml") as call:
        call.media_to_box()
        call.phone.wait_state(call.call, "CONFIRMED")
        call.audio_flows()

        mark = call.phone.mark()
        call.phone.send(f"hold {call.call}")
        call.phone.wait_media(call.call, "LOCAL_HOLD", since=mark)
        held = call.rtp.mark()
        heard = decoded(call.rtp.wait_packets(lambda p: p.payload_type == PCMU, 150, since=held))
        assert np.sqrt(np.mean(heard**2)) > 0.01, "the held party hears silence"
        score = best_correlation(heard, track[: 8000 * 2])
        assert score > 0.8, f"what the held party hears is not the hold music: {score:.3f}"

        mark = call.phone.mark()
        call.phone.send(f"unhold {call.call}")
        call.phone.wait_media(call.call, "ACTIVE", since=mark)
        resumed = call.rtp.mark()
        after = decoded(call.rtp.wait_packets(lambda p: p.payload_type == PCMU, 100,
                                              since=resumed)[50:])  # fmt: skip
        assert abs(dominant_frequency(after, 8000) - 440) < 10, "PJSIP's 440 Hz is not back"
        call.audio_flows(since=call.rtp.mark())
        call.hangup()
        call.finish()
