"""Tests of `appliance.media.rtcp`: compound packets as PJSIP and baresip send them parse into
SR, RR, SDES and BYE and print back byte for byte (RFC 3550 §6.4-6.6), unknown types are kept
raw, the exact reason of every parse error, and the SR/RR builders."""

from __future__ import annotations

import re

import pytest

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
    build_rr,
    build_sr,
    ntp_middle,
    ntp_timestamp,
    parse_compound,
)
from appliance.media.rtp import ReceiveStats


def exact(reason: str) -> str:
    return rf"\A{re.escape(reason)}\Z"


def hexa(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", "").replace("\n", ""))


# PJSIP's periodic report: an SR with one report block, then SDES with its 16-character random
# CNAME (pjsua's default), 80 bytes.
PJSIP_SR_SDES = hexa(
    "81c8000c 1d6b3f2a e9c0b3a1 4fdf3b64 0002b8c0 000000fa 00009c40"  # SR: sender info
    " 5a3c9e01 00000000 00011f40 0000001e b39f3c2a 00014000"  # its report block
    " 81ca0006 1d6b3f2a 01103462 30613264 32663334 63356231 65360000"  # SDES CNAME
)

# A receive-only phone hanging up: RR, SDES with a user@host CNAME, BYE.
RR_SDES_BYE = hexa(
    "81c90007 6f1e7a33 1d6b3f2a 0c000003 00010b22 00000029 b3a0bc2a 0000c000"
    " 81ca0007 6f1e7a33 0112616c 69636540 3139322e 3136382e 312e3230 00000000"
    " 81cb0001 6f1e7a33"
)

# An RR with no blocks, a PLI (RFC 4585 PSFB, FMT 1) and an APP packet: the last two kept raw.
RR_PLI_APP = hexa(
    "80c90001 6f1e7a33 81ce0002 6f1e7a33 1d6b3f2a 85cc0003 6f1e7a33 41424344 01020304"
)


def test_pjsip_sender_report() -> None:
    compound = RtcpCompound.parse(PJSIP_SR_SDES)
    assert compound.packets == [
        SenderReport(
            ssrc=0x1D6B3F2A,
            ntp_timestamp=0xE9C0B3A1_4FDF3B64,
            rtp_timestamp=0x0002B8C0,
            packet_count=250,
            octet_count=40_000,
            reports=[ReportBlock(0x5A3C9E01, 0, 0, 0x00011F40, 30, 0xB39F3C2A, 0x00014000)],
        ),
        SourceDescription([SdesChunk(0x1D6B3F2A, [(1, b"4b0a2d2f34c5b1e6")])]),
    ]
    assert compound.cname == "4b0a2d2f34c5b1e6"
    assert bytes(compound) == PJSIP_SR_SDES


def test_receiver_report_and_bye() -> None:
    compound = RtcpCompound.parse(RR_SDES_BYE)
    rr, sdes, bye = compound.packets
    assert rr == ReceiverReport(
        0x6F1E7A33, [ReportBlock(0x1D6B3F2A, 12, 3, 0x00010B22, 41, 0xB3A0BC2A, 0x0000C000)]
    )
    assert isinstance(sdes, SourceDescription)
    assert sdes.chunks[0].cname == "alice@192.168.1.20"
    assert bye == Bye([0x6F1E7A33])
    assert bytes(compound) == RR_SDES_BYE


def test_unknown_types_kept_raw() -> None:
    packets = parse_compound(RR_PLI_APP)
    assert packets == [
        ReceiverReport(0x6F1E7A33),
        UnknownRtcpPacket(206, 1, hexa("6f1e7a33 1d6b3f2a")),
        UnknownRtcpPacket(204, 5, hexa("6f1e7a33 41424344 01020304")),
    ]
    assert bytes(RtcpCompound(packets)) == RR_PLI_APP


def test_negative_cumulative_loss() -> None:
    block = ReportBlock(1, 0, -5, 100, 0, 0, 0)
    data = bytes(block)
    assert data[5:8] == b"\xff\xff\xfb"
    assert ReportBlock.parse(data) == block


def test_profile_extension_and_padding() -> None:
    # An RR with 4 bytes of profile-specific extension and 8 bytes of padding.
    data = (
        hexa("a1c9000a 00000001")
        + bytes(ReportBlock(2, 1, 2, 3, 4, 5, 6))
        + hexa("cafebabe 00000000 00000008")
    )
    rr = ReceiverReport.parse(data)
    assert rr.reports == [ReportBlock(2, 1, 2, 3, 4, 5, 6)]
    assert rr.extension == hexa("cafebabe")
    assert rr.padding == hexa("00000000 00000008")
    assert bytes(rr) == data


def test_sdes_with_several_items_and_chunks() -> None:
    sdes = SourceDescription(
        [
            SdesChunk(1, [(1, b"user@host"), (2, b"Alice"), (6, b"baresip v1.0.0")]),
            SdesChunk(2, []),  # no items: the null item and three null octets
            SdesChunk(3, [(1, b"ab")]),  # items end on a boundary: four null octets
        ]
    )
    data = bytes(sdes)
    assert len(data) % 4 == 0
    assert SourceDescription.parse(data) == sdes
    assert data.endswith(hexa("00000002 00000000 00000003 01026162 00000000"))


def test_bye_with_reason() -> None:
    bye = Bye([1, 2], b"teardown")
    data = bytes(bye)
    assert data == hexa("82cb0005 00000001 00000002 08746561 72646f77 6e000000")
    assert Bye.parse(data) == bye
    empty = Bye([], b"")
    assert bytes(empty) == hexa("80cb0001 00000000")
    assert Bye.parse(bytes(empty)) == empty


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "RTCP compound packet is empty"),
        (b"\x81\xc8\x00", "RTCP header truncated: 3 bytes, need 4"),
        (PJSIP_SR_SDES + b"\x81", "RTCP header truncated: 1 bytes, need 4"),
        (b"\x41" + PJSIP_SR_SDES[1:], "RTCP version 1, expected 2"),
        (PJSIP_SR_SDES[:51], "RTCP length 12 words exceeds the 51 bytes left"),
        (hexa("a0c90001 00000000"), "RTCP padding count 0 is invalid for a 8-byte packet"),
        (hexa("a0c90001 00000005"), "RTCP padding count 5 is invalid for a 8-byte packet"),
        (hexa("a1c90002 00000001 00000004"), "RTCP RR with 1 report blocks needs 32 bytes, has 8"),
        (hexa("80c80001 00000001"), "RTCP SR with 0 report blocks needs 28 bytes, has 8"),
        (hexa("81ca0000"), "RTCP SDES chunk truncated"),
        (hexa("81ca0001 00000001"), "RTCP SDES chunk has no end"),
        (hexa("81ca0002 00000001 01056162"), "RTCP SDES item truncated"),
        (hexa("81ca0002 00000001 01016162"), "RTCP SDES item truncated"),
        (hexa("81ca0002 00000001 00000100"), "RTCP SDES chunk not padded with null octets"),
        (hexa("81ca0002 00000001 01026162"), "RTCP SDES chunk has no end"),
        (hexa("81ca0003 00000001 01016100 00000000"), "RTCP SDES has 4 bytes after its 1 chunks"),
        (hexa("82cb0001 00000001"), "RTCP BYE with 2 sources needs 12 bytes, has 8"),
        (hexa("81cb0002 00000001 05616263"), "RTCP BYE reason length does not match the packet"),
        (hexa("81cb0003 00000001 02616200 00000000"), "RTCP BYE reason length does not match "
         "the packet"),
        (hexa("81cb0002 00000001 02616201"), "RTCP BYE reason not padded with null octets"),
    ],
)  # fmt: skip
def test_parse_errors(data: bytes, reason: str) -> None:
    with pytest.raises(RtcpError, match=exact(reason)):
        RtcpCompound.parse(data)


def test_single_packet_parse_errors() -> None:
    with pytest.raises(RtcpError, match=exact("RTCP packet followed by 28 more bytes")):
        SenderReport.parse(PJSIP_SR_SDES)
    with pytest.raises(RtcpError, match=exact("RTCP packet type 200 is not a ReceiverReport")):
        ReceiverReport.parse(PJSIP_SR_SDES[:52])
    with pytest.raises(RtcpError, match=exact("RTCP packet type 202 is not a UnknownRtcpPacket")):
        UnknownRtcpPacket.parse(PJSIP_SR_SDES[52:])
    with pytest.raises(RtcpError, match=exact("RTCP report block is 23 bytes, expected 24")):
        ReportBlock.parse(bytes(23))


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (ReceiverReport(1, [ReportBlock(0, 0, 0, 0, 0, 0, 0)] * 32),
         "RTCP packet has 32 report blocks, at most 31 fit"),
        (ReceiverReport(1, [ReportBlock(0, 0, 0x800000, 0, 0, 0, 0)]),
         "RTCP cumulative lost 8388608 does not fit 24 bits"),
        (ReceiverReport(1, [ReportBlock(0, 256, 0, 0, 0, 0, 0)]),
         "RTCP fraction lost 256 out of range 0-255"),
        (ReceiverReport(1, [ReportBlock(0, 0, 0, 1 << 32, 0, 0, 0)]),
         "RTCP report block field does not fit 32 bits"),
        (ReceiverReport(-1), "RTCP SSRC -1 does not fit 32 bits"),
        (ReceiverReport(1, extension=b"ab"), "RTCP packet of 10 bytes is not a whole number of "
         "32-bit words"),
        (ReceiverReport(1, padding=b"\x00\x00\x00\x03"), "RTCP padding of 4 bytes must end with "
         "its count"),
        (SenderReport(1, 1 << 64, 0, 0, 0), "RTCP NTP timestamp does not fit 64 bits"),
        (SenderReport(1, 0, 0, -1, 0), "RTCP packet count -1 does not fit 32 bits"),
        (SourceDescription([SdesChunk(1)] * 32), "RTCP SDES has 32 chunks, at most 31 fit"),
        (SourceDescription([SdesChunk(1, [(0, b"x")])]), "RTCP SDES item needs a type of 1-255 "
         "and at most 255 bytes"),
        (SourceDescription([SdesChunk(1, [(1, bytes(256))])]), "RTCP SDES item needs a type of "
         "1-255 and at most 255 bytes"),
        (Bye(list(range(32))), "RTCP BYE has 32 sources, at most 31 fit"),
        (Bye([1], bytes(256)), "RTCP BYE reason longer than 255 bytes"),
        (UnknownRtcpPacket(256, 0), "RTCP packet type 256 out of range 0-255"),
        (UnknownRtcpPacket(204, 32), "RTCP count 32 out of range 0-31"),
    ],
)  # fmt: skip
def test_serialise_errors(packet: RtcpPacket, reason: str) -> None:
    with pytest.raises(RtcpError, match=exact(reason)):
        bytes(packet)


# -- builders -----------------------------------------------------------------------------------


def test_ntp_timestamp() -> None:
    assert ntp_timestamp(0.0) == 2_208_988_800 << 32
    assert ntp_timestamp(1.5) == (2_208_988_801 << 32) | 0x8000_0000
    assert ntp_middle(0xE9C0B3A1_4FDF3B64) == 0xB3A14FDF


def test_build_rr() -> None:
    assert build_rr(0x6F1E7A33) == hexa("80c90001 6f1e7a33")
    block = ReportBlock(0x1D6B3F2A, 12, 3, 0x00010B22, 41, 0xB3A0BC2A, 0x0000C000)
    assert build_rr(0x6F1E7A33, block, cname="alice@192.168.1.20") == RR_SDES_BYE[:-8]


def test_build_sr() -> None:
    block = ReportBlock(0x5A3C9E01, 0, 0, 0x00011F40, 30, 0xB39F3C2A, 0x00014000)
    data = build_sr(
        0x1D6B3F2A, 0xE9C0B3A1_4FDF3B64, 0x0002B8C0, 250, 40_000, block, cname="4b0a2d2f34c5b1e6"
    )
    assert data == PJSIP_SR_SDES
    assert build_sr(1, 2, 3, 4, 5) == hexa("80c80006 00000001 00000000 00000002 00000003 00000004"
                                           " 00000005")  # fmt: skip


def test_rr_from_receive_stats() -> None:
    stats = ReceiveStats(8000, ssrc=0x1D6B3F2A)
    for seq in range(1000, 1100):
        if seq not in (1010, 1011):
            stats.update(seq, 160 * seq, 0.02 * seq)
    data = build_rr(0x6F1E7A33, stats.report_block(), cname="pbx")
    rr = parse_compound(data)[0]
    assert isinstance(rr, ReceiverReport)
    assert rr.reports == [ReportBlock(0x1D6B3F2A, 2 * 256 // 100, 2, 1099, 0, 0, 0)]
