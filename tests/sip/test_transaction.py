"""Transaction state machines (RFC 3261 §17) over real UDP sockets, with shortened timers."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable

from appliance.sip.endpoint import SipEndpoint
from appliance.sip.message import Request, make_response, parse
from appliance.sip.transaction import Destination, ServerTransaction, State, Timers
from tests.sip.peer import RawPeer, request_bytes, run_with_peer

TIMERS = Timers(t1=0.05, t2=0.2, t4=0.25)


def run(test: Callable[[SipEndpoint, RawPeer], Awaitable[None]]) -> None:
    run_with_peer(test, timers=TIMERS)


def test_server_non_invite_absorbs_retransmitted_request() -> None:
    calls: list[Request] = []

    def handler(req: Request, txn: ServerTransaction) -> None:
        calls.append(req)
        txn.respond(make_response(req, 200, to_tag="t1"))

    async def body(ep: SipEndpoint, peer: RawPeer) -> None:
        ep.handlers["MESSAGE"] = handler
        data = request_bytes("MESSAGE", peer.port)
        peer.send(data, ep.local)
        _, first = await peer.recv()
        peer.send(data, ep.local)
        _, second = await peer.recv()
        assert first == second
        assert parse(first).start_line() == "SIP/2.0 200 OK"
        assert len(calls) == 1
        # A new branch is a new transaction.
        peer.send(request_bytes("MESSAGE", peer.port, branch="z9hG4bK-other", cseq=2), ep.local)
        await peer.recv()
        assert len(calls) == 2

    run(body)


def test_server_non_invite_completed_state_ends_after_timer_j() -> None:
    txns: list[ServerTransaction] = []

    def handler(req: Request, txn: ServerTransaction) -> None:
        txns.append(txn)
        txn.respond(make_response(req, 200, to_tag="t1"))

    async def body(ep: SipEndpoint, peer: RawPeer) -> None:
        ep.handlers["MESSAGE"] = handler
        peer.send(request_bytes("MESSAGE", peer.port), ep.local)
        await peer.recv()
        assert txns[0].state is State.COMPLETED
        assert txns[0].key in ep.transactions.completed and len(ep.transactions.completed) == 1
        assert not ep.transactions.server
        await asyncio.sleep(TIMERS.b * 1.5)  # Timer J itself is what is under test
        assert not ep.transactions.completed

    run(body)


def test_server_invite_retransmits_final_until_ack() -> None:
    txns: list[ServerTransaction] = []

    def handler(req: Request, txn: ServerTransaction) -> None:
        txns.append(txn)
        txn.respond(make_response(req, 486, to_tag="busy"))

    async def body(ep: SipEndpoint, peer: RawPeer) -> None:
        ep.handlers["INVITE"] = handler
        peer.send(request_bytes("INVITE", peer.port), ep.local)
        t0, first = await peer.recv()
        times = [t0]
        for _ in range(3):  # Timer G: T1, 2*T1, 4*T1 (capped at T2)
            t, again = await peer.recv()
            assert again == first
            times.append(t)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert_intervals(gaps, [TIMERS.t1, 2 * TIMERS.t1, TIMERS.t2])
        ack = request_bytes("ACK", peer.port, to_tag="busy")
        peer.send(ack, ep.local)
        await asyncio.wait_for(_until(lambda: txns[0].state is State.CONFIRMED), 1)
        while not peer.queue.empty():  # one retransmission may have crossed the ACK
            peer.queue.get_nowait()
        await asyncio.sleep(TIMERS.t2 * 2)  # a window in which Timer G would have fired
        assert peer.queue.empty(), "final response retransmitted after ACK"

    run(body)


def test_server_invite_gives_up_without_ack_timer_h() -> None:
    ended: list[bool] = []

    def handler(req: Request, txn: ServerTransaction) -> None:
        txn.on_terminated = lambda _t, timed_out: ended.append(timed_out)
        txn.respond(make_response(req, 603, to_tag="no"))

    async def body(ep: SipEndpoint, peer: RawPeer) -> None:
        ep.handlers["INVITE"] = handler
        peer.send(request_bytes("INVITE", peer.port), ep.local)
        await asyncio.wait_for(_until(lambda: bool(ended)), TIMERS.b * 2)
        assert ended == [True]
        assert not ep.transactions.server

    run(body)


def _outgoing(method: str, peer: RawPeer) -> tuple[Request, Destination]:
    req = parse(request_bytes(method, 5099, branch=f"z9hG4bK-client-{method}"))
    assert isinstance(req, Request)
    return req, Destination("UDP", "127.0.0.1", peer.port)


def test_client_non_invite_retransmits_with_timer_e_then_times_out() -> None:
    async def body(ep: SipEndpoint, peer: RawPeer) -> None:
        req, dest = _outgoing("OPTIONS", peer)
        txn = ep.request(req, dest)
        response = await asyncio.wait_for(txn.final, TIMERS.b * 2)
        assert response.status == 408
        times = []
        while not peer.queue.empty():
            t, data = peer.queue.get_nowait()
            assert data == bytes(req)
            times.append(t)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        # T1, 2*T1, 4*T1 = T2, then T2 each time until Timer F (64*T1).
        assert_intervals(gaps, [TIMERS.t1, 2 * TIMERS.t1] + [TIMERS.t2] * (len(gaps) - 2))
        assert 12 <= len(times) <= 18  # 18 when no timer runs late: 0.35 + 0.2 k <= 3.2
        assert txn.state is State.TERMINATED

    run(body)


def test_client_invite_doubles_timer_a_then_times_out_with_timer_b() -> None:
    async def body(ep: SipEndpoint, peer: RawPeer) -> None:
        req, dest = _outgoing("INVITE", peer)
        txn = ep.request(req, dest)
        response = await asyncio.wait_for(txn.final, TIMERS.b * 2)
        assert (response.status, response.reason) == (408, "Request Timeout (no response)")
        times = []
        while not peer.queue.empty():
            times.append(peer.queue.get_nowait()[0])
        gaps = [b - a for a, b in itertools.pairwise(times)]
        # Timer A doubles without a cap: T1, 2*T1, 4*T1, ... until Timer B (64*T1).
        assert_intervals(gaps, [TIMERS.t1 * 2**i for i in range(len(gaps))])
        assert 6 <= len(times) <= 7  # sent at 0, 1, 3, 7, 15, 31, 63 T1; Timer B at 64 T1
        assert txn.state is State.TERMINATED
        assert not ep.transactions.client

    run(body)


def test_client_non_invite_final_response_stops_retransmission() -> None:
    async def body(ep: SipEndpoint, peer: RawPeer) -> None:
        req, dest = _outgoing("OPTIONS", peer)
        txn = ep.request(req, dest)
        await peer.recv()
        peer.send(bytes(make_response(req, 200, to_tag="x")), ep.local)
        response = await asyncio.wait_for(txn.final, 1)
        assert response.status == 200
        assert txn.state is State.COMPLETED
        while not peer.queue.empty():
            peer.queue.get_nowait()
        await asyncio.sleep(TIMERS.t2 * 2)  # a window in which Timer E would have fired
        assert peer.queue.empty()

    run(body)


def test_client_invite_acknowledges_non_2xx_and_its_retransmission() -> None:
    async def body(ep: SipEndpoint, peer: RawPeer) -> None:
        req, dest = _outgoing("INVITE", peer)
        txn = ep.request(req, dest)
        await peer.recv()
        busy = bytes(make_response(req, 486, to_tag="busy"))
        peer.send(busy, ep.local)
        assert (await asyncio.wait_for(txn.final, 1)).status == 486
        ack = await _next_non_invite(peer)
        assert isinstance(ack, Request)
        assert ack.method == "ACK"
        assert ack.via.branch == req.via.branch
        assert str(ack.cseq) == "1 ACK"
        assert ack.to.tag == "busy"
        peer.send(busy, ep.local)
        again = await _next_non_invite(peer)
        assert bytes(again) == bytes(ack)
        assert txn.state is State.COMPLETED

    run(body)


def test_client_invite_provisional_stops_retransmission() -> None:
    async def body(ep: SipEndpoint, peer: RawPeer) -> None:
        req, dest = _outgoing("INVITE", peer)
        txn = ep.request(req, dest)
        await peer.recv()
        peer.send(bytes(make_response(req, 180, to_tag="ring")), ep.local)
        await asyncio.wait_for(_until(lambda: txn.state is State.PROCEEDING), 1)
        while not peer.queue.empty():
            peer.queue.get_nowait()
        await asyncio.sleep(TIMERS.t1 * 6)  # a window in which Timer A would have fired twice
        assert peer.queue.empty(), "INVITE retransmitted after a provisional response"

    run(body)


def assert_intervals(gaps: list[float], nominal: list[float]) -> None:
    """Each retransmission waits its nominal interval: never less (timers do not fire early),
    and not much more (a loaded machine may run a timer a little late)."""
    assert len(gaps) == len(nominal)
    for gap, expected in zip(gaps, nominal, strict=True):
        assert expected - 0.005 <= gap <= expected + 0.1, (gaps, nominal)


async def _next_non_invite(peer: RawPeer) -> Request:
    while True:
        msg = await peer.recv_msg()
        if isinstance(msg, Request) and msg.method != "INVITE":
            return msg


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.005)
