"""The in-band DTMF detector (`appliance.media.dtmf.InbandDtmfDetector`) as an analog port
uses it, against ITU-T Q.24's receiver limits: tones of 40 ms accepted and shorter ones
rejected; 40 ms pauses separate digits; frequency offsets of +/-1.5 % accepted and +/-3.5 %
rejected; twist of 8 dB normal and 4 dB reverse accepted; the signal level range; noise; and
talk-off: ten minutes of synthesised Russian and English speech give no digit.

The tones are generated here (not with the library's `dtmf_tone`), so that frequency, level
and twist can be set apart."""

from __future__ import annotations

import itertools
import time

import numpy as np
import numpy.typing as npt
import pytest

from appliance.media.dtmf import InbandDtmfDetector
from tests.lines.speech import load_speech

RATE = 8000
LOW = (697.0, 770.0, 852.0, 941.0)
HIGH = (1209.0, 1336.0, 1477.0, 1633.0)
KEYS = ("123A", "456B", "789C", "*0#D")
DIGITS = "".join(KEYS)
DBM0_PEAK = 32767 * 10 ** (-3.17 / 20)


def freqs(digit: str) -> tuple[float, float]:
    for row, keys in enumerate(KEYS):
        if digit in keys:
            return LOW[row], HIGH[keys.index(digit)]
    raise ValueError(digit)


def tone(low: float, high: float, ms: float, low_dbm0: float = -10.0,
         high_dbm0: float = -10.0, phase: float = 0.0) -> npt.NDArray[np.float64]:  # fmt: skip
    n = np.arange(round(ms * RATE / 1000))
    a = DBM0_PEAK * 10 ** (low_dbm0 / 20)
    b = DBM0_PEAK * 10 ** (high_dbm0 / 20)
    return np.asarray(
        a * np.sin(2 * np.pi * low * n / RATE + phase) + b * np.sin(2 * np.pi * high * n / RATE)
    )


def silence(ms: float) -> npt.NDArray[np.float64]:
    return np.zeros(round(ms * RATE / 1000))


def detect(*parts: npt.NDArray[np.float64], chunk: int = 160) -> str:
    """The digits the detector reports for the parts played one after another, preceded and
    followed by 100 ms of silence, fed in `chunk`-sample pieces as a port's 20 ms frames."""
    signal = np.concatenate((silence(100), *parts, silence(100)))
    pcm = np.clip(np.round(signal), -32768, 32767).astype("<i2").tobytes()
    detector = InbandDtmfDetector(RATE)
    return "".join(
        digit
        for at in range(0, len(pcm), 2 * chunk)
        for digit in detector.feed(pcm[at : at + 2 * chunk])
    )


# --- duration and pause -------------------------------------------------------------------------


@pytest.mark.parametrize("digit", DIGITS)
@pytest.mark.parametrize("offset", [0, 13, 27])
def test_40_ms_accepted(digit: str, offset: int) -> None:
    """Q.24: a tone of 40 ms is recognised, wherever it falls relative to the frames."""
    assert detect(silence(offset / 8), tone(*freqs(digit), 40)) == digit


@pytest.mark.parametrize("digit", DIGITS)
@pytest.mark.parametrize("ms", [10, 20, 23])
def test_short_tones_rejected(digit: str, ms: float) -> None:
    """Q.24: tones shorter than the non-operate limit (here 23 ms and less) are not digits."""
    assert detect(tone(*freqs(digit), ms)) == ""


def test_40_ms_pause_separates_digits() -> None:
    parts = []
    for digit in "1123581321":
        parts += [tone(*freqs(digit), 40), silence(40)]
    assert detect(*parts) == "1123581321"


def test_short_interruption_does_not_split_a_digit() -> None:
    """Q.24: a break of 10 ms within a tone is not a pause."""
    assert detect(tone(*freqs("5"), 60), silence(10), tone(*freqs("5"), 60)) == "5"


def test_long_tone_is_one_digit() -> None:
    assert detect(tone(*freqs("#"), 2000)) == "#"


# --- frequency tolerance ------------------------------------------------------------------------


@pytest.mark.parametrize("digit", DIGITS)
@pytest.mark.parametrize(("low_dev", "high_dev"), list(itertools.product([-1.5, 1.5], repeat=2)))
def test_frequency_within_1_5_percent_accepted(digit: str, low_dev: float, high_dev: float) -> None:
    low, high = freqs(digit)
    signal = tone(low * (1 + low_dev / 100), high * (1 + high_dev / 100), 60)
    assert detect(signal) == digit


@pytest.mark.parametrize("digit", DIGITS)
@pytest.mark.parametrize(("low_dev", "high_dev"), [(-3.5, 0), (3.5, 0), (0, -3.5), (0, 3.5)])
def test_frequency_off_by_3_5_percent_rejected(digit: str, low_dev: float, high_dev: float) -> None:
    low, high = freqs(digit)
    signal = tone(low * (1 + low_dev / 100), high * (1 + high_dev / 100), 60)
    assert detect(signal) == ""


# --- twist and level ----------------------------------------------------------------------------


@pytest.mark.parametrize("digit", DIGITS)
@pytest.mark.parametrize(("low_dbm0", "high_dbm0"), [(-6.0, -14.0), (-14.0, -10.0)])
def test_twist_at_the_limits_accepted(digit: str, low_dbm0: float, high_dbm0: float) -> None:
    """8 dB normal twist (the high group weaker), 4 dB reverse twist (the high group louder)."""
    assert detect(tone(*freqs(digit), 60, low_dbm0, high_dbm0)) == digit


@pytest.mark.parametrize("digit", DIGITS)
@pytest.mark.parametrize(("low_dbm0", "high_dbm0"), [(-6.0, -16.0), (-16.0, -10.0)])
def test_twist_beyond_the_limits_rejected(digit: str, low_dbm0: float, high_dbm0: float) -> None:
    """10 dB normal twist and 6 dB reverse twist are not digits."""
    assert detect(tone(*freqs(digit), 60, low_dbm0, high_dbm0)) == ""


@pytest.mark.parametrize("digit", DIGITS)
@pytest.mark.parametrize("level", [-3.0, -10.0, -20.0, -30.0])
def test_level_range_accepted(digit: str, level: float) -> None:
    """Each frequency from -3 dBm0 down to -30 dBm0 (Q.24's operate ranges lie within it)."""
    assert detect(tone(*freqs(digit), 60, level, level)) == digit


@pytest.mark.parametrize("digit", "159D")
def test_too_weak_rejected(digit: str) -> None:
    assert detect(tone(*freqs(digit), 60, -50.0, -50.0)) == ""


@pytest.mark.parametrize("seed", range(4))
def test_accepted_in_noise_20_db_down(seed: int) -> None:
    rng = np.random.default_rng(seed)
    parts = [np.concatenate((tone(*freqs(d), 50, -20.0, -20.0), silence(50))) for d in DIGITS]
    signal = np.concatenate(parts)
    sigma = np.sqrt(np.mean(signal**2)) / 10
    assert detect(signal + rng.normal(0, sigma, len(signal))) == DIGITS


# --- talk-off -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def espeak_speech(request: pytest.FixtureRequest) -> npt.NDArray[np.int16]:
    return load_speech(request.config)


@pytest.mark.timeout(120)
def test_talk_off_ten_minutes_of_speech(espeak_speech: npt.NDArray[np.int16]) -> None:
    """Ten minutes of espeak-ng speech, Russian and English, at 8 kHz: not one digit. Fed in
    20 ms frames as a port does; also at +6 dB, where more of it stands out of the noise."""
    assert len(espeak_speech) >= 10 * 60 * RATE
    started = time.perf_counter()
    for gain in (1.0, 2.0):
        pcm = np.clip(espeak_speech.astype(np.float64) * gain, -32768, 32767)
        data = pcm.astype("<i2").tobytes()
        detector = InbandDtmfDetector(RATE)
        digits = [d for at in range(0, len(data), 320) for d in detector.feed(data[at : at + 320])]
        assert digits == [], f"talk-off at gain {gain}: {''.join(digits)}"
    assert time.perf_counter() - started < 60


def test_speech_does_not_hide_a_digit(espeak_speech: npt.NDArray[np.int16]) -> None:
    """A digit dialled while speech is quiet (between words) is still heard: the detector is
    not simply deaf."""
    speech = espeak_speech[: 5 * RATE].astype(np.float64) * 0.1
    signal = np.concatenate((speech, tone(*freqs("7"), 60, -10.0, -10.0), speech))
    assert detect(signal) == "7"
