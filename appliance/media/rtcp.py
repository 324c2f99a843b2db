"""RTCP packets (RFC 3550 §6.4-6.6): sender and receiver reports, SDES and BYE, in compound
packets; any other packet type (APP, RFC 4585 feedback, RFC 3611 XR) is kept as raw bytes.

Every packet prints back as the bytes it was parsed from, so `bytes(RtcpCompound.parse(data))
== data` for every compound packet that parses.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import TypeAlias, TypeVar

__all__ = [
    "Bye",
    "ReceiverReport",
    "ReportBlock",
    "RtcpCompound",
    "RtcpError",
    "RtcpPacket",
    "SdesChunk",
    "SenderReport",
    "SourceDescription",
    "UnknownRtcpPacket",
    "build_rr",
    "build_sr",
    "ntp_middle",
    "ntp_timestamp",
    "parse_compound",
]

RTCP_VERSION = 2
SR = 200
RR = 201
SDES = 202
BYE = 203

SDES_CNAME = 1
"""SDES item type of the canonical name (RFC 3550 §6.5.1); the other items are kept as sent."""

NTP_EPOCH_OFFSET = 2_208_988_800
"""Seconds from the NTP epoch (1900) to the Unix epoch (1970)."""

_HEADER = struct.Struct("!BBH")
_BLOCK = struct.Struct("!IB3sIIII")
_SENDER_INFO = struct.Struct("!IQIII")
MAX_COUNT = 31


class RtcpError(ValueError):
    """Bytes that are not a valid RTCP packet, or packet fields that cannot be sent. `str()` is
    the reason."""


def ntp_timestamp(unix_time: float) -> int:
    """The 64-bit NTP timestamp (32.32 fixed point, seconds since 1900) of a Unix time."""
    return int((unix_time + NTP_EPOCH_OFFSET) * (1 << 32)) & 0xFFFF_FFFF_FFFF_FFFF


def ntp_middle(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp: an SR's id in a report block's `lsr`."""
    return (ntp >> 16) & 0xFFFFFFFF


@dataclass(slots=True)
class ReportBlock:
    """Reception statistics about one source (RFC 3550 §6.4.1): `fraction_lost` in 256ths,
    `cumulative_lost` signed 24-bit, `highest_seq` extended, `jitter` in timestamp units,
    `lsr`/`dlsr` the last SR's id and the delay since it in 1/65536 s."""

    SIZE = 24

    ssrc: int
    fraction_lost: int
    cumulative_lost: int
    highest_seq: int
    jitter: int
    lsr: int
    dlsr: int

    @classmethod
    def parse(cls, data: bytes) -> ReportBlock:
        if len(data) != cls.SIZE:
            raise RtcpError(f"RTCP report block is {len(data)} bytes, expected {cls.SIZE}")
        return cls._unpack(data, 0)

    @classmethod
    def _unpack(cls, data: bytes, offset: int) -> ReportBlock:
        ssrc, fraction, lost, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(data, offset)
        return cls(
            ssrc, fraction, int.from_bytes(lost, "big", signed=True), highest, jitter, lsr, dlsr
        )

    def __bytes__(self) -> bytes:
        if not -0x800000 <= self.cumulative_lost <= 0x7FFFFF:
            raise RtcpError(f"RTCP cumulative lost {self.cumulative_lost} does not fit 24 bits")
        if not 0 <= self.fraction_lost <= 255:
            raise RtcpError(f"RTCP fraction lost {self.fraction_lost} out of range 0-255")
        try:
            return _BLOCK.pack(
                self.ssrc,
                self.fraction_lost,
                self.cumulative_lost.to_bytes(3, "big", signed=True),
                self.highest_seq,
                self.jitter,
                self.lsr,
                self.dlsr,
            )
        except struct.error:
            raise RtcpError("RTCP report block field does not fit 32 bits") from None


def _blocks(reports: list[ReportBlock]) -> bytes:
    if len(reports) > MAX_COUNT:
        raise RtcpError(f"RTCP packet has {len(reports)} report blocks, at most 31 fit")
    return b"".join(bytes(r) for r in reports)


def _u32(value: int, what: str) -> int:
    if not 0 <= value <= 0xFFFFFFFF:
        raise RtcpError(f"RTCP {what} {value} does not fit 32 bits")
    return value


@dataclass(slots=True)
class SenderReport:
    """SR (RFC 3550 §6.4.1). `extension` is any profile-specific data after the blocks;
    `padding` the trailing padding as sent (empty when the P bit is clear)."""

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: list[ReportBlock] = field(default_factory=list)
    extension: bytes = b""
    padding: bytes = b""

    @classmethod
    def parse(cls, data: bytes) -> SenderReport:
        return _parse_single(data, cls)

    @classmethod
    def _from_body(cls, count: int, body: bytes, padding: bytes) -> SenderReport:
        need = _SENDER_INFO.size + count * ReportBlock.SIZE
        if len(body) < need:
            raise RtcpError(
                f"RTCP SR with {count} report blocks needs {need + 4} bytes, has {len(body) + 4}"
            )
        ssrc, ntp, rtp_ts, packets, octets = _SENDER_INFO.unpack_from(body)
        reports = [
            ReportBlock._unpack(body, _SENDER_INFO.size + i * ReportBlock.SIZE)
            for i in range(count)
        ]
        return cls(ssrc, ntp, rtp_ts, packets, octets, reports, body[need:], padding)

    def __bytes__(self) -> bytes:
        if not 0 <= self.ntp_timestamp <= 0xFFFF_FFFF_FFFF_FFFF:
            raise RtcpError("RTCP NTP timestamp does not fit 64 bits")
        info = _SENDER_INFO.pack(
            _u32(self.ssrc, "SSRC"),
            self.ntp_timestamp,
            _u32(self.rtp_timestamp, "RTP timestamp"),
            _u32(self.packet_count, "packet count"),
            _u32(self.octet_count, "octet count"),
        )
        body = info + _blocks(self.reports) + self.extension
        return _packet(SR, len(self.reports), body, self.padding)


@dataclass(slots=True)
class ReceiverReport:
    """RR (RFC 3550 §6.4.2)."""

    ssrc: int
    reports: list[ReportBlock] = field(default_factory=list)
    extension: bytes = b""
    padding: bytes = b""

    @classmethod
    def parse(cls, data: bytes) -> ReceiverReport:
        return _parse_single(data, cls)

    @classmethod
    def _from_body(cls, count: int, body: bytes, padding: bytes) -> ReceiverReport:
        need = 4 + count * ReportBlock.SIZE
        if len(body) < need:
            raise RtcpError(
                f"RTCP RR with {count} report blocks needs {need + 4} bytes, has {len(body) + 4}"
            )
        reports = [ReportBlock._unpack(body, 4 + i * ReportBlock.SIZE) for i in range(count)]
        return cls(int.from_bytes(body[:4], "big"), reports, body[need:], padding)

    def __bytes__(self) -> bytes:
        body = _u32(self.ssrc, "SSRC").to_bytes(4, "big") + _blocks(self.reports)
        return _packet(RR, len(self.reports), body + self.extension, self.padding)


@dataclass(slots=True)
class SdesChunk:
    """One source's SDES items, `(type, value)` in the order sent (RFC 3550 §6.5)."""

    ssrc: int
    items: list[tuple[int, bytes]] = field(default_factory=list)

    @property
    def cname(self) -> str | None:
        for kind, value in self.items:
            if kind == SDES_CNAME:
                return value.decode("utf-8", "replace")
        return None

    def __bytes__(self) -> bytes:
        out = bytearray(_u32(self.ssrc, "SSRC").to_bytes(4, "big"))
        for kind, value in self.items:
            if not 1 <= kind <= 255 or len(value) > 255:
                raise RtcpError("RTCP SDES item needs a type of 1-255 and at most 255 bytes")
            out += bytes((kind, len(value))) + value
        out += bytes(4 - len(out) % 4)  # the null item, then null octets to a 32-bit boundary
        return bytes(out)


@dataclass(slots=True)
class SourceDescription:
    """SDES (RFC 3550 §6.5)."""

    chunks: list[SdesChunk] = field(default_factory=list)
    padding: bytes = b""

    @classmethod
    def parse(cls, data: bytes) -> SourceDescription:
        return _parse_single(data, cls)

    @classmethod
    def _from_body(cls, count: int, body: bytes, padding: bytes) -> SourceDescription:
        chunks = []
        offset = 0
        size = len(body)
        for _ in range(count):
            if offset + 4 > size:
                raise RtcpError("RTCP SDES chunk truncated")
            chunk = SdesChunk(int.from_bytes(body[offset : offset + 4], "big"))
            offset += 4
            while True:
                if offset >= size:
                    raise RtcpError("RTCP SDES chunk has no end")
                kind = body[offset]
                if kind == 0:
                    end = (offset + 4) & ~3
                    if end > size or any(body[offset:end]):
                        raise RtcpError("RTCP SDES chunk not padded with null octets")
                    offset = end
                    break
                if offset + 2 > size or offset + 2 + body[offset + 1] > size:
                    raise RtcpError("RTCP SDES item truncated")
                stop = offset + 2 + body[offset + 1]
                chunk.items.append((kind, body[offset + 2 : stop]))
                offset = stop
            chunks.append(chunk)
        if offset != size:
            raise RtcpError(f"RTCP SDES has {size - offset} bytes after its {count} chunks")
        return cls(chunks, padding)

    def __bytes__(self) -> bytes:
        if len(self.chunks) > MAX_COUNT:
            raise RtcpError(f"RTCP SDES has {len(self.chunks)} chunks, at most 31 fit")
        body = b"".join(bytes(c) for c in self.chunks)
        return _packet(SDES, len(self.chunks), body, self.padding)


@dataclass(slots=True)
class Bye:
    """BYE (RFC 3550 §6.6): the sources leaving and an optional reason."""

    sources: list[int] = field(default_factory=list)
    reason: bytes | None = None
    padding: bytes = b""

    @classmethod
    def parse(cls, data: bytes) -> Bye:
        return _parse_single(data, cls)

    @classmethod
    def _from_body(cls, count: int, body: bytes, padding: bytes) -> Bye:
        need = 4 * count
        if len(body) < need:
            raise RtcpError(
                f"RTCP BYE with {count} sources needs {need + 4} bytes, has {len(body) + 4}"
            )
        sources = list(struct.unpack_from(f"!{count}I", body))
        reason = None
        if len(body) > need:
            length = body[need]
            end = (need + 1 + length + 3) & ~3
            if end != len(body):
                raise RtcpError("RTCP BYE reason length does not match the packet")
            reason = body[need + 1 : need + 1 + length]
            if any(body[need + 1 + length : end]):
                raise RtcpError("RTCP BYE reason not padded with null octets")
        return cls(sources, reason, padding)

    def __bytes__(self) -> bytes:
        if len(self.sources) > MAX_COUNT:
            raise RtcpError(f"RTCP BYE has {len(self.sources)} sources, at most 31 fit")
        body = b"".join(_u32(s, "SSRC").to_bytes(4, "big") for s in self.sources)
        if self.reason is not None:
            if len(self.reason) > 255:
                raise RtcpError("RTCP BYE reason longer than 255 bytes")
            text = bytes([len(self.reason)]) + self.reason
            body += text + bytes(-len(text) % 4)
        return _packet(BYE, len(self.sources), body, self.padding)


@dataclass(slots=True)
class UnknownRtcpPacket:
    """A packet of a type this module does not read (APP, feedback, XR...), kept as sent."""

    packet_type: int
    count: int
    body: bytes = b""
    padding: bytes = b""

    @classmethod
    def parse(cls, data: bytes) -> UnknownRtcpPacket:
        return _parse_single(data, cls)

    def __bytes__(self) -> bytes:
        if not 0 <= self.packet_type <= 255:
            raise RtcpError(f"RTCP packet type {self.packet_type} out of range 0-255")
        return _packet(self.packet_type, self.count, self.body, self.padding)


RtcpPacket: TypeAlias = SenderReport | ReceiverReport | SourceDescription | Bye | UnknownRtcpPacket

_KNOWN: dict[int, type[SenderReport | ReceiverReport | SourceDescription | Bye]] = {
    SR: SenderReport,
    RR: ReceiverReport,
    SDES: SourceDescription,
    BYE: Bye,
}


def _packet(packet_type: int, count: int, body: bytes, padding: bytes) -> bytes:
    """The common header (RFC 3550 §6.4.1) in front of `body` and `padding`."""
    if not 0 <= count <= MAX_COUNT:
        raise RtcpError(f"RTCP count {count} out of range 0-31")
    if padding and padding[-1] != len(padding):
        raise RtcpError(f"RTCP padding of {len(padding)} bytes must end with its count")
    size = 4 + len(body) + len(padding)
    if size % 4 or size > 4 * 0x10000:
        raise RtcpError(f"RTCP packet of {size} bytes is not a whole number of 32-bit words")
    b0 = RTCP_VERSION << 6 | (0x20 if padding else 0) | count
    return _HEADER.pack(b0, packet_type, size // 4 - 1) + body + padding


def _parse_one(data: bytes, offset: int) -> tuple[RtcpPacket, int]:
    """The packet at `offset` of a compound packet, and the offset after it."""
    left = len(data) - offset
    if left < 4:
        raise RtcpError(f"RTCP header truncated: {left} bytes, need 4")
    b0, packet_type, words = _HEADER.unpack_from(data, offset)
    version = b0 >> 6
    if version != RTCP_VERSION:
        raise RtcpError(f"RTCP version {version}, expected {RTCP_VERSION}")
    size = 4 * (words + 1)
    if size > left:
        raise RtcpError(f"RTCP length {words} words exceeds the {left} bytes left")
    end = offset + size
    padding = b""
    if b0 & 0x20:
        pad = data[end - 1]
        if pad == 0 or pad > size - 4:
            raise RtcpError(f"RTCP padding count {pad} is invalid for a {size}-byte packet")
        padding = data[end - pad : end]
    body = data[offset + 4 : end - len(padding)]
    count = b0 & 0x1F
    known = _KNOWN.get(packet_type)
    if known is None:
        return UnknownRtcpPacket(packet_type, count, body, padding), end
    return known._from_body(count, body, padding), end


_P = TypeVar("_P", bound=RtcpPacket)


def _parse_single(data: bytes, cls: type[_P]) -> _P:
    packet, end = _parse_one(data, 0)
    if end != len(data):
        raise RtcpError(f"RTCP packet followed by {len(data) - end} more bytes")
    if not isinstance(packet, cls):
        raise RtcpError(f"RTCP packet type {data[1]} is not a {cls.__name__}")
    return packet


@dataclass(slots=True)
class RtcpCompound:
    """The packets of one RTCP datagram, in order (RFC 3550 §6.1).

    The parser does not insist that the first packet is an SR or RR, so that reduced-size RTCP
    (RFC 5506, a lone feedback packet) parses too.
    """

    packets: list[RtcpPacket] = field(default_factory=list)

    @classmethod
    def parse(cls, data: bytes) -> RtcpCompound:
        if not data:
            raise RtcpError("RTCP compound packet is empty")
        packets = []
        offset = 0
        while offset < len(data):
            packet, offset = _parse_one(data, offset)
            packets.append(packet)
        return cls(packets)

    def __bytes__(self) -> bytes:
        return b"".join(bytes(p) for p in self.packets)

    @property
    def cname(self) -> str | None:
        """The CNAME of the first SDES chunk that has one."""
        for packet in self.packets:
            if isinstance(packet, SourceDescription):
                for chunk in packet.chunks:
                    if chunk.cname is not None:
                        return chunk.cname
        return None


def _sdes(ssrc: int, cname: str | None) -> list[RtcpPacket]:
    if cname is None:
        return []
    return [SourceDescription([SdesChunk(ssrc, [(SDES_CNAME, cname.encode())])])]


def parse_compound(data: bytes) -> list[RtcpPacket]:
    """The packets of an RTCP datagram: `RtcpCompound.parse(data).packets`."""
    return RtcpCompound.parse(data).packets


def build_rr(ssrc: int, block: ReportBlock | None = None, *, cname: str | None = None) -> bytes:
    """An RR from `ssrc` with `block` (none before anything was received), followed by an SDES
    CNAME when `cname` is given, as RFC 3550 §6.1 wants in every compound packet."""
    rr = ReceiverReport(ssrc, [block] if block is not None else [])
    return bytes(RtcpCompound([rr, *_sdes(ssrc, cname)]))


def build_sr(
    ssrc: int,
    ntp_timestamp: int,
    rtp_timestamp: int,
    packet_count: int,
    octet_count: int,
    block: ReportBlock | None = None,
    *,
    cname: str | None = None,
) -> bytes:
    """An SR from `ssrc` (with `block` about what it receives, if anything), followed by an SDES
    CNAME when `cname` is given. `ntp_timestamp` is the 64-bit NTP time of `rtp_timestamp`:
    `ntp_timestamp(time.time())`."""
    sr = SenderReport(
        ssrc,
        ntp_timestamp,
        rtp_timestamp,
        packet_count,
        octet_count,
        [block] if block is not None else [],
    )
    return bytes(RtcpCompound([sr, *_sdes(ssrc, cname)]))
