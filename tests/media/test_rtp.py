"""Tests of `appliance.media.rtp`: packets parse and print back byte for byte (RFC 3550 §5.1),
the exact reason of every parse error, the relay's header helpers, and the receiver statistics
of RFC 3550 Appendix A (sequence extension, loss, fraction lost, interarrival jitter)."""

from __future__ import annotations

import re

import pytest

from appliance.media.rtcp import ReportBlock
from appliance.media.rtp import (
    ReceiveStats,
    RtpError,
    RtpPacket,
    header_fields,
    is_rtcp,
    rewrite,
)


def exact(reason: str) -> str:
    return rf"\A{re.escape(reason)}\Z"


# The first packet of a PCMU stream as baresip sends it: marker set, 20 ms of µ-law silence.
PCMU = bytes.fromhex("80805e1f000000a03c4b2d1e") + b"\xff" * 160

# A video-ish packet with everything: padding, extension (RFC 8285 one-byte), 2 CSRCs, marker.
FULL = (
    bytes.fromhex("b2e10102 00015f90 11223344".replace(" ", ""))
    + bytes.fromhex("aabbccdd 01020304")  # CSRCs
    + bytes.fromhex("bede0002 10ff2201 02030000")  # profile, 2 words, the elements
    + b"payload"
    + b"\x00\x00\x03"  # three octets of padding, the last one counting them
)


def test_pcmu_packet() -> None:
    packet = RtpPacket.parse(PCMU)
    assert packet == RtpPacket(
        marker=True,
        payload_type=0,
        sequence=0x5E1F,
        timestamp=0xA0,
        ssrc=0x3C4B2D1E,
        payload=b"\xff" * 160,
    )
    assert packet.padding_size == 0
    assert bytes(packet) == PCMU


def test_full_packet() -> None:
    packet = RtpPacket.parse(FULL)
    assert packet.version == 2
    assert packet.marker
    assert packet.payload_type == 97
    assert packet.sequence == 0x0102
    assert packet.timestamp == 90_000
    assert packet.ssrc == 0x11223344
    assert packet.csrc == [0xAABBCCDD, 0x01020304]
    assert packet.extension == bytes.fromhex("bede 10ff2201 02030000")
    assert packet.payload == b"payload"
    assert packet.padding == b"\x00\x00\x03"
    assert packet.padding_size == 3
    assert bytes(packet) == FULL


def test_nonzero_padding_and_empty_extension_round_trip() -> None:
    data = bytes.fromhex("b0000001 00000002 00000003 1000 0000") + b"ab" + b"\x07\x07\x02"
    packet = RtpPacket.parse(data)
    assert packet.extension == b"\x10\x00"
    assert packet.payload == b"ab\x07"  # the payload ends where the padding begins
    assert packet.padding == b"\x07\x02"
    assert bytes(packet) == data


def test_built_packet() -> None:
    packet = RtpPacket(payload_type=8, sequence=65535, timestamp=0xFFFFFFFF, ssrc=1, payload=b"x")
    data = bytes(packet)
    assert data == bytes.fromhex("8008ffffffffffff00000001") + b"x"
    assert RtpPacket.parse(data) == packet


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "RTP header truncated: 0 bytes, need 12"),
        (PCMU[:11], "RTP header truncated: 11 bytes, need 12"),
        (b"\x40" + PCMU[1:], "RTP version 1, expected 2"),
        (b"\x00" + PCMU[1:], "RTP version 0, expected 2"),
        (b"\xc0" + PCMU[1:], "RTP version 3, expected 2"),
        (b"\x8f" + PCMU[1:40], "RTP CSRC count 15 needs 72 header bytes, packet has 40"),
        (b"\x81" + PCMU[1:12], "RTP CSRC count 1 needs 16 header bytes, packet has 12"),
        (b"\x90" + PCMU[1:15], "RTP header extension truncated"),
        (b"\x90" + PCMU[1:12] + b"\xbe\xde\x00\x02" + b"1234", "RTP header extension length "
         "2 words exceeds the packet"),
        (b"\xa0" + PCMU[1:12] + b"abc\x00", "RTP padding count is 0"),
        (b"\xa0" + PCMU[1:12] + b"abc\x05", "RTP padding count 5 exceeds the 16-byte packet"),
        (b"\xb0" + PCMU[1:12] + b"\xbe\xde\x00\x03", "RTP header extension truncated"),
    ],
)  # fmt: skip
def test_parse_errors(data: bytes, reason: str) -> None:
    with pytest.raises(RtpError, match=exact(reason)):
        RtpPacket.parse(data)


def test_padding_may_take_the_whole_payload() -> None:
    data = b"\xa0" + PCMU[1:12] + b"\x00\x00\x00\x04"
    packet = RtpPacket.parse(data)
    assert (packet.payload, packet.padding_size) == (b"", 4)
    assert bytes(packet) == data


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (RtpPacket(payload_type=128), "RTP payload type 128 out of range 0-127"),
        (RtpPacket(sequence=65536), "RTP sequence number 65536 out of range 0-65535"),
        (RtpPacket(sequence=-1), "RTP sequence number -1 out of range 0-65535"),
        (RtpPacket(timestamp=1 << 32), "RTP timestamp and SSRC must fit 32 bits"),
        (RtpPacket(ssrc=-1), "RTP timestamp and SSRC must fit 32 bits"),
        (RtpPacket(version=4), "RTP version 4 does not fit 2 bits"),
        (RtpPacket(csrc=list(range(16))), "RTP packet has 16 CSRCs, at most 15 fit"),
        (RtpPacket(csrc=[1 << 32]), "RTP CSRC must fit 32 bits"),
        (RtpPacket(padding=b"\x00\x01"), "RTP padding of 2 bytes must end with its count 2"),
        (RtpPacket(extension=b"\xbe"), "RTP header extension must be a 2-byte profile and a "
         "multiple of 4 bytes"),
        (RtpPacket(extension=b"\xbe\xde\x00"), "RTP header extension must be a 2-byte profile "
         "and a multiple of 4 bytes"),
    ],
)  # fmt: skip
def test_serialise_errors(packet: RtpPacket, reason: str) -> None:
    with pytest.raises(RtpError, match=exact(reason)):
        bytes(packet)


# -- the relay's helpers -----------------------------------------------------------------------


def test_header_fields() -> None:
    assert header_fields(PCMU) == (0, 0x5E1F, 0xA0, 0x3C4B2D1E, True)
    assert header_fields(FULL) == (97, 0x0102, 90_000, 0x11223344, True)
    assert header_fields(bytes(RtpPacket(payload_type=8, sequence=7))) == (8, 7, 0, 0, False)


def test_rewrite_keeps_everything_else() -> None:
    out = rewrite(FULL, sequence=1, timestamp=2, ssrc=3)
    assert header_fields(out) == (97, 1, 2, 3, True)
    before, after = RtpPacket.parse(FULL), RtpPacket.parse(out)
    before.sequence, before.timestamp, before.ssrc = 1, 2, 3
    assert after == before
    assert len(out) == len(FULL)


def test_rewrite_payload_type_keeps_marker() -> None:
    out = rewrite(PCMU, sequence=9, timestamp=8, ssrc=7, payload_type=8)
    assert header_fields(out) == (8, 9, 8, 7, True)
    assert out[12:] == PCMU[12:]
    unmarked = bytes(RtpPacket(payload_type=0, payload=b"z"))
    out = rewrite(unmarked, sequence=0, timestamp=0, ssrc=0, payload_type=101)
    assert header_fields(out) == (101, 0, 0, 0, False)


def test_rewrite_wraps() -> None:
    out = rewrite(PCMU, sequence=65535 + 3, timestamp=(1 << 32) + 5, ssrc=-1)
    assert header_fields(out)[1:4] == (2, 5, 0xFFFFFFFF)


@pytest.mark.parametrize(
    ("second", "rtcp"),
    [(200, True), (201, True), (202, True), (203, True), (206, True), (192, True), (223, True),
     (0x00, False), (0x08, False), (0x80, False), (0x65, False), (0xE5, False), (191, False),
     (224, False)],
)  # fmt: skip
def test_is_rtcp(second: int, rtcp: bool) -> None:
    assert is_rtcp(bytes([0x80, second, 0, 1])) is rtcp


def test_is_rtcp_short() -> None:
    assert not is_rtcp(b"")
    assert not is_rtcp(b"\x81")


# -- receiver statistics (RFC 3550 A.1, A.3, A.8) -------------------------------------------------


def feed(stats: ReceiveStats, sequences: list[int], step: int = 160, pace: float = 0.02) -> None:
    """Packets with those sequence numbers, timestamps and arrival times following them."""
    for seq in sequences:
        stats.update(seq, (seq * step) & 0xFFFFFFFF, seq * pace)


def test_nothing_received() -> None:
    stats = ReceiveStats(8000)
    assert (stats.received, stats.expected, stats.lost, stats.fraction_lost) == (0, 0, 0, 0)
    assert stats.jitter == 0
    assert stats.report_block() == ReportBlock(0, 0, 0, 0, 0, 0, 0)


def test_in_order_stream() -> None:
    stats = ReceiveStats(8000, ssrc=0x1234)
    feed(stats, list(range(100, 200)))
    assert (stats.received, stats.expected, stats.lost, stats.fraction_lost) == (100, 100, 0, 0)
    assert stats.highest_sequence == 199
    assert stats.jitter == pytest.approx(0, abs=1e-6)
    assert stats.jitter_ms == pytest.approx(0, abs=1e-6)


def test_wrap_around() -> None:
    stats = ReceiveStats(8000)
    sequences = [65530, 65531, 65532, 65533, 65534, 65535, 0, 1, 2, 3]
    for i, seq in enumerate(sequences):
        stats.update(seq, 160 * i, 0.02 * i)
    assert (stats.received, stats.expected, stats.lost) == (10, 10, 0)
    assert stats.highest_sequence == 65536 + 3
    assert stats.jitter == pytest.approx(0, abs=1e-6)
    assert stats.report_block().highest_seq == 0x0001_0003


def test_wrap_twice() -> None:
    stats = ReceiveStats(8000)
    for i in range(2 * 65536 + 10):
        stats.update(i & 0xFFFF, 160 * i, 0.02 * i)
    assert stats.highest_sequence == 2 * 65536 + 9
    assert (stats.expected, stats.lost) == (2 * 65536 + 10, 0)


def test_late_packet_across_wrap() -> None:
    stats = ReceiveStats(8000)
    for seq in (65534, 65535, 1, 0, 2):
        stats.update(seq, 0, 0.0)
    assert stats.highest_sequence == 65536 + 2
    assert (stats.received, stats.expected, stats.lost) == (5, 5, 0)


def test_loss_and_fraction_lost() -> None:
    stats = ReceiveStats(8000, ssrc=7)
    feed(stats, [s for s in range(100) if s % 10 != 3])  # 10 of 100 lost
    assert (stats.received, stats.expected, stats.lost) == (90, 100, 10)
    assert stats.fraction_lost == 10 * 256 // 100 == 25
    block = stats.report_block(lsr=0xB39F3C2A, dlsr=0x14000)
    assert block == ReportBlock(7, 25, 10, 99, 0, 0xB39F3C2A, 0x14000)
    # A new interval: 50 more, none lost; the cumulative count stays.
    feed(stats, list(range(100, 150)))
    assert (stats.fraction_lost, stats.lost) == (0, 10)
    assert stats.report_block().fraction_lost == 0
    feed(stats, [150, 151, 154, 155])  # 2 of 6 lost
    assert stats.fraction_lost == 2 * 256 // 6
    assert stats.lost == 12


def test_loss_at_the_end_counts_when_later_packets_come() -> None:
    stats = ReceiveStats(8000)
    feed(stats, [0, 1, 2, 9])
    assert (stats.expected, stats.lost, stats.fraction_lost) == (10, 6, 6 * 256 // 10)


def test_duplicates_make_loss_negative() -> None:
    stats = ReceiveStats(8000)
    feed(stats, [0, 1, 2, 3, 3, 4, 2, 5])
    assert (stats.received, stats.expected, stats.lost) == (8, 6, -2)
    assert stats.fraction_lost == 0
    assert stats.report_block().cumulative_lost == -2


def test_reordering() -> None:
    stats = ReceiveStats(8000)
    feed(stats, [0, 1, 3, 2, 4, 6, 5, 7])
    assert (stats.received, stats.expected, stats.lost) == (8, 8, 0)
    assert stats.highest_sequence == 7


def test_jump_is_believed_only_when_followed() -> None:
    stats = ReceiveStats(8000)
    feed(stats, list(range(10)))
    stats.update(30_000, 0, 0.2)  # a stray packet far ahead: not counted
    feed(stats, [10, 11])
    assert (stats.received, stats.expected, stats.highest_sequence) == (12, 12, 11)
    # The source restarts at 40000: believed on the second packet, which starts the counts.
    stats.update(40_000, 999_000, 1.0)
    stats.update(40_001, 999_160, 1.02)
    stats.update(40_002, 999_320, 1.04)
    assert (stats.received, stats.expected, stats.lost) == (2, 2, 0)
    assert stats.highest_sequence == 40_002


def test_jitter_of_a_known_pattern() -> None:
    # RFC 3550 A.8: J += (|D| - J) / 16, D the change in transit time, in timestamp units.
    stats = ReceiveStats(8000)
    stats.update(0, 0, 10.000)
    stats.update(1, 160, 10.020)  # on time: D = 0, J = 0
    assert stats.jitter == pytest.approx(0, abs=1e-6)
    stats.update(2, 320, 10.045)  # 5 ms late: D = 40, J = 40/16 = 2.5
    assert stats.jitter == pytest.approx(2.5)
    stats.update(3, 480, 10.060)  # back on time: D = -40, J = 2.5 + 37.5/16 = 4.84375
    assert stats.jitter == pytest.approx(4.84375)
    assert stats.jitter_ms == pytest.approx(4.84375 / 8)
    assert stats.report_block().jitter == 4


def test_jitter_of_steady_alternation_converges() -> None:
    # Packets alternately 10 ms early and on time: |D| = 80 every time, so J tends to 80.
    stats = ReceiveStats(8000)
    for i in range(400):
        stats.update(i, 160 * i, 0.02 * i - (0.01 if i % 2 else 0.0))
    assert stats.jitter == pytest.approx(80, rel=1e-6)
    assert stats.jitter_ms == pytest.approx(10, rel=1e-6)


def test_jitter_across_timestamp_wrap() -> None:
    stats = ReceiveStats(8000)
    base = (1 << 32) - 320
    for i in range(6):
        stats.update(i, (base + 160 * i) & 0xFFFFFFFF, 0.02 * i)
    assert stats.jitter == pytest.approx(0, abs=1e-6)


def test_jitter_uses_the_clock_rate() -> None:
    stats = ReceiveStats(16000)
    stats.update(0, 0, 0.0)
    stats.update(1, 320, 0.025)  # 5 ms late at 16 kHz: D = 80, J = 5
    assert stats.jitter == pytest.approx(5)
    assert stats.jitter_ms == pytest.approx(5 / 16)


def test_report_block_clamps_cumulative_loss() -> None:
    # Jumps just under MAX_DROPOUT count as loss: 2,900 of them lose more than 24 bits hold.
    stats = ReceiveStats(8000)
    for i in range(2900):
        stats.update(i * 2999 & 0xFFFF, 0, 0.0)
    assert stats.lost > 0x7FFFFF
    block = stats.report_block()
    assert block.cumulative_lost == 0x7FFFFF
    assert block.fraction_lost == 255
    assert block.highest_seq == stats.highest_sequence
