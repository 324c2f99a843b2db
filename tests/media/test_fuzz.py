"""Fuzzing of the media parsers: whatever the bytes, `RtpPacket.parse`, `RtcpCompound.parse` and
`TelephoneEvent.parse` either work or raise their module's own error, never anything else, and
what parses prints back as the very same bytes. Generated packets survive `parse(bytes(p))`.

Inputs: arbitrary bytes, valid packets with bytes flipped, cut, deleted or inserted, and
packets generated field by field.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.media.dtmf import DtmfError, InbandDtmfDetector, TelephoneEvent
from appliance.media.rtcp import (
    Bye,
    ReceiverReport,
    ReportBlock,
    RtcpCompound,
    RtcpError,
    RtcpPacket,
    SdesChunk,
    SenderReport,
    SourceDescription,
    UnknownRtcpPacket,
)
from appliance.media.rtp import ReceiveStats, RtpError, RtpPacket, header_fields, rewrite
from tests.media.test_rtcp import PJSIP_SR_SDES, RR_PLI_APP, RR_SDES_BYE
from tests.media.test_rtp import FULL, PCMU

FUZZ_SETTINGS = settings(
    max_examples=5_000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
GENERATED_SETTINGS = settings(max_examples=1_000, deadline=None, database=None)

RTP_SEEDS = [PCMU, FULL, bytes(RtpPacket(payload_type=101, payload=b"\x05\x0a\x00\xa0"))]
RTCP_SEEDS = [PJSIP_SR_SDES, RR_SDES_BYE, RR_PLI_APP, bytes(Bye([1, 2], b"bye"))]
INSERTS = [b"\x00", b"\xff", b"\x80", b"\xa0", b"\x90", b"\x81\xca", b"\x00\x00\x00\x00", b"\x01"]


def mutate(seed: bytes, program: bytes) -> bytes:
    """Apply `program` to `seed`, four bytes an edit: what, where (two bytes), with what."""
    data = bytearray(seed)
    for i in range(0, len(program) - 3, 4):
        op, hi, lo, arg = program[i : i + 4]
        pos = (hi << 8 | lo) % (len(data) + 1)
        kind = op % 16
        if kind < 5:
            data[pos:pos] = INSERTS[arg % len(INSERTS)]
        elif kind < 12:
            if pos < len(data):
                data[pos] ^= arg or 1
        elif kind < 15:
            del data[pos : pos + arg % 16 + 1]
        else:
            del data[pos:]
    return bytes(data)


def mutated(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    return st.tuples(st.sampled_from(seeds), st.binary(min_size=4, max_size=24)).map(
        lambda seed_program: mutate(*seed_program)
    )


def rtp_like(data: bytes) -> bytes:
    """Arbitrary bytes with version 2 forced, so that more get past the first check."""
    return bytes([0x80 | (data[0] & 0x3F)]) + data[1:] if data else data


def rtcp_like(data: bytes) -> bytes:
    """Arbitrary bytes cut into version-2 packets with lengths that fit the data."""
    out = bytearray()
    i = 0
    while i + 4 <= len(data):
        words = data[i + 3] % 8
        body = data[i + 4 : i + 4 + 4 * words]
        body += bytes(4 * words - len(body))
        out += bytes([0x80 | (data[i] & 0x3F), 200 + data[i + 1] % 8, 0, words]) + body
        i += 4 + 4 * words
    return bytes(out)


def check_rtp(data: bytes) -> None:
    try:
        packet = RtpPacket.parse(data)
    except RtpError:
        return
    assert bytes(packet) == data
    assert header_fields(data) == (
        packet.payload_type, packet.sequence, packet.timestamp, packet.ssrc, packet.marker,
    )  # fmt: skip
    renumbered = RtpPacket.parse(rewrite(data, sequence=1, timestamp=2, ssrc=3, payload_type=4))
    packet.sequence, packet.timestamp, packet.ssrc, packet.payload_type = 1, 2, 3, 4
    assert renumbered == packet


def check_rtcp(data: bytes) -> None:
    try:
        compound = RtcpCompound.parse(data)
    except RtcpError:
        return
    assert bytes(compound) == data
    _ = compound.cname


@FUZZ_SETTINGS
@given(st.binary(max_size=256) | st.binary(min_size=1, max_size=256).map(rtp_like))
def test_fuzz_rtp_bytes(data: bytes) -> None:
    check_rtp(data)


@FUZZ_SETTINGS
@given(mutated(RTP_SEEDS))
def test_fuzz_rtp_mutated(data: bytes) -> None:
    check_rtp(data)


@FUZZ_SETTINGS
@given(st.binary(max_size=256) | st.binary(max_size=256).map(rtcp_like))
def test_fuzz_rtcp_bytes(data: bytes) -> None:
    check_rtcp(data)


@FUZZ_SETTINGS
@given(mutated(RTCP_SEEDS))
def test_fuzz_rtcp_mutated(data: bytes) -> None:
    check_rtcp(data)


@GENERATED_SETTINGS
@given(st.binary(max_size=8))
def test_fuzz_telephone_event(data: bytes) -> None:
    try:
        event = TelephoneEvent.parse(data)
    except DtmfError:
        assert len(data) != 4
        return
    assert bytes(event) == data


# -- generated packets -------------------------------------------------------------------------

u32 = st.integers(0, 0xFFFFFFFF)


@st.composite
def paddings(draw: st.DrawFn, multiple: int = 1) -> bytes:
    size = draw(st.integers(0, 12)) * multiple
    if size == 0:
        return b""
    return draw(st.binary(min_size=size - 1, max_size=size - 1)) + bytes([size])


rtp_packets = st.builds(
    RtpPacket,
    padding=paddings(),
    extension=st.none()
    | st.binary(min_size=2, max_size=2).flatmap(
        lambda profile: st.binary(max_size=12).map(lambda d: profile + d + bytes(-len(d) % 4))
    ),
    marker=st.booleans(),
    payload_type=st.integers(0, 127),
    sequence=st.integers(0, 0xFFFF),
    timestamp=u32,
    ssrc=u32,
    csrc=st.lists(u32, max_size=15),
    payload=st.binary(max_size=64),
)


@GENERATED_SETTINGS
@given(rtp_packets)
def test_generated_rtp_round_trip(packet: RtpPacket) -> None:
    data = bytes(packet)
    assert RtpPacket.parse(data) == packet
    assert bytes(RtpPacket.parse(data)) == data


report_blocks = st.builds(
    ReportBlock,
    ssrc=u32,
    fraction_lost=st.integers(0, 255),
    cumulative_lost=st.integers(-0x800000, 0x7FFFFF),
    highest_seq=u32,
    jitter=u32,
    lsr=u32,
    dlsr=u32,
)
words = st.binary(max_size=16).map(lambda d: d + bytes(-len(d) % 4))
sdes_chunks = st.builds(
    SdesChunk,
    ssrc=u32,
    items=st.lists(st.tuples(st.integers(1, 255), st.binary(max_size=40)), max_size=4),
)
rtcp_packets: st.SearchStrategy[RtcpPacket] = st.one_of(
    st.builds(
        SenderReport,
        ssrc=u32,
        ntp_timestamp=st.integers(0, 0xFFFF_FFFF_FFFF_FFFF),
        rtp_timestamp=u32,
        packet_count=u32,
        octet_count=u32,
        reports=st.lists(report_blocks, max_size=3),
        extension=words,
        padding=paddings(4),
    ),
    st.builds(
        ReceiverReport,
        ssrc=u32,
        reports=st.lists(report_blocks, max_size=3),
        extension=words,
        padding=paddings(4),
    ),
    st.builds(SourceDescription, chunks=st.lists(sdes_chunks, max_size=3), padding=paddings(4)),
    st.builds(
        Bye,
        sources=st.lists(u32, max_size=4),
        reason=st.none() | st.binary(max_size=40),
        padding=paddings(4),
    ),
    st.builds(
        UnknownRtcpPacket,
        packet_type=st.sampled_from([192, 193, 204, 205, 206, 207, 210]),
        count=st.integers(0, 31),
        body=words,
        padding=paddings(4),
    ),
)


@GENERATED_SETTINGS
@given(st.lists(rtcp_packets, min_size=1, max_size=4))
def test_generated_rtcp_round_trip(packets: list[RtcpPacket]) -> None:
    data = bytes(RtcpCompound(packets))
    assert RtcpCompound.parse(data).packets == packets


@GENERATED_SETTINGS
@given(
    st.builds(
        TelephoneEvent,
        event=st.integers(0, 255),
        end=st.booleans(),
        volume=st.integers(0, 63),
        duration=st.integers(0, 0xFFFF),
        reserved=st.booleans(),
    )
)
def test_generated_telephone_event_round_trip(event: TelephoneEvent) -> None:
    assert TelephoneEvent.parse(bytes(event)) == event


@GENERATED_SETTINGS
@given(st.lists(st.tuples(st.integers(0, 0xFFFF), u32), max_size=200))
def test_receive_stats_any_sequence(packets: list[tuple[int, int]]) -> None:
    stats = ReceiveStats(8000)
    for i, (sequence, timestamp) in enumerate(packets):
        stats.update(sequence, timestamp, i * 0.02)
        assert 0 <= stats.fraction_lost <= 255
        assert stats.jitter >= 0
    assert stats.received <= len(packets)
    block = stats.report_block()
    assert ReportBlock.parse(bytes(block)) == block


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.binary(max_size=700), max_size=8))
def test_detector_any_bytes(chunks: list[bytes]) -> None:
    detector = InbandDtmfDetector()
    for chunk in chunks:
        assert set(detector.feed(chunk)) <= set("0123456789*#ABCD")
