"""A test's own RTP endpoint (RFC 3550) on a UDP socket: the media side of a sipp phone.

sipp does the signalling; the SDP it sends names this socket's port, so what the box sends
to that phone arrives here, where the test can count it and read RFC 4733 events, and what
this endpoint sends (20 ms G.711 packets, RFC 4733 digits) comes from the address the SDP
advertised, so the box's symmetric-RTP latching keeps pointing here.

    with RtpEndpoint() as rtp:
        rtp.start(("127.0.0.1", box_port))       # 20 ms PCMU packets from now on
        rtp.send_digits("1234", payload_type=101)  # RFC 4733 events instead of audio
        rtp.wait_packets(lambda p: p.payload_type == 0, 25)
"""

from __future__ import annotations

import itertools
import os
import queue
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from tests.feed import Feed, FeedClosed

Address = tuple[str, int]

EVENT_DIGITS = "0123456789*#ABCD"
"""RFC 4733 §3.2: DTMF event codes 0-15, in order."""
PACKET_SECONDS = 0.02
SAMPLES = 160
"""8 kHz samples in one 20 ms packet."""
SILENCE = b"\xff" * SAMPLES
"""One packet of G.711 µ-law silence."""
EVENT_PACKETS = 5
"""Packets per RFC 4733 digit (100 ms), the last one (the end) sent three times."""
GAP_PACKETS = 5
"""Audio packets between two digits."""

_HEADER = struct.Struct("!BBHII")


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One received RTP packet (fixed header fields, payload after any CSRCs) and its source."""

    payload_type: int
    marker: bool
    seq: int
    timestamp: int
    ssrc: int
    payload: bytes
    source: Address

    @classmethod
    def parse(cls, data: bytes, source: Address) -> RtpPacket | None:
        """The packet, or None when `data` is not RTP version 2."""
        if len(data) < 12 or data[0] >> 6 != 2:
            return None
        b0, b1, seq, timestamp, ssrc = _HEADER.unpack_from(data)
        start = 12 + 4 * (b0 & 0x0F)
        return cls(b1 & 0x7F, bool(b1 & 0x80), seq, timestamp, ssrc, data[start:], source)

    @property
    def event(self) -> tuple[str, bool, int] | None:
        """RFC 4733 §2.3 payload as (digit, end bit, duration); None if it is too short."""
        if len(self.payload) < 4:
            return None
        code, flags, duration = struct.unpack_from("!BBH", self.payload)
        digit = EVENT_DIGITS[code] if code < len(EVENT_DIGITS) else f"event {code}"
        return digit, bool(flags & 0x80), duration


def digits_of(packets: list[RtpPacket], payload_type: int) -> str:
    """The digits RFC 4733 packets of `payload_type` carry: one per event (its timestamp),
    counted when its end packet is seen (§2.5.1.4), in order."""
    found = []
    ended: set[int] = set()
    for packet in packets:
        event = packet.event if packet.payload_type == payload_type else None
        if event is not None and event[1] and packet.timestamp not in ended:
            ended.add(packet.timestamp)
            found.append(event[0])
    return "".join(found)


def rtp_header(data: bytes) -> tuple[int, bool, int, int] | None:
    """(payload type, marker, sequence number, timestamp) of a raw RTP packet a test read from
    its own socket, None if it is not RTP version 2 (RFC 3550 §5.1)."""
    packet = RtpPacket.parse(data, ("", 0))
    if packet is None:
        return None
    return packet.payload_type, packet.marker, packet.seq, packet.timestamp


class RtpEndpoint:
    """A UDP socket on an even port of `host` that records every RTP packet it receives and,
    once started, sends a 20 ms G.711 stream (one SSRC, continuous sequence and timestamps)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.sock = _even_port_socket(host)
        self.packets: Feed[RtpPacket] = Feed()
        self.arrivals: list[float] = []
        """When each of `packets` arrived (`time.monotonic()`), by the same index."""
        self.sent_at: list[float] = []
        """When each packet sent left (`time.monotonic()`)."""
        self.remote: Address | None = None
        self.sent = 0
        self._digits: queue.SimpleQueue[tuple[str, int]] = queue.SimpleQueue()
        self._audio: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, name="rtp-reader", daemon=True)
        self._sender: threading.Thread | None = None
        self._reader.start()

    @property
    def address(self) -> Address:
        host, port = self.sock.getsockname()[:2]
        return str(host), int(port)

    @property
    def port(self) -> int:
        return self.address[1]

    def _read(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                data, source = self.sock.recvfrom(2048)
            except TimeoutError:
                continue
            except OSError:
                break
            arrived = time.monotonic()
            packet = RtpPacket.parse(data, (str(source[0]), int(source[1])))
            if packet is not None:
                self.arrivals.append(arrived)
                self.packets.append(packet)
        self.packets.close()

    def start(self, remote: Address, payload_type: int = 0, audio: bytes = b"") -> None:
        """Send 20 ms packets of `payload_type` to `remote` until :meth:`close`: `audio` (its
        encoded bytes, round and round: a tone from `sipp.ulaw_tone`), or silence."""
        if self._sender is not None:
            raise RuntimeError("already sending")
        self.remote = remote
        frames = [audio[i : i + SAMPLES] for i in range(0, len(audio) - SAMPLES + 1, SAMPLES)]
        self._sender = threading.Thread(
            target=self._send, args=(remote, payload_type, frames or [SILENCE]),
            name="rtp-sender", daemon=True,
        )  # fmt: skip
        self._sender.start()

    def send_audio(self, payload: bytes) -> None:
        """Send `payload` (encoded in the stream's payload type, e.g. an in-band DTMF tone in
        µ-law) in place of the stream's audio, once, then carry on as before."""
        self._audio.put(payload)

    def send_digits(self, digits: str, payload_type: int) -> None:
        """Send `digits` as RFC 4733 events (in place of audio), once the stream is started."""
        for digit in digits:
            self._digits.put((digit, payload_type))

    def _send(self, remote: Address, payload_type: int, frames: list[bytes]) -> None:
        ssrc = struct.unpack("!I", os.urandom(4))[0]
        seq = struct.unpack("!H", os.urandom(2))[0]
        timestamp = struct.unpack("!I", os.urandom(4))[0]
        plan: list[tuple[int, bool, bytes, int]] = []  # (pt, marker, payload, timestamp)
        marker = True
        due = time.monotonic()
        while not self._stop.is_set():
            if not plan and not self._audio.empty():
                data = self._audio.get()
                plan = [(payload_type, False, data[i : i + SAMPLES], -1)
                        for i in range(0, len(data) - SAMPLES + 1, SAMPLES)]  # fmt: skip
            if not plan and not self._digits.empty():
                digit, event_pt = self._digits.get()
                plan = _event_packets(digit, event_pt, timestamp)
                plan += [(payload_type, False, SILENCE, -1)] * GAP_PACKETS
            if plan:
                pt, mark, payload, event_ts = plan.pop(0)
            else:
                pt, mark, payload, event_ts = payload_type, marker, frames[0], -1
                frames.append(frames.pop(0))
            ts = timestamp if event_ts < 0 else event_ts
            header = _HEADER.pack(0x80, (0x80 if mark else 0) | pt, seq, ts, ssrc)
            try:
                self.sock.sendto(header + payload, remote)
            except OSError:
                break
            self.sent += 1
            self.sent_at.append(time.monotonic())
            marker = False
            seq = (seq + 1) & 0xFFFF
            timestamp = (timestamp + SAMPLES) & 0xFFFFFFFF
            due += PACKET_SECONDS
            # Pacing the stream (20 ms a packet), not synchronising with anything.
            self._stop.wait(max(due - time.monotonic(), 0.0))

    def wait_packets(
        self, predicate: Callable[[RtpPacket], bool], count: int, timeout: float = 15.0,
        since: int = 0,
    ) -> list[RtpPacket]:  # fmt: skip
        """Wait until `count` packets (number `since` or later) satisfy `predicate`; return
        them. Fails listing how many arrived, of which payload types, if they do not."""
        found: list[RtpPacket] = []

        def enough(packet: RtpPacket) -> bool:
            if predicate(packet):
                found.append(packet)
            return len(found) >= count

        try:
            self.packets.wait(enough, timeout, since)
        except FeedClosed as exc:
            got = self.packets.items[since:]
            types = sorted({p.payload_type for p in got})
            raise AssertionError(
                f"RTP on port {self.port}: {len(found)} of {count} wanted packets ({exc}); "
                f"{len(got)} received, payload types {types}"
            ) from None
        return found

    def wait_digits(
        self, payload_type: int, count: int, timeout: float = 15.0, since: int = 0
    ) -> str:
        """Wait until RFC 4733 packets of `payload_type` (number `since` or later) have ended
        `count` events; return the digits (see :func:`digits_of`)."""
        seen: list[RtpPacket] = []

        def enough(packet: RtpPacket) -> bool:
            seen.append(packet)
            return len(digits_of(seen, payload_type)) >= count

        try:
            self.packets.wait(enough, timeout, since)
        except FeedClosed as exc:
            types = sorted({p.payload_type for p in seen})
            raise AssertionError(
                f"RTP on port {self.port}: digits {digits_of(seen, payload_type)!r} in "
                f"payload type {payload_type}, {count} wanted ({exc}); {len(seen)} packets "
                f"received, payload types {types}"
            ) from None
        return digits_of(seen, payload_type)

    def mark(self) -> int:
        """The number of packets received so far (for `since`)."""
        return self.packets.mark()

    def largest_gap(self, since: int, until: int) -> float:
        """The longest time (s) between two packets arriving, packets `since` to `until`."""
        times = self.arrivals[since:until]
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)

    def largest_send_gap(self, start: float, end: float) -> float:
        """The longest time (s) between two packets this endpoint sent in [start, end]
        (`time.monotonic()`): its own pacing, which a busy CPU can stretch."""
        times = [t for t in list(self.sent_at) if start <= t <= end]
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)

    def close(self) -> None:
        self._stop.set()
        if self._sender is not None:
            self._sender.join(timeout=5)
        self.sock.close()
        self._reader.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _event_packets(digit: str, payload_type: int, timestamp: int) -> list[
        tuple[int, bool, bytes, int]]:  # fmt: skip
    """RFC 4733 §2.5: one event, all packets with the timestamp of its start, the duration
    growing by 20 ms a packet, the marker on the first, the end bit on the last (sent 3 times)."""
    code = EVENT_DIGITS.index(digit)
    packets = []
    for i in range(1, EVENT_PACKETS + 1):
        end = i == EVENT_PACKETS
        payload = struct.pack("!BBH", code, (0x80 if end else 0) | 10, SAMPLES * i)
        packets += [(payload_type, i == 1, payload, timestamp)] * (3 if end else 1)
    return packets


def _even_port_socket(host: str) -> socket.socket:
    """A UDP socket bound to an even port of `host` (RTP's convention, RFC 3550 §11)."""
    for _ in range(100):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((host, 0))
        if sock.getsockname()[1] % 2 == 0:
            return sock
        sock.close()
    raise RuntimeError("no even UDP port")
