"""The line protocol between the box and a line-interface board (`hw/PROTOCOL.md`, version 1):
messages as dataclasses that round-trip, frames with CRC-16/CCITT-FALSE and COBS, and a
streaming reader that drops corrupt or partial frames, counts them and resynchronises.

Wire format of one frame: ``0x00 COBS(len seq type payload crc_hi crc_lo) 0x00``. COBS removes
every zero byte from the frame, so 0x00 only ever delimits: a reader that joins mid-frame, or
meets garbage, waits for the next zero and starts again.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar

__all__ = [
    "FXO",
    "FXS",
    "MAX_PAYLOAD",
    "PROTOCOL_VERSION",
    "STATUS_LED",
    "Ack",
    "BoardFault",
    "Capabilities",
    "Command",
    "Event",
    "Flash",
    "Frame",
    "FrameReader",
    "Heartbeat",
    "Hello",
    "HookFlash",
    "Led",
    "LedMode",
    "LoopDrop",
    "Message",
    "Nak",
    "NakReason",
    "OffHook",
    "OnHook",
    "Polarity",
    "PolarityReversal",
    "ProtocolError",
    "PulseDigit",
    "Release",
    "Reset",
    "Ring",
    "RingStart",
    "RingStop",
    "Seize",
    "StopRing",
    "cobs_decode",
    "cobs_encode",
    "crc16",
    "decode_message",
    "encode",
]

PROTOCOL_VERSION = 1
MAX_PAYLOAD = 250
"""The longest payload a frame carries (its length is one byte; 250 leaves room to spare)."""
FXS = 1
"""Port kind in `Capabilities`: a station port (a handset plugs in)."""
FXO = 2
"""Port kind in `Capabilities`: an office port (the city line plugs in)."""
STATUS_LED = 0
"""`Led.led` for the board's status LED; 1..n are the ports' LEDs."""
_MAX_FRAME = 2 + 3 + MAX_PAYLOAD + 2 + 4
"""The longest COBS chunk a reader keeps before it gives up waiting for a delimiter."""


class ProtocolError(Exception):
    """A frame whose checksum is right but whose content is not a message of this version."""


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection): cheap on any MCU and it
    detects every error of up to three bits in frames this short."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        crc &= 0xFFFF
    return crc


def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing (Cheshire and Baker, 1999): no zero byte in the
    result, at most one byte of overhead per 254."""
    out = bytearray()
    block = bytearray()
    for byte in data:
        if byte == 0:
            out.append(len(block) + 1)
            out += block
            block.clear()
        else:
            block.append(byte)
            if len(block) == 254:
                out.append(255)
                out += block
                block.clear()
    out.append(len(block) + 1)
    out += block
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    """The inverse of `cobs_encode`; raises `ValueError` on a chunk it could not have made, so
    only canonical encodings are accepted."""
    out = bytearray()
    i = 0
    while i < len(data):
        code = data[i]
        if code == 0:
            raise ValueError("zero in a COBS chunk")
        block = data[i + 1 : i + code]
        if len(block) != code - 1 or 0 in block:
            raise ValueError("truncated COBS block")
        out += block
        i += code
        if code != 255 and i < len(data):
            out.append(0)
    if cobs_encode(bytes(out)) != data:
        raise ValueError("non-canonical COBS")
    return bytes(out)


class LedMode(IntEnum):
    OFF = 0
    ON = 1
    BLINK = 2


class NakReason(IntEnum):
    UNKNOWN_TYPE = 1
    BAD_PAYLOAD = 2
    BAD_PORT = 3
    WRONG_KIND = 4
    """The command does not apply to that port's kind (ring on an FXO port, seize on FXS)."""
    BUSY = 5


@dataclass(frozen=True)
class Message:
    """A message of the protocol; subclasses define `TYPE` and their payload layout."""

    TYPE: ClassVar[int] = -1
    NEEDS_ACK: ClassVar[bool] = False
    """Whether the receiver answers with `Ack`/`Nak` and the sender retransmits until then."""

    def payload(self) -> bytes:
        return b""

    @classmethod
    def parse(cls, payload: bytes) -> Message:
        if payload:
            raise ProtocolError(f"{cls.__name__}: unexpected payload of {len(payload)} bytes")
        return cls()


@dataclass(frozen=True)
class _PortMessage(Message):
    """A message about one port: its payload is the port number (1..255)."""

    port: int

    def payload(self) -> bytes:
        return bytes([_u8(self.port, "port", low=1)])

    @classmethod
    def parse(cls, payload: bytes) -> Message:
        (port,) = _unpack(cls, ">B", payload)
        if port == 0:
            raise ProtocolError(f"{cls.__name__}: port 0")
        return cls(port)


@dataclass(frozen=True)
class _PortDuration(Message):
    """A port number and a duration in milliseconds (u16)."""

    port: int
    duration_ms: int

    def payload(self) -> bytes:
        return struct.pack(">BH", _u8(self.port, "port", low=1), _u16(self.duration_ms))

    @classmethod
    def parse(cls, payload: bytes) -> Message:
        port, duration = _unpack(cls, ">BH", payload)
        if port == 0:
            raise ProtocolError(f"{cls.__name__}: port 0")
        return cls(port, duration)


# -- link management ------------------------------------------------------------------------


@dataclass(frozen=True)
class Hello(Message):
    """Host to board: opens (or re-opens) the session; the board answers `Capabilities`."""

    TYPE: ClassVar[int] = 0x01
    version: int = PROTOCOL_VERSION

    def payload(self) -> bytes:
        return bytes([_u8(self.version, "version")])

    @classmethod
    def parse(cls, payload: bytes) -> Message:
        (version,) = _unpack(cls, ">B", payload)
        return cls(version)


@dataclass(frozen=True)
class Capabilities(Message):
    """Board to host, the answer to `Hello`: what the board is and which ports it has."""

    TYPE: ClassVar[int] = 0x02
    version: int
    model: str
    firmware: str
    ports: tuple[int, ...]
    """The kind (`FXS` or `FXO`) of ports 1..n, in order."""

    def payload(self) -> bytes:
        model = self.model.encode()
        firmware = self.firmware.encode()
        if len(model) > 32 or len(firmware) > 32 or len(self.ports) > 32:
            raise ValueError("model, firmware and ports are 32 at most")
        for kind in self.ports:
            if kind not in (FXS, FXO):
                raise ValueError(f"port kind {kind}")
        return (
            bytes([_u8(self.version, "version"), len(model)])
            + model
            + bytes([len(firmware)])
            + firmware
            + bytes([len(self.ports), *self.ports])
        )

    @classmethod
    def parse(cls, payload: bytes) -> Message:
        try:
            version = payload[0]
            model, rest = _text(payload[1:])
            firmware, rest = _text(rest)
            count = rest[0]
        except IndexError:
            raise ProtocolError("Capabilities: truncated") from None
        kinds = rest[1:]
        if len(model.encode()) > 32 or len(firmware.encode()) > 32 or count > 32:
            raise ProtocolError("Capabilities: model, firmware and ports are 32 at most")
        if len(kinds) != count:
            raise ProtocolError(f"Capabilities: {count} ports announced, {len(kinds)} given")
        if any(kind not in (FXS, FXO) for kind in kinds):
            raise ProtocolError("Capabilities: unknown port kind")
        return cls(version, model, firmware, tuple(kinds))


@dataclass(frozen=True)
class Heartbeat(Message):
    """Either way, once a second; a side that hears nothing for 3 s declares the link down."""

    TYPE: ClassVar[int] = 0x03


@dataclass(frozen=True)
class Ack(Message):
    """The receiver took the message with sequence number `seq`."""

    TYPE: ClassVar[int] = 0x04
    seq: int

    def payload(self) -> bytes:
        return bytes([_u8(self.seq, "seq")])

    @classmethod
    def parse(cls, payload: bytes) -> Message:
        (seq,) = _unpack(cls, ">B", payload)
        return cls(seq)


@dataclass(frozen=True)
class Nak(Message):
    """The receiver refused the message with sequence number `seq`; it is not retransmitted."""

    TYPE: ClassVar[int] = 0x05
    seq: int
    reason: NakReason

    def payload(self) -> bytes:
        return bytes([_u8(self.seq, "seq"), int(self.reason)])

    @classmethod
    def parse(cls, payload: bytes) -> Message:
        seq, reason = _unpack(cls, ">BB", payload)
        try:
            return cls(seq, NakReason(reason))
        except ValueError:
            raise ProtocolError(f"Nak: unknown reason {reason}") from None


# -- events (board to host) -------------------------------------------------------------------


class Event:
    """Marks the messages the board sends about its lines; each is acknowledged by the host."""


@dataclass(frozen=True)
class OffHook(_PortMessage, Event):
    TYPE: ClassVar[int] = 0x20
    NEEDS_ACK: ClassVar[bool] = True


@dataclass(frozen=True)
class OnHook(_PortMessage, Event):
    TYPE: ClassVar[int] = 0x21
    NEEDS_ACK: ClassVar[bool] = True


@dataclass(frozen=True)
class Flash(_PortDuration, Event):
    """An FXS hook flash: on-hook for `duration_ms`, shorter than the board's hang-up time;
    the host classifies it against the country's window."""

    TYPE: ClassVar[int] = 0x22
    NEEDS_ACK: ClassVar[bool] = True


@dataclass(frozen=True)
class PulseDigit(Message, Event):
    """A digit the board counted from loop breaks on an FXS port (10 breaks = digit 0)."""

    TYPE: ClassVar[int] = 0x23
    NEEDS_ACK: ClassVar[bool] = True
    port: int
    digit: int

    def payload(self) -> bytes:
        if not 0 <= self.digit <= 9:
            raise ValueError(f"digit {self.digit}")
        return bytes([_u8(self.port, "port", low=1), self.digit])

    @classmethod
    def parse(cls, payload: bytes) -> Message:
        port, digit = _unpack(cls, ">BB", payload)
        if port == 0 or digit > 9:
            raise ProtocolError(f"PulseDigit: port {port} digit {digit}")
        return cls(port, digit)


@dataclass(frozen=True)
class RingStart(_PortMessage, Event):
    """Ringing voltage appeared on an FXO port."""

    TYPE: ClassVar[int] = 0x24
    NEEDS_ACK: ClassVar[bool] = True


@dataclass(frozen=True)
class RingStop(_PortMessage, Event):
    TYPE: ClassVar[int] = 0x25
    NEEDS_ACK: ClassVar[bool] = True


@dataclass(frozen=True)
class PolarityReversal(_PortMessage, Event):
    """The exchange reversed the loop polarity on an FXO port (answer or disconnect signal)."""

    TYPE: ClassVar[int] = 0x26
    NEEDS_ACK: ClassVar[bool] = True


@dataclass(frozen=True)
class LoopDrop(_PortDuration, Event):
    """Loop current on a seized FXO port fell away for `duration_ms` (disconnect supervision)."""

    TYPE: ClassVar[int] = 0x27
    NEEDS_ACK: ClassVar[bool] = True


@dataclass(frozen=True)
class BoardFault(Message, Event):
    """Something the firmware cannot fix alone; `port` 0 means the whole board."""

    TYPE: ClassVar[int] = 0x28
    NEEDS_ACK: ClassVar[bool] = True
    port: int
    code: int
    text: str = ""

    def payload(self) -> bytes:
        text = self.text.encode()
        if len(text) > 64:
            raise ValueError("fault text is 64 bytes at most")
        return bytes([_u8(self.port, "port"), _u8(self.code, "code"), len(text)]) + text

    @classmethod
    def parse(cls, payload: bytes) -> Message:
        if len(payload) < 2:
            raise ProtocolError("BoardFault: truncated")
        text, rest = _text(payload[2:])
        if rest:
            raise ProtocolError("BoardFault: trailing bytes")
        if len(text.encode()) > 64:
            raise ProtocolError("BoardFault: text longer than 64 bytes")
        return cls(payload[0], payload[1], text)


# -- commands (host to board) -----------------------------------------------------------------


class Command:
    """Marks the messages the host sends to drive the lines; each is acknowledged."""


@dataclass(frozen=True)
class Ring(Message, Command):
    """Ring an FXS port with a cadence: (on, off) pairs in ms, repeated until `StopRing`."""

    TYPE: ClassVar[int] = 0x40
    NEEDS_ACK: ClassVar[bool] = True
    port: int
    cadence: tuple[tuple[int, int], ...]

    def payload(self) -> bytes:
        if not 1 <= len(self.cadence) <= 8:
            raise ValueError("a cadence has 1 to 8 (on, off) pairs")
        out = bytes([_u8(self.port, "port", low=1), len(self.cadence)])
        for on, off in self.cadence:
            out += struct.pack(">HH", _u16(on), _u16(off))
        return out

    @classmethod
    def parse(cls, payload: bytes) -> Message:
        if len(payload) < 2:
            raise ProtocolError("Ring: truncated")
        port, count = payload[0], payload[1]
        if port == 0 or not 1 <= count <= 8 or len(payload) != 2 + 4 * count:
            raise ProtocolError(f"Ring: port {port}, {count} pairs in {len(payload)} bytes")
        pairs = struct.unpack(f">{2 * count}H", payload[2:])
        return cls(port, tuple(zip(pairs[::2], pairs[1::2], strict=True)))


@dataclass(frozen=True)
class StopRing(_PortMessage, Command):
    TYPE: ClassVar[int] = 0x41
    NEEDS_ACK: ClassVar[bool] = True


@dataclass(frozen=True)
class Seize(_PortMessage, Command):
    """Take an FXO line off-hook (close the loop)."""

    TYPE: ClassVar[int] = 0x42
    NEEDS_ACK: ClassVar[bool] = True


@dataclass(frozen=True)
class Release(_PortMessage, Command):
    TYPE: ClassVar[int] = 0x43
    NEEDS_ACK: ClassVar[bool] = True


@dataclass(frozen=True)
class HookFlash(_PortDuration, Command):
    """Open a seized FXO loop for `duration_ms` (recall to the exchange)."""

    TYPE: ClassVar[int] = 0x44
    NEEDS_ACK: ClassVar[bool] = True


@dataclass(frozen=True)
class Led(Message, Command):
    """Set LED `led` (`STATUS_LED` or a port number); blink times apply to `LedMode.BLINK`."""

    TYPE: ClassVar[int] = 0x45
    NEEDS_ACK: ClassVar[bool] = True
    led: int
    mode: LedMode
    on_ms: int = 0
    off_ms: int = 0

    def payload(self) -> bytes:
        return struct.pack(
            ">BBHH", _u8(self.led, "led"), int(self.mode), _u16(self.on_ms), _u16(self.off_ms)
        )

    @classmethod
    def parse(cls, payload: bytes) -> Message:
        led, mode, on, off = _unpack(cls, ">BBHH", payload)
        try:
            return cls(led, LedMode(mode), on, off)
        except ValueError:
            raise ProtocolError(f"Led: unknown mode {mode}") from None


@dataclass(frozen=True)
class Polarity(Message, Command):
    """Set an FXS port's loop polarity (reversed signals answer/disconnect to payphones)."""

    TYPE: ClassVar[int] = 0x46
    NEEDS_ACK: ClassVar[bool] = True
    port: int
    reversed: bool

    def payload(self) -> bytes:
        return bytes([_u8(self.port, "port", low=1), int(self.reversed)])

    @classmethod
    def parse(cls, payload: bytes) -> Message:
        port, value = _unpack(cls, ">BB", payload)
        if port == 0 or value > 1:
            raise ProtocolError(f"Polarity: port {port} value {value}")
        return cls(port, bool(value))


@dataclass(frozen=True)
class Reset(Message, Command):
    """Return every port to idle (ringing stopped, FXO released, LEDs off) after the ACK."""

    TYPE: ClassVar[int] = 0x47
    NEEDS_ACK: ClassVar[bool] = True


MESSAGES: dict[int, type[Message]] = {
    cls.TYPE: cls
    for cls in (
        Hello,
        Capabilities,
        Heartbeat,
        Ack,
        Nak,
        OffHook,
        OnHook,
        Flash,
        PulseDigit,
        RingStart,
        RingStop,
        PolarityReversal,
        LoopDrop,
        BoardFault,
        Ring,
        StopRing,
        Seize,
        Release,
        HookFlash,
        Led,
        Polarity,
        Reset,
    )
}


# -- frames -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    """A frame whose checksum was right; `message()` may still refuse its content."""

    seq: int
    type: int
    payload: bytes

    def message(self) -> Message:
        return decode_message(self.type, self.payload)


def decode_message(type_: int, payload: bytes) -> Message:
    """The message of a frame, or `ProtocolError` naming what is wrong with it."""
    cls = MESSAGES.get(type_)
    if cls is None:
        raise ProtocolError(f"unknown message type 0x{type_:02x}")
    return cls.parse(payload)


def encode(msg: Message, seq: int) -> bytes:
    """The bytes of one frame carrying `msg`, delimiters included."""
    payload = msg.payload()
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes")
    body = bytes([len(payload), _u8(seq, "seq"), msg.TYPE]) + payload
    body += struct.pack(">H", crc16(body))
    return b"\x00" + cobs_encode(body) + b"\x00"


class FrameReader:
    """Cuts a byte stream into frames: feed it whatever the port returned, in any chunks.
    A chunk that fails COBS, length or CRC checks is dropped and counted in `corrupt`;
    bytes before the first delimiter are the tail of a frame joined late, and are dropped
    too (not counted: nothing was lost that the reader could have had)."""

    def __init__(self) -> None:
        self.corrupt = 0
        self._buffer = bytearray()
        self._synced = False
        self._overflow = False

    def feed(self, data: bytes) -> list[Frame]:
        frames: list[Frame] = []
        start = 0
        for end in _zeros(data):
            self._take(data[start:end])
            start = end + 1
            chunk, overflowed = bytes(self._buffer), self._overflow
            self._buffer.clear()
            self._overflow = False
            if not self._synced:
                self._synced = True
                continue
            if overflowed:
                self.corrupt += 1
            elif chunk:
                frame = self._frame(chunk)
                if frame is None:
                    self.corrupt += 1
                else:
                    frames.append(frame)
        self._take(data[start:])
        return frames

    def _take(self, data: bytes) -> None:
        if self._overflow:
            return
        self._buffer += data
        if len(self._buffer) > _MAX_FRAME:
            self._buffer.clear()
            self._overflow = True

    @staticmethod
    def _frame(chunk: bytes) -> Frame | None:
        try:
            body = cobs_decode(chunk)
        except ValueError:
            return None
        if len(body) < 5 or body[0] != len(body) - 5:
            return None
        if crc16(body[:-2]) != int.from_bytes(body[-2:], "big"):
            return None
        return Frame(seq=body[1], type=body[2], payload=bytes(body[3:-2]))


# -- helpers of the layouts -------------------------------------------------------------------


def _zeros(data: bytes) -> list[int]:
    found: list[int] = []
    at = data.find(0)
    while at >= 0:
        found.append(at)
        at = data.find(0, at + 1)
    return found


def _u8(value: int, name: str, *, low: int = 0) -> int:
    if not low <= value <= 255:
        raise ValueError(f"{name} {value} out of {low}..255")
    return value


def _u16(value: int) -> int:
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"{value} ms out of 0..65535")
    return value


def _unpack(cls: type[Message], fmt: str, payload: bytes) -> tuple[int, ...]:
    if len(payload) != struct.calcsize(fmt):
        raise ProtocolError(
            f"{cls.__name__}: payload of {len(payload)} bytes, expected {struct.calcsize(fmt)}"
        )
    return struct.unpack(fmt, payload)


def _text(data: bytes) -> tuple[str, bytes]:
    """A length-prefixed UTF-8 string and what follows it."""
    if not data or len(data) < 1 + data[0]:
        raise ProtocolError("truncated string")
    raw = data[1 : 1 + data[0]]
    try:
        return raw.decode(), data[1 + data[0] :]
    except UnicodeDecodeError:
        raise ProtocolError("string is not UTF-8") from None
