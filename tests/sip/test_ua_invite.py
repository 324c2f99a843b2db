"""The client side of one INVITE (§13.2, §9.1) against a scripted UAS on another endpoint."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable

import pytest

from appliance.sip.dialog import Dialog
from appliance.sip.digest import DigestServer, Verdict
from appliance.sip.endpoint import SipEndpoint, new_tag
from appliance.sip.message import Request, Response, make_response
from appliance.sip.transaction import Destination, ServerTransaction, State, Timers
from appliance.sip.ua import uac
from appliance.sip.ua.auth import Credentials
from appliance.sip.ua.invite import OutgoingInvite, cancel_request
from appliance.store.extensions import digest_ha1

TIMERS = Timers(t1=0.02, t2=0.08, t4=0.1)
LOCAL = "127.0.0.1"
PASSWORD = "Trunk-Secret-1"
SDP = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"


def trunk_ha1(user: str, algorithm: str) -> str | None:
    return digest_ha1(algorithm, "box", "provider", PASSWORD) if user == "box" else None


class Uas:
    """The far end: `script(request, transaction)` answers each INVITE; CANCELs and ACKs are
    recorded (a CANCEL is answered 200, and its INVITE 487, unless `answer_cancel` is off)."""

    def __init__(self, ep: SipEndpoint) -> None:
        self.ep = ep
        self.tag = new_tag()
        self.script: Callable[[Request, ServerTransaction], None] = lambda req, txn: None
        self.invites: list[tuple[Request, ServerTransaction]] = []
        self.arrived: asyncio.Queue[Request] = asyncio.Queue()
        self.cancels: list[Request] = []
        self.acks: asyncio.Queue[Request] = asyncio.Queue()
        self.answer_cancel = True
        ep.handlers["INVITE"] = self._invite
        ep.handlers["CANCEL"] = self._cancel
        ep.on_ack = self.acks.put_nowait

    def respond(self, txn: ServerTransaction, status: int, body: bytes = b"") -> None:
        headers = [("Contact", f"<sip:uas@{LOCAL}:{self.ep.local[1]}>")] if status < 300 else []
        if body:
            headers.append(("Content-Type", "application/sdp"))
        txn.respond(make_response(txn.request, status, to_tag=self.tag, headers=headers,
                                  body=body))  # fmt: skip

    def _invite(self, req: Request, txn: ServerTransaction) -> None:
        self.invites.append((req, txn))
        self.arrived.put_nowait(req)
        self.script(req, txn)

    def _cancel(self, req: Request, txn: ServerTransaction) -> None:
        self.cancels.append(req)
        self.arrived.put_nowait(req)
        if not self.answer_cancel:
            return
        txn.respond(make_response(req, 200, to_tag=self.tag))
        invite_txn = self.invites[-1][1]
        if invite_txn.state is State.PROCEEDING:
            self.respond(invite_txn, 487)


class Net:
    def __init__(self, client: SipEndpoint, uas: Uas, transport: str) -> None:
        self.client, self.uas, self.transport = client, uas, transport
        self.responses: asyncio.Queue[Response] = asyncio.Queue()
        self.dest = Destination(transport, LOCAL, uas.ep.local[1])
        self.via = f"{transport} {LOCAL}:{client.local[1]}"

    def invite(self, *, route: bool = False) -> Request:
        headers = [("Contact", f"<sip:box@{LOCAL}:{self.client.local[1]}>"),
                   ("Content-Type", "application/sdp")]  # fmt: skip
        if route:
            headers.insert(0, ("Route", f"<sip:{LOCAL}:{self.uas.ep.local[1]};lr>"))
        return uac.request(
            "INVITE", f"sip:+15551234@{LOCAL}:{self.uas.ep.local[1]}", via=self.via,
            from_=f"<sip:box@{LOCAL}>;tag={new_tag()}", to=f"<sip:+15551234@{LOCAL}>",
            call_id=uac.new_call_id(self.via), cseq=1, headers=headers, body=SDP,
        )  # fmt: skip

    def outgoing(self, request: Request, credentials: Credentials | None = None) -> OutgoingInvite:
        return OutgoingInvite(self.client, request, self.dest, self.responses.put_nowait,
                              credentials)  # fmt: skip

    async def response(self, timeout: float = 5.0) -> Response:
        return await asyncio.wait_for(self.responses.get(), timeout)

    async def barrier(self) -> None:
        """An OPTIONS round trip to the UAS: what the client sent before has arrived (loopback
        keeps order on one socket pair; one TCP connection keeps it anyway)."""
        request = uac.request(
            "OPTIONS", f"sip:{LOCAL}", via=self.via, from_="<sip:t@x>;tag=b", to="<sip:t@x>",
            call_id=uac.new_call_id(self.via), cseq=1,
        )  # fmt: skip
        txn = self.client.request(request, self.dest)
        assert (await asyncio.wait_for(txn.final, 5)).status == 200


def run(test: Callable[[Net], Awaitable[None]], transport: str = "UDP") -> None:
    async def main() -> None:
        tcp = transport == "TCP"
        client, far = SipEndpoint(timers=TIMERS), SipEndpoint()
        await client.listen(LOCAL, 0, tcp=tcp)
        await far.listen(LOCAL, 0, tcp=tcp)
        try:
            await asyncio.wait_for(test(Net(client, Uas(far), transport)), 20)
        finally:
            client.close()
            far.close()

    asyncio.run(main())


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
def test_a_407_is_answered_then_180_and_200_reach_the_user(transport: str) -> None:
    trunk = DigestServer("provider", os.urandom(32))

    async def body(net: Net) -> None:
        def script(req: Request, txn: ServerTransaction) -> None:
            value = req.get("Proxy-Authorization")
            if value is None or trunk.verify(value, "INVITE", trunk_ha1).verdict is not (
                Verdict.OK
            ):
                headers = [("Proxy-Authenticate", c) for c in trunk.challenges()]
                txn.respond(make_response(req, 407, to_tag=new_tag(), headers=headers))
                return
            net.uas.respond(txn, 180)
            net.uas.respond(txn, 200, SDP)

        net.uas.script = script
        first = net.invite()
        call = net.outgoing(first, Credentials("box", PASSWORD))
        call.start()
        ringing, answered = await net.response(), await net.response()
        assert (ringing.status, answered.status) == (180, 200)
        assert net.responses.empty()  # the 407 was not handed over
        # `request` is the INVITE that was answered: next CSeq, credentials, same identity.
        invite = call.request
        assert invite.cseq == (2, "INVITE")
        assert invite.get("Proxy-Authorization") is not None
        assert (invite.call_id, invite.get("From"), invite.get("To"), invite.body) == (
            first.call_id, first.get("From"), first.get("To"), SDP,
        )  # fmt: skip
        assert call.final is answered
        # The 407 was ACKed by the transaction layer (§17.1.1.3).
        challenged_txn = net.uas.invites[0][1]
        await net.barrier()
        assert challenged_txn.state in (State.CONFIRMED, State.TERMINATED)
        # The user builds its dialog from `request` and ACKs the 2xx.
        dialog = Dialog.as_uac(invite, answered, net.dest, net.via)
        net.client.send(bytes(dialog.ack(invite.cseq.number)), net.dest)
        ack = await asyncio.wait_for(net.uas.acks.get(), 5)
        assert ack.cseq == (2, "ACK")
        assert ack.to.tag == net.uas.tag

    run(body, transport)


def test_a_challenge_without_credentials_reaches_the_user() -> None:
    async def body(net: Net) -> None:
        server = DigestServer("provider", os.urandom(32))
        net.uas.script = lambda req, txn: txn.respond(make_response(
            req, 401, to_tag=new_tag(),
            headers=[("WWW-Authenticate", c) for c in server.challenges()],
        ))  # fmt: skip
        call = net.outgoing(net.invite())
        call.start()
        assert (await net.response()).status == 401
        assert call.request.cseq.number == 1

    run(body)


def test_a_refused_password_hands_the_second_challenge_to_the_user() -> None:
    async def body(net: Net) -> None:
        server = DigestServer("provider", os.urandom(32))
        net.uas.script = lambda req, txn: txn.respond(make_response(
            req, 407, to_tag=new_tag(),
            headers=[("Proxy-Authenticate", c) for c in server.challenges()],
        ))  # fmt: skip
        call = net.outgoing(net.invite(), Credentials("box", "wrong"))
        call.start()
        refused = await net.response()
        assert refused.status == 407
        assert len(net.uas.invites) == 2
        assert call.request.cseq.number == 2

    run(body)


def test_cancel_before_any_provisional_waits_for_one() -> None:
    async def body(net: Net) -> None:
        call = net.outgoing(net.invite(route=True))
        call.start()
        await asyncio.wait_for(net.uas.arrived.get(), 5)
        call.cancel()
        await net.barrier()
        assert net.uas.cancels == []  # §9.1: no CANCEL before a provisional response
        invite, txn = net.uas.invites[0]
        net.uas.respond(txn, 180)
        assert (await net.response()).status == 180
        cancel = await asyncio.wait_for(net.uas.arrived.get(), 5)
        assert cancel.method == "CANCEL"
        assert (await net.response()).status == 487
        assert call.final is not None and call.final.status == 487
        # §9.1: same Request-URI, Call-ID, From, To, CSeq number, the top Via alone, Routes.
        assert cancel.uri == invite.uri
        for name in ("Call-ID", "From", "To", "Route", "Max-Forwards"):
            assert cancel.get_all(name) == invite.get_all(name), name
        assert cancel.get_all("Via") == invite.get_all("Via")[:1]
        assert cancel.cseq == (invite.cseq.number, "CANCEL")
        assert cancel.body == b""
        await net.barrier()
        assert txn.state in (State.CONFIRMED, State.TERMINATED)  # the 487 was ACKed
        assert len(net.uas.cancels) == 1

    run(body)


def test_cancel_pending_is_dropped_when_a_final_comes_first() -> None:
    async def body(net: Net) -> None:
        call = net.outgoing(net.invite())
        call.start()
        await asyncio.wait_for(net.uas.arrived.get(), 5)
        call.cancel()
        net.uas.respond(net.uas.invites[0][1], 486)
        assert (await net.response()).status == 486
        await net.barrier()
        assert net.uas.cancels == []
        assert not call.cancel_sent

    run(body)


@pytest.mark.parametrize("status", [486, 200])
def test_cancel_after_the_final_sends_nothing(status: int) -> None:
    async def body(net: Net) -> None:
        def script(req: Request, txn: ServerTransaction) -> None:
            net.uas.respond(txn, 180)
            net.uas.respond(txn, status)

        net.uas.script = script
        call = net.outgoing(net.invite())
        call.start()
        assert [(await net.response()).status for _ in range(2)] == [180, status]
        call.cancel()
        await net.barrier()
        assert net.uas.cancels == []
        assert not call.cancel_sent

    run(body)


def test_an_unanswered_cancel_ends_the_invite_after_64_t1() -> None:
    async def body(net: Net) -> None:
        net.uas.answer_cancel = False
        net.uas.script = lambda req, txn: net.uas.respond(txn, 183)
        call = net.outgoing(net.invite())
        call.start()
        assert (await net.response()).status == 183
        call.cancel()
        gave_up = await net.response(timeout=TIMERS.b + 2)
        assert (gave_up.status, gave_up.reason) == (408, "Request Timeout (no answer to CANCEL)")
        assert len(net.uas.cancels) == 1
        assert all(
            txn.request.method != "INVITE" for txn in net.client.transactions.client.values()
        )

    run(body)


def test_the_cancel_request_follows_section_9_1() -> None:
    invite = uac.request(
        "INVITE", "sip:bob@example.net", via="UDP 192.0.2.1:5060", from_="<sip:a@x>;tag=1",
        to="<sip:bob@example.net>", call_id="c@x", cseq=5,
        headers=[("Route", "<sip:p1.example.net;lr>, <sip:p2.example.net;lr>"),
                 ("Contact", "<sip:a@192.0.2.1>"), ("Content-Type", "application/sdp")],
        body=SDP,
    )  # fmt: skip
    cancel = cancel_request(invite)
    assert bytes(cancel).decode().split("\r\n")[:1] == ["CANCEL sip:bob@example.net SIP/2.0"]
    assert [h.name for h in cancel.headers] == [
        "Via", "Max-Forwards", "From", "To", "Call-ID", "Route", "CSeq", "Content-Length",
    ]  # fmt: skip
    assert cancel.get("CSeq") == "5 CANCEL"
    assert cancel.get_all("Route") == ["<sip:p1.example.net;lr>", "<sip:p2.example.net;lr>"]
    assert cancel.get("Content-Length") == "0"
    with pytest.raises(ValueError, match="sends an INVITE, not CANCEL"):
        OutgoingInvite(SipEndpoint(), cancel, Destination("UDP", "192.0.2.1", 5060), print)
