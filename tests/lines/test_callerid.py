"""Tests of `appliance.lines.callerid`: the generated FSK caller ID decoded by an independent
zero-crossing demodulator and message parser written here (V.23 and Bell 202, MDMF and SDMF,
number, name, date, checksum), its frequencies and preamble measured; DTMF caller ID decoded
by FFT here; the library's own decoders on noisy signals (20 dB SNR) and their refusal of a
corrupted checksum; the message format's round trip and its exact errors."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import numpy.typing as npt
import pytest

from appliance.lines.callerid import (
    BELL202,
    TIMING,
    V23,
    CallerIdError,
    CallerIdMessage,
    CallerIdReceiver,
    CallerIdStandard,
    FskModem,
    callerid_signal,
    decode_dtmf,
    decode_fsk,
    dtmf_callerid,
    fsk_callerid,
    modulate,
    parse_dtmf,
)

RATE = 8000
MESSAGE = CallerIdMessage.of("89161234567", "Ivanov Ivan", datetime(2026, 12, 3, 20, 50))


# --- an independent FSK receiver -----------------------------------------------------------------


def instantaneous_frequency(pcm: npt.NDArray[np.int16]) -> npt.NDArray[np.float64]:
    """Per sample, the frequency from the spacing of zero crossings (linearly interpolated)."""
    x = pcm.astype(np.float64)
    sign = np.signbit(x)
    idx = np.nonzero(sign[1:] != sign[:-1])[0]
    crossings = idx + x[idx] / (x[idx] - x[idx + 1])
    half_periods = np.diff(crossings)
    mids = (crossings[1:] + crossings[:-1]) / 2
    freq: npt.NDArray[np.float64] = np.interp(np.arange(len(x)), mids, RATE / (2 * half_periods))
    return freq


def receive_bytes(pcm: npt.NDArray[np.int16], mark_hz: float, space_hz: float) -> bytes:
    """The bytes after the first long mark (>= 100 bits): UART framing found by start bits."""
    freq = instantaneous_frequency(pcm)
    kernel = np.ones(3) / 3
    mark = np.convolve(freq, kernel, mode="same") < (mark_hz + space_hz) / 2
    bit = RATE / 1200
    # The end of the first run of mark at least 100 bits long.
    run = 0
    at = 0
    for at in range(len(mark)):
        run = run + 1 if mark[at] else 0
        if run >= 100 * bit and not mark[at + 1]:
            break
    out = bytearray()
    at += 1
    for _ in range(300):  # bounded: at most 300 bytes
        while at < len(mark) - 10 * bit and mark[at]:
            at += 1
        if at >= len(mark) - 10 * bit:
            break
        centres = [at + bit / 2 + k * bit for k in range(10)]
        values = [bool(mark[int(c)]) for c in centres]
        assert values[0] is False and values[9] is True, f"framing error at sample {at}"
        out.append(sum(int(v) << i for i, v in enumerate(values[1:9])))
        at = int(centres[9])
    return bytes(out)


def parse_independently(frame: bytes) -> dict[str, object]:
    """Type, fields and checksum of a call set-up message, per EN 300 659-3 / GR-30."""
    kind, length = frame[0], frame[1]
    body, checksum = frame[2 : 2 + length], frame[2 + length]
    result: dict[str, object] = {"type": kind, "checksum_ok": (sum(frame[: 3 + length]) % 256 == 0)}
    assert checksum == (256 - sum(frame[: 2 + length]) % 256) % 256 or not result["checksum_ok"]
    if kind == 0x04:
        result["date"], result["number"] = body[:8].decode(), body[8:].decode()
        return result
    i = 0
    while i < len(body):
        ptype, plen = body[i], body[i + 1]
        result[{1: "date", 2: "number", 4: "no_number", 7: "name", 8: "no_name"}[ptype]] = body[
            i + 2 : i + 2 + plen
        ].decode("latin-1")
        i += 2 + plen
    return result


@pytest.mark.parametrize("modem", [V23, BELL202], ids=lambda m: m.name)
def test_fsk_mdmf_decoded_independently(modem: FskModem) -> None:
    pcm = fsk_callerid(MESSAGE, modem)
    frame = receive_bytes(pcm, modem.mark_hz, modem.space_hz)
    assert frame[: len(bytes(MESSAGE))] == bytes(MESSAGE)
    fields = parse_independently(frame)
    assert fields == {"type": 0x80, "checksum_ok": True, "date": "12032050",
                      "number": "89161234567", "name": "Ivanov Ivan"}  # fmt: skip


def test_bell_sdmf_decoded_independently() -> None:
    message = CallerIdMessage(number="2125551234", when="01011230", sdmf=True)
    frame = receive_bytes(fsk_callerid(message, BELL202), BELL202.mark_hz, BELL202.space_hz)
    fields = parse_independently(frame)
    assert fields == {"type": 0x04, "checksum_ok": True, "date": "01011230",
                      "number": "2125551234"}  # fmt: skip


def test_known_frame_bytes_and_round_trip() -> None:
    message = CallerIdMessage(number="5551234", when="01011230")
    body = bytes([1, 8]) + b"01011230" + bytes([2, 7]) + b"5551234"
    head = bytes([0x80, len(body)]) + body
    expected = head + bytes([(256 - sum(head) % 256) % 256])
    assert bytes(message) == expected
    assert CallerIdMessage.parse(expected) == message
    assert CallerIdMessage.parse(bytes(MESSAGE)) == MESSAGE
    private = CallerIdMessage(number_absent="P", name_absent="P", when="12312359")
    assert CallerIdMessage.parse(bytes(private)) == private
    sdmf = CallerIdMessage(number="2125551234", when="01011230", sdmf=True)
    assert CallerIdMessage.parse(bytes(sdmf)) == sdmf


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x80\x01", "caller-ID frame is 2 bytes, at least 3 expected"),
        (b"\x81\x00\x7f", "unknown caller-ID message type 0x81"),
        (b"\x80\x05\x02\x03", "caller-ID frame truncated: 4 of 8 bytes"),
        (b"\x80\x03\x02\x01\x35\x00", "caller-ID checksum mismatch"),
        (b"\x80\x03\x02\x05\x35\x41", "parameter at byte 2 overruns the message"),
        (b"\x04\x01\x30\xcb", "SDMF message shorter than its date and time"),
    ],
)
def test_invalid_frames_give_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(CallerIdError) as caught:
        CallerIdMessage.parse(data)
    assert str(caught.value) == reason


def test_fuzzed_frames_raise_only_callerid_error() -> None:
    """Random and mutated frames: parsed, or refused with `CallerIdError`, nothing else; a
    message that parsed serialises to a frame that parses to the same message."""
    rng = np.random.default_rng(11)
    good = bytes(MESSAGE)
    for count in range(3000):  # bounded
        if count % 2:
            data = bytes(rng.integers(0, 256, int(rng.integers(0, 60)), dtype=np.uint8))
        else:
            mutated = bytearray(good)
            for _ in range(int(rng.integers(1, 4))):
                mutated[int(rng.integers(0, len(mutated)))] = int(rng.integers(0, 256))
            data = bytes(mutated[: int(rng.integers(1, len(mutated) + 1))])
        try:
            message = CallerIdMessage.parse(data)
        except CallerIdError:
            continue
        assert sum(data[: data[1] + 3]) % 256 == 0
        try:
            again = bytes(message)
        except CallerIdError:
            continue  # e.g. a body that grew past 255 bytes once headers were added
        assert CallerIdMessage.parse(again) == message


def test_too_long_name_is_refused() -> None:
    with pytest.raises(CallerIdError, match="parameter 7 is 300 bytes, at most 255"):
        bytes(CallerIdMessage(number="1", name="x" * 300))


def spectrum_peak(pcm: npt.NDArray[np.int16]) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64) * np.hanning(len(pcm)), n=RATE))
    return float(np.argmax(spectrum))


@pytest.mark.parametrize("modem", [V23, BELL202], ids=lambda m: m.name)
def test_preamble_frequencies_and_lengths(modem: FskModem) -> None:
    pcm = fsk_callerid(MESSAGE, modem)
    bit = RATE / 1200
    seizure = pcm[: int(300 * bit)]
    mark = pcm[int(300 * bit) + 8 : int(480 * bit) - 8]
    assert spectrum_peak(mark) == pytest.approx(modem.mark_hz, abs=3)
    # Alternating bits at 1200 baud: both tones present, each about half the time.
    freq = instantaneous_frequency(seizure)
    low = np.mean(freq < (modem.mark_hz + modem.space_hz) / 2)
    assert 0.35 < low < 0.65
    # The whole transmission: 300 + 180 bits, the frame's 10 bits per byte, 2 stop marks.
    bits = 300 + 180 + 10 * len(bytes(MESSAGE)) + 2
    assert len(pcm) == pytest.approx(bits * bit, abs=1)


def test_level_is_minus_13_dbm0() -> None:
    pcm = fsk_callerid(MESSAGE, V23, level_dbm0=-13.0)
    assert np.abs(pcm).max() == pytest.approx(32767 * 10 ** (-16.17 / 20), rel=0.01)


# --- the library's own decoder -------------------------------------------------------------------


def with_noise(pcm: npt.NDArray[np.int16], snr_db: float, seed: int) -> npt.NDArray[np.int16]:
    """`pcm` with white noise at `snr_db`, padded with 0.3 s of the noise either side."""
    rng = np.random.default_rng(seed)
    signal = pcm.astype(np.float64)
    sigma = np.sqrt(np.mean(signal**2) / 10 ** (snr_db / 10))
    pad = np.zeros(int(0.3 * RATE))
    padded = np.concatenate((pad, signal, pad))
    return np.clip(padded + rng.normal(0, sigma, len(padded)), -32768, 32767).astype(np.int16)


@pytest.mark.parametrize("modem", [V23, BELL202], ids=lambda m: m.name)
@pytest.mark.parametrize("seed", range(5))
def test_library_decodes_at_20_db_snr(modem: FskModem, seed: int) -> None:
    noisy = with_noise(fsk_callerid(MESSAGE, modem), 20.0, seed)
    assert decode_fsk(noisy, modem) == MESSAGE


def test_library_decodes_sdmf_and_quiet_signals() -> None:
    sdmf = CallerIdMessage(number="2125551234", when="01011230", sdmf=True)
    assert decode_fsk(fsk_callerid(sdmf, BELL202), BELL202) == sdmf
    quiet = fsk_callerid(MESSAGE, V23, level_dbm0=-35.0)
    assert decode_fsk(quiet, V23) == MESSAGE


def framed_bits(frame: bytes) -> list[int]:
    """Start bit, eight data bits LSB first, stop bit (written here, not the library's)."""
    return [b for byte in frame for b in [0, *((byte >> i) & 1 for i in range(8)), 1]]


def test_corrupted_checksum_is_rejected() -> None:
    frame = bytearray(bytes(MESSAGE))
    frame[10] ^= 0x01  # one bit of the number flipped; the checksum no longer matches
    bits = [i & 1 for i in range(300)] + [1] * 180 + framed_bits(bytes(frame)) + [1, 1]
    pcm = modulate(V23, bits)
    assert receive_bytes(pcm, V23.mark_hz, V23.space_hz)[: len(frame)] == bytes(frame)
    with pytest.raises(CallerIdError, match="caller-ID checksum mismatch"):
        decode_fsk(pcm, V23)


def test_silence_noise_and_speechlike_sound_give_no_frame() -> None:
    rng = np.random.default_rng(5)
    noise = rng.normal(0, 3000, 2 * RATE).astype(np.int16)
    n = np.arange(2 * RATE)
    buzz = sum(np.sin(2 * np.pi * 150 * k * n / RATE) / k for k in range(1, 30))
    for pcm in (np.zeros(RATE, np.int16), noise, (3000 * np.asarray(buzz)).astype(np.int16)):
        for modem in (V23, BELL202):
            with pytest.raises(CallerIdError):
                decode_fsk(pcm, modem)
    with pytest.raises(CallerIdError, match="no Bell 202 caller-ID frame found"):
        decode_fsk(np.zeros(RATE, np.int16), BELL202)


def test_a_bell_receiver_also_reads_v23() -> None:
    """The tones are 100 Hz apart; a receiver comparing their power reads either, as many
    telephones do, which lets an FXO port decode a line whatever standard it sends."""
    assert decode_fsk(fsk_callerid(MESSAGE, V23), BELL202) == MESSAGE


# --- DTMF caller ID -------------------------------------------------------------------------------

LOW, HIGH = (697, 770, 852, 941), (1209, 1336, 1477, 1633)
KEYS = ("123A", "456B", "789C", "*0#D")


def dtmf_by_fft(pcm: npt.NDArray[np.int16]) -> str:
    """Digits from bursts of energy, each named by its strongest low and high FFT bins."""
    blocks = pcm[: len(pcm) // 40 * 40].astype(np.float64).reshape(-1, 40)
    on = np.sqrt((blocks**2).mean(axis=1)) > 300
    digits = []
    edges = np.flatnonzero(np.diff(np.concatenate(([0], on.astype(int), [0]))))
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        burst = pcm[start * 40 : end * 40].astype(np.float64)
        spectrum = np.abs(np.fft.rfft(burst * np.hanning(len(burst)), n=RATE))
        low = max(LOW, key=lambda f: spectrum[f - 5 : f + 6].max())
        high = max(HIGH, key=lambda f: spectrum[f - 5 : f + 6].max())
        digits.append(KEYS[LOW.index(low)][HIGH.index(high)])
    return "".join(digits)


def test_dtmf_callerid_sends_a_number_c() -> None:
    pcm = dtmf_callerid(CallerIdMessage(number="89161234567"))
    assert dtmf_by_fft(pcm) == "A89161234567C"
    assert len(pcm) == 13 * (70 + 70) * 8  # 70 ms on, 70 ms off per digit


def test_dtmf_callerid_absent_number() -> None:
    assert dtmf_by_fft(dtmf_callerid(CallerIdMessage(number_absent="P"))) == "B10C"
    assert dtmf_by_fft(dtmf_callerid(CallerIdMessage(number_absent="O"))) == "B00C"


@pytest.mark.parametrize("seed", range(3))
def test_library_decodes_dtmf_callerid_with_noise(seed: int) -> None:
    noisy = with_noise(dtmf_callerid(CallerIdMessage(number="4951234567")), 20.0, seed)
    assert decode_dtmf(noisy) == CallerIdMessage(number="4951234567")
    private = with_noise(dtmf_callerid(CallerIdMessage(number_absent="P")), 20.0, seed)
    assert decode_dtmf(private) == CallerIdMessage(number_absent="P")


def test_danish_style_d_number_hash() -> None:
    pcm = dtmf_callerid(CallerIdMessage(number="33123456"), start="D", end="#")
    assert dtmf_by_fft(pcm) == "D33123456#"
    assert decode_dtmf(pcm) == CallerIdMessage(number="33123456")


@pytest.mark.parametrize(
    ("digits", "expected"),
    [
        ("A4951234567C", CallerIdMessage(number="4951234567")),
        ("5A4951234567C", CallerIdMessage(number="4951234567")),  # a stray digit before
        ("A4951234567#", CallerIdMessage(number="4951234567")),
        ("D4951234567C", CallerIdMessage(number="4951234567")),
        ("B00C", CallerIdMessage(number_absent="O")),
        ("B10C", CallerIdMessage(number_absent="P")),
        ("D1#", CallerIdMessage(number_absent="P")),
        ("D3#", CallerIdMessage(number_absent="O")),
    ],
)
def test_parse_dtmf_variants(digits: str, expected: CallerIdMessage) -> None:
    assert parse_dtmf(digits) == expected


@pytest.mark.parametrize("digits", ["", "A", "AC", "A12", "12345C", "A12*4C", "B1C"])
def test_parse_dtmf_refuses(digits: str) -> None:
    with pytest.raises(CallerIdError, match=r"no DTMF caller ID in the digits"):
        parse_dtmf(digits)


def test_no_dtmf_callerid_in_silence() -> None:
    with pytest.raises(CallerIdError, match="no DTMF caller ID in the digits ''"):
        decode_dtmf(np.zeros(8000, np.int16))


# --- where it goes relative to the ring ----------------------------------------------------------


def test_timing_per_standard() -> None:
    etsi = TIMING[CallerIdStandard.ETSI_FSK]
    assert etsi.before_ring and etsi.alert_hz == (2130.0, 2750.0) and etsi.alert_s == 0.1
    assert 0.045 <= etsi.alert_to_data_s <= 0.5 and etsi.after_data >= 0.2
    bell = TIMING[CallerIdStandard.BELL202]
    assert not bell.before_ring and bell.after_ring >= 0.5 and bell.after_data >= 0.2
    assert TIMING[CallerIdStandard.DTMF].before_ring


def test_etsi_signal_starts_with_the_dual_tone_alert() -> None:
    pcm = callerid_signal(CallerIdStandard.ETSI_FSK, MESSAGE)
    alert = pcm[:800].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(alert, n=RATE))
    top = sorted(np.argsort(spectrum)[-2:].tolist())
    assert top == [2130, 2750]
    assert not pcm[800:1600].any()  # 100 ms of silence before the data
    assert decode_fsk(pcm, V23) == MESSAGE
    assert decode_fsk(callerid_signal(CallerIdStandard.BELL202, MESSAGE), BELL202) == MESSAGE
    assert decode_dtmf(callerid_signal(CallerIdStandard.DTMF, MESSAGE)).number == MESSAGE.number
    with pytest.raises(CallerIdError, match="no caller-ID signal for standard 'none'"):
        callerid_signal(CallerIdStandard.NONE, MESSAGE)


def frames_of(pcm: npt.NDArray[np.int16], size: int = 160) -> list[bytes]:
    data = pcm.astype("<i2").tobytes()
    return [data[at : at + 2 * size] for at in range(0, len(data), 2 * size)]


@pytest.mark.parametrize(
    "standard", [CallerIdStandard.ETSI_FSK, CallerIdStandard.BELL202, CallerIdStandard.DTMF]
)
def test_receiver_on_an_fxo_line(standard: CallerIdStandard) -> None:
    """Line audio in 20 ms frames: noise, the caller ID as the standard sends it, noise; the
    receiver gives the message once, soon after the data ends, and keeps it."""
    signal = with_noise(callerid_signal(standard, MESSAGE), 30.0, seed=2)
    frames = frames_of(np.concatenate((signal, np.zeros(RATE, np.int16))))
    receiver = CallerIdReceiver()
    results = [receiver.feed(frame) for frame in frames]
    first = next(i for i, result in enumerate(results) if result is not None)
    assert (first + 1) * 160 <= len(signal) + 0.2 * RATE  # within 200 ms of the end of data
    expected = (
        MESSAGE if standard is not CallerIdStandard.DTMF else CallerIdMessage(number=MESSAGE.number)
    )
    assert results[first] == expected and all(r == expected for r in results[first:])


def test_receiver_hears_nothing_in_speechlike_sound() -> None:
    n = np.arange(10 * RATE)
    buzz = sum(np.sin(2 * np.pi * 140 * k * n / RATE) / k for k in range(1, 30))
    syllables = (np.sin(2 * np.pi * 3 * n / RATE) > 0).astype(float)
    receiver = CallerIdReceiver()
    pcm = (2000 * np.asarray(buzz) * syllables).astype(np.int16)
    assert all(receiver.feed(frame) is None for frame in frames_of(pcm))


@pytest.mark.parametrize("level_db", [0.0, -27.0])  # the sender's level, loud and near -30 dBm0
def test_the_receiver_reads_dtmf_caller_id_after_a_long_silence(level_db: float) -> None:
    """An idle line is silent for hours and the receiver skips the DTMF detector in silence:
    the caller ID after 30 s of it, at any level DTMF is sent at, is still read whole."""
    signal = dtmf_callerid(CallerIdMessage(number="4951234567")).astype(np.float64)
    signal = (signal * 10 ** (level_db / 20)).astype(np.int16)
    audio = np.concatenate([np.zeros(30 * RATE, np.int16), signal, np.zeros(RATE, np.int16)])
    receiver = CallerIdReceiver()
    got = None
    for at in range(0, len(audio), 160):
        got = receiver.feed(audio[at : at + 160].astype("<i2").tobytes()) or got
    assert got == CallerIdMessage(number="4951234567")
