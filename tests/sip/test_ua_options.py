"""OPTIONS keep-alives (RFC 3261 §11) between two endpoints over real UDP."""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import Awaitable, Callable

import pytest

from appliance.sip.endpoint import SipEndpoint
from appliance.sip.message import Request
from appliance.sip.transaction import Destination, ServerTransaction, Timers
from appliance.sip.ua.options import KeepAlive

TIMERS = Timers(t1=0.02, t2=0.08, t4=0.1)
LOCAL = "127.0.0.1"


class Far:
    """The peer: answers OPTIONS with `status`, and queues each one with its arrival time."""

    def __init__(self, ep: SipEndpoint) -> None:
        self.ep = ep
        self.status = 200
        self.arrived: asyncio.Queue[tuple[float, Request]] = asyncio.Queue()
        ep.handlers["OPTIONS"] = self._options

    def _options(self, req: Request, txn: ServerTransaction) -> None:
        self.arrived.put_nowait((asyncio.get_running_loop().time(), req))
        txn.respond(self.ep.response(req, self.status))


def run(test: Callable[[SipEndpoint, Far], Awaitable[None]]) -> None:
    async def main() -> None:
        client, far = SipEndpoint(timers=TIMERS), SipEndpoint()
        await client.listen(LOCAL, 0, tcp=False)
        await far.listen(LOCAL, 0, tcp=False)
        try:
            await asyncio.wait_for(test(client, Far(far)), 20)
        finally:
            client.close()
            far.close()

    asyncio.run(main())


def keepalive(
    client: SipEndpoint, port: int, interval: float = 0.1
) -> tuple[KeepAlive, list[bool | None]]:
    """A keep-alive toward `port`, and the `reachable` values its on_change reported."""
    changes: list[bool | None] = []
    ka = KeepAlive(
        client, Destination("UDP", LOCAL, port), f"sip:{LOCAL}:{port}",
        f"UDP {LOCAL}:{client.local[1]}", interval, lambda k: changes.append(k.reachable),
    )  # fmt: skip
    return ka, changes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((LOCAL, 0))
        return int(probe.getsockname()[1])


def test_ping_measures_the_round_trip() -> None:
    async def body(client: SipEndpoint, far: Far) -> None:
        ka, changes = keepalive(client, far.ep.local[1])
        assert (ka.reachable, ka.rtt_ms, ka.last_response) == (None, None, "")
        rtt = await ka.ping()
        assert 0 < rtt < 1000
        assert (ka.reachable, ka.rtt_ms, ka.last_response) == (True, rtt, "200 OK")
        assert changes == [True]
        _, req = far.arrived.get_nowait()
        assert req.method == "OPTIONS"
        assert req.uri == f"sip:{LOCAL}:{far.ep.local[1]}"

    run(body)


def test_any_answer_counts_as_reachable() -> None:
    async def body(client: SipEndpoint, far: Far) -> None:
        far.status = 503
        ka, _ = keepalive(client, far.ep.local[1])
        await ka.ping()
        assert (ka.reachable, ka.last_response) == (True, "503 Service Unavailable")

    run(body)


def test_options_go_out_every_interval_until_stopped() -> None:
    async def body(client: SipEndpoint, far: Far) -> None:
        ka, changes = keepalive(client, far.ep.local[1], interval=0.1)
        ka.start()
        times = []
        for _ in range(3):
            t, _ = await asyncio.wait_for(far.arrived.get(), 2)
            times.append(t)
        ka.stop()
        assert all(0.08 <= b - a <= 0.3 for a, b in itertools.pairwise(times))
        assert ka.reachable is True and ka.rtt_ms is not None
        assert changes == [True]
        await ka.ping()  # a barrier: anything sent before it has arrived before its answer
        far.arrived.get_nowait()  # the ping's own OPTIONS
        assert far.arrived.empty()

    run(body)


def test_silence_is_unreachable() -> None:
    async def body(client: SipEndpoint, far: Far) -> None:
        ka, changes = keepalive(client, free_port())
        with pytest.raises(TimeoutError):
            await ka.ping()
        assert (ka.reachable, ka.rtt_ms, ka.last_response) == (False, None, "timeout")
        assert changes == [False]

    run(body)


def test_stop_fails_a_waiting_ping() -> None:
    async def body(client: SipEndpoint, far: Far) -> None:
        ka, _ = keepalive(client, free_port())
        waiting = asyncio.ensure_future(ka.ping())
        await asyncio.sleep(0)  # one turn of the loop: the task sends its OPTIONS
        ka.stop()
        with pytest.raises(TimeoutError, match="keep-alive stopped"):
            await waiting

    run(body)
