"""Tests of `appliance.lines.protocol`: every message round-trips through a frame, captured
frames decode to the documented bytes, malformed content is refused with its reason, and the
reader survives garbage, truncation and bit flips without ever yielding a frame that was not
sent."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.lines import protocol as p

EVERY_MESSAGE: list[p.Message] = [
    p.Hello(),
    p.Capabilities(1, "mcu-2fxs-1fxo", "1.4.2", (p.FXS, p.FXS, p.FXO)),
    p.Heartbeat(),
    p.Ack(17),
    p.Nak(200, p.NakReason.WRONG_KIND),
    p.OffHook(1),
    p.OnHook(2),
    p.Flash(1, 350),
    p.PulseDigit(2, 0),
    p.RingStart(3),
    p.RingStop(3),
    p.PolarityReversal(3),
    p.LoopDrop(3, 600),
    p.BoardFault(0, 7, "ring generator overcurrent"),
    p.Ring(1, ((400, 200), (400, 2000))),
    p.StopRing(1),
    p.Seize(3),
    p.Release(3),
    p.HookFlash(3, 100),
    p.Led(p.STATUS_LED, p.LedMode.BLINK, 100, 900),
    p.Polarity(2, True),
    p.Reset(),
]


def exact(reason: str) -> str:
    return rf"\A{re.escape(reason)}\Z"


def test_every_type_is_covered() -> None:
    assert {type(m) for m in EVERY_MESSAGE} == set(p.MESSAGES.values())


@pytest.mark.parametrize("msg", EVERY_MESSAGE, ids=lambda m: type(m).__name__)
def test_round_trip(msg: p.Message) -> None:
    wire = p.encode(msg, 42)
    assert wire[0] == 0 and wire[-1] == 0 and 0 not in wire[1:-1]
    reader = p.FrameReader()
    (frame,) = reader.feed(wire)
    assert frame.seq == 42 and frame.type == msg.TYPE
    assert frame.message() == msg
    assert p.encode(frame.message(), frame.seq) == wire
    assert reader.corrupt == 0


def test_crc_check_value() -> None:
    # The catalogue's check value of CRC-16/CCITT-FALSE.
    assert p.crc16(b"123456789") == 0x29B1


def test_captured_frames() -> None:
    # The layouts of hw/PROTOCOL.md, byte by byte: Ring port 1, two pairs, seq 7.
    ring = p.encode(p.Ring(1, ((400, 200), (400, 2000))), 7)
    body = bytes.fromhex("0a07400102019000c8019007d0")
    crc = p.crc16(body).to_bytes(2, "big")
    assert ring == b"\x00" + p.cobs_encode(body + crc) + b"\x00"
    assert p.cobs_decode(p.cobs_encode(body + crc)) == body + crc
    assert ring.hex() == "00080a07400102019008c8019007d0fa8f00"
    # Off-hook on port 2 with seq 1: len 1, seq 1, type 0x20, port 2, CRC 0xe3e0; no zero in
    # the body, so COBS adds one code byte (7) in front.
    assert p.crc16(bytes.fromhex("01012002")) == 0xE3E0
    assert p.encode(p.OffHook(2), 1).hex() == "000701012002e3e000"
    assert p.FrameReader().feed(bytes.fromhex("000701012002e3e000"))[0].message() == p.OffHook(2)


def test_cobs_at_block_boundaries() -> None:
    for size in (0, 1, 253, 254, 255, 508):
        for data in (bytes(size), bytes((i % 255) + 1 for i in range(size))):
            encoded = p.cobs_encode(data)
            assert 0 not in encoded
            assert p.cobs_decode(encoded) == data


@pytest.mark.parametrize(
    ("type_", "payload", "reason"),
    [
        (0x7F, b"", "unknown message type 0x7f"),
        (p.OffHook.TYPE, b"", "OffHook: payload of 0 bytes, expected 1"),
        (p.OffHook.TYPE, b"\x00", "OffHook: port 0"),
        (p.Heartbeat.TYPE, b"\x01", "Heartbeat: unexpected payload of 1 bytes"),
        (p.Ring.TYPE, b"\x01\x02\x00\x10\x00\x10", "Ring: port 1, 2 pairs in 6 bytes"),
        (p.Nak.TYPE, b"\x01\x63", "Nak: unknown reason 99"),
        (p.Led.TYPE, b"\x00\x09\x00\x00\x00\x00", "Led: unknown mode 9"),
        (p.PulseDigit.TYPE, b"\x01\x0a", "PulseDigit: port 1 digit 10"),
        (
            p.Capabilities.TYPE,
            b"\x01\x01m\x01f\x02\x01",
            "Capabilities: 2 ports announced, 1 given",
        ),
        (p.Capabilities.TYPE, b"\x01\x01m\x01f\x01\x05", "Capabilities: unknown port kind"),
        (p.Capabilities.TYPE, b"\x01\x05m", "truncated string"),
        (p.BoardFault.TYPE, b"\x00\x01\x01\xff", "string is not UTF-8"),
        (p.BoardFault.TYPE, b"\x00\x01\x01xy", "BoardFault: trailing bytes"),
        (p.BoardFault.TYPE, b"\x00\x01\x41" + b"x" * 65, "BoardFault: text longer than 64 bytes"),
        (
            p.Capabilities.TYPE,
            b"\x01\x21" + b"m" * 33 + b"\x01f\x01\x01",
            "Capabilities: model, firmware and ports are 32 at most",
        ),
    ],
)
def test_malformed_content(type_: int, payload: bytes, reason: str) -> None:
    with pytest.raises(p.ProtocolError, match=exact(reason)):
        p.decode_message(type_, payload)


def test_values_out_of_range_are_not_encoded() -> None:
    with pytest.raises(ValueError, match=exact("port 0 out of 1..255")):
        p.encode(p.OffHook(0), 1)
    with pytest.raises(ValueError, match=exact("70000 ms out of 0..65535")):
        p.encode(p.Flash(1, 70000), 1)
    with pytest.raises(ValueError, match=exact("a cadence has 1 to 8 (on, off) pairs")):
        p.encode(p.Ring(1, ()), 1)
    with pytest.raises(ValueError, match=exact("seq 256 out of 0..255")):
        p.encode(p.Heartbeat(), 256)


def test_any_chunking() -> None:
    stream = b"".join(p.encode(m, i) for i, m in enumerate(EVERY_MESSAGE))
    for size in (1, 2, 3, 7, 64):
        reader = p.FrameReader()
        frames = []
        for at in range(0, len(stream), size):
            frames += reader.feed(stream[at : at + size])
        assert [f.message() for f in frames] == EVERY_MESSAGE
        assert reader.corrupt == 0


def test_resync_after_garbage_and_partial_frame() -> None:
    reader = p.FrameReader()
    hello = p.encode(p.OffHook(1), 5)
    # Joined mid-frame: the tail of a frame is not a frame.
    assert reader.feed(hello[4:]) == []
    assert reader.corrupt == 0
    # Garbage, then a frame cut short by another frame's delimiter, then good frames.
    assert reader.feed(b"\x13\x37\xff\xfe") == []
    frames = reader.feed(b"\x00" + hello[1:-3] + p.encode(p.OnHook(1), 6) + hello)
    assert [f.message() for f in frames] == [p.OnHook(1), p.OffHook(1)]
    assert reader.corrupt == 2  # the garbage and the truncated frame


def test_endless_garbage_is_bounded() -> None:
    reader = p.FrameReader()
    reader.feed(b"\x00")
    for _ in range(100):
        assert reader.feed(b"\x55" * 1000) == []
    frames = reader.feed(p.encode(p.Heartbeat(), 1))
    assert [f.message() for f in frames] == [p.Heartbeat()]
    assert reader.corrupt == 1


def _encoded(frame: p.Frame) -> bytes:
    body = bytes([len(frame.payload), frame.seq, frame.type]) + frame.payload
    return b"\x00" + p.cobs_encode(body + p.crc16(body).to_bytes(2, "big")) + b"\x00"


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_fuzz_random_bytes(data: bytes) -> None:
    reader = p.FrameReader()
    frames = reader.feed(b"\x00" + data + b"\x00")
    for frame in frames:
        assert _encoded(frame)[1:-1] in data
        try:
            frame.message()
        except p.ProtocolError:
            pass


messages = st.sampled_from(EVERY_MESSAGE)


@settings(max_examples=300, derandomize=True)
@given(
    st.lists(st.tuples(messages, st.integers(0, 255)), min_size=1, max_size=6),
    st.data(),
)
def test_fuzz_bit_flips_and_truncation(
    sent: list[tuple[p.Message, int]], data: st.DataObject
) -> None:
    stream = bytearray(b"".join(p.encode(m, s) for m, s in sent))
    flips = data.draw(st.lists(st.integers(0, len(stream) * 8 - 1), max_size=3))
    for bit in flips:
        stream[bit // 8] ^= 1 << (bit % 8)
    cut = data.draw(st.integers(0, len(stream)))
    reader = p.FrameReader()
    frames = reader.feed(bytes(stream[:cut]))
    originals = [(s, m) for m, s in sent]
    for frame in frames:
        # With CRC-16 every frame that survives is one that was sent, unharmed.
        assert (frame.seq, frame.message()) in originals
    if not flips and cut == len(stream):
        assert [(f.seq, f.message()) for f in frames] == originals


@settings(max_examples=500, derandomize=True)
@given(st.sampled_from(sorted(p.MESSAGES)), st.binary(max_size=120))
def test_fuzz_payloads(type_: int, payload: bytes) -> None:
    # A frame with a good checksum and any payload: a message that re-encodes to the very
    # payload, or ProtocolError; never another exception, which would kill the reader.
    try:
        msg = p.decode_message(type_, payload)
    except p.ProtocolError:
        return
    assert msg.payload() == payload
