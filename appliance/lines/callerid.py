"""Caller ID on an analog line: generated for the handset on an FXS port, decoded from the city
line on an FXO port. Three standards: ETSI EN 300 659 (V.23 FSK, 1300/2100 Hz), Bell 202 FSK
(1200/2200 Hz, SDMF and MDMF, as Telcordia GR-30 sends it after the first ring) and DTMF caller
ID ("DTMF CLIP" as used in Russia and the Nordic countries: `A<number>C`).

The message is a value that round-trips: `CallerIdMessage.parse(frame)` and `bytes(message)`,
checksum included. Modulation and demodulation work on 16-bit PCM at 8 kHz (numpy).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from appliance.media.dtmf import InbandDtmfDetector, dtmf_tone

__all__ = [
    "BELL202",
    "TIMING",
    "V23",
    "CallerIdError",
    "CallerIdMessage",
    "CallerIdReceiver",
    "CallerIdStandard",
    "CallerIdTiming",
    "FskModem",
    "callerid_signal",
    "decode_dtmf",
    "decode_fsk",
    "demodulate",
    "dtmf_callerid",
    "fsk_callerid",
    "modulate",
    "parse_dtmf",
]

SAMPLE_RATE = 8000


class CallerIdStandard(enum.StrEnum):
    """How caller ID is sent to a handset or expected from the line."""

    ETSI_FSK = "etsi-fsk"
    """ETSI EN 300 659-1/-3: V.23 FSK, MDMF."""
    BELL202 = "bell202"
    """Telcordia GR-30-CORE: Bell 202 FSK, MDMF (SDMF decoded too)."""
    DTMF = "dtmf"
    """DTMF CLIP (RU, Nordic): `A<number>C` before the first ring."""
    NONE = "none"


class CallerIdError(ValueError):
    """A caller-ID frame that is truncated, of an unknown type, or fails its checksum; or a
    signal in which no frame was found. `str()` is the reason."""


@dataclass(frozen=True, slots=True)
class CallerIdTiming:
    """When caller ID goes out relative to ringing, in seconds.

    `before_ring`: the data is sent before the first ring (after the alerting signal, if any),
    and the first ring starts `after_data` later. Otherwise it is sent in the first silent
    interval, `after_ring` after the end of the first ring.
    """

    before_ring: bool
    alert_hz: tuple[float, ...] = ()
    """The dual-tone alerting signal (DT-AS, EN 300 659-1 §6.1.1: 2130 + 2750 Hz), if any."""
    alert_s: float = 0.0
    alert_to_data_s: float = 0.0
    after_ring: float = 0.0
    after_data: float = 0.0


TIMING = {
    CallerIdStandard.ETSI_FSK: CallerIdTiming(
        before_ring=True, alert_hz=(2130.0, 2750.0), alert_s=0.1, alert_to_data_s=0.1,
        after_data=0.3,
    ),  # EN 300 659-1 §6.1.1: DT-AS 100 ms, FSK 45-500 ms later, ring >= 200 ms after it
    CallerIdStandard.BELL202: CallerIdTiming(before_ring=False, after_ring=0.5, after_data=0.2),
    # GR-30: FSK starts >= 500 ms after the first ring ends, ends >= 200 ms before the next.
    CallerIdStandard.DTMF: CallerIdTiming(before_ring=True, after_data=0.3),
}  # fmt: skip
"""The timing each standard uses relative to the ring cadence."""


# --- the message (EN 300 659-3 §5, GR-30 §5.3) -------------------------------------------------

MDMF = 0x80
"""Multiple data message format (ETSI "call set-up" message; Bell MDMF)."""
SDMF = 0x04
"""Bell single data message format: date/time then the number, no parameter headers."""
P_DATETIME, P_NUMBER, P_NO_NUMBER, P_NAME, P_NO_NAME = 0x01, 0x02, 0x04, 0x07, 0x08
PRIVATE, UNAVAILABLE = "P", "O"
"""The reasons for absence of a number or name: private (withheld), out of area."""


@dataclass(frozen=True, slots=True)
class CallerIdMessage:
    """The call set-up message: date and time (`MMDDHHMM`), the caller's number or the reason
    it is absent, the name or the reason it is absent. `sdmf` selects Bell's single format,
    which carries no name."""

    number: str = ""
    name: str = ""
    when: str = ""
    number_absent: str = ""
    name_absent: str = ""
    sdmf: bool = False

    @classmethod
    def of(cls, number: str, name: str = "", when: datetime | None = None) -> CallerIdMessage:
        stamp = when.strftime("%m%d%H%M") if when is not None else ""
        return cls(number=number, name=name, when=stamp,
                   number_absent="" if number else UNAVAILABLE)  # fmt: skip

    def __bytes__(self) -> bytes:
        if self.sdmf:
            body = (self.when or "01010000").encode("latin-1") + (
                self.number or self.number_absent or UNAVAILABLE
            ).encode("latin-1")
            return _checked(bytes((SDMF, len(body))) + body)
        body = b""
        for kind, text in (
            (P_DATETIME, self.when), (P_NUMBER, self.number), (P_NO_NUMBER, self.number_absent),
            (P_NAME, self.name), (P_NO_NAME, self.name_absent),
        ):  # fmt: skip
            if text:
                data = text.encode("latin-1")
                if len(data) > 255:
                    raise CallerIdError(f"parameter {kind} is {len(data)} bytes, at most 255")
                body += bytes((kind, len(data))) + data
        if len(body) > 255:
            raise CallerIdError(f"message body is {len(body)} bytes, at most 255")
        return _checked(bytes((MDMF, len(body))) + body)

    @classmethod
    def parse(cls, data: bytes) -> CallerIdMessage:
        """The message in `data` (type, length, body, checksum; trailing bytes ignored)."""
        if len(data) < 3:
            raise CallerIdError(f"caller-ID frame is {len(data)} bytes, at least 3 expected")
        kind, length = data[0], data[1]
        if kind not in (MDMF, SDMF):
            raise CallerIdError(f"unknown caller-ID message type 0x{kind:02x}")
        if len(data) < length + 3:
            raise CallerIdError(f"caller-ID frame truncated: {len(data)} of {length + 3} bytes")
        frame = data[: length + 3]
        if sum(frame) & 0xFF:
            raise CallerIdError("caller-ID checksum mismatch")
        body = frame[2:-1]
        if kind == SDMF:
            if len(body) < 8:
                raise CallerIdError("SDMF message shorter than its date and time")
            text = body.decode("latin-1")
            rest = text[8:]
            absent = rest if rest in (PRIVATE, UNAVAILABLE) else ""
            return cls(number="" if absent else rest, when=text[:8], number_absent=absent,
                       sdmf=True)  # fmt: skip
        fields: dict[int, str] = {}
        at = 0
        while at < len(body):
            if at + 2 > len(body) or at + 2 + body[at + 1] > len(body):
                raise CallerIdError(f"parameter at byte {at + 2} overruns the message")
            size = body[at + 1]
            fields[body[at]] = body[at + 2 : at + 2 + size].decode("latin-1")
            at += 2 + size
        return cls(
            number=fields.get(P_NUMBER, ""), name=fields.get(P_NAME, ""),
            when=fields.get(P_DATETIME, ""), number_absent=fields.get(P_NO_NUMBER, ""),
            name_absent=fields.get(P_NO_NAME, ""),
        )  # fmt: skip


def _checked(frame: bytes) -> bytes:
    """The frame with its checksum: the two's complement of the byte sum, modulo 256."""
    return frame + bytes(((-sum(frame)) & 0xFF,))


# --- FSK ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FskModem:
    """A binary FSK modem: `mark` is a 1 bit, `space` a 0 bit."""

    name: str
    mark_hz: float
    space_hz: float
    baud: float = 1200.0
    seizure_bits: int = 300
    """The channel seizure: alternating 0 and 1 (EN 300 659-1 §6.2: 300 bits)."""
    mark_bits: int = 180
    """The mark signal that precedes the message (150 +/- 25 bits ETSI; 180 Bell)."""


V23 = FskModem("V.23", mark_hz=1300.0, space_hz=2100.0)
BELL202 = FskModem("Bell 202", mark_hz=1200.0, space_hz=2200.0, mark_bits=180)

DBM0_PEAK = 32767 * 10 ** (-3.17 / 20)
"""The peak of a 0 dBm0 sine in 16-bit PCM (G.711: full scale is +3.17 dBm0)."""


def _bits(frame: bytes) -> list[int]:
    """Asynchronous framing: a start bit (0), eight data bits LSB first, a stop bit (1)."""
    bits = []
    for byte in frame:
        bits.append(0)
        bits.extend((byte >> i) & 1 for i in range(8))
        bits.append(1)
    return bits


def modulate(modem: FskModem, bits: list[int], level_dbm0: float = -13.0) -> npt.NDArray[np.int16]:
    """Continuous-phase FSK of `bits` at 8 kHz."""
    per_bit = SAMPLE_RATE / modem.baud
    count = math.ceil(len(bits) * per_bit)
    index = np.minimum((np.arange(count) / per_bit).astype(np.int64), len(bits) - 1)
    freq = np.where(np.asarray(bits, dtype=np.int8)[index] == 1, modem.mark_hz, modem.space_hz)
    phase = 2 * np.pi * np.cumsum(freq) / SAMPLE_RATE
    peak = DBM0_PEAK * 10 ** (level_dbm0 / 20)
    return np.round(peak * np.sin(phase)).astype(np.int16)


def fsk_callerid(
    message: CallerIdMessage, modem: FskModem = V23, level_dbm0: float = -13.0
) -> npt.NDArray[np.int16]:
    """The whole FSK transmission: channel seizure, mark, the message, two stop marks."""
    seizure = [i & 1 for i in range(modem.seizure_bits)]
    bits = seizure + [1] * modem.mark_bits + _bits(bytes(message)) + [1, 1]
    return modulate(modem, bits, level_dbm0)


def _envelope(signal: npt.NDArray[np.float64], hz: float, width: int) -> npt.NDArray[np.float64]:
    """The power near `hz`: the signal mixed down by `hz`, averaged over `width` samples."""
    n = np.arange(len(signal))
    mixed = signal * np.exp(-2j * np.pi * hz * n / SAMPLE_RATE)
    kernel = np.ones(width) / width
    averaged = np.convolve(mixed, kernel, mode="same")
    return np.asarray(np.abs(averaged) ** 2, dtype=np.float64)


def demodulate(modem: FskModem, pcm: npt.NDArray[np.int16]) -> list[bytes]:
    """Every run of asynchronously framed bytes in `pcm`, one `bytes` per run of bytes that
    follow each other without a gap of mark; the seizure's alternating bits come out as 0x55
    bytes in some run and are left to `decode_fsk` to skip."""
    signal = pcm.astype(np.float64)
    per_bit = SAMPLE_RATE / modem.baud
    width = max(2, round(per_bit))
    soft = _envelope(signal, modem.mark_hz, width) - _envelope(signal, modem.space_hz, width)
    level = _envelope(signal, modem.mark_hz, width) + _envelope(signal, modem.space_hz, width)
    loud = level > 1e-3 * float(np.max(level)) if len(level) else level > 0
    mark = soft > 0
    runs: list[bytes] = []
    current = bytearray()
    last_stop = 0
    at = 1
    end = len(mark) - math.ceil(10 * per_bit)
    while at < end:
        # A start bit: mark then space, where there is signal.
        if not (mark[at - 1] and not mark[at] and loud[at]):
            at += 1
            continue
        centre = at + per_bit / 2
        if mark[round(centre)]:
            at += 1
            continue  # a glitch, not a start bit
        bits = [int(mark[round(centre + k * per_bit)]) for k in range(1, 10)]
        if bits[8] != 1:
            at += 1  # no stop bit: a framing error; look for the next start
            if current:
                runs.append(bytes(current))
                current = bytearray()
            continue
        byte = sum(bit << i for i, bit in enumerate(bits[:8]))
        stop = round(centre + 9 * per_bit)
        # A byte that follows the previous one's stop bit directly belongs to the same run.
        if current and at - last_stop > 12 * per_bit:
            runs.append(bytes(current))
            current = bytearray()
        current.append(byte)
        last_stop = stop
        at = stop + 1
    if current:
        runs.append(bytes(current))
    return runs


def decode_fsk(pcm: npt.NDArray[np.int16], modem: FskModem = V23) -> CallerIdMessage:
    """The caller-ID message in a stretch of line audio, checksum verified."""
    reasons = []
    for run in demodulate(modem, pcm):
        for start, byte in enumerate(run):
            if byte not in (MDMF, SDMF):
                continue
            try:
                return CallerIdMessage.parse(run[start:])
            except CallerIdError as error:
                reasons.append(str(error))
    raise CallerIdError(reasons[-1] if reasons else f"no {modem.name} caller-ID frame found")


# --- DTMF caller ID -----------------------------------------------------------------------------

DTMF_ON_MS = 70
DTMF_OFF_MS = 70
"""Each digit 70 ms and 70 ms apart (DTMF CLIP: 50-70 ms tone, at least 50 ms pause)."""
DTMF_ABSENT = {UNAVAILABLE: "00", PRIVATE: "10"}
"""The information codes sent as `B<code>C` when the number is absent."""


def dtmf_callerid(
    message: CallerIdMessage, amplitude: float = 0.3, start: str = "A", end: str = "C"
) -> npt.NDArray[np.int16]:
    """`A<number>C`, or `B00C` (unavailable) / `B10C` (private) when there is no number. Some
    networks (Denmark, Brazil, India) start with `D` and end with `#`: `start`, `end`."""
    if message.number:
        text = f"{start}{message.number}{end}"
    else:
        text = f"B{DTMF_ABSENT.get(message.number_absent or UNAVAILABLE, '00')}C"
    pause = b"\x00\x00" * (SAMPLE_RATE * DTMF_OFF_MS // 1000)
    pcm = b"".join(dtmf_tone(digit, DTMF_ON_MS, SAMPLE_RATE, amplitude) + pause for digit in text)
    return np.frombuffer(pcm, dtype="<i2").astype(np.int16)


DTMF_DANISH_ABSENT = {"1": PRIVATE, "2": UNAVAILABLE, "3": UNAVAILABLE}
"""Denmark's `D<code>#` information digits for an absent number."""


def parse_dtmf(digits: str) -> CallerIdMessage:
    """The caller ID in a string of DTMF digits as the line sent them: `A<number>C` or
    `D<number>C` (`#` may end either), `B00C` / `B10C`, or Denmark's `D1#` / `D2#` / `D3#`."""
    for at, first in enumerate(digits):
        rest = digits[at + 1 :]
        if first == "B" and len(rest) >= 3 and rest[2] in "C#" and rest[:2].isdigit():
            reasons = {code: reason for reason, code in DTMF_ABSENT.items()}
            return CallerIdMessage(number_absent=reasons.get(rest[:2], UNAVAILABLE))
        if first == "D" and len(rest) >= 2 and rest[0] in DTMF_DANISH_ABSENT and rest[1] == "#":
            return CallerIdMessage(number_absent=DTMF_DANISH_ABSENT[rest[0]])
        if first in "AD":
            ends = [i for i in (rest.find("C"), rest.find("#")) if i >= 0]
            if ends and min(ends) > 0 and rest[: min(ends)].isdigit():
                return CallerIdMessage(number=rest[: min(ends)])
    raise CallerIdError(f"no DTMF caller ID in the digits {digits!r}")


def decode_dtmf(pcm: npt.NDArray[np.int16]) -> CallerIdMessage:
    """The caller ID in DTMF digits heard on the line (see `parse_dtmf`)."""
    return parse_dtmf("".join(InbandDtmfDetector(SAMPLE_RATE).feed(pcm.astype("<i2").tobytes())))


def callerid_signal(standard: CallerIdStandard, message: CallerIdMessage) -> npt.NDArray[np.int16]:
    """What an FXS port plays to the handset for `message`, from the alerting signal (if the
    standard has one) to the end of the data; `TIMING[standard]` says where it goes relative
    to the ring cadence."""
    timing = TIMING.get(standard)
    if timing is None:
        raise CallerIdError(f"no caller-ID signal for standard {standard.value!r}")
    parts: list[npt.NDArray[np.int16]] = []
    if timing.alert_hz:
        n = np.arange(round(timing.alert_s * SAMPLE_RATE))
        peak = DBM0_PEAK * 10 ** (-13.0 / 20)  # EN 300 659-1: each tone -20..-5 dBV nominal
        alert = sum(np.sin(2 * np.pi * hz * n / SAMPLE_RATE) for hz in timing.alert_hz)
        parts.append(np.round(peak * np.asarray(alert)).astype(np.int16))
        parts.append(np.zeros(round(timing.alert_to_data_s * SAMPLE_RATE), np.int16))
    if standard is CallerIdStandard.DTMF:
        parts.append(dtmf_callerid(message))
    else:
        parts.append(
            fsk_callerid(message, BELL202 if standard is CallerIdStandard.BELL202 else V23)
        )
    return np.concatenate(parts)


class CallerIdReceiver:
    """Caller ID from an FXO line's audio fed as it arrives (20 ms frames, any size): FSK of
    either modem or DTMF digits, whichever the line sends. The port feeds it from the first
    ring (or the polarity reversal) until it returns a message or the call is answered.

    FSK is decoded when a burst of signal ends (a quiet 100 ms after at least 200 ms of
    signal), over at most the last `MAX_SECONDS`; DTMF digits are detected as they come.
    """

    MAX_SECONDS = 4.0
    QUIET_DBM0 = -45.0
    DTMF_AFTER_QUIET_S = 0.3
    """How long the DTMF detector still hears the quiet after signal (a digit's end needs
    Q.24's 40 ms pause and the detector's window)."""

    def __init__(self) -> None:
        self._dtmf = InbandDtmfDetector(SAMPLE_RATE)
        self._digits = ""
        self._frames: list[npt.NDArray[np.int16]] = []
        self._loud = 0  # samples of signal in the current burst
        self._quiet = 0  # samples of quiet since it
        self._kept = 0  # samples in _frames
        self._quiet_power = (DBM0_PEAK * 10 ** (self.QUIET_DBM0 / 20)) ** 2 / 2
        self.message: CallerIdMessage | None = None

    def feed(self, pcm: bytes) -> CallerIdMessage | None:
        """The message, once one has been received (it stays), or None."""
        if self.message is not None:
            return self.message
        samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.int16)
        if not len(samples):
            return None
        power = float(np.mean(samples.astype(np.float64) ** 2))
        # An idle line is quiet nearly always: the DTMF detector (most of an idle port's CPU)
        # hears every frame with signal and the quiet after it, enough to end a digit, but not
        # the long silence between calls.
        if power >= self._quiet_power or self._quiet < self.DTMF_AFTER_QUIET_S * SAMPLE_RATE:
            self._digits += "".join(self._dtmf.feed(pcm))
        if self._digits:
            try:
                self.message = parse_dtmf(self._digits)
                return self.message
            except CallerIdError:
                self._digits = self._digits[-32:]
        self._frames.append(samples)
        self._kept += len(samples)
        while self._kept - len(self._frames[0]) >= self.MAX_SECONDS * SAMPLE_RATE:
            self._kept -= len(self._frames.pop(0))
        if power >= self._quiet_power:
            self._loud += len(samples)
            self._quiet = 0
            return None
        self._quiet += len(samples)
        if self._loud >= 0.2 * SAMPLE_RATE and self._quiet >= 0.1 * SAMPLE_RATE:
            self._loud = 0
            audio = np.concatenate(self._frames)
            for modem in (V23, BELL202):
                try:
                    self.message = decode_fsk(audio, modem)
                    return self.message
                except CallerIdError:
                    continue
        return None
