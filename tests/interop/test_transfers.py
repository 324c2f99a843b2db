"""Call transfer between three real phones: blind (RFC 3515 REFER) and attended (REFER with
Replaces, RFC 3891), carried out by the box.

The box runs in a private network namespace on 10.99.0.1 with three registered phones, each
sending a sine of its own and recording what it receives. 102, the transferor, is PJSIP
(``pjsip_peer.py``: one process holds both of its calls and sends the REFER with
``Call.xfer()`` or ``Call.xferReplaces()``); 103 is baresip (``ausine``, ``sndfile``); 101 is
baresip for the blind transfer and PJSIP for the attended one, because baresip 1.0 stops its
``sndfile`` dump after a hold re-INVITE (measured with two baresips and no box in between) and
the attended transfer puts 101 on hold first.

After the transfer 101 and 103 must hear each other: the tones each recorded, in order, are
102's first and then the new partner's, for at least two seconds. 102 must get a BYE from the box
on every call it had, and the NOTIFYs of its REFER must end with a final ``SIP/2.0 200`` that
PJSIP understands as the transfer's success. The CDRs: the replaced calls end "transferred",
and one row records 101 talking with 103.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import CoreProcess
from tests.interop.baresip import Baresip, BaresipAccount, BaresipAudio
from tests.interop.call_records import Row, wait_cdrs
from tests.interop.netns import NetNamespace
from tests.interop.pjsip import PjsipPhone
from tests.interop.tones import Recording, read_wav, tone_runs

PASSWORDS = {"101": "Kq7vT9pLm2", "102": "Zr4wX8nQa6", "103": "Hb3sY7cWe5"}
NAMES = {"101": "Alice", "102": "Bob", "103": "Carol"}
TONES = {"101": 440.0, "102": 1000.0, "103": 1700.0}
SIP_PORTS = {"101": 5070, "102": 5080, "103": 5090}
RTP_PORTS = {"101": 4000, "102": 4100}
"""First RTP port of each PJSIP phone (two PJSIP processes share the namespace)."""
BEFORE = 3.0
"""Seconds of conversation before a transfer (and between 102 and 103 before the REFER)."""
AFTER = 5.0
"""Seconds 101 and 103 talk after the transfer."""
MIN_TONE = 2.0
"""Seconds of the new partner's tone each side must have received after the transfer."""


@dataclass
class Box:
    """The box in its namespace, with extensions 101-103."""

    core: CoreProcess
    netns: NetNamespace
    workdir: Path

    @property
    def host(self) -> str:
        return self.netns.host

    def uri(self, number: str) -> str:
        return f"sip:{number}@{self.host}"


@pytest.fixture
def netns() -> Iterator[NetNamespace]:
    with NetNamespace() as ns:
        yield ns


@pytest.fixture
def box(core_factory: type[CoreProcess], netns: NetNamespace, tmp_path: Path) -> Box:
    core = core_factory(data=tmp_path / "var", sip=f"{netns.host}:5060", netns_pid=netns.pid)
    core.start()
    for number, password in PASSWORDS.items():
        core.cli("ext", "add", number, "--name", NAMES[number], "--password", password)
    return Box(core, netns, tmp_path)


def baresip_phone(box: Box, number: str) -> Baresip:
    """A baresip registered as `number` (G.711), answering by itself, sending its tone."""
    account = BaresipAccount(
        number, box.host, 5060, PASSWORDS[number],
        params={"audio_codecs": "PCMU,PCMA", "answermode": "auto"},
    )  # fmt: skip
    snd = box.workdir / number / "snd"
    snd.mkdir(parents=True)
    audio = BaresipAudio(source=f"ausine,{TONES[number]:.0f}", snd_path=snd)
    return Baresip(
        box.netns, box.workdir / number, account, listen=f"{box.host}:{SIP_PORTS[number]}",
        audio=audio, sip_trace=True,
    )  # fmt: skip


def pjsip_phone(box: Box, number: str) -> PjsipPhone:
    """A PJSIP phone registered as `number`, answering by itself, sending its tone, recording."""
    workdir = box.workdir / number
    workdir.mkdir(parents=True)
    return PjsipPhone(
        f"{box.host}:5060", number, PASSWORDS[number], local_host=box.host,
        local_port=SIP_PORTS[number], rtp_port=RTP_PORTS[number], netns=box.netns,
        auto_answer=True, tone=int(TONES[number]), record_dir=workdir,
        stderr_path=workdir / "pjsua.log",
    )  # fmt: skip


def baresip_heard(phone: Baresip) -> Recording:
    """What a stopped baresip decoded during its one call."""
    assert phone.audio is not None and phone.audio.snd_path is not None
    files = sorted(phone.audio.snd_path.glob("*-dec.wav"))
    assert len(files) == 1, f"expected one decoded recording, found {files}"
    return read_wav(files[0])


def pjsip_heard(box: Box, number: str, call: int) -> Recording:
    """What a stopped PJSIP phone received in call `call`."""
    return read_wav(box.workdir / number / f"call-{call}.wav")


def heard(recording: Recording) -> list[tuple[str, float]]:
    """Whose tones a recording holds, in order: [(number, seconds), ...]."""
    return tone_runs(recording, TONES)


def assert_talked(recording: Recording, before: list[str], partner: str) -> None:
    """The tones went through `before` (in order), then `partner`'s, for MIN_TONE s or more."""
    runs = heard(recording)
    assert [name for name, _ in runs] == [*before, partner], runs
    assert runs[-1][1] >= MIN_TONE, runs


def wait_request(phone: PjsipPhone, call: int, method: str, since: int) -> None:
    phone.wait_rx(call, method, role="uas", timeout=20, since=since)


def notifies_received(phone: PjsipPhone) -> list[str]:
    """Every NOTIFY in the PJSIP phone's log (level 4 logs each message in full)."""
    assert phone.stderr_path is not None
    log = phone.stderr_path.read_text(errors="replace")
    return re.findall(r"^RX \d+ bytes Request msg NOTIFY.*?^--end msg--$", log, re.M | re.S)


def assert_refer_succeeded(phone: PjsipPhone, call: int, since: int) -> None:
    """PJSIP saw its REFER in `call` end with a final NOTIFY whose sipfrag is 200."""
    statuses = [e for e in phone.events[since:]
                if e["event"] == "xfer_status" and e["call"] == call]  # fmt: skip
    finals = [e for e in statuses if e["final"]]
    notifies = "\n\n".join(notifies_received(phone))
    assert finals and finals[-1]["code"] == 200, (
        f"transfer status events {statuses}; NOTIFYs the phone received:\n{notifies}"
    )


def cdr(rows: list[Row], caller: str, dialled: str) -> Row:
    found = [r for r in rows if r["caller"] == caller and r["dialled"] == dialled]
    assert len(found) == 1, (caller, dialled, rows)
    return found[0]


def test_blind_transfer(box: Box) -> None:
    with (
        baresip_phone(box, "101") as alice,
        pjsip_phone(box, "102") as bob,
        baresip_phone(box, "103") as carol,
    ):
        alice.wait_registered(timeout=15)
        bob.wait_registered()
        carol.wait_registered(timeout=15)

        alice.command("/dial 102")
        call = int(bob.wait_incoming(timeout=20)["call"])
        bob.wait_state(call, "CONFIRMED")
        alice.wait_for(r"Call established: sip:102@", timeout=20)
        time.sleep(BEFORE)  # 101 and 102 talk: the conversation itself, not a synchronisation

        mark = bob.mark()
        bob.send(f"xfer {call} {box.uri('103')}")
        # 103 rings with the caller ID of 101, the transferee, and answers by itself.
        carol.wait_for(rf"Call established: sip:101@{box.host}", timeout=20)
        wait_request(bob, call, "BYE", mark)  # the box hangs up the transferor
        assert bob.wait_state(call, "DISCONNECTED", since=mark)["code"] == 200
        time.sleep(AFTER)  # 101 and 103 talk

        alice.command("/hangup")
        alice.wait_for(r"Call with sip:102@\S+ terminated", timeout=15)  # its one dialog
        carol.wait_for(r"Call with sip:101@\S+ terminated", timeout=15)
        alice.stop()  # closes the recordings
        carol.stop()

    assert_talked(baresip_heard(alice), ["102"], "103")
    assert_talked(baresip_heard(carol), [], "101")

    rows = wait_cdrs(box.core.data, lambda rows: len(rows) >= 2, what="two CDRs")
    assert len(rows) == 2, rows
    old, new = cdr(rows, "101", "102"), cdr(rows, "101", "103")
    assert (old["disposition"], old["answered_by"]) == ("answered", "102"), old
    assert (old["hangup_side"], old["hangup_cause"]) == ("callee", "transferred"), old
    assert (new["disposition"], new["answered_by"]) == ("answered", "103"), new
    assert (new["hangup_side"], new["hangup_cause"]) == ("caller", "BYE"), new
    assert new["caller_name"] == "Alice" and new["billsec"] >= AFTER - 0.5, new
    for leg in ("rtp_caller", "rtp_callee"):
        assert new[leg]["packets"] >= 50 * MIN_TONE, (leg, new[leg])

    assert_refer_succeeded(bob, call, mark)


def test_attended_transfer(box: Box) -> None:
    with (
        pjsip_phone(box, "101") as alice,
        pjsip_phone(box, "102") as bob,
        baresip_phone(box, "103") as carol,
    ):
        alice.wait_registered()
        bob.wait_registered()
        carol.wait_registered(timeout=15)

        alice_call = alice.place_call(box.uri("102"))
        to_alice = int(bob.wait_incoming(timeout=20)["call"])
        bob.wait_state(to_alice, "CONFIRMED")
        alice.wait_state(alice_call, "CONFIRMED")
        time.sleep(BEFORE)  # 101 and 102 talk

        alice_mark, mark = alice.mark(), bob.mark()
        bob.send(f"hold {to_alice}")
        bob.wait_media(to_alice, "LOCAL_HOLD", since=mark)
        alice.wait_media(alice_call, "REMOTE_HOLD", since=alice_mark)  # the box relayed it

        to_carol = bob.place_call(box.uri("103"))
        bob.wait_state(to_carol, "CONFIRMED", timeout=20, since=mark)
        carol.wait_for(rf"Call established: sip:102@{box.host}", timeout=20)
        time.sleep(BEFORE)  # 102 and 103 talk

        alice_mark, mark = alice.mark(), bob.mark()
        bob.send(f"xfer_replaces {to_alice} {to_carol}")
        for call in (to_alice, to_carol):  # the box hangs up both of the transferor's calls
            wait_request(bob, call, "BYE", mark)
            assert bob.wait_state(call, "DISCONNECTED", since=mark)["code"] == 200
        alice.wait_media(alice_call, "ACTIVE", since=alice_mark)  # taken off hold by the box
        time.sleep(AFTER)  # 101 and 103 talk

        hangup_mark = alice.mark()
        alice.send(f"hangup {alice_call}")
        alice.wait_state(alice_call, "DISCONNECTED", since=hangup_mark)
        carol.wait_for(r"Call with \S+ terminated", timeout=15)
        alice.stop()  # closes the recordings
        carol.stop()

    # 101 heard 102 (also while held: PJSIP sends its tone as music on hold), then 103.
    assert_talked(pjsip_heard(box, "101", alice_call), ["102"], "103")
    assert_talked(baresip_heard(carol), ["102"], "101")

    rows = wait_cdrs(box.core.data, lambda rows: len(rows) >= 3, what="three CDRs")
    assert len(rows) == 3, rows
    for old in (cdr(rows, "101", "102"), cdr(rows, "102", "103")):
        assert (old["disposition"], old["hangup_cause"]) == ("answered", "transferred"), old
    new = cdr(rows, "101", "103")
    assert (new["disposition"], new["answered_by"]) == ("answered", "103"), new
    assert (new["hangup_side"], new["hangup_cause"]) == ("caller", "BYE"), new
    for leg in ("rtp_caller", "rtp_callee"):
        assert new[leg]["packets"] >= 50 * MIN_TONE, (leg, new[leg])

    assert_refer_succeeded(bob, to_alice, mark)
