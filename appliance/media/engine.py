"""The RTP media engine (RFC 3550): media legs on asyncio datagram endpoints, joined in pairs.

A `MediaLeg` is the box's end of one phone's media stream: an RTP and an RTCP socket on an even/
odd port pair. Two connected legs relay packet by packet without decoding when their codecs match,
and transcode when they do not. What each leg sends is one continuous RTP stream of its own (its
own SSRC, sequence numbers and timestamps, RFC 7667 §3.2.1.1 "translator" behaviour), so a phone
sees no discontinuity when the other side is re-INVITEd, transferred or replaced. Symmetric RTP
(RFC 4961) latches a leg onto the address its phone actually sends from, for phones behind NAT,
but only onto a stream that proves itself (RTP bleed, CVE-2017-14099: see `MediaLeg._learn`),
and ports are handed out in no predictable order.
RTCP is terminated: reports from phones are read for their statistics, and each leg sends its
own sender reports.

The engine's interface is narrow (open a leg, set its remote and codec, connect two legs, send
DTMF, release) so that it can later move into worker processes without changing its callers.
On top of the relay sits the media graph (see docs/architecture.md, "Media graph"): a leg can
play a source to its phone, collect digits, be recorded or mixed; all of it runs from one
`MediaClock`, and a plain relayed call that uses none of it decodes nothing.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import secrets
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from appliance.media import rtcp
from appliance.media.clock import MediaClock
from appliance.media.codecs import CODECS, Decoder, Transcoder, make_decoder
from appliance.media.collector import Collector
from appliance.media.dtmf import EVENT_DIGITS, InbandDtmfDetector, TelephoneEvent
from appliance.media.errors import MediaError
from appliance.media.jitter import JitterBuffer
from appliance.media.player import Outlet, Playback
from appliance.media.rtp import ReceiveStats
from appliance.media.sources import Source

if TYPE_CHECKING:  # imported by whoever makes one: a plain call never loads libsrtp
    from appliance.media.mixer import Mixer
    from appliance.media.recorder import Recording, RecordingResult
    from appliance.media.srtp import SrtpContext

__all__ = ["Codec", "LegStats", "MediaEngine", "MediaError", "MediaLeg"]

logger = logging.getLogger(__name__)

Address = tuple[str, int]

_HEAD = struct.Struct("!BBHII")
_SEQ_TS_SSRC = struct.Struct("!HII")
_OWN = -2
"""`MediaLeg._src_ssrc` while the leg sends the box's own audio (no real SSRC is negative)."""


class Attachment(Protocol):
    """A recorder or mixer listening to a leg: told when the leg closes."""

    def detach(self, leg: MediaLeg) -> None: ...


@dataclass(slots=True)
class Codec:
    """What a leg's phone uses: its payload type numbers for the codec and for RFC 4733 events."""

    name: str  # "PCMU", "PCMA", "G722"
    payload_type: int
    dtmf_payload_type: int | None = None
    clock_rate: int = 8000


@dataclass(slots=True)
class LegStats:
    """What one leg received from its phone, and what that phone reported (RTCP)."""

    packets: int
    octets: int
    lost: int
    jitter_ms: float
    sent_packets: int
    remote_lost: int | None
    remote_jitter_ms: float | None


class MediaLeg:
    """The box's end of one phone's RTP stream. Created by `MediaEngine.open_leg`.

    Its sockets are plain non-blocking sockets watched with `loop.add_reader`: one readiness
    event drains every queued packet, and a send is one `sendto` (a packet the kernel cannot
    take is dropped, as a router would). This costs less per packet than asyncio's datagram
    transports, and opening a leg needs no await."""

    READ_BATCH = 64
    """Packets read per readiness event at most, so one busy leg cannot starve the others."""

    def __init__(
        self, engine: MediaEngine, port: int, sock: socket.socket, rtcp_sock: socket.socket
    ) -> None:
        self.engine = engine
        self.port = port
        self.sock = sock
        self.rtcp_sock = rtcp_sock
        self.tx_errors = 0
        self.peer: MediaLeg | None = None
        self.remote: Address | None = None
        self.remote_rtcp: Address | None = None
        self.sdp_remote: Address | None = None
        self._candidate: Address | None = None
        self._candidate_count = 0
        self._candidate_ssrc = -1
        self._candidate_seq = -1
        self.signalled_from: str | None = None
        """The host the phone's SIP came from (its NAT router's address, behind NAT): with the
        SDP's host, the only host a learned source may be on."""
        self.latched = False
        self.connected = False
        self.srtp: SrtpContext | None = None
        """SRTP on this leg (`set_srtp`): None for plain RTP, which then costs one test per
        packet sent and none per packet read."""
        self.codec: Codec | None = None
        self._transcoder: Transcoder | None = None
        self.closed = False
        self.on_dtmf: Callable[[MediaLeg, str], None] | None = None
        self.on_audio: Callable[[MediaLeg, bytes], None] | None = None
        # what the phone sends: every packet counted (the media timeout watches this), and the
        # RFC 3550 statistics of its stream for RTCP and the CDR
        self.rx_packets = 0
        self.rx_octets = 0
        self.rx = ReceiveStats(8000)
        self._last_event_ts = -1
        self.remote_report: rtcp.ReportBlock | None = None
        # the stream this leg sends: one SSRC, continuous sequence numbers and timestamps
        self.ssrc = struct.unpack("!I", os.urandom(4))[0]
        self.tx_packets = 0
        self.tx_octets = 0
        self._src_ssrc = -1
        self._seq_off = 0
        self._ts_off = 0
        self._out_seq = struct.unpack("!H", os.urandom(2))[0]
        self._out_ts = struct.unpack("!I", os.urandom(4))[0]
        self._out_time = 0.0
        self._marker = 0
        # the media graph: all None/empty for a plain relayed call
        self.own_audio = False
        """The box sends its own audio to this phone (a playback, a mixer): nothing relayed
        from the peer is sent to it meanwhile."""
        self.relay_suspended = False
        """This phone's audio is not relayed to the peer (it is in a mixer)."""
        self._playback: Playback | None = None
        self._collector: Collector | None = None
        self._mixer: Mixer | None = None
        self._out: Outlet | None = None
        self._taps: list[JitterBuffer] = []
        self._attached: list[Attachment] = []
        self._inband = False
        self._detector: InbandDtmfDetector | None = None
        self._decoder: Decoder | None = None
        self._decoder_codec = ""
        self._taken_event_ts = -1
        self._dtmf_queue: collections.deque[tuple[bytes, int, bool]] = collections.deque()

    # -- set-up ----------------------------------------------------------------------

    def _readable(self) -> None:
        """Before latching: a packet from anywhere may be the phone's first (symmetric RTP)."""
        for _ in range(self.READ_BATCH):
            try:
                data, addr = self.sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. an ICMP error reported on the socket
                logger.debug("RTP port %d: %s", self.port, exc)
                return
            if len(data) < 12 or data[0] & 0xC0 != 0x80 or self.closed:
                continue
            if self.srtp is not None:  # only what authenticates may latch or be read
                plain = self.srtp.unprotect(data)
                if plain is None:
                    continue
                data = plain
            if not self.latched:
                if addr != self.sdp_remote and not self._learn(addr, data):
                    continue
                self._latch(addr)
            elif addr != self.remote:
                continue  # queued before we latched, from someone else
            self.datagram_received(data)
            if self.connected:
                return  # the rest is read by _readable_connected

    def _readable_connected(self) -> None:
        """Latched: the socket is connected to the phone, so the kernel drops strangers'
        packets, and reading and sending need no addresses (fewer syscall arguments to
        convert, and no tuples for the garbage collector to count)."""
        recv = self.sock.recv
        receive = self.datagram_received if self.srtp is None else self._secure_received
        for _ in range(self.READ_BATCH):
            try:
                data = recv(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # an ICMP port unreachable from the phone, for one
                logger.debug("RTP port %d: %s", self.port, exc)
                return
            receive(data)

    def _secure_received(self, data: bytes) -> None:
        """An SRTP packet from the latched phone: read only once it authenticates."""
        assert self.srtp is not None
        plain = self.srtp.unprotect(data)
        if plain is not None:
            self.datagram_received(plain)

    def set_srtp(self, context: SrtpContext | None) -> None:
        """Protect this leg's media with `context` from now on (None: plain RTP again), as a
        new offer or answer with `a=crypto` says; the other leg of the call is not touched."""
        self.srtp = context  # `_readable_connected` picks its handler at each readiness event

    LEARN_PACKETS = 5
    """Packets in a row of one stream from an address other than the SDP's before the leg
    latches onto it (a phone behind NAT). Packets from the SDP address latch at once."""

    def _learn(self, addr: Address, data: bytes) -> bool:
        """Whether `addr` has proved itself the phone's: LEARN_PACKETS packets in a row from it
        of one stream (one SSRC, each sequence number the last one's successor), from the host
        the SDP or the signalling names when either is known (behind NAT a phone's RTP comes
        from its router, as its SIP does). A stranger spraying the box's ports during ringing,
        or with the SDP address silent, never takes the call's media (Asterisk's `strictrtp`
        learns by sequence numbers alone; the host rule also stops a well-formed stream)."""
        hosts = {h for h in (self.sdp_remote and self.sdp_remote[0], self.signalled_from) if h}
        if hosts and addr[0] not in hosts:
            return False
        seq, _ts, ssrc = _SEQ_TS_SSRC.unpack_from(data, 2)
        if (addr, ssrc) != (self._candidate, self._candidate_ssrc) or seq != (
            self._candidate_seq + 1
        ) & 0xFFFF:  # fmt: skip
            self._candidate, self._candidate_ssrc, self._candidate_count = addr, ssrc, 0
        self._candidate_seq = seq
        self._candidate_count += 1
        return self._candidate_count >= self.LEARN_PACKETS

    def _latch(self, addr: Address) -> None:
        if addr != self.remote:
            self.remote = addr
            self.remote_rtcp = (addr[0], addr[1] + 1)
        self.latched = True
        try:
            self.sock.connect(addr)
        except OSError:
            return  # stays unconnected: sendto works as well
        self.connected = True
        loop = self.engine.loop
        loop.remove_reader(self.sock.fileno())
        loop.add_reader(self.sock.fileno(), self._readable_connected)

    def _unlatch(self) -> None:
        """Latch again: a connected socket is replaced by a new one on the same port (a UDP
        socket cannot portably be disconnected)."""
        self.latched = False
        self._candidate = None
        if not self.connected:
            return
        loop = self.engine.loop
        loop.remove_reader(self.sock.fileno())
        self.sock.close()
        self.connected = False
        family = socket.AF_INET6 if ":" in self.engine.host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.bind((self.engine.host, self.port))
        loop.add_reader(self.sock.fileno(), self._readable)

    def _rtcp_readable(self) -> None:
        for _ in range(self.READ_BATCH):
            try:
                data, addr = self.rtcp_sock.recvfrom(2048)
            except OSError:
                return
            self.rtcp_received(data, addr)

    def _emit(self, packet: bytes) -> None:
        if self.srtp is not None:
            protected = self.srtp.protect(packet)
            if protected is None:
                self.tx_errors += 1
                return
            packet = protected
        try:
            if self.connected:
                self.sock.send(packet)
            else:
                self.sock.sendto(packet, self.remote)  # type: ignore[arg-type]
        except OSError:
            self.tx_errors += 1  # a full socket buffer or an unreachable phone: dropped
            return
        self.tx_packets += 1
        self.tx_octets += len(packet)

    @property
    def address(self) -> Address:
        return (self.engine.advertised, self.port)

    def set_remote(self, host: str, port: int, rtcp_port: int | None = None) -> None:
        """Where the phone said (in SDP) it receives; latching may move it to where it sends from.

        A new address (a re-INVITE moved the media) starts latching again.
        """
        if port == 0 or host in ("0.0.0.0", "::"):
            return  # RFC 2543-style hold: keep sending where we were
        addr = (host, port)
        if addr == self.sdp_remote:  # a re-INVITE that moved nothing: stay latched
            if rtcp_port is not None and not self.latched:
                self.remote_rtcp = (host, rtcp_port)
            return
        self.sdp_remote = addr
        self.remote = addr
        self.remote_rtcp = (host, rtcp_port or port + 1)
        self._unlatch()

    def set_codec(self, codec: Codec) -> None:
        self.codec = codec
        self._update_transcoders()
        if self.peer is not None:
            self.peer._update_transcoders()

    def connect(self, other: MediaLeg) -> None:
        """Relay between this leg and `other` (each one's previous peer is let go)."""
        for leg in (self, other):
            if leg.peer is not None and leg.peer.peer is leg:
                leg.peer.peer = None
                leg.peer._update_transcoders()
        self.peer, other.peer = other, self
        self._update_transcoders()
        other._update_transcoders()

    def disconnect(self) -> None:
        if self.peer is not None and self.peer.peer is self:
            self.peer.peer = None
            self.peer._update_transcoders()
        self.peer = None
        self._update_transcoders()

    def _update_transcoders(self) -> None:
        """What arrives on this leg is converted to the peer's codec when the two differ."""
        peer = self.peer
        if peer is None or self.codec is None or peer.codec is None:
            self._transcoder = None
        elif self.codec.name == peer.codec.name:
            self._transcoder = None  # the same codec both ways: relayed, not transcoded
        elif self._transcoder is None or (self._transcoder.src, self._transcoder.dst) != (
            self.codec.name, peer.codec.name,
        ):  # fmt: skip
            self._transcoder = Transcoder(self.codec.name, peer.codec.name)

    def detect_inband_dtmf(self) -> None:
        """Decode what this leg's phone sends and report DTMF tones in it through
        `dtmf_received` (for phones that send DTMF as audio). Costs a decode per packet: only
        when asked (a collector asks for itself while it is active)."""
        if self.codec is None:
            raise MediaError("no codec negotiated yet")
        self._inband = True
        self._update_listening()

    def _update_listening(self) -> None:
        """Decode received audio only while someone listens: taps, in-band detection."""
        if self._taps or self._inband or self._collector is not None:
            self.on_audio = MediaLeg._listen
        elif self.on_audio is MediaLeg._listen:
            self.on_audio = None
            self._detector = None

    def _listen(self, packet: bytes) -> None:
        codec = self.codec
        start = _payload_start(packet)
        if codec is None or start < 0:
            return
        if self._decoder is None or self._decoder_codec != codec.name:
            self._decoder, self._decoder_codec = make_decoder(codec.name), codec.name
            self._detector = None
        pcm = self._decoder.decode(packet[start:])
        rate = CODECS[codec.name].sample_rate
        if self._inband or self._collector is not None:
            if self._detector is None:
                self._detector = InbandDtmfDetector(rate)
            for digit in self._detector.feed(pcm):
                self._digit(digit)
        if self._taps:
            seq = (packet[2] << 8) | packet[3]
            for tap in self._taps:
                tap.push(seq, pcm, rate)

    def tap(self, rate: int = 8000, *, delay_frames: int = 3) -> JitterBuffer:
        """A jitter buffer of what this phone sends, decoded at `rate` (for a recorder or
        mixer), playing out after `delay_frames` of 20 ms (and holding at most two more);
        `untap` it when done."""
        buf = JitterBuffer(rate, delay_frames, delay_frames + 2)
        self._taps.append(buf)
        self._update_listening()
        return buf

    def untap(self, buf: JitterBuffer) -> None:
        if buf in self._taps:
            self._taps.remove(buf)
            self._update_listening()

    def attach(self, user: Attachment) -> None:
        if user not in self._attached:
            self._attached.append(user)

    def detach(self, user: Attachment) -> None:
        if user in self._attached:
            self._attached.remove(user)

    # -- the box's own audio and digits ----------------------------------------------------

    def play(self, source: Source, on_done: Callable[[bool], None] | None = None) -> Playback:
        """Send `source` to this leg's phone instead of the peer's audio, until it ends
        (on_done(True)) or is stopped (on_done(False)); a playback already running is stopped."""
        if self._playback is not None:
            self._playback.stop()
        playback = Playback(self, source, on_done)
        if self.closed:
            playback.done = True
            return playback
        self._playback = playback
        self._own_audio_changed()
        self.engine.clock.add(playback)
        return playback

    def stop_playback(self) -> None:
        """Stop what the box plays to this leg's phone, if anything (its on_done(False))."""
        if self._playback is not None:
            self._playback.stop()

    def collect(
        self,
        on_done: Callable[[str, str], None],
        *,
        max_digits: int = 1,
        first_timeout: float = 5.0,
        inter_timeout: float = 3.0,
        terminator: str | None = "#",
        stop_playback: bool = True,
    ) -> Collector:
        """Collect digits from this leg's phone (RFC 4733, SIP INFO, in-band): on_done(digits,
        reason) with reason "max", "terminator" or "timeout". Replaces a collector running."""
        if self._collector is not None:
            self._collector.cancel()
        collector = Collector(
            self, on_done, max_digits=max_digits, first_timeout=first_timeout,
            inter_timeout=inter_timeout, terminator=terminator, stop_playback=stop_playback,
        )  # fmt: skip
        self._collector = collector
        self._update_listening()
        return collector

    def dtmf_received(self, digit: str, duration_ms: int = 160) -> None:
        """A digit from this leg's phone that came by SIP INFO: to the collector if one is
        active, else to the `on_dtmf` observer and on to the peer's phone (as an RFC 4733 event
        of `duration_ms`)."""
        if self._digit(digit):
            return
        if self.peer is not None and not self.relay_suspended:
            self.peer.send_dtmf(digit, duration_ms)

    def _digit(self, digit: str) -> bool:
        """Whatever brought it: True when a collector took the digit (not to be relayed)."""
        collector = self._collector
        if collector is not None:
            collector.digit(digit)
            return True
        if self.on_dtmf is not None:
            self.on_dtmf(self, digit)
        return False

    def _outlet(self) -> Outlet:
        if self._out is None:
            self._out = Outlet()
        return self._out

    def _own_audio_changed(self) -> None:
        self.own_audio = self._playback is not None or self._mixer is not None

    def _send_own(self, payload: bytes, pt: int) -> None:
        """One frame of the box's own audio in this leg's stream (after relayed packets or
        silence, the timestamp moves on by the time elapsed, with the marker bit set)."""
        now = time.monotonic()
        marker = 0
        if self._src_ssrc != _OWN:
            elapsed = int((now - self._out_time) * 8000) if self._out_time else 160
            self._out_ts = (self._out_ts + max(elapsed, 160)) & 0xFFFFFFFF
            self._src_ssrc, marker = _OWN, 0x80
        else:
            self._out_ts = (self._out_ts + 160) & 0xFFFFFFFF
        self._out_seq = (self._out_seq + 1) & 0xFFFF
        self._out_time = now
        self._emit(_HEAD.pack(0x80, marker | pt, self._out_seq, self._out_ts, self.ssrc) + payload)

    @property
    def transcoding(self) -> bool:
        return self._transcoder is not None

    # -- receiving ------------------------------------------------------------------------

    def datagram_received(self, data: bytes) -> None:
        """One packet from this leg's phone: counted, reported, relayed to the peer leg."""
        if len(data) < 12 or data[0] & 0xC0 != 0x80:
            return
        if data[0] != 0x80 and _payload_start(data) < 0:
            return  # CSRCs or an extension that overrun the packet: nothing to relay
        b1 = data[1]
        pt = b1 & 0x7F
        if 72 <= pt <= 79:
            return  # RTCP multiplexed on the RTP port (RFC 5761): terminated here
        seq, ts, ssrc = _SEQ_TS_SSRC.unpack_from(data, 2)
        self.rx_packets += 1
        self.rx_octets += len(data)
        codec = self.codec
        if codec is None:
            return
        now = time.monotonic()
        if pt == codec.payload_type:  # (events have a timestamp of their own: not for jitter)
            rx = self.rx
            if ssrc != rx.ssrc:
                rx = self.rx = ReceiveStats(codec.clock_rate, ssrc)
            rx.update(seq, ts, now)
        peer = self.peer
        if pt == codec.payload_type:
            if self.on_audio is not None:
                self.on_audio(self, data)
            if peer is None or peer.own_audio or self.relay_suspended or peer.codec is None:
                return
            if peer.remote is None:
                return
            out_pt = peer.codec.payload_type
            if self._transcoder is not None:
                start = _payload_start(data)
                if start < 0:
                    return
                data = data[:12] + self._transcoder.convert(data[start:])
                data = bytes([0x80, b1]) + data[2:]  # no CSRC/extension/padding after conversion
        elif pt == codec.dtmf_payload_type:
            start = 12 if data[0] == 0x80 else _payload_start(data)
            if len(data) < start + 4:
                return  # no whole event: neither reported nor relayed
            if data[start + 1] & 0x80 and ts != self._last_event_ts:
                self._last_event_ts = ts  # the first end packet of an event (RFC 4733 §2.5.1.4)
                event = data[start]
                digit = EVENT_DIGITS[event] if event < 16 else None
                if digit is not None:
                    self._digit(digit)
            if self._collector is not None:
                self._taken_event_ts = ts  # all of this event is the box's, repeats included
                return
            if self.relay_suspended or ts == self._taken_event_ts:
                return  # the box took these digits: not relayed
            if peer is None or peer.remote is None or peer.codec is None:
                return
            if peer.codec.dtmf_payload_type is None:
                return  # the other phone takes no RFC 4733 events
            out_pt = peer.codec.dtmf_payload_type
        else:
            return  # comfort noise and anything not negotiated: not relayed
        peer._send(data, b1 & 0x80, out_pt, seq, ts, ssrc, now)

    def _send(self, data: bytes, marker: int, pt: int, seq: int, ts: int, ssrc: int,
              now: float) -> None:  # fmt: skip
        """Send a relayed packet in this leg's own stream (SSRC, sequence, timestamp)."""
        if ssrc != self._src_ssrc:
            # A new source (first packet, re-INVITE, transfer): continue our stream from where
            # it was, with the timestamp advanced by the time since our last packet.
            self._src_ssrc = ssrc
            elapsed = int((now - self._out_time) * 8000) if self._out_time else 0
            self._seq_off = (self._out_seq + 1 - seq) & 0xFFFF
            self._ts_off = (self._out_ts + max(elapsed, 160) - ts) & 0xFFFFFFFF
            marker = 0x80
        out_seq = (seq + self._seq_off) & 0xFFFF
        out_ts = (ts + self._ts_off) & 0xFFFFFFFF
        self._out_seq, self._out_ts, self._out_time = out_seq, out_ts, now
        self._emit(_HEAD.pack(data[0], marker | pt, out_seq, out_ts, self.ssrc) + data[12:])

    def send_dtmf(self, digit: str, duration_ms: int = 160) -> None:
        """Send one RFC 4733 event in this leg's stream (for DTMF that came by SIP INFO): a
        packet every 20 ms for `duration_ms` (40 ms to 5 s), the end packet three times."""
        codec = self.codec
        if codec is None or codec.dtmf_payload_type is None or self.remote is None:
            return
        event = EVENT_DIGITS.index(digit)
        steps = min(max(duration_ms // 20, 2), 250)
        start_ts = (self._out_ts + 160) & 0xFFFFFFFF
        # Relayed audio keeps its place in the stream after the event: its timestamps move on by
        # the event's length, its sequence numbers by the packets sent.
        self._ts_off = (self._ts_off + 160 * (steps + 1)) & 0xFFFFFFFF
        queue = self._dtmf_queue
        for i in range(1, steps + 1):
            end = i == steps
            payload = bytes(TelephoneEvent(event=event, end=end, volume=10, duration=160 * i))
            queue.append((payload, start_ts, i == 1))
            if end:  # §2.5.1.4: the end packet three times (in the same tick)
                queue.append((payload, start_ts, False))
                queue.append((payload, start_ts, False))
        self.engine.clock.add(self)

    def tick(self, now: float) -> None:
        """One clock tick while events queued by `send_dtmf` remain: the next packet (with
        the end packet's repeats)."""
        queue = self._dtmf_queue
        if not queue:
            self.engine.clock.remove(self)
            return
        payload, timestamp, first = queue.popleft()
        self._send_event(payload, timestamp, first)
        while queue and queue[0][0] == payload and not queue[0][2]:
            self._send_event(*queue.popleft())

    def _send_event(self, payload: bytes, timestamp: int, first: bool) -> None:
        codec = self.codec
        if self.closed or codec is None or codec.dtmf_payload_type is None:
            return
        self._out_seq = (self._out_seq + 1) & 0xFFFF
        self._seq_off = (self._seq_off + 1) & 0xFFFF  # relayed packets make room
        marker = 0x80 if first else 0
        self._emit(_HEAD.pack(0x80, marker | codec.dtmf_payload_type, self._out_seq, timestamp,
                              self.ssrc) + payload)  # fmt: skip
        self._out_ts = max(self._out_ts, timestamp)
        self._out_time = time.monotonic()

    def rtcp_received(self, data: bytes, addr: Address) -> None:
        if self.remote is not None and addr[0] != self.remote[0]:
            return
        if self.srtp is not None:
            plain = self.srtp.unprotect_rtcp(data)
            if plain is None:
                return
            data = plain
        try:
            packets = rtcp.parse_compound(data)
        except rtcp.RtcpError:
            return
        for packet in packets:
            for block in getattr(packet, "reports", ()):
                if block.ssrc == self.ssrc:
                    self.remote_report = block

    # -- statistics and reports -----------------------------------------------------------

    def stats(self) -> LegStats:
        clock = self.codec.clock_rate if self.codec else 8000
        report = self.remote_report
        return LegStats(
            packets=self.rx_packets,
            octets=self.rx_octets,
            lost=max(self.rx.lost, 0),
            jitter_ms=round(self.rx.jitter_ms, 2),
            sent_packets=self.tx_packets,
            remote_lost=report.cumulative_lost if report else None,
            remote_jitter_ms=round(report.jitter * 1000 / clock, 2) if report else None,
        )

    def send_report(self) -> None:
        """An RTCP sender report (with a report block on what we received) to the phone."""
        if self.remote_rtcp is None or self.closed:
            return
        ntp = rtcp.ntp_timestamp(time.time())
        block = self.rx.report_block() if self.rx.received else None
        packet = rtcp.build_sr(self.ssrc, ntp, self._out_ts, self.tx_packets, self.tx_octets, block)
        if self.srtp is not None:
            protected = self.srtp.protect_rtcp(packet)
            if protected is None:
                return
            packet = protected
        try:
            self.rtcp_sock.sendto(packet, self.remote_rtcp)
        except OSError:
            self.tx_errors += 1

    # -- end --------------------------------------------------------------------------------

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._playback is not None:
            self._playback.stop()
        if self._collector is not None:
            self._collector.cancel()
        for user in list(self._attached):
            user.detach(self)
        self._attached.clear()
        self._taps.clear()
        self._dtmf_queue.clear()
        self.engine.clock.remove(self)
        self.on_audio = None
        self.disconnect()
        loop = self.engine.loop
        for sock in (self.sock, self.rtcp_sock):
            loop.remove_reader(sock.fileno())
            sock.close()
        self.engine._release(self)


def _payload_start(data: bytes) -> int:
    """Where the payload of an RTP packet starts (after CSRCs and extension), or -1."""
    start = 12 + 4 * (data[0] & 0x0F)
    if data[0] & 0x10:
        if len(data) < start + 4:
            return -1
        start += 4 + 4 * int.from_bytes(data[start + 2 : start + 4], "big")
    return start if start <= len(data) else -1


class MediaEngine:
    """Owns the RTP port range and every open leg, and sends RTCP reports for them."""

    REPORT_INTERVAL = 5.0
    COOLING = 10.0

    def __init__(
        self, host: str, port_min: int = 10000, port_max: int = 20000, advertised: str = ""
    ) -> None:
        if port_min % 2:
            port_min += 1
        if port_max - port_min < 2:
            raise MediaError(f"RTP port range {port_min}-{port_max} holds no port pair")
        self.host = host
        self.advertised = advertised or host
        """The address phones are told to send media to (in SDP): `host`, unless that is a
        wildcard address."""
        self.port_min, self.port_max = port_min, port_max
        self._free: list[int] = list(range(port_min, port_max - 1, 2))
        """Free port pairs (their even ports), taken at random."""
        self._cooling: collections.deque[tuple[float, int]] = collections.deque()
        """Released pairs with the time they were released, free again after COOLING
        seconds, so that a stream still flowing to an ended call meets no new one."""
        self.legs: dict[int, MediaLeg] = {}
        self._reporter: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.clock = MediaClock()
        """The one 20 ms timer every player, recorder, mixer and DTMF sender runs from."""

    def start(self) -> None:
        self._reporter = asyncio.get_running_loop().create_task(self._report())

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def open_leg(self) -> MediaLeg:
        """A new leg on a free even port chosen at random (its RTCP on the odd one above): a
        stranger cannot guess the next call's port from the last one's."""
        loop = self.loop
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._cool()
        busy: list[int] = []
        try:
            while self._free or self._cooling:
                port = self._take()
                socks: list[socket.socket] = []
                try:
                    for p in (port, port + 1):
                        sock = socket.socket(family, socket.SOCK_DGRAM)
                        socks.append(sock)
                        sock.setblocking(False)
                        sock.bind((self.host, p))
                except OSError:
                    for sock in socks:
                        sock.close()
                    busy.append(port)  # in use by someone else: try it again later
                    continue
                leg = MediaLeg(self, port, socks[0], socks[1])
                loop.add_reader(socks[0].fileno(), leg._readable)
                loop.add_reader(socks[1].fileno(), leg._rtcp_readable)
                self.legs[port] = leg
                return leg
        finally:
            self._free += busy
        raise MediaError(f"no free RTP port pair in {self.port_min}-{self.port_max}")

    def _take(self) -> int:
        """A free pair at random, else the longest-cooled one (the range is that full)."""
        if not self._free:
            return self._cooling.popleft()[1]
        free = self._free
        i = secrets.randbelow(len(free))
        free[i], free[-1] = free[-1], free[i]
        return free.pop()

    def _cool(self) -> None:
        cutoff = time.monotonic() - self.COOLING
        while self._cooling and self._cooling[0][0] <= cutoff:
            self._free.append(self._cooling.popleft()[1])

    @property
    def free_ports(self) -> int:
        """RTP port pairs not in use."""
        return len(self._free) + len(self._cooling)

    def _release(self, leg: MediaLeg) -> None:
        if self.legs.pop(leg.port, None) is leg:
            self._cooling.append((time.monotonic(), leg.port))

    async def _report(self) -> None:
        while True:
            await asyncio.sleep(self.REPORT_INTERVAL)
            for leg in list(self.legs.values()):
                if leg.tx_packets:
                    leg.send_report()

    def record(
        self,
        path: Path,
        left: MediaLeg | None,
        right: MediaLeg | None,
        *,
        fmt: str = "opus",
        on_closed: Callable[[RecordingResult], None] | None = None,
    ) -> Recording:
        """Record what `left` and `right` receive from their phones into a stereo file at
        `path` (see `appliance.media.recorder`)."""
        from appliance.media.recorder import Recording

        return Recording(self, Path(path), left, right, fmt=fmt, on_closed=on_closed)

    def mixer(self) -> Mixer:
        """A new conference mix (see `appliance.media.mixer`)."""
        from appliance.media.mixer import Mixer

        return Mixer(self)

    def close(self) -> None:
        if self._reporter is not None:
            self._reporter.cancel()
        for leg in list(self.legs.values()):
            leg.close()
