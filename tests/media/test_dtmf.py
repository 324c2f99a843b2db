"""Tests of `appliance.media.dtmf`: RFC 4733 telephone-event payloads as phones send them,
the digit/event mapping, and the in-band detector: every digit at several levels and both
rates, through G.711, fed in any chunk size, with Q.24-style timing, and never a digit from
plain tones, noise or harmonic-rich sound."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from collections.abc import Callable

import numpy as np
import pytest

from appliance.media.dtmf import (
    EVENT_DIGITS,
    DtmfError,
    InbandDtmfDetector,
    TelephoneEvent,
    digit_of,
    dtmf_tone,
    event_of,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop


def exact(reason: str) -> str:
    return rf"\A{re.escape(reason)}\Z"


# -- RFC 4733 events -------------------------------------------------------------------------


def test_captured_events() -> None:
    # Digit 5 as baresip sends it: volume 10, duration growing by 160, three end packets.
    start = TelephoneEvent.parse(b"\x05\x0a\x00\xa0")
    assert start == TelephoneEvent(event=5, end=False, volume=10, duration=160)
    assert start.digit == "5"
    end = TelephoneEvent.parse(b"\x05\x8a\x03\x20")
    assert end == TelephoneEvent(5, end=True, volume=10, duration=800)
    assert bytes(start) == b"\x05\x0a\x00\xa0"
    assert bytes(end) == b"\x05\x8a\x03\x20"
    # '#' from PJSIP, which sends volume 10 too; and a flash (event 16) at the limits.
    assert TelephoneEvent.parse(b"\x0b\x0a\x01\x40").digit == "#"
    flash = TelephoneEvent.parse(b"\x10\xbf\xff\xff")
    assert flash == TelephoneEvent(16, True, 63, 65535)
    assert flash.digit is None


def test_reserved_bit_round_trips() -> None:
    event = TelephoneEvent.parse(b"\x01\x4a\x00\x50")
    assert event == TelephoneEvent(1, False, 10, 80, reserved=True)
    assert bytes(event) == b"\x01\x4a\x00\x50"


@pytest.mark.parametrize("size", [0, 1, 3, 5, 8])
def test_wrong_size(size: int) -> None:
    reason = f"telephone-event payload is {size} bytes, expected 4"
    with pytest.raises(DtmfError, match=exact(reason)):
        TelephoneEvent.parse(bytes(size))


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (TelephoneEvent(256), "telephone-event code 256 out of range 0-255"),
        (TelephoneEvent(-1), "telephone-event code -1 out of range 0-255"),
        (TelephoneEvent(1, volume=64), "telephone-event volume 64 out of range 0-63"),
        (TelephoneEvent(1, duration=65536), "telephone-event duration 65536 out of range 0-65535"),
    ],
)
def test_serialise_errors(event: TelephoneEvent, reason: str) -> None:
    with pytest.raises(DtmfError, match=exact(reason)):
        bytes(event)


def test_digit_mapping() -> None:
    assert EVENT_DIGITS == "0123456789*#ABCD"
    for event, digit in enumerate(EVENT_DIGITS):
        assert digit_of(event) == digit
        assert event_of(digit) == event
    assert event_of("a") == 12
    assert event_of("d") == 15
    assert digit_of(16) is None
    assert digit_of(255) is None
    assert digit_of(-1) is None
    for bad in ("E", "", "12", " ", "+"):
        with pytest.raises(DtmfError, match=exact(f"not a DTMF digit: {bad!r}")):
            event_of(bad)


# -- tone generation ---------------------------------------------------------------------------


def test_dtmf_tone_shape() -> None:
    pcm = dtmf_tone("1", 60)
    assert len(pcm) == 2 * 480
    x = np.frombuffer(pcm, dtype="<i2")
    assert 0.29 * 32767 <= np.max(np.abs(x)) <= 0.3 * 32767 + 1
    spectrum = np.abs(np.fft.rfft(x))
    freqs = np.fft.rfftfreq(len(x), 1 / 8000)
    top = sorted(freqs[np.argsort(spectrum)[-2:]])
    assert abs(top[0] - 697) < 17 and abs(top[1] - 1209) < 17
    assert len(dtmf_tone("#", 20, sample_rate=16000)) == 2 * 320
    with pytest.raises(DtmfError, match=exact("not a DTMF digit: 'x'")):
        dtmf_tone("x", 10)


# -- in-band detection -------------------------------------------------------------------------


def silence(ms: int, rate: int = 8000) -> bytes:
    return bytes(2 * rate * ms // 1000)


def detect(pcm: bytes, rate: int = 8000, chunk: int = 320) -> list[str]:
    detector = InbandDtmfDetector(rate)
    digits: list[str] = []
    for i in range(0, len(pcm), chunk):
        digits += detector.feed(pcm[i : i + chunk])
    return digits


def pcm_of(x: np.ndarray) -> bytes:
    return np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes()


def tones(freqs: list[float], ms: int, rate: int = 8000, peak: float = 0.3) -> bytes:
    n = np.arange(rate * ms // 1000)
    x = sum(np.sin(2 * np.pi * f * n / rate) for f in freqs)
    return pcm_of(np.asarray(x) * peak * 32767 / len(freqs))


def ulaw(pcm: bytes) -> bytes:
    return audioop.ulaw2lin(audioop.lin2ulaw(pcm, 2), 2)


def alaw(pcm: bytes) -> bytes:
    return audioop.alaw2lin(audioop.lin2alaw(pcm, 2), 2)


@pytest.mark.parametrize("amplitude", [0.95, 0.3, 0.1, 0.03])
@pytest.mark.parametrize("rate", [8000, 16000])
def test_every_digit_at_several_levels(rate: int, amplitude: float) -> None:
    for digit in EVENT_DIGITS:
        pcm = silence(13, rate) + dtmf_tone(digit, 60, rate, amplitude) + silence(60, rate)
        assert detect(pcm, rate) == [digit], digit


@pytest.mark.parametrize("codec", [ulaw, alaw])
def test_digits_survive_g711(codec: Callable[[bytes], bytes]) -> None:
    for digit in EVENT_DIGITS:
        for amplitude in (0.5, 0.05):
            pcm = silence(7) + dtmf_tone(digit, 60, 8000, amplitude) + silence(60)
            assert detect(codec(pcm)) == [digit], (digit, amplitude)


def test_sequence_with_gaps() -> None:
    pcm = silence(50)
    for digit in "159#":
        pcm += dtmf_tone(digit, 60) + silence(50)
    assert detect(pcm) == list("159#")
    assert detect(ulaw(pcm)) == list("159#")


def test_sequence_at_16k() -> None:
    pcm = b"".join(dtmf_tone(d, 50, 16000) + silence(50, 16000) for d in "0123456789*#ABCD")
    assert detect(pcm, 16000, chunk=640) == list(EVENT_DIGITS)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 100, 159, 160, 333, 1000, 100_000])
def test_any_chunk_size(chunk: int) -> None:
    pcm = silence(31) + b"".join(dtmf_tone(d, 45) + silence(45) for d in "2580")
    assert detect(pcm, chunk=chunk) == list("2580")


def test_digit_reported_in_the_chunk_where_it_reaches_40_ms() -> None:
    detector = InbandDtmfDetector()
    assert detector.feed(silence(20)) == []
    tone = dtmf_tone("7", 200)
    assert detector.feed(tone[: 2 * 8 * 20]) == []  # 20 ms of tone: not yet
    assert detector.feed(tone[2 * 8 * 20 : 2 * 8 * 60]) == ["7"]  # by 60 ms it counted
    assert detector.feed(tone[2 * 8 * 60 :]) == []  # held: not again
    assert detector.feed(silence(100)) == []


@pytest.mark.parametrize("offset", [0, 1, 2, 3, 4])
def test_40_ms_counts_and_25_ms_does_not(offset: int) -> None:
    lead = silence(offset)
    assert detect(lead + dtmf_tone("4", 40) + silence(60)) == ["4"]
    assert detect(lead + dtmf_tone("4", 25) + silence(60)) == []
    assert detect(lead + dtmf_tone("4", 15) + silence(60)) == []


def test_same_digit_needs_a_pause() -> None:
    held = dtmf_tone("5", 60) + silence(45) + dtmf_tone("5", 60) + silence(60)
    assert detect(held) == ["5", "5"]
    # A 10 ms drop-out, as from a lost packet, is not a pause: one long digit.
    dropout = dtmf_tone("5", 60) + silence(10) + dtmf_tone("5", 60) + silence(60)
    assert detect(dropout) == ["5"]
    # Another digit straight after needs no pause.
    assert detect(dtmf_tone("5", 60) + dtmf_tone("6", 60) + silence(60)) == ["5", "6"]


def test_twist_limits() -> None:
    for twist_db, found in [(-10, []), (-6, ["1"]), (0, ["1"]), (3, ["1"]), (6, [])]:
        n = np.arange(800)
        x = 8000 * np.sin(2 * np.pi * 697 * n / 8000) + 8000 * 10 ** (twist_db / 20) * np.sin(
            2 * np.pi * 1209 * n / 8000
        )
        assert detect(pcm_of(x)) == found, twist_db


def test_too_quiet() -> None:
    assert detect(dtmf_tone("1", 100, amplitude=0.01) + silence(60)) == []


@pytest.mark.parametrize(
    ("what", "freqs"),
    [
        ("440 Hz", [440]),
        ("dial tone", [350, 440]),
        ("ringback", [440, 480]),
        ("busy", [480, 620]),
        ("a single DTMF row tone", [770]),
        ("a single DTMF column tone", [1336]),
        ("a digit's pair plus a third tone", [697, 1209, 1000]),
        ("two row tones", [697, 852]),
    ],
)
def test_no_digit_from_other_tones(what: str, freqs: list[float]) -> None:
    for peak in (0.9, 0.3, 0.05):
        assert detect(tones(freqs, 2000, peak=peak)) == [], what
        assert detect(tones(freqs, 1000, 16000, peak=peak), 16000) == [], what


def test_no_digit_from_white_noise() -> None:
    rng = np.random.default_rng(20240611)
    for sigma in (30, 300, 3000, 12000):
        noise = pcm_of(rng.normal(0, sigma, 8000 * 5))
        assert detect(noise) == [], sigma
        assert detect(ulaw(noise)) == [], sigma
    assert detect(pcm_of(rng.normal(0, 3000, 16000 * 3)), 16000) == []


def test_no_digit_from_harmonic_sound() -> None:
    # Voiced speech and music are harmonic series: sawtooth waves, fundamentals 80-400 Hz.
    n = np.arange(8000)
    for f0 in range(80, 400, 7):
        saw = ((n * f0 / 8000) % 1 - 0.5) * 20000
        assert detect(pcm_of(saw)) == [], f0
    # A chirp across the telephone band passes every DTMF frequency without dwelling.
    t = np.arange(8000 * 5)
    freq = 300 + 3100 * t / len(t)
    assert detect(pcm_of(10000 * np.sin(2 * np.pi * np.cumsum(freq) / 8000))) == []


def test_digits_in_noise() -> None:
    rng = np.random.default_rng(7)
    for digit in EVENT_DIGITS:
        tone = np.frombuffer(silence(20) + dtmf_tone(digit, 60) + silence(60), dtype="<i2")
        rms = 0.3 * 32767 / 2  # of the two tones together, each of peak 0.15
        noisy = tone + rng.normal(0, rms / 10 ** (15 / 20), len(tone))  # 15 dB SNR
        assert detect(pcm_of(noisy)) == [digit], digit


def test_module_import_does_not_load_numpy() -> None:
    code = (
        "import sys\n"
        "import appliance.media.dtmf, appliance.media.rtp, appliance.media.rtcp\n"
        "import appliance.media.codecs\n"
        "assert 'numpy' not in sys.modules, 'numpy loaded at import'\n"
        "appliance.media.dtmf.dtmf_tone('1', 20)\n"
        "assert 'numpy' not in sys.modules, 'numpy loaded by dtmf_tone'\n"
        "appliance.media.dtmf.InbandDtmfDetector()\n"
        "assert 'numpy' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
