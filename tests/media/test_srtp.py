"""SRTP and SRTCP (RFC 3711) per media leg: libsrtp round trips and tamper detection, and the
engine terminating SRTP on one leg of a call whose other leg is plain RTP (real UDP sockets on
loopback; the SRTP "phone" is the test with libsrtp sessions of its own)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import pylibsrtp
import pytest

from appliance.media import rtcp
from appliance.media.engine import Codec, MediaEngine
from appliance.media.srtp import SrtpContext
from tests.media.test_engine import HOST, phone, rtp, with_engine

SUITES = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")
TAGS = {"AES_CM_128_HMAC_SHA1_80": 10, "AES_CM_128_HMAC_SHA1_32": 4}


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll (bounded) for what the engine does when its sockets are read by the loop."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.005)


def pair_of_contexts(suite: str) -> tuple[SrtpContext, SrtpContext]:
    """Two ends of one SRTP stream pair: each one's tx key is the other's rx key."""
    k1, k2 = os.urandom(30), os.urandom(30)
    return SrtpContext(suite, k1, k2), SrtpContext(suite, k2, k1)


@pytest.mark.parametrize("suite", SUITES)
def test_round_trip_and_tag_length(suite: str) -> None:
    box, phone_side = pair_of_contexts(suite)
    packet = rtp(1, 160, 0x1234, b"\x11" * 160)
    protected = box.protect(packet)
    assert protected is not None and len(protected) == len(packet) + TAGS[suite]
    assert protected[:12] == packet[:12]  # the header stays readable (latching uses it)
    assert protected[12:172] != packet[12:]  # the payload does not
    assert phone_side.unprotect(protected) == packet


@pytest.mark.parametrize("suite", SUITES)
def test_tampered_replayed_and_foreign_packets_are_refused(suite: str) -> None:
    box, phone_side = pair_of_contexts(suite)
    first = box.protect(rtp(1, 160, 0x1234, b"\x22" * 160))
    second = box.protect(rtp(2, 320, 0x1234, b"\x22" * 160))
    assert first is not None and second is not None
    flipped = bytearray(second)
    flipped[40] ^= 0x01
    assert phone_side.unprotect(bytes(flipped)) is None  # one bit of payload changed
    assert phone_side.unprotect(first) is not None
    assert phone_side.unprotect(first) is None  # a replay
    stranger = SrtpContext(suite, os.urandom(30), os.urandom(30))
    foreign = stranger.protect(rtp(3, 480, 0x1234, b"\x22" * 160))
    assert foreign is not None and phone_side.unprotect(foreign) is None
    assert phone_side.unprotect(b"\x80\x00") is None  # too short to be anything
    assert phone_side.failures == 4


def test_srtcp_round_trip_and_tamper() -> None:
    box, phone_side = pair_of_contexts(SUITES[0])
    report = rtcp.build_sr(0x1234, rtcp.ntp_timestamp(1.0), 160, 10, 1600, None)
    protected = box.protect_rtcp(report)
    assert protected is not None and protected != report
    assert phone_side.unprotect_rtcp(protected) == report
    tampered = bytearray(protected)
    tampered[10] ^= 0xFF
    assert phone_side.unprotect_rtcp(bytes(tampered)) is None


def test_wrong_key_length_is_refused() -> None:
    with pytest.raises(ValueError, match="30 bytes"):
        SrtpContext(SUITES[0], bytes(16), bytes(30))


@with_engine
async def test_an_srtp_leg_relays_to_a_plain_leg_and_back(engine: MediaEngine) -> None:
    phone_key, box_key = os.urandom(30), os.urandom(30)
    a, b = engine.open_leg(), engine.open_leg()
    pa, pb = await phone(), await phone()
    a.set_remote(HOST, pa.port)
    b.set_remote(HOST, pb.port)
    for leg in (a, b):
        leg.set_codec(Codec("PCMU", 0))
    a.connect(b)
    a.set_srtp(SrtpContext(SUITES[0], box_key, phone_key))
    phone_tx = pylibsrtp.Session(pylibsrtp.Policy(
        key=phone_key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND))  # fmt: skip
    phone_rx = pylibsrtp.Session(pylibsrtp.Policy(
        key=box_key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND))  # fmt: skip

    # SRTP phone -> box -> plain phone: decrypted, relayed as plain RTP.
    for i in range(3):
        pa.send(phone_tx.protect(rtp(10 + i, 160 * i, 0xAAAA, bytes([i + 1]) * 160)), a.port)
    got = [await pb.next() for _ in range(3)]
    assert [p[12:] for p in got] == [bytes([i + 1]) * 160 for i in range(3)]
    assert a.rx_packets == 3 and a.srtp is not None and a.srtp.failures == 0

    # plain phone -> box -> SRTP phone: encrypted with the box's key.
    pb.send(rtp(7, 0, 0xBBBB, b"\x55" * 160), b.port)
    secret = await pa.next()
    assert len(secret) == 12 + 160 + 10 and secret[12:172] != b"\x55" * 160
    assert phone_rx.unprotect(secret)[12:] == b"\x55" * 160

    # A packet that does not authenticate is dropped before anything reads it.
    forged = rtp(13, 480, 0xAAAA, b"\x09" * 160) + bytes(10)
    pa.send(forged, a.port)
    pa.send(phone_tx.protect(rtp(14, 640, 0xAAAA, b"\x07" * 160)), a.port)
    assert (await pb.next())[12:] == b"\x07" * 160
    assert a.rx_packets == 4 and a.srtp.failures == 1
    for p in (pa, pb):
        p.close()


@with_engine
async def test_an_srtp_leg_latches_only_onto_packets_that_authenticate(
    engine: MediaEngine,
) -> None:
    """Behind NAT the phone's packets come from elsewhere than its SDP: a stranger's well-formed
    plain stream from the same host must not be learned; the phone's SRTP stream is."""
    phone_key, box_key = os.urandom(30), os.urandom(30)
    a, b = engine.open_leg(), engine.open_leg()
    nat, stranger, pb = await phone(), await phone(), await phone()
    a.set_remote(HOST, 9)  # the SDP's port: nobody sends from it
    b.set_remote(HOST, pb.port)
    for leg in (a, b):
        leg.set_codec(Codec("PCMU", 0))
    a.connect(b)
    a.set_srtp(SrtpContext(SUITES[0], box_key, phone_key))
    assert a.srtp is not None
    phone_tx = pylibsrtp.Session(pylibsrtp.Policy(
        key=phone_key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND))  # fmt: skip
    for i in range(10):
        stranger.send(rtp(500 + i, 160 * i, 0xDEAD, b"\x66" * 160), a.port)
    await until(lambda: a.srtp is not None and a.srtp.failures == 10)  # the stranger's, read
    assert not a.latched
    for i in range(a.LEARN_PACKETS + 3):  # learned from the fifth, relayed from then on
        nat.send(phone_tx.protect(rtp(20 + i, 160 * i, 0xAAAA, b"\x44" * 160)), a.port)
    got = [await pb.next() for _ in range(4)]
    assert {p[12:] for p in got} == {b"\x44" * 160}  # none of the stranger's
    assert a.latched and a.remote == (HOST, nat.port)
    for p in (nat, stranger, pb):
        p.close()


@with_engine
async def test_srtcp_from_the_phone_is_read_and_the_box_sends_srtcp(engine: MediaEngine) -> None:
    phone_key, box_key = os.urandom(30), os.urandom(30)
    leg = engine.open_leg()
    pa = await phone()
    leg.set_remote(HOST, pa.port - 1 if pa.port % 2 else pa.port, None)
    leg.remote_rtcp = (HOST, pa.port)
    leg.set_codec(Codec("PCMU", 0))
    leg.set_srtp(SrtpContext(SUITES[0], box_key, phone_key))
    leg.tx_packets = 1
    leg.send_report()
    data = await pa.next()
    phone_rx = pylibsrtp.Session(pylibsrtp.Policy(
        key=box_key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND))  # fmt: skip
    with pytest.raises(rtcp.RtcpError):
        rtcp.parse_compound(data)  # SRTCP's trailer: not a plain compound packet
    plain = phone_rx.unprotect_rtcp(data)
    sent = rtcp.parse_compound(plain)[0]
    assert isinstance(sent, rtcp.SenderReport) and sent.ssrc == leg.ssrc
    # The phone's report, as SRTCP, is read; a plain one is dropped.
    phone_tx = pylibsrtp.Session(pylibsrtp.Policy(
        key=phone_key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND))  # fmt: skip
    block = rtcp.ReportBlock(leg.ssrc, 0, 3, 0, 7, 0, 0)
    report = rtcp.build_rr(0x4242, block)
    leg.rtcp_received(report, (HOST, pa.port))
    assert leg.remote_report is None
    leg.rtcp_received(phone_tx.protect_rtcp(report), (HOST, pa.port))
    assert leg.remote_report is not None and leg.remote_report.cumulative_lost == 3
    pa.close()


def test_plain_legs_never_load_libsrtp() -> None:
    """A box whose calls are plain does not import libsrtp (memory, and nothing decrypts)."""
    import subprocess
    import sys

    code = ("import sys, appliance.pbx.core, appliance.media.engine, appliance.pbx.encryption;"
            "print('pylibsrtp' in sys.modules)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "False"
