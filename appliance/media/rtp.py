"""RTP data packets (RFC 3550 §5.1) and receiver statistics (RFC 3550 Appendix A.1, A.3, A.8).

`RtpPacket` parses a packet into its header fields and prints it back byte for byte. The relay,
which forwards every packet of a call, does not build objects: it reads the fixed header with
`header_fields` and renumbers it with `rewrite` (sequence, timestamp and SSRC of the outgoing
leg, as a B2BUA must per RFC 7667 §3.2.2), and tells RTCP from RTP on a muxed port with `is_rtcp`
(RFC 5761 §4).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from appliance.media.rtcp import ReportBlock

__all__ = [
    "HEADER_SIZE",
    "ReceiveStats",
    "RtpError",
    "RtpPacket",
    "header_fields",
    "is_rtcp",
    "rewrite",
]

HEADER_SIZE = 12
"""Bytes of the fixed header, before any CSRC, extension or payload."""

RTP_VERSION = 2

_FIXED = struct.Struct("!BBHII")
_FIELDS = struct.Struct("!xBHII")
_EXTENSION = struct.Struct("!2sH")


class RtpError(ValueError):
    """Bytes that are not a valid RTP packet, or packet fields that cannot be sent. `str()` is
    the reason."""


@dataclass(slots=True)
class RtpPacket:
    """One RTP packet. `bytes(RtpPacket.parse(data)) == data` for every packet that parses.

    `extension` is the header extension as sent, without its length word: the 16-bit profile
    (`b"\\xbe\\xde"` for RFC 8285 one-byte headers) followed by the data, a multiple of 4 bytes.
    `padding` is the trailing padding as sent (its last octet counts the padding octets,
    itself included); it is empty exactly when the P bit is clear, so `bool(padding)` is the
    P bit.
    """

    version: int = RTP_VERSION
    padding: bytes = b""
    extension: bytes | None = None
    marker: bool = False
    payload_type: int = 0
    sequence: int = 0
    timestamp: int = 0
    ssrc: int = 0
    csrc: list[int] = field(default_factory=list)
    payload: bytes = b""

    @property
    def padding_size(self) -> int:
        """Octets of padding, the count octet included; 0 when the P bit is clear."""
        return len(self.padding)

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        size = len(data)
        if size < HEADER_SIZE:
            raise RtpError(f"RTP header truncated: {size} bytes, need {HEADER_SIZE}")
        b0, b1, sequence, timestamp, ssrc = _FIXED.unpack_from(data)
        version = b0 >> 6
        if version != RTP_VERSION:
            raise RtpError(f"RTP version {version}, expected {RTP_VERSION}")
        end = size
        padding = b""
        if b0 & 0x20:
            count = data[-1]
            if count == 0:
                raise RtpError("RTP padding count is 0")
            end = size - count
            if end < HEADER_SIZE:
                raise RtpError(f"RTP padding count {count} exceeds the {size}-byte packet")
            padding = data[end:]
        csrc_count = b0 & 0x0F
        offset = HEADER_SIZE + 4 * csrc_count
        if offset > end:
            raise RtpError(
                f"RTP CSRC count {csrc_count} needs {offset} header bytes, packet has {end}"
            )
        csrc = list(struct.unpack_from(f"!{csrc_count}I", data, HEADER_SIZE))
        extension = None
        if b0 & 0x10:
            if offset + 4 > end:
                raise RtpError("RTP header extension truncated")
            profile, words = _EXTENSION.unpack_from(data, offset)
            stop = offset + 4 + 4 * words
            if stop > end:
                raise RtpError(f"RTP header extension length {words} words exceeds the packet")
            extension = profile + data[offset + 4 : stop]
            offset = stop
        return cls(
            version=version,
            padding=padding,
            extension=extension,
            marker=bool(b1 & 0x80),
            payload_type=b1 & 0x7F,
            sequence=sequence,
            timestamp=timestamp,
            ssrc=ssrc,
            csrc=csrc,
            payload=data[offset:end],
        )

    def __bytes__(self) -> bytes:
        if not 0 <= self.version <= 3:
            raise RtpError(f"RTP version {self.version} does not fit 2 bits")
        if not 0 <= self.payload_type <= 127:
            raise RtpError(f"RTP payload type {self.payload_type} out of range 0-127")
        if not 0 <= self.sequence <= 0xFFFF:
            raise RtpError(f"RTP sequence number {self.sequence} out of range 0-65535")
        if not 0 <= self.timestamp <= 0xFFFFFFFF or not 0 <= self.ssrc <= 0xFFFFFFFF:
            raise RtpError("RTP timestamp and SSRC must fit 32 bits")
        if len(self.csrc) > 15:
            raise RtpError(f"RTP packet has {len(self.csrc)} CSRCs, at most 15 fit")
        if any(not 0 <= c <= 0xFFFFFFFF for c in self.csrc):
            raise RtpError("RTP CSRC must fit 32 bits")
        padding = self.padding
        if padding and padding[-1] != len(padding):
            raise RtpError(
                f"RTP padding of {len(padding)} bytes must end with its count {len(padding)}"
            )
        b0 = self.version << 6 | len(self.csrc)
        if padding:
            b0 |= 0x20
        extension = self.extension
        if extension is not None:
            words, rest = divmod(len(extension) - 2, 4)
            if words < 0 or rest or words > 0xFFFF:
                raise RtpError(
                    "RTP header extension must be a 2-byte profile and a multiple of 4 bytes"
                )
            b0 |= 0x10
        parts = [
            _FIXED.pack(
                b0, self.marker << 7 | self.payload_type, self.sequence, self.timestamp, self.ssrc
            )
        ]
        if self.csrc:
            parts.append(struct.pack(f"!{len(self.csrc)}I", *self.csrc))
        if extension is not None:
            parts.append(_EXTENSION.pack(extension[:2], words) + extension[2:])
        parts.append(self.payload)
        parts.append(padding)
        return b"".join(parts)


def header_fields(data: bytes) -> tuple[int, int, int, int, bool]:
    """`(payload_type, sequence, timestamp, ssrc, marker)` of a packet of at least 12 bytes."""
    b1, sequence, timestamp, ssrc = _FIELDS.unpack_from(data)
    return b1 & 0x7F, sequence, timestamp, ssrc, b1 > 0x7F


def rewrite(
    data: bytes, *, sequence: int, timestamp: int, ssrc: int, payload_type: int | None = None
) -> bytes:
    """`data` (at least 12 bytes) with new sequence number, timestamp, SSRC and, when given,
    payload type; marker, CSRCs, extension, payload and padding stay as they were.

    The numbers are taken modulo their field size (2^16, 2^32), so an offset can be added to the
    incoming values without wrapping them first.
    """
    b1 = data[1]
    if payload_type is not None:
        b1 = (b1 & 0x80) | (payload_type & 0x7F)
    return (
        _FIXED.pack(data[0], b1, sequence & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc & 0xFFFFFFFF)
        + data[12:]
    )


def is_rtcp(data: bytes) -> bool:
    """Whether a datagram on an RTP/RTCP-muxed port is RTCP: its second octet (the RTCP packet
    type, or the RTP marker bit and payload type) is in 192-223 (RFC 5761 §4)."""
    return len(data) > 1 and 192 <= data[1] <= 223


RTP_SEQ_MOD = 1 << 16
MAX_DROPOUT = 3000
"""A jump forward of fewer sequence numbers than this is loss (RFC 3550 A.1)."""
MAX_MISORDER = 100
"""A jump back of up to this many sequence numbers is a late packet (RFC 3550 A.1)."""


class ReceiveStats:
    """What a receiver counts about one source (one SSRC) for its RTCP report blocks.

    Sequence numbers are extended across wrap-around and a restarted source is recognised as in
    RFC 3550 A.1, without the probation: the first packet is trusted, since a B2BUA learns the
    source from signalling. Duplicates count as received, so `lost` can be negative, as the RFC
    says. Jitter is the A.8 estimate in timestamp units, from arrival times in seconds.
    """

    __slots__ = (
        "_bad_seq",
        "_base_seq",
        "_cycles",
        "_expected_prior",
        "_jitter",
        "_last_arrival",
        "_last_timestamp",
        "_max_seq",
        "_received",
        "_received_prior",
        "clock_rate",
        "ssrc",
    )

    def __init__(self, clock_rate: int, ssrc: int = 0) -> None:
        self.clock_rate = clock_rate
        self.ssrc = ssrc
        self._max_seq = -1  # no packet yet
        self._base_seq = 0
        self._bad_seq = RTP_SEQ_MOD + 1
        self._cycles = 0
        self._received = 0
        self._received_prior = 0
        self._expected_prior = 0
        self._jitter = 0.0
        self._last_arrival = 0.0
        self._last_timestamp = 0

    def _init_seq(self, sequence: int) -> None:
        self._base_seq = sequence
        self._max_seq = sequence
        self._bad_seq = RTP_SEQ_MOD + 1
        self._cycles = 0
        self._received = 0
        self._received_prior = 0
        self._expected_prior = 0

    def update(self, sequence: int, timestamp: int, arrival: float) -> None:
        """Count a packet with RTP `sequence` and `timestamp` that arrived at `arrival` seconds
        (any monotonic clock)."""
        if self._max_seq < 0:
            self._init_seq(sequence)
        else:
            udelta = (sequence - self._max_seq) % RTP_SEQ_MOD
            if udelta < MAX_DROPOUT:
                if sequence < self._max_seq:  # wrapped
                    self._cycles += RTP_SEQ_MOD
                self._max_seq = sequence
            elif udelta <= RTP_SEQ_MOD - MAX_MISORDER:
                if sequence != self._bad_seq:
                    # A very large jump: believe it only if the next packet follows it.
                    self._bad_seq = (sequence + 1) % RTP_SEQ_MOD
                    return
                self._init_seq(sequence)  # the source restarted: its timeline too
                self._last_arrival = arrival
                self._last_timestamp = timestamp
            # else a duplicate or a late packet: counted, max_seq unchanged
            # A.8: the change in relative transit time, timestamps compared modulo 2^32.
            ts_change = (timestamp - self._last_timestamp + (1 << 31)) % (1 << 32) - (1 << 31)
            transit_change = (arrival - self._last_arrival) * self.clock_rate - ts_change
            if self._received:
                self._jitter += (abs(transit_change) - self._jitter) / 16
        self._received += 1
        self._last_arrival = arrival
        self._last_timestamp = timestamp

    @property
    def received(self) -> int:
        """Packets counted, duplicates included."""
        return self._received

    @property
    def highest_sequence(self) -> int:
        """The extended highest sequence number received (cycles in the upper 16 bits)."""
        return self._cycles + max(self._max_seq, 0)

    @property
    def expected(self) -> int:
        if self._max_seq < 0:
            return 0
        return self._cycles + self._max_seq - self._base_seq + 1

    @property
    def lost(self) -> int:
        """Cumulative packets lost: expected less received; negative when duplicates came."""
        return self.expected - self._received

    @property
    def fraction_lost(self) -> int:
        """Fraction of the packets expected since the last `report_block` that were lost, in
        256ths (RFC 3550 A.3); 0 when packets were duplicated rather than lost."""
        expected_interval = self.expected - self._expected_prior
        lost_interval = expected_interval - (self._received - self._received_prior)
        if expected_interval == 0 or lost_interval <= 0:
            return 0
        return (lost_interval << 8) // expected_interval

    @property
    def jitter(self) -> float:
        """Interarrival jitter in timestamp units (RFC 3550 A.8)."""
        return self._jitter

    @property
    def jitter_ms(self) -> float:
        return self._jitter * 1000 / self.clock_rate

    def report_block(self, *, lsr: int = 0, dlsr: int = 0) -> ReportBlock:
        """The RTCP report block for this source, which starts a new `fraction_lost` interval.

        `lsr` and `dlsr` are the middle 32 bits of the NTP timestamp of the last SR received
        from the source and the delay since then in 1/65536 s (0 when none came).
        """
        fraction = self.fraction_lost
        self._expected_prior = self.expected
        self._received_prior = self._received
        return ReportBlock(
            ssrc=self.ssrc,
            fraction_lost=fraction,
            cumulative_lost=max(-0x800000, min(self.lost, 0x7FFFFF)),
            highest_seq=self.highest_sequence & 0xFFFFFFFF,
            jitter=min(int(self._jitter), 0xFFFFFFFF),
            lsr=lsr,
            dlsr=dlsr,
        )
