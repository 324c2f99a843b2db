"""Dialog state (RFC 3261 §12) and the retransmission of 2xx and reliable provisionals."""

from __future__ import annotations

import asyncio

from appliance.sip.dialog import Dialog, Reliable, request_dialog_id
from appliance.sip.message import Request, Response, parse
from appliance.sip.transaction import Destination, Timers

INVITE = (
    b"INVITE sip:102@10.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.7:5062;branch=z9hG4bKabc;rport\r\n"
    b"Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>\r\n"
    b'From: "Ann" <sip:101@10.0.0.1>;tag=ft1\r\n'
    b"To: <sip:102@10.0.0.1>\r\n"
    b"Call-ID: c1@10.0.0.7\r\n"
    b"CSeq: 7 INVITE\r\n"
    b"Contact: <sip:101@10.0.0.7:5062>\r\n"
    b"Max-Forwards: 70\r\n"
    b"Content-Length: 0\r\n\r\n"
)
DEST = Destination("UDP", "10.0.0.7", 5062)


def invite() -> Request:
    msg = parse(INVITE)
    assert isinstance(msg, Request)
    return msg


def uas() -> Dialog:
    return Dialog.as_uas(invite(), "tt9", DEST, "UDP 10.0.0.1:5060", "<sip:pbx@10.0.0.1:5060>")


def test_uas_dialog_takes_its_state_from_the_invite() -> None:
    d = uas()
    assert d.id == ("c1@10.0.0.7", "tt9", "ft1")
    assert d.remote_target == "sip:101@10.0.0.7:5062"
    assert d.route_set == ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
    assert d.local == "<sip:102@10.0.0.1>;tag=tt9" and d.remote_seq == 7


def test_in_dialog_request_follows_the_route_set_and_counts_cseq() -> None:
    d = uas()
    bye = parse(bytes(d.request("BYE")))
    assert isinstance(bye, Request)
    assert bye.uri == "sip:101@10.0.0.7:5062"
    assert bye.get_all("route") == ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
    assert bye.get("From") == "<sip:102@10.0.0.1>;tag=tt9"
    assert bye.get("To") == '"Ann" <sip:101@10.0.0.1>;tag=ft1'
    assert str(bye.cseq) == "1 BYE" and "contact" not in bye
    assert bye.via.branch is not None and bye.via.branch.startswith("z9hG4bK")
    info = d.request("INFO", [("Content-Type", "application/dtmf")], b"5")
    assert str(info.cseq) == "2 INFO" and info.get("Contact") == "<sip:pbx@10.0.0.1:5060>"
    assert info.get("Content-Length") == "1"
    ack = d.ack(2)
    assert str(ack.cseq) == "2 ACK" and d.local_seq == 2  # the ACK takes no new number


def test_strict_router_becomes_the_request_uri() -> None:
    d = uas()
    d.route_set = ["<sip:strict.example.com>", "<sip:p1.example.com;lr>"]
    req = d.request("BYE")
    assert req.uri == "sip:strict.example.com"
    assert req.get_all("route") == ["<sip:p1.example.com;lr>", "<sip:101@10.0.0.7:5062>"]


def test_uac_dialog_reverses_the_record_route() -> None:
    req = invite()
    resp = parse(
        b"SIP/2.0 200 OK\r\n"
        b"Via: SIP/2.0/UDP 10.0.0.7:5062;branch=z9hG4bKabc\r\n"
        b"Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>\r\n"
        b'From: "Ann" <sip:101@10.0.0.1>;tag=ft1\r\n'
        b"To: <sip:102@10.0.0.1>;tag=callee\r\n"
        b"Call-ID: c1@10.0.0.7\r\n"
        b"CSeq: 7 INVITE\r\n"
        b"Contact: <sip:102@10.0.0.9:5070>\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    assert isinstance(resp, Response)
    d = Dialog.as_uac(req, resp, Destination("UDP", "10.0.0.9", 5070), "UDP 10.0.0.1:5060")
    assert d.id == ("c1@10.0.0.7", "ft1", "callee")
    assert d.route_set == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert d.remote_target == "sip:102@10.0.0.9:5070" and d.local_seq == 7
    assert str(d.request("BYE").cseq) == "8 BYE"


def test_responses_carry_our_tag_and_contact() -> None:
    d = uas()
    req = invite()
    ringing = d.response(req, 180)
    ok = d.response(req, 200, body=b"v=0\r\n")
    assert ringing.to.tag == ok.to.tag == "tt9"
    assert ok.get("Contact") == "<sip:pbx@10.0.0.1:5060>"
    assert ok.get_all("record-route") == ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
    assert request_dialog_id(
        parse(bytes(d.request("BYE")).replace(b"tag=tt9", b"tag=X"))  # type: ignore[arg-type]
    ) == ("c1@10.0.0.7", "ft1", "X")


def test_requests_out_of_order_are_refused() -> None:
    d = uas()
    req = invite()
    req.set("CSeq", "8 BYE")
    req.method = "BYE"
    assert d.accept_remote_seq(req) is True
    assert d.accept_remote_seq(req) is False  # the same number again
    req.set("CSeq", "8 ACK")
    req.method = "ACK"
    assert d.accept_remote_seq(req) is True  # ACK and CANCEL reuse the number


def test_reliable_doubles_to_t2_and_gives_up_after_64_t1() -> None:
    async def main() -> tuple[list[float], bool]:
        loop = asyncio.get_running_loop()
        sent: list[float] = []
        done = asyncio.Event()
        start = loop.time()
        timers = Timers(t1=0.01, t2=0.04, t4=0.05)
        Reliable(lambda _d, _a: sent.append(loop.time() - start), b"x", DEST, timers,
                 on_timeout=done.set)  # fmt: skip
        await asyncio.wait_for(done.wait(), 5)
        return sent, done.is_set()

    sent, timed_out = asyncio.run(main())
    gaps = [b - a for a, b in zip([0.0, *sent], sent, strict=False)]
    assert timed_out
    assert gaps[0] >= 0.009 and gaps[1] >= 0.019 and gaps[2] >= 0.039
    assert all(g < 0.04 + 0.03 for g in gaps[3:])  # capped at T2 (plus scheduling slack)
    assert sent[-1] <= 64 * 0.01 + 0.05


def test_reliable_stops_when_acknowledged() -> None:
    async def main() -> list[bytes]:
        sent: list[bytes] = []
        timers = Timers(t1=0.01, t2=0.04, t4=0.05)
        r = Reliable(lambda d, _a: sent.append(d), b"200", DEST, timers)
        await asyncio.sleep(0.035)  # the retransmission schedule is what is under test
        r.stop()
        count = len(sent)
        await asyncio.sleep(0.1)
        assert len(sent) == count
        r.resend()  # after stop: nothing
        return sent

    sent = asyncio.run(main())
    assert 1 <= len(sent) <= 3


def test_reliable_over_tcp_sends_no_repeats() -> None:
    async def main() -> tuple[list[bytes], bool]:
        sent: list[bytes] = []
        done = asyncio.Event()
        timers = Timers(t1=0.005, t2=0.02, t4=0.05)
        Reliable(lambda d, _a: sent.append(d), b"x", Destination("TCP", "h", 1), timers,
                 on_timeout=done.set)  # fmt: skip
        await asyncio.wait_for(done.wait(), 5)
        return sent, done.is_set()

    sent, timed_out = asyncio.run(main())
    assert sent == [] and timed_out
