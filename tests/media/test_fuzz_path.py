"""Fuzzing of the media engine's real packet path: datagrams sent over loopback to a latched leg
are read by its socket handler (`MediaLeg._readable_connected`, as the event loop calls it),
counted, transcoded (PCMU in, PCMA out) or relayed as RFC 4733 events, and sent on by the peer
leg. Whatever the bytes, nothing raises, what the peer sends is a well-formed RTP packet of its
own stream, and a good packet afterwards still comes through, converted.

Inputs: packets built field by field (any version bits, padding, extension, CSRC count, payload
type, length, including ones the header's counts overrun) and valid packets mutated as
`tests/media/test_fuzz.py` mutates them.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import warnings
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.media.engine import Codec, MediaEngine, MediaLeg, _payload_start
from tests.media.test_fuzz import mutate

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

HOST = "127.0.0.1"
PATH_SETTINGS = settings(
    max_examples=3_000, deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip


class Path:
    """Two connected legs (PCMU from the phone, PCMA to the other one) on real sockets, with
    the phones' sockets held raw so that a test reads and writes them without a running loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.engine = MediaEngine(HOST, 43000, 43020)
        self.phone_a, self.phone_b = self._socket(), self._socket()
        self.a, self.b = self.loop.run_until_complete(self._legs())
        self.good_seq = 0

    @staticmethod
    def _socket() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((HOST, 0))
        sock.setblocking(False)
        return sock

    async def _legs(self) -> tuple[MediaLeg, MediaLeg]:
        a, b = self.engine.open_leg(), self.engine.open_leg()
        a.set_remote(*self.phone_a.getsockname())
        b.set_remote(*self.phone_b.getsockname())
        a.set_codec(Codec("PCMU", 0, 101))
        b.set_codec(Codec("PCMA", 8, 101))
        a.connect(b)
        return a, b

    def feed(self, data: bytes) -> list[bytes]:
        """`data` from phone A to its leg, handled as the loop would; what phone B then got.
        (On loopback a datagram is in the receiving socket's queue when sendto returns.)"""
        self.phone_a.sendto(data, (HOST, self.a.port))
        if self.a.connected:
            self.a._readable_connected()
        else:
            self.a._readable()
        out = []
        while True:
            try:
                out.append(self.phone_b.recv(4096))
            except BlockingIOError:
                return out

    def good(self) -> bytes:
        self.good_seq += 1
        pcm = audioop.lin2ulaw(b"\x00\x10" * 160, 2)
        return struct.pack("!BBHII", 0x80, 0, self.good_seq, 160 * self.good_seq, 0xABC) + pcm

    def close(self) -> None:
        self.engine.close()
        self.phone_a.close()
        self.phone_b.close()
        self.loop.close()
        asyncio.set_event_loop(None)


@pytest.fixture(scope="module")
def path() -> Iterator[Path]:
    p = Path()
    assert p.feed(p.good()), "a good packet must come through before the fuzzing"
    assert p.a.latched
    yield p
    p.close()


def check(path: Path, sent: list[bytes]) -> None:
    for packet in sent:
        assert len(packet) >= 12 and packet[0] & 0xC0 == 0x80, packet[:12].hex()  # version 2
        assert _payload_start(packet) >= 0, packet.hex()  # its CSRCs and extension fit in it
        assert packet[1] & 0x7F in (8, 101)  # PCMA or events, as phone B negotiated
        assert struct.unpack_from("!I", packet, 8)[0] == path.b.ssrc  # B's own stream
    after = path.feed(path.good())  # and the path still works, converting
    assert len(after) == 1 and after[0][1] & 0x7F == 8
    ulaw = audioop.lin2ulaw(b"\x00\x10" * 160, 2)
    assert after[0][12:] == audioop.lin2alaw(audioop.ulaw2lin(ulaw, 2), 2)


header = st.builds(
    lambda first, marker_pt, seq, ts, ssrc, tail: (
        struct.pack("!BBHII", first, marker_pt, seq, ts, ssrc) + tail
    ),
    st.integers(0, 255) | st.sampled_from([0x80, 0x90, 0xA0, 0xB0, 0x8F, 0x81]),
    st.integers(0, 255) | st.sampled_from([0, 8, 101, 0xE5, 13, 72, 127]),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.binary(max_size=400),
)


@PATH_SETTINGS
@given(data=header)
def test_packets_built_field_by_field(path: Path, data: bytes) -> None:
    check(path, path.feed(data))


@PATH_SETTINGS
@given(program=st.binary(max_size=64), event=st.booleans())
def test_valid_packets_mutated(path: Path, program: bytes, event: bool) -> None:
    seed = path.good()
    if event:  # an RFC 4733 end packet for digit 5
        seed = seed[:1] + b"\x65" + seed[2:12] + b"\x05\x8a\x03\x20"
    check(path, path.feed(mutate(seed, program)))


@PATH_SETTINGS
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes(path: Path, data: bytes) -> None:
    check(path, path.feed(data))
