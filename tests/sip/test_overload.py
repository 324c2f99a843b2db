"""Overload control (appliance/sip/overload.py) and the compact store of completed transactions
(appliance/sip/transaction.py): the detector's hysteresis, the 503 answered from a request's
bytes over a real backlog in a real UDP socket, and the memory completed transactions hold."""

from __future__ import annotations

import asyncio
import socket
import tracemalloc

import pytest

from appliance.sip import overload
from appliance.sip.endpoint import SipEndpoint
from appliance.sip.message import Request, Response, make_response, parse
from appliance.sip.overload import OverloadControl, QuickRequest
from appliance.sip.transaction import (
    DRAIN_HIGH_WATER,
    EXPIRY_BUCKET,
    CompletedTransactions,
    Destination,
    ServerTransaction,
    server_key,
)
from tests.sip.peer import RawPeer, request_bytes, run_with_peer

KIB = 1024


# -- the detector ---------------------------------------------------------------------------


def test_gate_opens_at_the_threshold_and_closes_only_at_half_of_it() -> None:
    gate = OverloadControl(queue_kib=100)
    gate.update(99 * KIB)
    assert not gate.refusing
    gate.update(100 * KIB)
    assert gate.refusing and not gate.severe
    gate.update(51 * KIB)  # between the two thresholds: still refusing (hysteresis)
    assert gate.refusing
    gate.update(50 * KIB)
    assert not gate.refusing
    gate.update(99 * KIB)  # and admitting up to the threshold again
    assert not gate.refusing
    assert gate.peak == 100 * KIB


def test_severe_refuses_credentials_too_until_the_queue_is_back_under_the_threshold() -> None:
    gate = OverloadControl(queue_kib=100)
    gate.update(overload.SEVERE * 100 * KIB - 1)
    assert gate.refusing and not gate.severe
    gate.update(overload.SEVERE * 100 * KIB)
    assert gate.severe
    gate.update(101 * KIB)
    assert gate.severe
    gate.update(100 * KIB)
    assert not gate.severe and gate.refusing


def test_the_reported_state_lasts_until_hold_seconds_without_a_refusal() -> None:
    gate = OverloadControl()
    assert gate.status()["state"] == "normal"
    gate.note_refusal(10.0)
    gate.note_refusal(10.5)
    assert gate.status() | {"state": "overloaded", "refused": 2, "episodes": 1} == gate.status()
    gate.end_if_quiet(10.5 + overload.HOLD - 0.01)
    assert gate.overloaded
    gate.end_if_quiet(10.5 + overload.HOLD)
    assert not gate.overloaded
    gate.note_refusal(20.0)  # a second episode
    assert gate.status()["episodes"] == 2 and gate.status()["refused"] == 3


def test_the_queue_of_a_real_socket_is_read() -> None:
    async def body() -> None:
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender,
        ):
            sink.bind(("127.0.0.1", 0))
            gate = OverloadControl(queue_kib=16)
            gate.watch(sink)
            gate.sample()
            assert gate.depth == 0 and not gate.refusing
            for _ in range(40):  # ~40 KiB of kernel memory: over 16 KiB
                sender.sendto(b"x" * 600, sink.getsockname())
            gate.sample()
            assert gate.depth >= 40 * 600 and gate.refusing
            while True:  # read them all: the queue is empty again
                sink.setblocking(False)
                try:
                    sink.recv(2048)
                except BlockingIOError:
                    break
            gate.sample()
            assert gate.depth == 0 and not gate.refusing
            gate.close()

    asyncio.run(body())


# -- reading a request from its bytes -------------------------------------------------------


def test_quick_read_makes_the_key_the_full_parse_makes() -> None:
    data = request_bytes("REGISTER", 5099, branch="z9hG4bK-Quick-1")
    quick = QuickRequest.read(data)
    assert quick is not None
    req = parse(data)
    assert isinstance(req, Request)
    assert quick.key == server_key(req)
    assert not quick.in_dialog and not quick.credentials
    with_credentials = QuickRequest.read(
        data.replace(b"Max-Forwards", b"Authorization: x\r\nMax-Forwards")
    )
    assert with_credentials is not None and with_credentials.credentials


def compact(data: bytes) -> bytes:
    """`data` with compact header names (RFC 3261 §7.3.3)."""
    for long, short in ((b"Via:", b"v:"), (b"To:", b"t:"), (b"Call-ID:", b"i:"), (b"From:", b"f:")):
        data = data.replace(b"\r\n" + long, b"\r\n" + short)
    return data


def test_quick_read_leaves_unusual_requests_to_the_full_path() -> None:
    plain = request_bytes("INVITE", 5099)
    assert QuickRequest.read(plain) is not None
    folded = plain.replace(b"Call-ID: call-1@test", b"Call-ID:\r\n call-1@test")
    two_vias = plain.replace(b";rport\r\n", b";rport, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx\r\n")
    old_branch = request_bytes("INVITE", 5099, branch="1234")
    wrong_cseq = plain.replace(b"CSeq: 1 INVITE", b"CSeq: 1 BYE")
    no_end = plain[:-4]
    ipv6 = plain.replace(b"UDP 127.0.0.1:5099", b"UDP [::1]:5099")
    for data in (folded, two_vias, old_branch, wrong_cseq, no_end, ipv6, compact(plain)):
        assert QuickRequest.read(data) is None, data


def test_refusal_copies_the_request_lines_and_adds_a_tag_and_retry_after() -> None:
    data = request_bytes("INVITE", 5099, extra="Authorization: Digest x\r\n")
    quick = QuickRequest.read(data)
    assert quick is not None and quick.credentials
    answer = parse(quick.refusal("tag-1", "pbx-test"))
    req = parse(data)
    assert isinstance(answer, Response) and isinstance(req, Request)
    assert answer.status == 503
    for name in ("Via", "From", "Call-ID", "CSeq"):
        assert answer.get(name) == req.get(name)
    assert answer.to.tag == "tag-1" and answer.to.uri == req.to.uri
    low, high = overload.RETRY_AFTER
    assert low <= int(answer.get("Retry-After") or 0) <= high
    assert answer.get("Content-Length") == "0" and not answer.body
    in_dialog = QuickRequest.read(request_bytes("INVITE", 5099, to_tag="dlg"))
    assert in_dialog is not None and in_dialog.in_dialog


# -- the endpoint under a real backlog ------------------------------------------------------


def test_backlog_gets_503s_while_retransmissions_dialogs_and_credentials_are_served() -> None:
    """The loop is held while 200 new REGISTERs queue in the endpoint's socket, behind a
    retransmission, an in-dialog INVITE and a REGISTER with credentials: the new ones beyond
    the threshold get 503 without reaching the handler; the others are served as usual."""
    handled: list[Request] = []

    def handler(req: Request, txn: ServerTransaction) -> None:
        handled.append(req)
        txn.respond(make_response(req, 401 if req.method == "REGISTER" else 200, to_tag="h"))

    async def body(ep: SipEndpoint, peer: RawPeer) -> None:
        ep.handlers["REGISTER"] = handler
        ep.handlers["INVITE"] = handler
        ep.overload.set_threshold(80)  # 203 requests queue ~250 KiB: over it, not severe
        assert peer.transport is not None
        peer.transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20
        )
        first = request_bytes("REGISTER", peer.port, branch="z9hG4bK-first", call_id="c-first")
        peer.send(first, ep.local)
        _, challenge = await peer.recv()
        assert len(handled) == 1

        flood = [
            request_bytes("REGISTER", peer.port, branch=f"z9hG4bK-n{i}", call_id=f"c-{i}")
            for i in range(200)
        ]
        # Every third in compact form: read by the full parse, then refused all the same.
        flood = [compact(data) if i % 3 == 0 else data for i, data in enumerate(flood)]
        special = [
            first,  # a retransmission of a completed transaction
            request_bytes("INVITE", peer.port, branch="z9hG4bK-re", call_id="c-dlg", to_tag="d"),
            request_bytes(
                "REGISTER",
                peer.port,
                branch="z9hG4bK-auth",
                call_id="c-auth",
                extra='Authorization: Digest username="101"\r\n',
            ),
        ]
        # Sent while this coroutine holds the loop: all of it waits in the endpoint's socket.
        for data in flood[:100] + special + flood[100:]:
            peer.send(data, ep.local)
        answers: dict[str, Response] = {}
        resent: list[bytes] = []
        # Wait for every one of the 203 answers.
        while len(answers) + len(resent) < 203:
            _, raw = await peer.recv(timeout=5.0)
            if raw == challenge:
                resent.append(raw)
                continue
            msg = parse(raw)
            assert isinstance(msg, Response)
            answers[msg.call_id] = msg
        assert resent == [challenge]  # the retransmission got the very same bytes
        refused = {cid for cid, msg in answers.items() if msg.status == 503}
        assert answers["c-dlg"].status == 200 and answers["c-auth"].status == 401
        assert "c-dlg" not in refused and "c-auth" not in refused
        assert len(refused) >= 100, f"only {len(refused)} of 200 refused"
        served = {req.call_id for req in handled}
        assert served.isdisjoint(refused)
        assert len(served) + len(refused) == 1 + 200 + 2  # nothing lost, nothing twice
        assert ep.overload.refused == len(refused) and ep.overload.overloaded
        assert {int(cid[2:]) % 3 for cid in refused if cid[2:].isdigit()} == {0, 1, 2}
        for cid in refused:
            assert answers[cid].get("Retry-After") and answers[cid].to.tag

    run_with_peer(body)


# -- completed transactions -----------------------------------------------------------------

DEST = Destination("UDP", "127.0.0.1", 5070)


def key(i: int) -> tuple[str, ...]:
    return (f"z9hG4bK-{i:08d}-abcdefabcdef", "127.0.0.1:5070", "REGISTER")


def test_completed_keeps_the_response_and_where_it_goes() -> None:
    async def body() -> None:
        store = CompletedTransactions(asyncio.get_running_loop())
        store.add(key(1), b"SIP/2.0 200 OK\r\n\r\n", DEST, 30.0)
        assert store.get(key(1)) == (b"SIP/2.0 200 OK\r\n\r\n", DEST)
        assert key(1) in store and key(2) not in store and store.get(key(2)) is None
        store.clear()

    asyncio.run(body())


def test_completed_expire_after_their_lifetime_and_not_before() -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        store = CompletedTransactions(loop)
        t0 = loop.time()
        store.add(key(1), b"r1", DEST, 0.2)
        deadline = t0 + 0.2 + EXPIRY_BUCKET + 2.0
        while len(store) and loop.time() < deadline:
            assert loop.time() - t0 >= 0.2 or key(1) in store
            await asyncio.sleep(0.02)  # polling the expiry under test, with a deadline
        assert not len(store)
        assert loop.time() - t0 >= 0.2

    asyncio.run(body())


def test_completed_are_capped_and_the_oldest_go_first() -> None:
    async def body() -> None:
        store = CompletedTransactions(asyncio.get_running_loop(), limit=100)
        for i in range(1000):
            store.add(key(i), b"r", DEST, 30.0)
        assert len(store) <= 100
        assert store.evicted >= 900
        assert key(999) in store and key(0) not in store
        store.clear()

    asyncio.run(body())


@pytest.mark.timeout(60)
def test_completed_cost_little_memory_and_give_it_all_back_and_say_so() -> None:
    response = b"SIP/2.0 401 Unauthorized\r\n" + b"x" * 450  # the size of a real challenge

    async def body() -> None:
        loop = asyncio.get_running_loop()
        store = CompletedTransactions(loop)
        drained: list[int] = []
        store.on_drained = lambda: drained.append(len(store))
        count = DRAIN_HIGH_WATER * 3
        keys = [key(i) for i in range(count)]
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for k in keys:
            store.add(k, response, DEST, 0.1)
        held = tracemalloc.get_traced_memory()[0] - before
        per_entry = held / count - len(response)
        assert per_entry < 300, f"{per_entry:.0f} bytes per entry beyond the response"
        deadline = loop.time() + 0.1 + EXPIRY_BUCKET + 5.0
        while len(store) and loop.time() < deadline:
            await asyncio.sleep(0.05)  # polling the expiry under test, with a deadline
        after = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        assert not len(store)
        assert after < held / 20, (held, after)
        assert drained[-1] == 0 and 1 <= len(drained) <= 2

    asyncio.run(body())
