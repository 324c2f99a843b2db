"""The media engine with real UDP sockets on loopback: relay, latching, SSRC/sequence/timestamp
continuity, payload type mapping, transcoding, DTMF, statistics, RTCP and port accounting."""

from __future__ import annotations

import asyncio
import itertools
import random
import socket
import struct
import warnings
from collections.abc import Awaitable, Callable

import pytest

from appliance.media import rtcp
from appliance.media.dtmf import TelephoneEvent, dtmf_tone
from appliance.media.engine import Codec, MediaEngine, MediaError, MediaLeg

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

HOST = "127.0.0.1"
WAIT = 5.0


class Phone(asyncio.DatagramProtocol):
    """A UDP socket standing in for a phone's RTP port; what arrives is queued."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.put_nowait((data, addr))

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def send(self, data: bytes, port: int) -> None:
        assert self.transport is not None
        self.transport.sendto(data, (HOST, port))

    async def next(self) -> bytes:
        data, _ = await asyncio.wait_for(self.received.get(), WAIT)
        return data

    def close(self) -> None:
        assert self.transport is not None
        self.transport.close()


def free_block(size: int) -> int:
    """The first of `size` consecutive UDP ports on HOST that nothing holds now, below the
    kernel's ephemeral range (32768 up), where no socket is given a port it did not ask for:
    a test that counts the pairs it gets needs every port of its range free."""
    for _ in range(200):
        low = random.randrange(22000, 32000 - size, 2)
        held: list[socket.socket] = []
        try:
            for port in range(low, low + size):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                held.append(sock)
                sock.bind((HOST, port))
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
        return low
    raise RuntimeError(f"no {size} free UDP ports in a row on {HOST}")


async def phone() -> Phone:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_datagram_endpoint(Phone, local_addr=(HOST, 0))
    return protocol


def rtp(seq: int, ts: int, ssrc: int, payload: bytes, pt: int = 0, marker: bool = False) -> bytes:
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq, ts, ssrc) + payload


def head(data: bytes) -> tuple[bool, int, int, int, int]:
    b1, seq, ts, ssrc = struct.unpack_from("!xBHII", data)
    return bool(b1 & 0x80), b1 & 0x7F, seq, ts, ssrc


def with_engine(
    test: Callable[[MediaEngine], Awaitable[None]],
) -> Callable[[], None]:
    """Run an async test on a fresh event loop with an engine on ports 42000-42100."""

    def run() -> None:
        async def body() -> None:
            eng = MediaEngine(HOST, 42000, 42100)
            eng.start()
            try:
                await test(eng)
            finally:
                eng.close()

        asyncio.run(body())

    run.__name__ = test.__name__  # (not functools.wraps: pytest would want its arguments)
    return run


def in_loop(test: Callable[[], Awaitable[None]]) -> Callable[[], None]:
    def run() -> None:
        asyncio.run(test())  # type: ignore[arg-type]

    run.__name__ = test.__name__
    return run


async def pair(
    engine: MediaEngine, a_codec: Codec, b_codec: Codec
) -> tuple[MediaLeg, MediaLeg, Phone, Phone]:
    a, b = engine.open_leg(), engine.open_leg()
    pa, pb = await phone(), await phone()
    a.set_remote(HOST, pa.port)
    b.set_remote(HOST, pb.port)
    a.set_codec(a_codec)
    b.set_codec(b_codec)
    a.connect(b)
    return a, b, pa, pb


@with_engine
async def test_relay_keeps_payload_and_sends_in_the_legs_own_stream(engine: MediaEngine) -> None:
    a, b, pa, pb = await pair(engine, Codec("PCMU", 0, 101), Codec("PCMU", 0, 101))
    for i in range(5):
        pa.send(rtp(100 + i, 8000 + 160 * i, 0xAAAA, bytes([i]) * 160), a.port)
    got = [await pb.next() for _ in range(5)]
    heads = [head(p) for p in got]
    assert [p[12:] for p in got] == [bytes([i]) * 160 for i in range(5)]
    assert {h[4] for h in heads} == {b.ssrc} != {0xAAAA}
    assert [(h[2] - heads[0][2]) & 0xFFFF for h in heads] == [0, 1, 2, 3, 4]
    assert [(h[3] - heads[0][3]) & 0xFFFFFFFF for h in heads] == [0, 160, 320, 480, 640]
    # and back the other way, to where phone A's packets came from
    pb.send(rtp(7, 0, 0xBBBB, b"\x55" * 160), b.port)
    assert (await pa.next())[12:] == b"\x55" * 160
    for p in (pa, pb):
        p.close()


@with_engine
async def test_a_new_source_continues_the_stream_with_a_marker(engine: MediaEngine) -> None:
    """A transfer or re-INVITE changes the SSRC arriving; the phone on the other side must see
    one stream: same SSRC, next sequence number, timestamp moving forward, marker set."""
    a, b, pa, pb = await pair(engine, Codec("PCMU", 0), Codec("PCMU", 0))
    for i in range(3):
        pa.send(rtp((65534 + i) & 0xFFFF, 1000 + 160 * i, 0x1111, b"\x01" * 160), a.port)
    first = [head(await pb.next()) for _ in range(3)]
    for i in range(3):
        pa.send(rtp(9 + i, 5_000_000 + 160 * i, 0x2222, b"\x02" * 160), a.port)
    second = [head(await pb.next()) for _ in range(3)]
    seqs = [h[2] for h in first + second]
    assert [(s - seqs[0]) & 0xFFFF for s in seqs] == [0, 1, 2, 3, 4, 5]
    assert {h[4] for h in first + second} == {b.ssrc}
    assert second[0][0] is True and not any(h[0] for h in second[1:])
    jump = (second[0][3] - first[-1][3]) & 0xFFFFFFFF
    assert 160 <= jump < 8000 * 5  # forward, by about the time that passed
    assert [(h[3] - second[0][3]) & 0xFFFFFFFF for h in second] == [0, 160, 320]


@with_engine
async def test_symmetric_rtp_latches_onto_the_real_source(engine: MediaEngine) -> None:
    a, b, pa, pb = await pair(engine, Codec("PCMU", 0), Codec("PCMU", 0))
    nat = await phone()  # the phone's packets really come from here (a NAT mapping)
    stray = await phone()
    stray.send(rtp(1, 0, 0x77, b"\x66" * 160), a.port)  # a stray packet: not latched onto
    for i in range(MediaLeg.LEARN_PACKETS):  # dropped until the address has proved itself
        nat.send(rtp(1 + i, 160 * i, 0x1, bytes([i]) * 160), a.port)
    assert (await pb.next())[12:] == bytes([MediaLeg.LEARN_PACKETS - 1]) * 160
    nat.send(rtp(9, 1600, 0x1, b"\x07" * 160), a.port)
    assert (await pb.next())[12:] == b"\x07" * 160
    pb.send(rtp(1, 0, 0x2, b"\x08" * 160), b.port)
    assert (await nat.next())[12:] == b"\x08" * 160  # sent where it came from, not to the SDP
    assert a.remote == (HOST, nat.port)
    # once latched, a stranger's packets are dropped
    stranger = await phone()
    stranger.send(rtp(2, 160, 0x3, b"\x09" * 160), a.port)
    nat.send(rtp(2, 160, 0x1, b"\x0a" * 160), a.port)
    assert (await pb.next())[12:] == b"\x0a" * 160
    assert pb.received.empty()
    for p in (pa, pb, nat, stranger, stray):
        p.close()


@with_engine
async def test_only_a_stream_that_follows_on_from_the_phones_host_is_learned(
    engine: MediaEngine,
) -> None:
    """RTP bleed: a source other than the SDP's is learned only from five packets in a row of
    one stream (one SSRC, consecutive sequence numbers) from the SDP's or the signalling's host."""
    a, _b, pa, pb = await pair(engine, Codec("PCMU", 0), Codec("PCMU", 0))
    loop = asyncio.get_running_loop()
    _, elsewhere = await loop.create_datagram_endpoint(Phone, local_addr=("127.0.0.7", 0))
    nat = await phone()
    # jumbled sequence numbers from the phone's host: not one stream
    for i, seq in enumerate([10, 12, 11, 14, 13, 16, 15, 18]):
        nat.send(rtp(seq, 160 * i, 0x1, b"\x01" * 160), a.port)
    # two SSRCs interleaved: not one stream either
    for i in range(8):
        nat.send(rtp(100 + i // 2, 160 * i, 0x2 + i % 2, b"\x02" * 160), a.port)
    # a perfect stream, but from a host neither the SDP nor the signalling names
    for i in range(10):
        elsewhere.send(rtp(200 + i, 160 * i, 0x4, b"\x03" * 160), a.port)
    # On loopback every one of them is queued at the leg's socket by now: its handler, run here
    # as the loop would run it, reads them all (26 < READ_BATCH) and takes none of them.
    a._readable()
    assert not a.latched and a.rx_packets == 0 and pb.received.empty()
    # the signalling's host is trusted: a perfect stream from there is learned
    a.signalled_from = "127.0.0.7"
    for i in range(MediaLeg.LEARN_PACKETS):
        elsewhere.send(rtp(300 + i, 160 * i, 0x5, bytes([i]) * 160), a.port)
    assert (await pb.next())[12:] == bytes([MediaLeg.LEARN_PACKETS - 1]) * 160
    assert a.latched and a.remote == ("127.0.0.7", elsewhere.port)
    for p in (pa, pb, nat, elsewhere):
        p.close()


@in_loop
async def test_ports_are_handed_out_in_no_predictable_order() -> None:
    eng = MediaEngine(HOST, 42400, 42600)  # 100 pairs
    assert eng.free_ports == 100
    legs = [eng.open_leg() for _ in range(20)]
    ports = [leg.port for leg in legs]
    assert len(set(ports)) == 20 and ports != sorted(ports)
    steps = {(b - a) for a, b in itertools.pairwise(ports)}
    assert len(steps) > 5  # not a fixed stride either
    # a released pair cools before it is handed out again, while others are free
    released = legs[0].port
    legs[0].close()
    again = [eng.open_leg() for _ in range(50)]
    assert released not in [leg.port for leg in again]
    eng.close()
    assert eng.free_ports == 100


@with_engine
async def test_payload_types_are_mapped_per_leg(engine: MediaEngine) -> None:
    a, _b, pa, pb = await pair(engine, Codec("PCMU", 0, 101), Codec("PCMU", 0, 96))
    event = bytes(TelephoneEvent(event=5, end=True, volume=10, duration=800))
    pa.send(rtp(1, 0, 0x1, event, pt=101), a.port)
    got = await pb.next()
    assert head(got)[1] == 96 and got[12:] == event
    pa.send(rtp(2, 0, 0x1, b"\x00" * 4, pt=13), a.port)  # comfort noise: not negotiated
    pa.send(rtp(3, 160, 0x1, b"\x11" * 160), a.port)
    assert (await pb.next())[12:] == b"\x11" * 160


@with_engine
async def test_dtmf_events_are_reported_once_per_event(engine: MediaEngine) -> None:
    a, _b, pa, pb = await pair(engine, Codec("PCMU", 0, 101), Codec("PCMU", 0, 101))
    digits: list[str] = []
    a.on_dtmf = lambda _leg, digit: digits.append(digit)
    for end, duration in ((False, 160), (True, 320), (True, 320), (True, 320)):
        pa.send(rtp(1, 4000, 0x1, bytes(TelephoneEvent(11, end, 10, duration)), pt=101), a.port)
    for _ in range(4):
        await pb.next()
    assert digits == ["#"]


@with_engine
async def test_different_codecs_are_transcoded(engine: MediaEngine) -> None:
    a, b, pa, pb = await pair(engine, Codec("PCMU", 0), Codec("PCMA", 8))
    assert a.transcoding and b.transcoding
    pcm = b"".join(struct.pack("<h", (i * 397) % 20000 - 10000) for i in range(160))
    ulaw = audioop.lin2ulaw(pcm, 2)
    pa.send(rtp(1, 0, 0x1, ulaw), a.port)
    got = await pb.next()
    assert head(got)[1] == 8 and len(got) == 12 + 160
    assert got[12:] == audioop.lin2alaw(audioop.ulaw2lin(ulaw, 2), 2)


@with_engine
async def test_sip_info_dtmf_becomes_rfc4733_in_the_stream(engine: MediaEngine) -> None:
    a, b, pa, pb = await pair(engine, Codec("PCMU", 0, 101), Codec("PCMU", 0, 101))
    pa.send(rtp(10, 0, 0x1, b"\x01" * 160), a.port)
    before = head(await pb.next())
    b.send_dtmf("7", duration_ms=100)
    loop = asyncio.get_running_loop()
    events, times = [], []
    for _ in range(7):  # 5 packets, the end one sent three times
        events.append(await pb.next())
        times.append(loop.time())
    assert times[-1] - times[0] >= 0.07  # paced every 20 ms, as a phone would send them
    parsed = [TelephoneEvent.parse(p[12:]) for p in events]
    assert {e.event for e in parsed} == {7}
    assert [e.end for e in parsed] == [False] * 4 + [True] * 3
    assert {head(p)[1] for p in events} == {101} and head(events[0])[0] is True
    assert len({head(p)[3] for p in events}) == 1  # one timestamp: the event's start
    pa.send(rtp(11, 160, 0x1, b"\x02" * 160), a.port)
    after = head(await pb.next())
    seqs = [before[2], *(head(p)[2] for p in events), after[2]]
    assert [(s - seqs[0]) & 0xFFFF for s in seqs] == list(range(9))
    assert (after[3] - head(events[0])[3]) & 0xFFFFFFFF >= 800


@with_engine
async def test_receive_statistics_count_loss_and_jitter(engine: MediaEngine) -> None:
    a, _b, pa, pb = await pair(engine, Codec("PCMU", 0), Codec("PCMU", 0))
    for seq in (1, 2, 4, 5):  # 3 lost
        pa.send(rtp(seq, seq * 160, 0x1, b"\x00" * 160), a.port)
    for _ in range(4):
        await pb.next()
    stats = a.stats()
    assert (stats.packets, stats.lost) == (4, 1)
    assert stats.jitter_ms >= 0
    assert _b.stats().sent_packets == 4


@with_engine
async def test_rtcp_is_terminated_and_reported(engine: MediaEngine) -> None:
    a, _b, pa, pb = await pair(engine, Codec("PCMU", 0), Codec("PCMU", 0))
    loop = asyncio.get_running_loop()
    _, rtcp_phone = await loop.create_datagram_endpoint(Phone, local_addr=(HOST, 0))
    a.set_remote(HOST, pa.port, rtcp_phone.port)
    pa.send(rtp(1, 0, 0x1234, b"\x00" * 160), a.port)
    await pb.next()
    a.send_report()
    report = await rtcp_phone.next()
    packets = rtcp.parse_compound(report)
    sr = packets[0]
    assert isinstance(sr, rtcp.SenderReport) and sr.ssrc == a.ssrc
    assert sr.reports[0].ssrc == 0x1234 and sr.reports[0].highest_seq == 1
    # a phone's receiver report about our stream is kept for the CDR
    block = rtcp.ReportBlock(a.ssrc, 0, 3, 10, 80, 0, 0)
    rtcp_phone.send(rtcp.build_rr(0x1234, block), a.port + 1)
    for _ in range(50):
        if a.remote_report is not None:
            break
        await asyncio.sleep(0.01)  # nothing to await: the engine only records it
    assert a.remote_report == block
    assert a.stats().remote_lost == 3 and a.stats().remote_jitter_ms == 10.0


@in_loop
async def test_ports_are_returned_and_exhaustion_is_an_error() -> None:
    low = free_block(7)
    eng = MediaEngine(HOST, low, low + 6)  # three pairs
    legs = [eng.open_leg() for _ in range(3)]
    assert sorted(leg.port for leg in legs) == [low, low + 2, low + 4] and eng.free_ports == 0
    with pytest.raises(MediaError, match=f"no free RTP port pair in {low}-{low + 6}"):
        eng.open_leg()
    legs[1].close()
    legs[1].close()  # twice is harmless
    assert eng.free_ports == 1
    again = eng.open_leg()
    assert again.port == legs[1].port  # the only pair left, though still cooling
    eng.close()
    assert eng.free_ports == 3 and not eng.legs


@in_loop
async def test_a_busy_port_is_skipped() -> None:
    loop = asyncio.get_running_loop()
    low = free_block(5)
    squatter, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                      local_addr=(HOST, low + 1))  # fmt: skip
    eng = MediaEngine(HOST, low, low + 4)
    leg = eng.open_leg()
    assert leg.port == low + 2  # the first pair's RTCP port was taken
    eng.close()
    squatter.close()


def test_a_range_without_a_pair_is_refused() -> None:
    with pytest.raises(MediaError, match="holds no port pair"):
        MediaEngine(HOST, 5000, 5001)


@with_engine
async def test_inband_dtmf_is_detected_when_asked(engine: MediaEngine) -> None:
    a, _b, pa, pb = await pair(engine, Codec("PCMU", 0), Codec("PCMU", 0))
    digits: list[str] = []
    a.on_dtmf = lambda _leg, digit: digits.append(digit)
    a.detect_inband_dtmf()
    audio = dtmf_tone("4", 100) + bytes(800) + dtmf_tone("2", 100) + bytes(800)
    ulaw = audioop.lin2ulaw(audio, 2)
    for i in range(len(ulaw) // 160):
        pa.send(rtp(i, 160 * i, 0x1, ulaw[160 * i : 160 * (i + 1)]), a.port)
        await pb.next()  # relayed as ever, and listened to on the way
    assert digits == ["4", "2"]


@with_engine
async def test_a_new_sdp_address_latches_again(engine: MediaEngine) -> None:
    """A re-INVITE that moves the media (a transfer to another phone, a new NAT mapping)
    latches again; one that repeats the address keeps the latch."""
    a, _b, pa, pb = await pair(engine, Codec("PCMU", 0), Codec("PCMU", 0))
    pa.send(rtp(1, 0, 0x1, b"\x01" * 160), a.port)
    await pb.next()
    a.set_remote(HOST, pa.port)  # the same address again
    assert a.latched
    moved = await phone()
    a.set_remote(HOST, moved.port)
    assert not a.latched
    pa.send(rtp(2, 160, 0x1, b"\x06" * 160), a.port)  # the old address is a stranger now
    moved.send(rtp(1, 0, 0x9, b"\x02" * 160), a.port)  # the SDP address latches at once
    assert (await pb.next())[12:] == b"\x02" * 160
    pb.send(rtp(5, 0, 0x2, b"\x03" * 160), _b.port)
    assert (await moved.next())[12:] == b"\x03" * 160
    pa.send(rtp(2, 160, 0x1, b"\x04" * 160), a.port)  # the old address is a stranger now
    moved.send(rtp(2, 160, 0x9, b"\x05" * 160), a.port)
    assert (await pb.next())[12:] == b"\x05" * 160
    for p in (pa, pb, moved):
        p.close()
