"""What the endpoint answers by itself: bad input, unknown methods, OPTIONS, TCP framing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from appliance.sip.endpoint import SipEndpoint
from appliance.sip.message import MAX_MESSAGE_SIZE, Request, make_response, parse
from appliance.sip.transaction import ServerTransaction
from tests.sip.peer import RawPeer, request_bytes, run_with_peer


def register(req: Request, txn: ServerTransaction) -> None:
    req.to  # noqa: B018  (a handler parses what it reads; a bad value means 400)
    txn.respond(make_response(req, 200, to_tag="ok"))


def run(test: Callable[[SipEndpoint, RawPeer], Awaitable[None]], tcp: bool = False) -> None:
    run_with_peer(test, tcp=tcp, setup=lambda ep: ep.handlers.update(REGISTER=register))


def test_options_is_answered_with_allow() -> None:
    async def body(ep: SipEndpoint, peer: RawPeer) -> None:
        peer.send(request_bytes("OPTIONS", peer.port), ep.local)
        ok = await peer.recv_response()
        assert ok.status == 200
        assert ok.get("Allow") == "OPTIONS, REGISTER"
        assert ok.to.tag is not None

    run(body)


@pytest.mark.parametrize(("method", "status"), [("INVITE", 405), ("FROBNICATE", 501)])
def test_unsupported_methods_get_allow(method: str, status: int) -> None:
    async def body(ep: SipEndpoint, peer: RawPeer) -> None:
        peer.send(request_bytes(method, peer.port), ep.local)
        answer = await peer.recv_response()
        assert answer.status == status
        assert answer.get("Allow") == "OPTIONS, REGISTER"

    run(body)


def test_required_extension_we_lack_gets_420() -> None:
    async def body(ep: SipEndpoint, peer: RawPeer) -> None:
        peer.send(request_bytes("REGISTER", peer.port, extra="Require: foo, bar\r\n"), ep.local)
        answer = await peer.recv_response()
        assert answer.status == 420
        assert answer.get("Unsupported") == "foo, bar"

    run(body)


GOOD = request_bytes("REGISTER", 5999).decode()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (GOOD.replace("CSeq: 1 REGISTER", "CSeq: x REGISTER"), "invalid CSeq header"),
        (GOOD.replace("CSeq: 1 REGISTER", "CSeq: 1 INVITE"),
         "CSeq method does not match the request"),
        (GOOD.replace("From: <sip:101@127.0.0.1>;tag=from-tag\r\n", ""), "missing From header"),
        (GOOD.replace("To: <sip:101@127.0.0.1>", "To: <sip:101@127.0.0.1"), "invalid To header"),
        (GOOD.replace("Call-ID: call-1@test\r\n", ""), "missing Call-ID header"),
        (GOOD.replace("Max-Forwards: 70", "Max-Forwards: many"), "invalid Max-Forwards header"),
        (GOOD.replace("Content-Length: 0", "Content-Length: 10"),
         "Content-Length larger than the body"),
        (GOOD.replace("Max-Forwards: 70\r\n", "Max-Forwards 70\r\n"),
         "header line without colon: 'Max-Forwards 70'"),
        (GOOD.replace("SIP/2.0\r\n", "SIP/3.0\r\n", 1), "unsupported SIP version"),
    ],
)  # fmt: skip
def test_malformed_request_gets_400_naming_the_problem(data: str, reason: str) -> None:
    async def body(ep: SipEndpoint, peer: RawPeer) -> None:
        peer.send(data.replace("5999", str(peer.port)).encode(), ep.local)
        answer = await peer.recv_response()
        assert (answer.status, answer.reason) == (400, f"Bad Request ({reason})")
        assert answer.get("Call-ID") == parse(request_bytes("REGISTER", 1)).get("Call-ID") or (
            "Call-ID" not in data
        )

    run(body)


def test_oversize_message_gets_513_and_server_keeps_serving() -> None:
    async def body(ep: SipEndpoint, peer: RawPeer) -> None:
        big = request_bytes("REGISTER", peer.port, extra=f"X-Pad: {'a' * 30_000}\r\n")
        big = big.replace(b"Content-Length: 0\r\n\r\n", b"Content-Length: 6000\r\n\r\n")
        big += b"b" * 6000
        assert len(big) > MAX_MESSAGE_SIZE
        peer.send(big, ep.local)
        answer = await peer.recv_response()
        assert (answer.status, answer.reason) == (513, "Message Too Large")
        peer.send(request_bytes("OPTIONS", peer.port, branch="z9hG4bK-2"), ep.local)
        assert (await peer.recv_response()).status == 200

    run(body)


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xfe garbage",
        b"REGISTER sip:x SIP/2.0\r\nTo: a\r\n\r\n",  # no Via: nowhere to answer
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKnone\r\n\r\n",  # stray response
        b"ACK sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nCSeq: x\r\n\r\n",  # never answer an ACK
        b"\r\n\r\n",  # keep-alive
    ],
)
def test_unanswerable_input_is_dropped_and_serving_goes_on(data: bytes) -> None:
    async def body(ep: SipEndpoint, peer: RawPeer) -> None:
        peer.send(data, ep.local)
        peer.send(request_bytes("OPTIONS", peer.port), ep.local)
        answer = await peer.recv_response()
        assert answer.start_line() == "SIP/2.0 200 OK"
        assert answer.cseq.method == "OPTIONS"

    run(body)


def test_an_ack_its_dialog_cannot_read_is_dropped_and_serving_goes_on() -> None:
    # Found by the malformed-SIP corpus against a live core: the call engine reads an ACK's
    # To to find its dialog, and a bad one raised out of the transport (on asyncio's own loop
    # that closes the UDP socket for good).
    read: list[str] = []

    def on_ack(req: Request) -> None:
        read.append(str(req.to))  # as the call engine does: raises SipParseError here

    async def body(ep: SipEndpoint, peer: RawPeer) -> None:
        ep.on_ack = on_ack
        ack = request_bytes("ACK", peer.port).replace(b"To: <sip:101@127.0.0.1>",
                                                      b"To: <sip:101@[bad>;tag=x")  # fmt: skip
        assert b"[bad" in ack
        peer.send(ack, ep.local)
        peer.send(request_bytes("OPTIONS", peer.port, branch="z9hG4bK-2"), ep.local)
        answer = await peer.recv_response()
        assert (answer.status, answer.cseq.method) == (200, "OPTIONS")
        assert read == []

    run(body)


def test_tcp_frames_by_content_length_and_answers_keepalive_ping() -> None:
    async def body(ep: SipEndpoint, peer: RawPeer) -> None:
        reader, writer = await asyncio.open_connection(*ep.local)
        one = request_bytes("OPTIONS", 1, branch="z9hG4bK-a").replace(b"UDP", b"TCP")
        two = request_bytes("REGISTER", 1, branch="z9hG4bK-b").replace(b"UDP", b"TCP")
        stream = b"\r\n\r\n" + one + two
        for i in range(0, len(stream), 7):  # arbitrary segmentation
            writer.write(stream[i : i + 7])
            await writer.drain()
        assert await reader.readexactly(2) == b"\r\n"  # RFC 5626 pong
        first, second = await _read_message(reader), await _read_message(reader)
        assert first.cseq.method == "OPTIONS"
        assert second.cseq.method == "REGISTER"
        assert (first.status, second.status) == (200, 200)  # type: ignore[attr-defined]
        writer.close()

    run(body, tcp=True)


def test_tcp_without_content_length_gets_400_and_is_closed() -> None:
    async def body(ep: SipEndpoint, peer: RawPeer) -> None:
        reader, writer = await asyncio.open_connection(*ep.local)
        data = request_bytes("OPTIONS", 1).replace(b"UDP", b"TCP")
        writer.write(data.replace(b"Content-Length: 0\r\n", b""))
        answer = await _read_message(reader)
        assert answer.start_line() == "SIP/2.0 400 Bad Request (missing Content-Length on a stream)"
        assert await reader.read() == b""  # closed
        writer.close()

    run(body, tcp=True)


async def _read_message(reader: asyncio.StreamReader) -> Request:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
    msg = parse(head)
    length = msg.int_header("Content-Length") or 0
    body = await reader.readexactly(length)
    return parse(head + body)  # type: ignore[return-value]
