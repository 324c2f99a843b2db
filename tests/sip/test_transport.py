"""Transports in the client role: a request over TCP opens a connection and gets its answer."""

from __future__ import annotations

import asyncio
import socket

from appliance.sip.endpoint import SipEndpoint
from appliance.sip.message import Request, parse
from appliance.sip.transaction import Destination, Timers

TIMERS = Timers(t1=0.05, t2=0.2, t4=0.25)


def options_to(port: int, client_port: int) -> Request:
    req = parse(
        (
            f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/TCP 127.0.0.1:{client_port};branch=z9hG4bK-tcp-1\r\n"
            "From: <sip:probe@127.0.0.1>;tag=p1\r\nTo: <sip:127.0.0.1>\r\n"
            "Call-ID: tcp-client-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
    )
    assert isinstance(req, Request)
    return req


def test_request_over_tcp_opens_a_connection_and_gets_the_answer() -> None:
    async def main() -> None:
        server, client = SipEndpoint(timers=TIMERS), SipEndpoint(timers=TIMERS)
        await server.listen("127.0.0.1", 0)
        await client.listen("127.0.0.1", 0)
        try:
            port = server.local[1]
            txn = client.request(options_to(port, client.local[1]),
                                 Destination("TCP", "127.0.0.1", port))  # fmt: skip
            answer = await asyncio.wait_for(txn.final, 5)
            assert answer.status == 200
            assert answer.get("Allow") == "OPTIONS"
            assert client.tcp is not None and ("127.0.0.1", port) in client.tcp.connections
        finally:
            client.close()
            server.close()

    asyncio.run(main())


def test_unreachable_tcp_destination_times_out_the_transaction() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]

    async def main() -> None:
        client = SipEndpoint(timers=TIMERS)
        await client.listen("127.0.0.1", 0)
        try:
            txn = client.request(options_to(dead, client.local[1]),
                                 Destination("TCP", "127.0.0.1", dead))  # fmt: skip
            answer = await asyncio.wait_for(txn.final, TIMERS.b * 2)
            assert (answer.status, answer.reason) == (408, "Request Timeout (no response)")
        finally:
            client.close()

    asyncio.run(main())
