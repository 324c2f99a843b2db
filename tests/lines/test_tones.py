"""Tests of `appliance.lines.tones`: every country's tones, measured from the generated PCM
(frequencies by FFT, cadence from the envelope), against ITU-T E.180 Supplement 2 values
written here independently of the plan; and the FXO detector recognising dial and busy tone
while rejecting silence, noise, speech-like sound and the other country's tones."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from appliance.lines.callerid import CallerIdStandard
from appliance.lines.tones import (
    PLANS,
    Tone,
    ToneDetector,
    ToneGenerator,
    ToneKind,
    plan_for,
)
from tests.lines.speech import load_speech

RATE = 8000

# (country, kind): (frequencies, cadence): what E.180 Supplement 2 (and, where it lists
# nothing, the national practice named in tones.py) says; an independent copy of the data.
EXPECTED: dict[tuple[str, str], tuple[tuple[float, ...], tuple[float, ...]]] = {
    ("RU", "dial"): ((425,), ()),
    ("RU", "ringback"): ((425,), (0.8, 3.2)),
    ("RU", "busy"): ((425,), (0.4, 0.4)),
    ("RU", "congestion"): ((425,), (0.2, 0.2)),
    ("US", "dial"): ((350, 440), ()),
    ("US", "ringback"): ((440, 480), (2.0, 4.0)),
    ("US", "busy"): ((480, 620), (0.5, 0.5)),
    ("US", "congestion"): ((480, 620), (0.25, 0.25)),
    ("UK", "dial"): ((350, 450), ()),
    ("UK", "ringback"): ((400, 450), (0.4, 0.2, 0.4, 2.0)),
    ("UK", "busy"): ((400,), (0.375, 0.375)),
    ("DE", "dial"): ((425,), ()),
    ("DE", "ringback"): ((425,), (1.0, 4.0)),
    ("DE", "busy"): ((425,), (0.48, 0.48)),
    ("DE", "congestion"): ((425,), (0.24, 0.24)),
}


def peaks(pcm: npt.NDArray[np.int16], count: int) -> list[float]:
    """The `count` strongest frequencies of `pcm` (1 Hz resolution over a 1 s stretch), each
    at least 15 Hz from a stronger one."""
    signal = pcm[:RATE].astype(np.float64) * np.hanning(min(len(pcm), RATE))
    spectrum = np.abs(np.fft.rfft(signal, n=RATE))
    found: list[float] = []
    for index in np.argsort(spectrum)[::-1]:
        if all(abs(index - f) > 15 for f in found):
            found.append(float(index))
        if len(found) == count:
            break
    return sorted(found)


def envelope_runs(pcm: npt.NDArray[np.int16]) -> list[tuple[bool, float]]:
    """The tone's on/off runs in seconds, from the RMS of 5 ms blocks."""
    blocks = pcm[: len(pcm) // 40 * 40].astype(np.float64).reshape(-1, 40)
    on = np.sqrt((blocks**2).mean(axis=1)) > 100
    runs: list[tuple[bool, float]] = []
    for state in on.tolist():
        if runs and runs[-1][0] == state:
            runs[-1] = (state, runs[-1][1] + 0.005)
        else:
            runs.append((state, 0.005))
    return runs


@pytest.mark.parametrize(("country", "kind"), sorted(EXPECTED))
def test_frequencies_and_cadence_measured_from_the_pcm(country: str, kind: str) -> None:
    freqs, cadence = EXPECTED[country, kind]
    tone = plan_for(country).tone(kind)
    period = sum(cadence) or 1.0
    pcm = tone.pcm(2 * period + 0.5)
    assert peaks(pcm, len(freqs)) == pytest.approx(list(freqs), abs=1.5)
    runs = envelope_runs(pcm)
    if not cadence:
        assert [state for state, _ in runs] == [True]
        assert runs[0][1] == pytest.approx(len(pcm) / RATE, abs=0.006)
        return
    # Two whole periods, starting with the tone on.
    measured = [seconds for _, seconds in runs[: 2 * len(cadence)]]
    assert [state for state, _ in runs[: 2 * len(cadence)]] == [True, False] * len(cadence)
    assert measured == pytest.approx(list(cadence) * 2, abs=0.006)


@pytest.mark.parametrize(
    ("country", "kind"), [(c, k) for c in sorted(PLANS) for k in ToneKind]
)  # fmt: skip
def test_every_tone_sounds_as_its_data_says(country: str, kind: ToneKind) -> None:
    """Every tone of every plan (howler, call waiting and recall dial included): the PCM's
    spectral peaks are the declared frequencies, its envelope the declared intro and cadence."""
    tone = plan_for(country).tone(kind)
    pcm = tone.pcm(sum(tone.intro) + 2 * (tone.period or 1.0) + 0.3)
    # The frequencies, measured over the bursts put end to end.
    bursts = np.concatenate([pcm[round(a * RATE) : round(b * RATE)] for a, b in on_spans(pcm)])
    assert peaks(bursts, len(tone.frequencies)) == pytest.approx(sorted(tone.frequencies), abs=3.0)
    runs = [seconds for _, seconds in envelope_runs(pcm)]
    declared = list(tone.intro) + list(tone.cadence) * 2
    if declared:
        assert runs[: len(declared)] == pytest.approx(declared, abs=0.006)


def on_spans(pcm: npt.NDArray[np.int16]) -> list[tuple[float, float]]:
    """(start, end) in seconds of each burst of the tone."""
    spans, at = [], 0.0
    for state, seconds in envelope_runs(pcm):
        if state:
            spans.append((at, at + seconds))
        at += seconds
    return spans


def test_every_plan_has_every_tone_and_sane_timing() -> None:
    assert {"RU", "US", "DE", "UK"} <= set(PLANS)
    for plan in PLANS.values():
        assert set(plan.tones) == set(ToneKind), plan.country
        assert plan.ring and len(plan.ring) % 2 == 0
        assert plan.flash.min_ms > plan.pulse.max_break_ms, "a pulse would read as a flash"
        assert plan.flash.max_ms < 2000
    assert plan_for("us").caller_id is CallerIdStandard.BELL202
    assert plan_for("RU").caller_id is CallerIdStandard.DTMF
    assert plan_for("DE").caller_id is CallerIdStandard.ETSI_FSK
    assert plan_for("UK").ring == (0.4, 0.2, 0.4, 2.0)
    assert plan_for("US").ring == (2.0, 4.0)


def test_unknown_country_names_the_known_ones() -> None:
    with pytest.raises(LookupError, match=r"no tone plan for country 'XX'; known: DE, RU, UK"):
        plan_for("XX")


def test_bad_cadence_is_refused() -> None:
    with pytest.raises(ValueError, match="cadence must be positive on/off pairs"):
        Tone((425.0,), (0.4,))


def test_recall_dial_tone_stutters_then_stays() -> None:
    runs = envelope_runs(plan_for("US").tone("recall_dial").pcm(3.0))
    assert [s for s, _ in runs] == [True, False] * 10 + [True]
    assert [t for _, t in runs[:20]] == pytest.approx([0.1] * 20, abs=0.006)
    assert runs[-1][1] == pytest.approx(1.0, abs=0.006)


def test_generator_frames_are_continuous_with_the_whole() -> None:
    tone = plan_for("UK").tone("ringback")
    generator = ToneGenerator(tone)
    framed = b"".join(generator.frame(160) for _ in range(200))
    whole = tone.pcm(4.0).astype("<i2").tobytes()
    assert framed == whole


def test_level_is_the_planned_dbm0() -> None:
    pcm = plan_for("RU").tone("dial").pcm(1.0).astype(np.float64)
    # -13 dBm0: peak 32767 * 10 ** ((-13 - 3.17) / 20)
    assert np.abs(pcm).max() == pytest.approx(32767 * 10 ** (-16.17 / 20), rel=0.01)


@pytest.mark.parametrize("country", sorted(PLANS))
def test_no_tone_clips(country: str) -> None:
    """A tone's frequencies summed never reach full scale (the loud howler included)."""
    for kind in ToneKind:
        pcm = plan_for(country).tone(kind).pcm(3.0)
        assert np.abs(pcm.astype(np.int32)).max() < 32767, kind


def feed(detector: ToneDetector, pcm: npt.NDArray[np.int16], chunk: int = 160) -> ToneKind | None:
    data = pcm.astype("<i2").tobytes()
    result = None
    for at in range(0, len(data), 2 * chunk):
        result = detector.feed(data[at : at + 2 * chunk])
    return result


@pytest.mark.parametrize("country", ["RU", "US", "DE", "UK"])
@pytest.mark.parametrize("kind", [ToneKind.DIAL, ToneKind.BUSY, ToneKind.CONGESTION])
def test_detector_recognises_dial_and_busy(country: str, kind: ToneKind) -> None:
    plan = plan_for(country)
    rng = np.random.default_rng(7)
    # Starting mid-cadence, in odd-sized chunks, with line noise 30 dB down.
    tone = plan.tone(kind).pcm(5.0)[1111:].astype(np.float64)
    noise = rng.normal(0, np.sqrt(np.mean(tone**2)) / 31.6, len(tone))
    pcm = np.clip(tone + noise, -32768, 32767).astype(np.int16)
    assert feed(ToneDetector(plan), pcm, chunk=137) is kind


@pytest.mark.parametrize("country", ["RU", "US", "DE", "UK"])
def test_detector_does_not_take_ringback_for_busy_or_dial(country: str) -> None:
    plan = plan_for(country)
    assert feed(ToneDetector(plan), plan.tone("ringback").pcm(13.0)) is None


def test_detector_rejects_the_other_countrys_tones() -> None:
    assert feed(ToneDetector(plan_for("US")), plan_for("RU").tone("dial").pcm(3.0)) is None
    assert feed(ToneDetector(plan_for("RU")), plan_for("US").tone("busy").pcm(3.0)) is None


def speechlike(seconds: float, seed: int) -> npt.NDArray[np.int16]:
    """Voiced sound: a 120-220 Hz glottal pulse train through moving formants, with pauses."""
    rng = np.random.default_rng(seed)
    n = np.arange(int(seconds * RATE))
    f0 = 170 + 50 * np.sin(2 * np.pi * 0.7 * n / RATE)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    out = np.zeros(len(n))
    for harmonic in range(1, 25):
        formant = 1.0 / (1 + ((harmonic * 170 - 500 - 300 * np.sin(n / 3000)) / 300) ** 2)
        out += formant * np.sin(harmonic * phase) / harmonic
    syllables = (np.sin(2 * np.pi * 3.5 * n / RATE + rng.uniform(0, 6)) > -0.3).astype(float)
    out *= syllables * 6000 / np.abs(out).max()
    return out.astype(np.int16)


def test_detector_rejects_silence_noise_and_speech() -> None:
    rng = np.random.default_rng(3)
    for plan in PLANS.values():
        assert feed(ToneDetector(plan), np.zeros(5 * RATE, np.int16)) is None
        noise = rng.normal(0, 3000, 5 * RATE).astype(np.int16)
        assert feed(ToneDetector(plan), noise) is None
        assert feed(ToneDetector(plan), speechlike(10.0, seed=1)) is None


@pytest.fixture(scope="module")
def espeak_speech(request: pytest.FixtureRequest) -> npt.NDArray[np.int16]:
    return load_speech(request.config)


def test_espeak_speech_is_neither_dial_nor_busy(espeak_speech: npt.NDArray[np.int16]) -> None:
    for plan in PLANS.values():
        assert feed(ToneDetector(plan), espeak_speech[: 60 * RATE]) is None
