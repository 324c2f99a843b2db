"""IVR menus and announcements with real peers: a sipp caller (extension 101, its media on the
test's own RTP endpoint) dials the office's DID, which leads to a menu; the test decodes the
greeting from the RTP the box sends and correlates it with the prompt file, keys a choice by
RFC 4733, by SIP INFO and as in-band tones in its audio, and a sipp phone registered as 102
(billing) rings and answers. A wrong key replays the menu after the invalid-choice prompt;
silence goes to the menu's timeout destination.
"""

from __future__ import annotations

import subprocess
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile

from appliance.media.dtmf import dtmf_tone
from appliance.store import prompts
from appliance.store.db import open_db
from tests.conftest import CoreProcess
from tests.interop.call_records import wait_cdrs
from tests.interop.rtp_endpoint import RtpEndpoint, RtpPacket
from tests.interop.sipp import BackgroundSipp, SippPeers, credentials, free_media_port, free_port
from tests.interop.test_sipp_calls import RTP_PORTS, Office, free_rtp_range

with warnings.catch_warnings():  # deprecated in 3.11, gone in 3.13 (audioop-lts)
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

CALLER, CALLER_PASSWORD = "101", "Kq7vT9pLm2"
BILLING, BILLING_PASSWORD = "102", "Zr4wX8nQp3"
DID = "+74957654321"
PACK = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
GREETING = "hello-world"
INVALID = "pbx-invalid"
DTMF_PT = 96
"""The caller scenario's telephone-event payload type (pj_uac_answer.xml)."""
TIMEOUT = 30.0


def prompt_samples(name: str) -> npt.NDArray[np.float64]:
    data, rate = soundfile.read(PACK / f"{name}.wav", dtype="float64")
    assert rate == 8000
    return np.asarray(data, dtype=np.float64)


def decoded(packets: list[RtpPacket]) -> npt.NDArray[np.float64]:
    """The PCMU audio of `packets`, in arrival order, as floats in [-1, 1]."""
    pcm = b"".join(audioop.ulaw2lin(p.payload, 2) for p in packets if p.payload_type == 0)
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768


def best_correlation(heard: npt.NDArray[np.float64], prompt: npt.NDArray[np.float64]) -> float:
    """The highest normalised cross-correlation of `prompt` (its first 90 %: the last packets
    may still be on their way) against any stretch of `heard`."""
    prompt = prompt[: len(prompt) * 9 // 10]
    if len(heard) < len(prompt):
        return 0.0
    n = len(heard) + len(prompt)
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(heard, size) * np.conj(np.fft.rfft(prompt, size)), size)
    corr = corr[: len(heard) - len(prompt) + 1]
    energy = np.convolve(heard**2, np.ones(len(prompt)), "valid")
    scores = corr / (np.sqrt(np.maximum(energy, 1e-12)) * np.linalg.norm(prompt))
    return float(scores.max())


@dataclass
class Menu:
    office: Office
    peers: SippPeers

    def callee(self, hold_ms: int = 500) -> BackgroundSipp:
        return self.office.callee("call_uas_hangup.xml", hold_ms=hold_ms, rtp=False,
                                  timeout=TIMEOUT)  # fmt: skip

    def caller(self, rtp: RtpEndpoint, scenario: str = "pj_uac_answer.xml",
               extra: tuple[str | int, ...] = (0,)) -> tuple[BackgroundSipp, int]:  # fmt: skip
        """101 dials the DID with its media on `rtp`; the box's RTP port once answered."""
        row: list[str | int] = [CALLER, credentials(CALLER, CALLER_PASSWORD), rtp.port, DID,
                                *extra]  # fmt: skip
        sipp = self.peers.start(scenario, [row], port=free_port(), media_port=free_media_port(),
                                timeout=TIMEOUT)  # fmt: skip
        line = sipp.wait_stderr(lambda text: text.startswith("pj-media "))
        port = int(line.split()[1])
        rtp.start((self.office.core.host, port))
        return sipp, port

    def heard_greeting(self, rtp: RtpEndpoint, since: int = 0) -> list[RtpPacket]:
        """The packets of one whole greeting (as long as the prompt), from packet `since`."""
        frames = len(prompt_samples(GREETING)) // 160 + 25
        return rtp.wait_packets(lambda p: p.payload_type == 0, frames, timeout=15.0, since=since)

    def menu(self, *options: str) -> None:
        self.office.core.cli("ivr", "add", "main", "--greeting", f"sound:{GREETING}",
                             "--invalid-prompt", f"sound:{INVALID}", *options)  # fmt: skip


@pytest.fixture
def ivr(core_factory: type[CoreProcess], tmp_path: Path) -> Iterator[Menu]:
    core = core_factory(data=tmp_path / "var")
    low = free_rtp_range()
    for key, value in (("rtp.port_min", str(low)), ("rtp.port_max", str(low + RTP_PORTS - 1)),
                       ("office.country", "RU"), ("office.area_code", "495"),
                       ("office.language", "en")):  # fmt: skip
        core.cli("config", "set", key, value)
    core.start()
    core.cli("ext", "add", CALLER, "--password", CALLER_PASSWORD)
    core.cli("ext", "add", BILLING, "--name", "Billing", "--password", BILLING_PASSWORD)
    peers = SippPeers((core.host, core.port), tmp_path / "sipp")
    menu = Menu(Office(core, peers, tmp_path / "sipp"), peers)
    try:
        yield menu
    finally:
        peers.close()


def _route_did(ivr: Menu) -> None:
    ivr.office.core.cli("did", "add", DID, "--to", "ivr:main")


def test_greeting_correlates_with_the_prompt_and_rfc4733_key_rings_billing(ivr: Menu) -> None:
    ivr.menu("--choice", "2=extension:102", "--timeout", "10")
    _route_did(ivr)
    callee = ivr.callee()
    with RtpEndpoint() as rtp:
        caller, _port = ivr.caller(rtp)
        heard = decoded(ivr.heard_greeting(rtp))
        score = best_correlation(heard, prompt_samples(GREETING))
        assert score > 0.9, f"the greeting heard does not match {GREETING}.wav: {score:.3f}"
        rtp.send_digits("2", payload_type=DTMF_PT)
        callee.wait().assert_passed()
        caller.wait().assert_passed()
    rows = wait_cdrs(ivr.office.core.data, lambda r: len(r) >= 1, 10.0)
    assert rows[-1]["answered_by"] == BILLING, rows[-1]
    assert rows[-1]["disposition"] == "answered", rows[-1]


def test_sip_info_key_rings_billing(ivr: Menu) -> None:
    ivr.menu("--choice", "2=extension:102", "--timeout", "10")
    _route_did(ivr)
    callee = ivr.callee()
    with RtpEndpoint() as rtp:
        caller, _port = ivr.caller(rtp, "ivr_uac_info.xml", (500, "2"))
        callee.wait().assert_passed()
        caller.wait().assert_passed()
    rows = wait_cdrs(ivr.office.core.data, lambda r: len(r) >= 1, 10.0)
    assert rows[-1]["answered_by"] == BILLING, rows[-1]


def test_inband_key_in_the_callers_audio_rings_billing(ivr: Menu) -> None:
    ivr.menu("--choice", "2=extension:102", "--timeout", "10")
    _route_did(ivr)
    callee = ivr.callee()
    with RtpEndpoint() as rtp:
        caller, _port = ivr.caller(rtp)
        ivr.heard_greeting(rtp)  # the greeting is out: the key comes as a tone
        rtp.send_audio(audioop.lin2ulaw(dtmf_tone("2", 120), 2))
        callee.wait().assert_passed()
        caller.wait().assert_passed()
    rows = wait_cdrs(ivr.office.core.data, lambda r: len(r) >= 1, 10.0)
    assert rows[-1]["answered_by"] == BILLING, rows[-1]


def test_a_wrong_key_replays_the_menu_after_the_invalid_prompt(ivr: Menu) -> None:
    ivr.menu("--choice", "2=extension:102", "--timeout", "10", "--repeats", "3")
    _route_did(ivr)
    callee = ivr.callee()
    with RtpEndpoint() as rtp:
        caller, _port = ivr.caller(rtp)
        ivr.heard_greeting(rtp)
        mark = rtp.mark()
        rtp.send_digits("5", payload_type=DTMF_PT)
        invalid, greeting = prompt_samples(INVALID), prompt_samples(GREETING)
        frames = (len(invalid) + len(greeting)) // 160
        after = decoded(rtp.wait_packets(lambda p: p.payload_type == 0, frames, since=mark))
        assert best_correlation(after, invalid) > 0.9, "no invalid-choice prompt after key 5"
        assert best_correlation(after, greeting) > 0.9, "the menu was not played again"
        rtp.send_digits("2", payload_type=DTMF_PT)
        callee.wait().assert_passed()
        caller.wait().assert_passed()


def test_silence_goes_to_the_timeout_destination(ivr: Menu) -> None:
    ivr.menu("--timeout", "1", "--repeats", "2", "--on-timeout", "extension:102")
    _route_did(ivr)
    callee = ivr.callee()
    with RtpEndpoint() as rtp:
        caller, _port = ivr.caller(rtp)
        callee.wait().assert_passed()
        caller.wait().assert_passed()
        greeting = prompt_samples(GREETING)
        heard = decoded(rtp.packets.items)
        assert best_correlation(heard, greeting) > 0.9
    rows = wait_cdrs(ivr.office.core.data, lambda r: len(r) >= 1, 10.0)
    assert rows[-1]["answered_by"] == BILLING, rows[-1]


def test_an_announcement_plays_then_hangs_up(ivr: Menu) -> None:
    core = ivr.office.core
    core.cli("announcement", "add", "closed", "--prompt", f"sound:{GREETING}")
    core.cli("did", "add", DID, "--to", "announcement:closed")
    with RtpEndpoint() as rtp:
        caller, _port = ivr.caller(rtp)
        caller.wait().assert_passed()  # the box's BYE after the prompt ends the scenario
        heard = decoded(rtp.packets.items)
    assert best_correlation(heard, prompt_samples(GREETING)) > 0.9
    rows = wait_cdrs(core.data, lambda r: len(r) >= 1, 10.0)
    assert rows[-1]["disposition"] == "answered", rows[-1]
    assert "announcement closed" in rows[-1]["hangup_cause"], rows[-1]


@pytest.mark.parametrize(
    ("language", "text"),
    [("ru", "Здравствуйте! Офис закрыт, позвоните завтра."),
     ("en", "Hello! The office is closed, please call again tomorrow.")],
)  # fmt: skip
def test_a_typed_prompt_is_heard_by_the_caller(ivr: Menu, language: str, text: str) -> None:
    """A prompt typed as text (espeak-ng, offline) is an announcement's: the caller hears it,
    checked against the stored file brought to 8 kHz by sox (not by the box's resampler)."""
    core = ivr.office.core
    core.cli("prompt", "add", "closed-msg", "--text", text, "--lang", language)
    core.cli("announcement", "add", "closed", "--prompt", "closed-msg")
    core.cli("did", "add", DID, "--to", "announcement:closed")
    db = open_db(core.data)
    try:
        made = prompts.get(db, "closed-msg")
    finally:
        db.conn.close()
    assert made is not None and made.language == language
    reference = core.data / "closed-msg-8k.wav"
    subprocess.run(["sox", str(made.file(core.data)), "-r", "8000", str(reference)], check=True)
    samples, rate = soundfile.read(reference, dtype="float64")
    assert rate == 8000 and len(samples) > 8000  # a real sentence, over a second
    with RtpEndpoint() as rtp:
        caller, _port = ivr.caller(rtp)
        caller.wait().assert_passed()  # the box hangs up after the prompt
        heard = decoded(rtp.packets.items)
    score = best_correlation(heard, np.asarray(samples, dtype=np.float64))
    assert score > 0.8, f"the {language} prompt heard does not match its file: {score:.3f}"
