"""Two real baresip phones call each other through the box and hear each other.

The box runs inside a private network namespace on 10.99.0.1 (baresip refuses loopback); the
phones register as 101 and 102, each sending a sine of its own frequency (``ausine``) and dumping
what it decodes (``sndfile``: ``*-dec.wav``). 101 dials 102, 102 answers by itself, they talk for
a few seconds, 101 hangs up. Audio went both ways when the dominant frequency of what each phone
decoded is the other phone's tone, for at least two seconds of the call. With matching codecs the
box relays; when 101 offers only PCMU and 102 accepts only PCMA (or G.722), it must transcode.
The CDR row records the answered call with each leg's codec.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CoreProcess
from tests.interop.baresip import Baresip, BaresipAccount, BaresipAudio
from tests.interop.call_records import Row, wait_cdrs
from tests.interop.netns import NetNamespace
from tests.interop.tones import dominant_frequency, read_wav, tone_seconds

PASSWORDS = {"101": "Kq7vT9pLm2", "102": "Zr4wX8nQa6"}
NAMES = {"101": "Alice", "102": "Bob"}
TONES = {"101": 440, "102": 1000}
TALK = 5.0
"""Seconds the phones talk: long enough for two seconds of tone each way on a busy machine."""
MIN_TONE = 2.0
CODEC_MODULES = {"PCMU": "g711.so", "PCMA": "g711.so", "G722": "g722.so"}
PAYLOAD_TYPES = {"PCMU": "0", "PCMA": "8", "G722": "9"}
BARESIP_CODECS = {"PCMU": "PCMU", "PCMA": "PCMA", "G722": "G722/16000"}
"""``audio_codecs`` names (baresip assumes 8000 Hz; an unknown name means every codec)."""


@pytest.fixture
def netns() -> Iterator[NetNamespace]:
    with NetNamespace() as ns:
        yield ns


def start_box(core_factory: type[CoreProcess], netns: NetNamespace, data: Path) -> CoreProcess:
    """The box on NETNS:5060 with extensions 101 and 102 (named)."""
    core = core_factory(data=data, sip=f"{netns.host}:5060", netns_pid=netns.pid)
    core.start()
    for number, password in PASSWORDS.items():
        core.cli("ext", "add", number, "--name", NAMES[number], "--password", password)
    return core


def phone(
    netns: NetNamespace, workdir: Path, number: str, codec: str, port: int, **params: str
) -> Baresip:
    """A baresip registered as `number`, offering only `codec`, sending its own tone."""
    account = BaresipAccount(
        number,
        netns.host,
        5060,
        PASSWORDS[number],
        params={"audio_codecs": BARESIP_CODECS[codec], **params},
    )
    snd = workdir / "snd"
    snd.mkdir(parents=True)
    audio = BaresipAudio(source=f"ausine,{TONES[number]}", snd_path=snd)
    return Baresip(
        netns, workdir, account, listen=f"{netns.host}:{port}", audio=audio,
        codecs=sorted({"g711.so", CODEC_MODULES[codec]}), sip_trace=True,
    )  # fmt: skip


def audio_formats(phone: Baresip) -> list[list[str]]:
    """The payload types of every ``m=audio`` line in the phone's SIP trace, in order.

    Read from the log file: SIP lines end in CRLF, which :attr:`Baresip.lines` drops."""
    text = phone.log_path.read_text(errors="replace")
    return [line.split()[3:] for line in text.splitlines() if line.startswith("m=audio ")]


def decoded_wav(phone: Baresip) -> Path:
    """The one ``*-dec.wav`` sndfile wrote for the phone's call."""
    assert phone.audio is not None and phone.audio.snd_path is not None
    files = sorted(phone.audio.snd_path.glob("*-dec.wav"))
    assert len(files) == 1, f"expected one decoded recording, found {files}"
    return files[0]


@pytest.mark.parametrize(
    ("caller_codec", "callee_codec"),
    [("PCMU", "PCMU"), ("PCMU", "PCMA"), ("PCMU", "G722")],
    ids=["relayed-pcmu", "transcoded-pcmu-pcma", "transcoded-pcmu-g722"],
)
def test_two_baresip_phones_hear_each_other(
    core_factory: type[CoreProcess],
    netns: NetNamespace,
    tmp_path: Path,
    caller_codec: str,
    callee_codec: str,
) -> None:
    core = start_box(core_factory, netns, tmp_path / "var")
    with (
        phone(netns, tmp_path / "101", "101", caller_codec, 5070) as alice,
        phone(netns, tmp_path / "102", "102", callee_codec, 5080, answermode="auto") as bob,
    ):
        alice.wait_registered(timeout=15)
        bob.wait_registered(timeout=15)

        alice.command("/dial 102")
        alice.wait_for(r"Call established: sip:102@", timeout=20)
        bob.wait_for(r"Call established: sip:101@", timeout=20)
        time.sleep(TALK)  # the conversation itself, not a synchronisation
        alice.command("/hangup")
        alice.wait_for(r"Call with sip:102@\S+ terminated", timeout=15)
        bob.wait_for(r"Call with sip:101@\S+ terminated", timeout=15)

    # 101 offered one codec, 102 answered the box's offer with one (so unequal ones transcode).
    offer, answer = audio_formats(alice)[0], audio_formats(bob)[1]
    assert [pt for pt in offer if pt != "101"] == [PAYLOAD_TYPES[caller_codec]], offer
    assert [pt for pt in answer if pt != "101"] == [PAYLOAD_TYPES[callee_codec]], answer

    # Both phones exited: their recordings are complete and closed.
    heard_by_alice = read_wav(decoded_wav(alice))
    heard_by_bob = read_wav(decoded_wav(bob))
    for who, heard, expected in (("101", heard_by_alice, TONES["102"]),
                                 ("102", heard_by_bob, TONES["101"])):  # fmt: skip
        main = dominant_frequency(heard.samples, heard.rate)
        assert abs(main - expected) <= 10, f"{who} heard mostly {main:.0f} Hz, not {expected}"
        seconds = tone_seconds(heard, expected)
        assert seconds >= MIN_TONE, f"{who} heard {expected} Hz for only {seconds:.1f} s"

    rows = wait_cdrs(core.data, lambda rows: len(rows) >= 1, what="the call's CDR")
    assert len(rows) == 1, rows  # the 407 challenge wrote none
    row: Row = rows[0]
    assert row["caller"] == "101" and row["caller_name"] == "Alice", row
    assert row["dialled"] == "102" and row["answered_by"] == "102", row
    assert row["disposition"] == "answered", row
    assert (row["hangup_side"], row["hangup_cause"]) == ("caller", "BYE"), row
    assert (row["codec_caller"], row["codec_callee"]) == (caller_codec, callee_codec), row
    assert row["answered_at"] is not None and row["billsec"] >= TALK - 0.5, row
    for leg in ("rtp_caller", "rtp_callee"):  # 50 packets/s: at least the talk time's worth
        assert row[leg]["packets"] >= 50 * MIN_TONE, (leg, row[leg])
        assert row[leg]["sent"] >= 50 * MIN_TONE, (leg, row[leg])
