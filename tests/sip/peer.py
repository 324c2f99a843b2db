"""A raw UDP peer for in-process tests: sends bytes, and queues what it receives with the time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import cast

from appliance.sip.endpoint import SipEndpoint
from appliance.sip.message import Request, Response, parse
from appliance.sip.transaction import Timers


class RawPeer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def open(cls) -> RawPeer:
        loop = asyncio.get_running_loop()
        _, peer = await loop.create_datagram_endpoint(cls, local_addr=("127.0.0.1", 0))
        return peer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queue.put_nowait((asyncio.get_running_loop().time(), data))

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(data, addr)

    async def recv(self, timeout: float = 2.0) -> tuple[float, bytes]:
        return await asyncio.wait_for(self.queue.get(), timeout)

    async def recv_msg(self, timeout: float = 2.0) -> Request | Response:
        return parse((await self.recv(timeout))[1])

    async def recv_response(self, timeout: float = 2.0) -> Response:
        msg = await self.recv_msg(timeout)
        assert isinstance(msg, Response), f"expected a response, got {msg.start_line()}"
        return msg

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def request_bytes(
    method: str,
    port: int,
    *,
    branch: str = "z9hG4bK-test-1",
    cseq: int = 1,
    call_id: str = "call-1@test",
    user: str = "101",
    extra: str = "",
    to_tag: str = "",
) -> bytes:
    """A minimal valid request from a UA at 127.0.0.1:`port`."""
    to = f"<sip:{user}@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    return (
        f"{method} sip:{user}@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch={branch};rport\r\n"
        f"From: <sip:{user}@127.0.0.1>;tag=from-tag\r\n"
        f"To: {to}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        "Max-Forwards: 70\r\n"
        f"{extra}"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def authorization(
    challenge: str,
    user: str,
    password: str,
    *,
    uri: str = "sip:127.0.0.1",
    nc: str = "00000001",
    method: str = "REGISTER",
) -> str:
    """An Authorization value answering a WWW-Authenticate challenge, as a phone computes it."""
    from appliance.sip.digest import digest_response, parse_auth_params
    from appliance.store.extensions import digest_ha1

    _, params = parse_auth_params(challenge)
    algorithm = params.get("algorithm", "MD5")
    ha1 = digest_ha1(algorithm, user, params["realm"], password)
    response = digest_response(algorithm, ha1, params["nonce"], nc, "abc123", method, uri)
    return (
        f'Digest username="{user}", realm="{params["realm"]}", nonce="{params["nonce"]}", '
        f'uri="{uri}", response="{response}", algorithm={algorithm}, qop=auth, nc={nc}, '
        f'cnonce="abc123"'
    )


def run_with_peer(
    test: Callable[[SipEndpoint, RawPeer], Awaitable[None]],
    *,
    timers: Timers | None = None,
    tcp: bool = False,
    setup: Callable[[SipEndpoint], None] | None = None,
) -> None:
    """Run `test` with an endpoint listening on loopback and a raw UA beside it."""

    async def main() -> None:
        ep = SipEndpoint(timers=timers)
        await ep.listen("127.0.0.1", 0, tcp=tcp)
        if setup is not None:
            setup(ep)
        peer = await RawPeer.open()
        try:
            await test(ep, peer)
        finally:
            peer.close()
            ep.close()

    asyncio.run(main())
