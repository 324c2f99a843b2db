"""The B2BUA's state paths in-process: the real core over a real SQLite file, driven by scripted
SIP user agents on loopback (glare, UPDATE, session timers, lost ACKs, CANCEL races, transports,
offer/answer corner cases, Max-Forwards)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from appliance.sip.message import Request
from appliance.sip.transaction import ServerTransaction, State
from appliance.sip.ua.invite import cancel_request
from appliance.store import cdrs
from appliance.store.db import open_db
from tests.pbx.harness import (
    HOST,
    TIMERS,
    WAIT,
    Box,
    connect,
    parse_sdp,
    phone_sdp,
    run,
    top_via,
)


def test_a_reinvite_from_a_leg_while_ours_to_it_is_pending_gets_491(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(box: Box) -> None:
        caller, phone = await box.ua("101"), await box.phone("102")
        call = await connect(box, caller, phone)
        # The caller holds; the box passes the hold on to the phone, which does not answer yet.
        hold = caller.request(call.a_dialog, "INVITE", phone_sdp(4000, 2, direction="sendonly"))
        ours, pending = await phone.next("INVITE")
        assert parse_sdp(ours).media[0].direction == "sendonly"
        # The phone's own re-INVITE crosses ours: glare (RFC 3261 §14.1).
        crossing = phone.request(call.b_dialog, "INVITE", phone_sdp(5002, 2, session="5151"))
        glare = await phone.final(crossing)
        assert glare.status == 491, f"expected 491 in glare, got {glare.status} {glare.reason}"
        assert pending.state is State.PROCEEDING
        _, b = box.legs()
        assert b.media.sdp_remote == (HOST, 5000)  # the refused offer changed nothing
        # The phone answers the box's re-INVITE after all; the caller's hold completes.
        phone.respond(pending, 200, phone_sdp(5000, 2, session="5151", direction="recvonly"))
        await phone.ack()
        held = await caller.final(hold)
        assert held.status == 200
        assert parse_sdp(held).media[0].direction == "recvonly"
        caller.ack_2xx(call.a_dialog, hold)

    run(tmp_path, monkeypatch, body)


def test_update_with_a_new_offer_mid_call_is_answered_or_passed_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(box: Box) -> None:
        caller, phone = await box.ua("101"), await box.phone("102")
        call = await connect(box, caller, phone)
        _, b = box.legs()
        offer = parse_sdp(call.invite)  # the box's SDP to the phone so far
        # A new address and codec order (RFC 3311): the caller need not know; the box answers.
        moved = phone_sdp(5010, 2, ("PCMA", "PCMU"), session="5151")
        resp = await phone.final(phone.request(call.b_dialog, "UPDATE", moved))
        assert resp.status == 200
        answer = parse_sdp(resp)
        audio = answer.media[0]
        assert answer.origin.session_id == offer.origin.session_id
        assert answer.origin.session_version == offer.origin.session_version + 1
        assert (answer.address(audio), audio.port) == b.media.address == (HOST, b.media.port)
        assert audio.formats == ["0", "101"]  # the leg's codec, PCMU, still offered: kept
        assert b.codec is not None and b.codec.name == "PCMU"
        assert b.media.sdp_remote == (HOST, 5010)
        assert caller.received("INVITE") == []
        # A hold in an UPDATE changes what the caller must do: passed on as a re-INVITE.
        hold = phone.request(call.b_dialog, "UPDATE", phone_sdp(5010, 3, session="5151",
                                                                 direction="sendonly"))  # fmt: skip
        reinvite, txn = await caller.next("INVITE")
        assert parse_sdp(reinvite).media[0].direction == "sendonly"
        caller.respond(txn, 200, phone_sdp(4000, 2, direction="recvonly"))
        await caller.ack()
        resp = await phone.final(hold)
        assert resp.status == 200
        answer = parse_sdp(resp)
        assert answer.media[0].direction == "recvonly"
        assert answer.origin.session_version == offer.origin.session_version + 2

    run(tmp_path, monkeypatch, body)


def test_an_update_offer_before_the_first_answer_gets_500_with_retry_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(box: Box) -> None:
        caller, phone = await box.ua("101"), await box.phone("102")
        out = caller.call("102", phone_sdp(4000))
        _, txn = await phone.next("INVITE")
        phone.respond(txn, 180)  # ringing, no SDP: the caller's offer is not answered yet
        ringing = await out.status(180)
        early = out.early_dialog(ringing)
        resp = await caller.final(caller.request(early, "UPDATE", phone_sdp(4010, 2)))
        assert resp.status == 500, f"expected 500, got {resp.status} {resp.reason}"
        assert resp.get("Retry-After") is not None  # RFC 3311 §5.2
        out.invite.cancel()
        assert (await out.final()).status == 487
        assert (await box.cdr()).disposition == "cancelled"

    run(tmp_path, monkeypatch, body)


def test_the_box_as_refresher_says_uas_then_refreshes_as_uac(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(box: Box) -> None:
        loop = asyncio.get_running_loop()
        caller, phone = await box.ua("101"), await box.phone("102")
        timer = [("Supported", "timer"), ("Session-Expires", "90;refresher=uas")]
        call = await connect(box, caller, phone, headers=timer)
        # RFC 4028 §9: the 2xx names the refresher chosen, the box (the UAS of this dialog).
        assert call.ok.get("Session-Expires") == "90;refresher=uas"
        assert "timer" in call.ok.get_all("Require")
        a, _ = box.legs()
        assert a.refresh is not None, "the box did not schedule its refresh"
        due = a.refresh.when() - loop.time()
        assert 44.0 < due <= 45.0, f"refresh due in {due:.1f} s, not at half of 90 s"
        # Not 45 s of test: the same refresh, over a 2 s interval, comes after 1 s.
        a.refresh.cancel()
        started = loop.time()
        box.engine.sessions.schedule_refresh(a, 2)
        refresh, txn = await caller.next("INVITE")
        elapsed = loop.time() - started
        assert 0.95 <= elapsed < 1.0 + WAIT / 2, elapsed
        # RFC 4028 §7.4: the sender of the refresh is its UAC, and stays the refresher.
        assert refresh.get("Session-Expires") == "2;refresher=uac"
        before, again = parse_sdp(call.ok), parse_sdp(refresh)
        assert again.origin.session_id == before.origin.session_id
        assert again.origin.session_version == before.origin.session_version + 1
        assert (again.media[0].port, again.media[0].direction) == (a.media.port, "sendrecv")
        caller.respond(txn, 200, phone_sdp(4000), [("Session-Expires", "2;refresher=uac")])
        ack = await caller.ack()
        assert ack.cseq == (refresh.cseq.number, "ACK")
        assert a.refresh is not None and 0.5 < a.refresh.when() - loop.time() <= 1.0

    run(tmp_path, monkeypatch, body)


def test_a_caller_that_never_acks_is_hung_up_after_64_t1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(box: Box) -> None:
        loop = asyncio.get_running_loop()
        caller, phone = await box.ua("101"), await box.phone("102")
        out = caller.call("102", phone_sdp(4000))
        invite, txn = await phone.next("INVITE")
        phone.respond(txn, 200, phone_sdp(5000, session="5151"))
        await phone.ack()
        ok = await out.status(200)  # and never ACKed
        answered = loop.time()
        bye_a, _ = await caller.next("BYE", timeout=TIMERS.b + WAIT)
        elapsed = loop.time() - answered
        bye_b, _ = await phone.next("BYE")
        assert elapsed >= TIMERS.b - 0.1, f"hung up {elapsed:.2f} s after the 2xx"
        assert (bye_a.call_id, bye_a.from_.tag) == (ok.call_id, ok.to.tag)  # the caller's dialog
        assert (bye_b.call_id, bye_b.to.tag) == (invite.call_id, phone.tag_for(invite))
        cdr = await box.cdr()
        assert (cdr.disposition, cdr.hangup_side, cdr.hangup_cause) == (
            "answered", "system", "no ACK from the caller",
        )  # fmt: skip
        counters = box.counters()
        assert (counters["calls"], counters["dialogs"]) == (0, 0)

    data = run(tmp_path, monkeypatch, body)
    db = open_db(data)
    try:
        [row] = cdrs.recent(db)
    finally:
        db.conn.close()
    assert (row["disposition"], row["hangup_cause"]) == ("answered", "no ACK from the caller")


def test_a_fork_answering_after_the_cancel_is_acked_and_hung_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(box: Box) -> None:
        caller = await box.ua("101")
        desk, mobile = await box.phone("102"), await box.phone("102")  # two contacts of 102
        out = caller.call("102", phone_sdp(4000))
        (_, desk_txn), (invite, mobile_txn) = await desk.next("INVITE"), await mobile.next("INVITE")
        desk.respond(desk_txn, 180)
        mobile.respond(mobile_txn, 180)
        await out.status(180)
        await desk.barrier()
        await mobile.barrier()  # both 180s have reached the box: both forks may be CANCELled

        def crossing(req: Request, txn: ServerTransaction) -> None:
            # The 200 was on its way when the CANCEL came: the INVITE is answered already.
            mobile.respond(mobile_txn, 200, phone_sdp(5000, session="5151"))
            mobile.respond(txn, 200)

        mobile.on_cancel = crossing
        out.invite.cancel()
        assert (await out.final()).status == 487
        await desk.next("CANCEL")
        await mobile.next("CANCEL")
        ack = await mobile.ack()
        bye, _ = await mobile.next("BYE")
        assert ack.to.tag == bye.to.tag == mobile.tag_for(invite)
        await mobile.barrier()  # our 200 to that BYE has reached the box
        await desk.barrier()
        assert desk.received("BYE") == [] and desk.received("ACK") == []
        counters = box.counters()
        assert (counters["calls"], counters["dialogs"], counters["pending_invites"]) == (0, 0, 0)
        cdr = await box.cdr()
        assert (cdr.disposition, cdr.hangup_side, cdr.answered_at) == ("cancelled", "caller", None)

    run(tmp_path, monkeypatch, body)


def test_requests_in_a_dialog_over_tcp_carry_a_tcp_via(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(box: Box) -> None:
        caller, phone = await box.ua("101", "TCP"), await box.phone("102", "TCP")
        call = await connect(box, caller, phone)
        assert top_via(call.invite).startswith("SIP/2.0/TCP "), top_via(call.invite)
        assert "transport=tcp" in (call.ok.get("Contact") or "")
        # The phone holds: the box re-INVITEs the caller, in the caller's dialog, over TCP.
        hold = phone.request(call.b_dialog, "INVITE", phone_sdp(5000, 2, session="5151",
                                                                 direction="sendonly"))  # fmt: skip
        reinvite, txn = await caller.next("INVITE")
        assert top_via(reinvite).startswith("SIP/2.0/TCP "), top_via(reinvite)
        caller.respond(txn, 200, phone_sdp(4000, 2, direction="recvonly"))
        ack = await caller.ack()
        assert top_via(ack).startswith("SIP/2.0/TCP "), top_via(ack)
        resp = await phone.final(hold)
        assert resp.status == 200
        phone.ack_2xx(call.b_dialog, hold)
        # The caller hangs up: the box's BYE to the phone goes over TCP too.
        assert (await caller.final(caller.request(call.a_dialog, "BYE"))).status == 200
        bye, _ = await phone.next("BYE")
        assert top_via(bye).startswith("SIP/2.0/TCP "), top_via(bye)
        assert (await box.cdr()).hangup_cause == "BYE"

    run(tmp_path, monkeypatch, body)


@pytest.mark.parametrize("video", ["after", "before"])
def test_a_video_stream_is_declined_with_port_0_in_its_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, video: str
) -> None:
    async def body(box: Box) -> None:
        caller, phone = await box.ua("101"), await box.phone("102")
        call = await connect(box, caller, phone, offer=phone_sdp(4000, video=video))
        a, _ = box.legs()
        answer = parse_sdp(call.ok)
        streams = [(m.kind, m.port) for m in answer.media]
        expected = [("audio", a.media.port), ("video", 0)]
        assert streams == (expected if video == "after" else expected[::-1])  # RFC 3264 §6
        declined = next(m for m in answer.media if m.kind == "video")
        assert (declined.proto, declined.formats) == ("RTP/AVP", ["96"])
        assert a.media.sdp_remote == (HOST, 4000)
        assert [m.kind for m in parse_sdp(call.invite).media] == ["audio"]

    run(tmp_path, monkeypatch, body)


def test_an_srtp_only_offer_is_refused_with_488(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(box: Box) -> None:
        caller, phone = await box.ua("101"), await box.phone("102")
        out = caller.call("102", phone_sdp(4000, proto="RTP/SAVP"))
        resp = await out.final()
        assert resp.status == 488, f"expected 488, got {resp.status} {resp.reason}"
        assert "SRTP" in resp.reason
        await phone.barrier()
        assert phone.received("INVITE") == []  # nobody was rung
        assert (await box.cdr()).hangup_cause.startswith("488 ")

    run(tmp_path, monkeypatch, body)


def test_a_2xx_without_sdp_after_a_reliable_183_completes_the_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(box: Box) -> None:
        caller, phone = await box.ua("101"), await box.phone("102")
        out = caller.call("102", phone_sdp(4000))
        invite, txn = await phone.next("INVITE")
        assert "100rel" in [s.lower() for s in invite.get_all("Supported")]
        reliable = [("Require", "100rel"), ("RSeq", "1")]
        phone.respond(txn, 183, phone_sdp(5000, session="5151"), reliable)
        prack, _ = await phone.next("PRACK")  # RFC 3262 §4
        assert prack.get("RAck") == f"1 {invite.cseq.number} INVITE"
        early = await out.status(183)
        phone.respond(txn, 200)  # the answer was in the 183: the 2xx repeats nothing
        await phone.ack()
        ok = await out.status(200)
        assert parse_sdp(ok).media[0].port == parse_sdp(early).media[0].port
        dialog = out.ack(ok)
        await caller.barrier()
        await phone.barrier()
        assert phone.received("BYE") == [], "the call was torn down after a 2xx without SDP"
        call = box.only_call()
        a, b = box.legs()
        assert call.state == "answered"
        assert b.codec is not None and b.codec.name == "PCMU"
        assert b.media.sdp_remote == (HOST, 5000) and a.media.peer is b.media
        assert (await caller.final(caller.request(dialog, "BYE"))).status == 200
        await phone.next("BYE")
        assert (await box.cdr()).disposition == "answered"

    run(tmp_path, monkeypatch, body)


def test_a_rejected_reoffer_leaves_the_leg_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(box: Box) -> None:
        caller, phone = await box.ua("101"), await box.phone("102")
        call = await connect(box, caller, phone)
        a, b = box.legs()
        assert a.media.sdp_remote == (HOST, 4000) and a.codec is not None
        assert a.codec.name == "PCMU"
        # The caller moves, changes codec and holds; the phone refuses the hold passed on.
        moved = phone_sdp(4010, 2, ("PCMA",), direction="sendonly")
        txn = caller.request(call.a_dialog, "INVITE", moved)
        reinvite, ptxn = await phone.next("INVITE")
        assert parse_sdp(reinvite).media[0].direction == "sendonly"
        phone.respond(ptxn, 488)
        resp = await caller.final(txn)
        assert resp.status == 488, f"expected 488, got {resp.status} {resp.reason}"
        # RFC 3264 §8: a rejected offer changes nothing.
        assert a.media.sdp_remote == (HOST, 4000)
        assert a.codec.name == "PCMU"
        assert a.media.codec is not None and a.media.codec.name == "PCMU"
        assert b.direction == "sendrecv", "the phone's refused hold is taken as its state"
        # And so the next hold is offered to the phone again.
        txn = caller.request(call.a_dialog, "INVITE", phone_sdp(4000, 3, direction="sendonly"))
        try:
            reinvite, ptxn = await phone.next("INVITE", timeout=1.0)
        except TimeoutError:
            raise AssertionError("the hold was not passed on to the phone") from None
        phone.respond(ptxn, 200, phone_sdp(5000, 2, session="5151", direction="recvonly"))
        await phone.ack()
        assert (await caller.final(txn)).status == 200
        caller.ack_2xx(call.a_dialog, txn)

    run(tmp_path, monkeypatch, body)


def test_a_cancel_before_any_provisional_waits_for_the_callees_180(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(box: Box) -> None:
        caller, phone = await box.ua("101"), await box.phone("102")
        out = caller.call("102", phone_sdp(4000))
        invite, txn = await phone.next("INVITE")  # and no 1xx yet
        out.invite.cancel()
        assert (await out.final()).status == 487
        await phone.barrier()
        assert phone.received("CANCEL") == [], "CANCEL sent before any provisional (§9.1)"
        phone.respond(txn, 180)
        cancel, _ = await phone.next("CANCEL")
        assert cancel.cseq == (invite.cseq.number, "CANCEL")
        assert top_via(cancel) == top_via(invite)
        await phone.barrier()
        assert box.counters()["calls"] == 0
        assert (await box.cdr()).disposition == "cancelled"

    run(tmp_path, monkeypatch, body)


def test_an_answer_to_a_reinvite_the_caller_cancelled_raises_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(box: Box) -> None:
        caller, phone = await box.ua("101"), await box.phone("102")
        call = await connect(box, caller, phone)
        a, _ = box.legs()
        hold = caller.request(call.a_dialog, "INVITE", phone_sdp(4010, 2, direction="sendonly"))
        _, ptxn = await phone.next("INVITE")  # passed on; the phone takes its time
        cancel = caller.ep.request(cancel_request(hold.request), caller.box)
        assert (await caller.final(cancel)).status == 200
        assert (await caller.final(hold)).status == 487
        phone.respond(ptxn, 200, phone_sdp(5000, 2, session="5151", direction="recvonly"))
        await phone.ack()
        await phone.barrier()  # the phone's answer has been handled
        assert not box.loop_errors, box.loop_errors
        assert not box.errors, [r.getMessage() for r in box.errors]
        assert box.only_call().state == "answered"
        # The caller's withdrawn offer did not take effect (RFC 3261 §9.2), on either side: the
        # caller's leg stays where it was, and the phone, which took the hold, is resumed.
        assert a.media.sdp_remote == (HOST, 4000), "the cancelled re-offer moved the caller"
        try:
            resume, ptxn = await phone.next("INVITE", timeout=1.0)
        except TimeoutError:
            raise AssertionError("the phone was left on the hold the caller withdrew") from None
        assert parse_sdp(resume).media[0].direction == "sendrecv"
        phone.respond(ptxn, 200, phone_sdp(5000, 3, session="5151"))
        await phone.ack()
        assert caller.received("INVITE") == []

    run(tmp_path, monkeypatch, body)


def test_max_forwards_is_decremented_and_0_is_refused_with_483(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(box: Box) -> None:
        caller, phone = await box.ua("101"), await box.phone("102")
        out = caller.call("102", phone_sdp(4000), max_forwards=10)
        invite, txn = await phone.next("INVITE")
        assert invite.get("Max-Forwards") == "9"
        phone.respond(txn, 486)
        assert (await out.final()).status == 486
        out = caller.call("102", phone_sdp(4000), max_forwards=0)
        resp = await out.final()
        assert (resp.status, resp.reason) == (483, "Too Many Hops")
        await phone.barrier()
        assert phone.received("INVITE") == []

    run(tmp_path, monkeypatch, body)
