"""RTP bleed (CVE-2017-14099's class): a stranger spraying well-formed RTP streams at every port
of the box's media range, from another loopback address, while a call rings and after it is
answered, receives none of the call's audio, and the call's parties hear each other.

The phones are real UDP sockets sending 20 ms µ-law packets of a tone (the caller 440 Hz, the
callee 1 kHz); what each receives is decoded and its dominant frequency checked."""

from __future__ import annotations

import asyncio
import contextlib
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest

from appliance.store import settings
from tests.interop.sipp import ulaw_tone
from tests.interop.tones import dominant_frequency
from tests.pbx.harness import HOST, Box, phone_sdp, run

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

STRANGER = "127.0.0.5"
PACKET = 160  # 20 ms of µ-law


class Socket(asyncio.DatagramProtocol):
    """A UDP socket: what arrives is kept with its source."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, tuple[str, int]]] = []
        self.arrived = asyncio.Event()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.append((data, addr))
        self.arrived.set()

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(data, addr)


async def open_socket(host: str = HOST) -> Socket:
    loop = asyncio.get_running_loop()
    _, sock = await loop.create_datagram_endpoint(Socket, local_addr=(host, 0))
    return sock


def packet(seq: int, ssrc: int, payload: bytes) -> bytes:
    return struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, (seq * PACKET) & 0xFFFFFFFF, ssrc) + payload


class Sprayer:
    """From another address, one well-formed stream (own SSRC, consecutive sequence numbers)
    to each RTP port of the box's range: what a latching engine would take for a phone."""

    def __init__(self, sock: Socket, ports: range) -> None:
        self.sock, self.ports, self.seq = sock, ports, 0

    def round(self) -> None:
        noise = b"\x55" * PACKET
        for port in self.ports:
            self.sock.send(packet(self.seq, 0x5000 + port, noise), (HOST, port))
        self.seq += 1


def frequency(received: list[tuple[bytes, tuple[str, int]]]) -> float:
    pcm = b"".join(audioop.ulaw2lin(data[12:], 2) for data, _ in received if len(data) > 12)
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return dominant_frequency(samples, 8000)


def test_a_stranger_spraying_the_media_ports_gets_none_of_the_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(box: Box) -> None:
        db = box.core.db
        low, high = settings.get_int(db, "rtp.port_min"), settings.get_int(db, "rtp.port_max")
        caller_rtp, callee_rtp = await open_socket(), await open_socket()
        stranger = await open_socket(STRANGER)
        sprayer = Sprayer(stranger, range(low, high + 1, 2))
        caller, phone = await box.ua("101"), await box.phone("102")
        out = caller.call(phone.number, phone_sdp(caller_rtp.port))
        invite, txn = await phone.next("INVITE")
        phone.respond(txn, 180)
        await out.status(180)
        # Ringing: the caller's leg knows the caller's SDP address, the callee's leg nothing
        # yet. Twice the packets a NAT'd phone needs to be learned, to every port.
        for _ in range(10):
            sprayer.round()
            await asyncio.sleep(0.005)  # (pacing the spray, not waiting for anything)
        phone.respond(txn, 200, phone_sdp(callee_rtp.port, session="5151"))
        await phone.ack()
        ok = await out.status(200)
        out.ack(ok)
        await caller.barrier()
        a_port = int(next(line for line in ok.body.decode().splitlines()
                          if line.startswith("m=audio")).split()[1])  # fmt: skip
        b_port = int(next(line for line in invite.body.decode().splitlines()
                          if line.startswith("m=audio")).split()[1])  # fmt: skip
        assert low <= a_port <= high and low <= b_port <= high
        # Answered: both phones talk for a second while the stranger goes on spraying.
        caller_tone, callee_tone = ulaw_tone(440.0), ulaw_tone(1000.0)
        for i in range(50):
            chunk = slice(i * PACKET, (i + 1) * PACKET)
            caller_rtp.send(packet(i, 0x1111, caller_tone[chunk]), (HOST, a_port))
            callee_rtp.send(packet(i, 0x2222, callee_tone[chunk]), (HOST, b_port))
            sprayer.round()
            await asyncio.sleep(0.02)  # (a phone's packet clock)
        for sock in (caller_rtp, callee_rtp):  # (a phone that hears nothing fails below)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(sock.arrived.wait(), 5)
        # What is in flight lands before the stranger's share is counted.
        await caller.barrier()
        assert stranger.received == [], (
            f"the stranger received {len(stranger.received)} packets from ports"
            f" {sorted({addr[1] for _, addr in stranger.received})}"
        )
        assert {addr for _, addr in caller_rtp.received} == {(HOST, a_port)}
        assert {addr for _, addr in callee_rtp.received} == {(HOST, b_port)}
        assert len(caller_rtp.received) >= 40 and len(callee_rtp.received) >= 40
        assert abs(frequency(caller_rtp.received) - 1000.0) < 20  # the caller hears the callee
        assert abs(frequency(callee_rtp.received) - 440.0) < 20  # and the callee the caller
        a, b = box.legs()
        assert a.media.remote == (HOST, caller_rtp.port)
        assert b.media.remote == (HOST, callee_rtp.port)

    run(tmp_path, monkeypatch, body)
