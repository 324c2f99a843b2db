"""SRTP's cost in the media engine: CPU per relayed packet for a plain call and for a call
whose one leg is SRTP, on loopback sockets in one process (`bench/srtp --help`).

Two legs of a `MediaEngine` are connected as in a call; a sender socket plays phone A, a
receiver socket phone B. `packets` 20 ms µ-law packets are sent in bursts and read back; the
process's CPU time over the whole exchange, divided by the packets relayed, is the figure (it
includes the sender's and receiver's socket calls, the same in every case, so differences are
the engine's). Cases: plain -> plain (the relay as every plain call has it), SRTP -> plain
(the box unprotects), plain -> SRTP (the box protects), and libsrtp's protect and unprotect
alone. Nothing is asserted: the figures are printed, one line each, and as JSON with --json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import struct
import time
from collections.abc import Callable

import pylibsrtp

from appliance.media.engine import Codec, MediaEngine
from appliance.media.srtp import SrtpContext

HOST = "127.0.0.1"
BURST = 32
SUITE = "AES_CM_128_HMAC_SHA1_80"


def packet(seq: int) -> bytes:
    return struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, 160 * seq & 0xFFFFFFFF, 0xAAAA) + (
        b"\x55" * 160
    )


async def relay(packets: int, srtp_in: bool, srtp_out: bool) -> float:
    """CPU microseconds per packet relayed from phone A to phone B."""
    engine = MediaEngine(HOST, 44000, 44100)
    a, b = engine.open_leg(), engine.open_leg()
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for sock in (sender, receiver):
        sock.bind((HOST, 0))
        sock.setblocking(False)
    a.set_remote(HOST, sender.getsockname()[1])
    b.set_remote(HOST, receiver.getsockname()[1])
    for leg in (a, b):
        leg.set_codec(Codec("PCMU", 0))
    a.connect(b)
    phone_key, box_key = os.urandom(30), os.urandom(30)
    encode: Callable[[bytes], bytes] = bytes
    if srtp_in:
        a.set_srtp(SrtpContext(SUITE, box_key, phone_key))
        out = pylibsrtp.Session(pylibsrtp.Policy(
            key=phone_key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND))  # fmt: skip
        encode = out.protect
    if srtp_out:
        b.set_srtp(SrtpContext(SUITE, box_key, phone_key))
    frames = [encode(packet(i)) for i in range(packets)]  # made before the clock starts
    loop = asyncio.get_running_loop()
    got = 0
    start = time.process_time()
    for i in range(0, packets, BURST):
        for frame in frames[i : i + BURST]:
            sender.sendto(frame, (HOST, a.port))
        want = min(i + BURST, packets)
        deadline = loop.time() + 5
        while got < want and loop.time() < deadline:
            await asyncio.sleep(0)
            while True:
                try:
                    receiver.recv(2048)
                except BlockingIOError:
                    break
                got += 1
    cpu = time.process_time() - start
    engine.close()
    sender.close()
    receiver.close()
    if got < packets * 0.99:
        raise SystemExit(f"only {got} of {packets} packets relayed")
    return cpu / got * 1e6


def library(packets: int) -> tuple[float, float]:
    key = os.urandom(30)
    tx = SrtpContext(SUITE, key, key)
    rx = SrtpContext(SUITE, key, key)
    plain = [packet(i) for i in range(packets)]
    start = time.process_time()
    protected = [tx.protect(p) for p in plain]
    mid = time.process_time()
    for p in protected:
        assert p is not None
        rx.unprotect(p)
    end = time.process_time()
    return (mid - start) / packets * 1e6, (end - mid) / packets * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=20_000, help="packets per case")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args(argv)
    figures: dict[str, float] = {}
    for name, srtp_in, srtp_out in (
        ("plain->plain", False, False), ("srtp->plain", True, False),
        ("plain->srtp", False, True), ("plain->plain again", False, False),
    ):  # fmt: skip
        figures[name] = asyncio.run(relay(args.packets, srtp_in, srtp_out))
        print(f"{name:20} {figures[name]:6.1f} µs CPU per relayed packet")
    protect, unprotect = library(args.packets)
    figures["protect"], figures["unprotect"] = protect, unprotect
    print(f"{'libsrtp protect':20} {protect:6.1f} µs per packet")
    print(f"{'libsrtp unprotect':20} {unprotect:6.1f} µs per packet")
    if args.json:
        print(json.dumps(figures))
    return 0
