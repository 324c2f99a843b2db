"""TCP connections from outside (`appliance/sip/transport.py`): capped per source address and
in all, closed soon when they carry no SIP message, kept for the idle timeout once they did.

Real sockets on loopback: an endpoint listens on 127.0.0.1, clients connect from other
loopback addresses (127.0.0.2, ...) as other machines would. Every test runs on asyncio's own
loop and on uvloop, which `pbx run` uses. Waits are awaited events (an answer, the end of a
stream) bounded by `WAIT`; only the idle-timeout test paces its keep-alives.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from itertools import count
from typing import Any

import pytest
import uvloop

from appliance.sip.endpoint import SipEndpoint
from appliance.sip.message import Request, Response, parse
from appliance.sip.transaction import Destination, Timers
from appliance.sip.transport import MAX_HEADER_SIZE, TcpLimits, TcpTransport, _CapLog
from tests.sip.peer import request_bytes

WAIT = 3.0
"""The longest any single expected event may take."""
AT_ONCE = 1.0
"""A refused connection is closed within this, long before any timeout of these tests."""
LONG = 60.0
"""A timeout no test waits for."""
TICK = 0.01
"""Timers and clocks may differ by this (uvloop's clock counts milliseconds)."""
TIMERS = Timers(t1=0.05, t2=0.2, t4=0.25)
_branches = count(1)

LOOPS = pytest.mark.parametrize("loop", ["asyncio", "uvloop"])


def run(loop: str, main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    if loop == "uvloop":
        uvloop.run(main())
    else:
        asyncio.run(main())


@asynccontextmanager
async def serving(limits: TcpLimits) -> AsyncIterator[SipEndpoint]:
    """An endpoint on 127.0.0.1 (UDP and TCP, a free port) with `limits` on TCP."""
    ep = SipEndpoint(timers=TIMERS)
    ep.tcp_limits = limits
    await ep.listen("127.0.0.1", 0)
    try:
        yield ep
    finally:
        ep.close()


def transport(ep: SipEndpoint) -> TcpTransport:
    assert ep.tcp is not None
    return ep.tcp


class Client:
    """One TCP connection to an endpoint, from a chosen loopback address. A connection the
    endpoint resets at once may fail while it is still being set up: then `stream` is None."""

    def __init__(
        self, stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None, opened: float
    ) -> None:
        self.stream, self.opened = stream, opened
        self.reset_at_once = stream is None

    @classmethod
    async def open(cls, ep: SipEndpoint, source: str) -> Client:
        opened = asyncio.get_running_loop().time()
        try:
            stream = await asyncio.wait_for(
                asyncio.open_connection(*ep.local, local_addr=(source, 0)), WAIT
            )
        except ConnectionResetError:
            return cls(None, opened)
        return cls(stream, opened)

    @property
    def reader(self) -> asyncio.StreamReader:
        assert self.stream is not None, "the connection was reset as it opened"
        return self.stream[0]

    @property
    def writer(self) -> asyncio.StreamWriter:
        assert self.stream is not None, "the connection was reset as it opened"
        return self.stream[1]

    @property
    def port(self) -> int:
        return int(self.writer.get_extra_info("sockname")[1])

    async def options(self) -> Response:
        """Send an OPTIONS on this connection and read the answer to it."""
        data = request_bytes("OPTIONS", self.port, branch=f"z9hG4bK-caps-{next(_branches)}")
        self.writer.write(data.replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP"))
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), WAIT)
        answer = parse(head)
        assert isinstance(answer, Response)
        return answer

    async def ping(self) -> None:
        """An RFC 5626 keep-alive: double CRLF, answered with one CRLF."""
        self.writer.write(b"\r\n\r\n")
        assert await asyncio.wait_for(self.reader.readexactly(2), WAIT) == b"\r\n"

    async def closed(self, timeout: float = WAIT) -> float:
        """Wait until the endpoint closes (or resets) the connection; seconds since it opened."""

        async def drain() -> None:
            try:
                while await self.reader.read(4096):
                    pass
            except ConnectionResetError:
                pass

        if self.stream is not None:
            await asyncio.wait_for(drain(), timeout)
        return asyncio.get_running_loop().time() - self.opened

    def close(self) -> None:
        if self.stream is not None:
            self.writer.close()


@asynccontextmanager
async def clients() -> AsyncIterator[list[Client]]:
    """A list for the test's clients, every one closed at the end."""
    opened: list[Client] = []
    try:
        yield opened
    finally:
        for client in opened:
            client.close()


async def connect(ep: SipEndpoint, into: list[Client], source: str, n: int = 1) -> list[Client]:
    """`n` connections from `source`, one after the other (so accepted in this order)."""
    made = [await Client.open(ep, source) for _ in range(n)]
    into.extend(made)
    return made


async def released(tcp: TcpTransport) -> asyncio.Event:
    """An event set whenever the transport stops counting a connection toward its caps."""
    event = asyncio.Event()
    release = tcp.release

    def spy(conn: object) -> None:
        release(conn)  # type: ignore[arg-type]
        event.set()

    tcp.release = spy  # type: ignore[method-assign]
    return event


@LOOPS
def test_connections_beyond_the_cap_per_source_are_refused_at_once(loop: str) -> None:
    async def main() -> None:
        limits = TcpLimits(max_per_source=3, max_total=100, first_message_timeout=LONG)
        async with serving(limits) as ep, clients() as opened:
            tcp = transport(ep)
            kept = await connect(ep, opened, "127.0.0.2", 3)
            refused = await connect(ep, opened, "127.0.0.2", 2)
            for client in refused:
                assert await client.closed() < AT_ONCE
            for client in kept:
                assert (await client.options()).status == 200
            other = (await connect(ep, opened, "127.0.0.3"))[0]
            assert (await other.options()).status == 200  # another address is not held back
            assert (tcp.refused, tcp.inbound) == (2, 4)

            # A connection that goes gives its place back.
            freed = await released(tcp)
            kept[0].close()
            await asyncio.wait_for(freed.wait(), WAIT)
            again = (await connect(ep, opened, "127.0.0.2"))[0]
            assert (await again.options()).status == 200
            assert (tcp.refused, tcp.inbound) == (2, 4)

    run(loop, main)


@LOOPS
def test_at_the_total_cap_the_oldest_silent_connection_makes_room_else_a_new_one_is_refused(
    loop: str,
) -> None:
    async def main() -> None:
        limits = TcpLimits(max_per_source=10, max_total=4, first_message_timeout=LONG)
        async with serving(limits) as ep, clients() as opened:
            tcp = transport(ep)
            phones = await connect(ep, opened, "127.0.0.2", 2)
            for phone in phones:
                assert (await phone.options()).status == 200
            oldest, silent = await connect(ep, opened, "127.0.0.3", 2)
            newcomer = (await connect(ep, opened, "127.0.0.4"))[0]
            assert await oldest.closed() < AT_ONCE  # pushed out for the newcomer
            for client in (silent, newcomer):
                assert (await client.options()).status == 200
            assert (tcp.refused, tcp.inbound) == (1, 4)

            # Every connection has carried SIP now: a fifth is refused, the four stay.
            fifth = (await connect(ep, opened, "127.0.0.5"))[0]
            assert await fifth.closed() < AT_ONCE
            for client in (*phones, silent, newcomer):
                assert (await client.options()).status == 200
            assert (tcp.refused, tcp.inbound) == (2, 4)

    run(loop, main)


@LOOPS
def test_a_connection_that_sends_no_sip_message_is_closed_after_the_first_message_timeout(
    loop: str,
) -> None:
    timeout = 0.5

    async def main() -> None:
        limits = TcpLimits(first_message_timeout=timeout, idle_timeout=LONG)
        async with serving(limits) as ep, clients() as opened:
            tcp = transport(ep)
            phone = (await connect(ep, opened, "127.0.0.2"))[0]
            assert (await phone.options()).status == 200
            silent, pinging, junk, partial = [
                (await connect(ep, opened, f"127.0.0.{n}"))[0] for n in (3, 4, 5, 6)
            ]
            await pinging.ping()  # keep-alives are no SIP message
            junk.writer.write(b"HELLO THERE\r\nContent-Length: 0\r\n\r\n")  # framed, not SIP
            partial.writer.write(b"OPTIONS sip:101@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP ")
            for client in (silent, pinging, junk, partial):
                assert timeout - TICK <= await client.closed() < timeout + WAIT
            assert (await phone.options()).status == 200  # past its own deadline: kept
            assert (tcp.expired, tcp.inbound, tcp.refused) == (4, 1, 0)

            # The places of the closed ones are free again.
            late = (await connect(ep, opened, "127.0.0.3"))[0]
            assert (await late.options()).status == 200

    run(loop, main)


@LOOPS
def test_a_connection_that_carried_sip_is_closed_only_when_idle_for_the_idle_timeout(
    loop: str,
) -> None:
    idle = 0.6

    async def main() -> None:
        limits = TcpLimits(first_message_timeout=0.2, idle_timeout=idle)
        async with serving(limits) as ep, clients() as opened:
            client = (await connect(ep, opened, "127.0.0.2"))[0]
            assert (await client.options()).status == 200
            loop = asyncio.get_running_loop()
            while loop.time() - client.opened < 3 * idle:  # kept alive by keep-alives
                await client.ping()
                await asyncio.sleep(idle / 3)  # pacing, not waiting for anything
            assert (await client.options()).status == 200
            last = loop.time()
            await client.closed(idle + WAIT)
            assert loop.time() - last >= idle - TICK
            assert transport(ep).expired == 0

    run(loop, main)


@LOOPS
def test_connections_the_box_opens_count_toward_no_cap_and_are_not_timed_out_as_silent(
    loop: str,
) -> None:
    async def main() -> None:
        limits = TcpLimits(max_per_source=1, max_total=2, first_message_timeout=0.3)
        async with (
            serving(limits) as box, serving(TcpLimits()) as one, serving(TcpLimits()) as two,
            clients() as opened,
        ):  # fmt: skip
            tcp = transport(box)
            providers = [Destination("TCP", *ep.local) for ep in (one, two)]

            async def options(dest: Destination) -> int:
                request = parse(
                    request_bytes("OPTIONS", box.local[1], branch=f"z9hG4bK-out-{next(_branches)}")
                    .replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP")
                )  # fmt: skip
                assert isinstance(request, Request)
                return (await asyncio.wait_for(box.request(request, dest).final, WAIT)).status

            for dest in providers:
                assert await options(dest) == 200
            assert tcp.inbound == 0 and len(tcp.connections) == 2

            phone = (await connect(ep=box, into=opened, source="127.0.0.1"))[0]
            assert (await phone.options()).status == 200  # the box's own took no place
            silent = (await connect(box, opened, "127.0.0.3"))[0]
            assert await silent.closed() >= 0.3 - TICK  # timed out: the box's own outlive it
            for dest in providers:
                assert (dest.host, dest.port) in tcp.connections
                assert await options(dest) == 200
            assert len(transport(one).connections) == len(transport(two).connections) == 1
            assert (tcp.inbound, tcp.refused, tcp.expired) == (1, 0, 1)

    run(loop, main)


@LOOPS
def test_a_header_section_over_the_limit_closes_the_connection_at_once(loop: str) -> None:
    async def main() -> None:
        async with serving(TcpLimits(first_message_timeout=LONG)) as ep, clients() as opened:
            client = (await connect(ep, opened, "127.0.0.2"))[0]
            client.writer.write(
                b"OPTIONS sip:101@127.0.0.1 SIP/2.0\r\nX: " + b"y" * MAX_HEADER_SIZE
            )
            assert await client.closed() < AT_ONCE
            assert transport(ep).inbound == 0

    run(loop, main)


@LOOPS
def test_refusals_are_logged_once_a_minute_per_source(
    loop: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        async with serving(TcpLimits(max_per_source=1)) as ep, clients() as opened:
            for source, extra in (("127.0.0.2", 20), ("127.0.0.3", 5)):
                kept = (await connect(ep, opened, source))[0]
                for client in await connect(ep, opened, source, extra):
                    assert await client.closed() < AT_ONCE
                assert (await kept.options()).status == 200
            assert transport(ep).refused == 25

    with caplog.at_level(logging.INFO, logger="appliance.sip.transport"):
        run(loop, main)
    lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert lines == [
        "TCP connection from 127.0.0.2 refused: the address has 1 open, the most allowed"
        " (logged once a minute per address)",
        "TCP connection from 127.0.0.3 refused: the address has 1 open, the most allowed"
        " (logged once a minute per address)",
    ]


def test_the_refusal_log_keeps_a_bounded_number_of_sources(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr("appliance.sip.transport.time.monotonic", lambda: now[0])
    log = _CapLog(interval=60.0, sources=3)
    with caplog.at_level(logging.WARNING, logger="appliance.sip.transport"):
        for _ in range(2):
            for n in range(10):
                log.note(f"10.0.0.{n}", f"refused 10.0.0.{n}")
        assert len(log._seen) == 3
        now[0] += 60.0  # a minute on: each address logs again, with what it did meanwhile
        log.note("10.0.0.0", "refused 10.0.0.0")
        log.note("10.0.0.9", "refused 10.0.0.9")
        for _ in range(3):  # the total cap has a line of its own
            log.note_total("all full")
    assert [r.getMessage() for r in caplog.records] == [
        "refused 10.0.0.0 (logged once a minute per address)",
        "refused 10.0.0.1 (logged once a minute per address)",
        "refused 10.0.0.2 (logged once a minute per address)",
        "refused 10.0.0.3 (and from other addresses: logged once a minute for all of them)",
        "refused 10.0.0.0 (1 more since the last line; logged once a minute per address)",
        "refused 10.0.0.9 (logged once a minute per address)",
        "all full (logged once a minute)",
    ]
    assert len(log._seen) <= 3
