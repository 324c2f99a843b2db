"""SRTP (SDES) in the call engine, with the in-process core and scripted phones over UDP and
SIP over TLS: what a line's `media_encryption` policy accepts and offers, that SDES keys are
taken only over TLS, that the box answers with a key of its own and terminates SRTP on that
leg only, and that a re-INVITE keeps or renews the keys as it should."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest

from appliance.sip import sdes, sdp
from appliance.store import encryption
from appliance.store.database import Database
from tests.pbx.harness import Box, Outgoing, connect, parse_sdp, phone_sdp, run

KEY = base64.b64encode(bytes(range(30))).decode()
OTHER_KEY = base64.b64encode(bytes(range(1, 31))).decode()


def srtp_sdp(port: int, version: int = 1, key: str = KEY, tag: int = 1) -> bytes:
    """A phone's SRTP offer: RTP/SAVP with an unusable a=crypto first, then a good one."""
    plain = phone_sdp(port, version, proto="RTP/SAVP").decode()
    crypto = (f"a=crypto:9 AES_256_CM_HMAC_SHA1_80 inline:{KEY}{KEY}\r\n"
              f"a=crypto:{tag} AES_CM_128_HMAC_SHA1_80 inline:{key}\r\n")  # fmt: skip
    return plain.replace("a=sendrecv\r\n", crypto + "a=sendrecv\r\n").encode()


def policies(**numbers: str) -> Callable[[Database], None]:
    """Set extensions' policies (`e101="required"`) before the core starts."""

    def prepare(db: Database) -> None:
        for number, policy in numbers.items():
            encryption.set_for_extension(db, number.removeprefix("e"), policy)

    return prepare


def the_crypto(body: bytes) -> sdes.Crypto:
    """The one a=crypto of the box's SDP."""
    desc = sdp.SessionDescription.parse(body)
    values = [v for k, v in desc.media[0].attributes if k == "crypto"]
    assert len(values) == 1, values
    return sdes.Crypto.parse(values[0] or "")


def test_an_srtp_caller_on_tls_reaches_a_plain_phone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(box: Box) -> None:
        caller = await box.ua("101", "TLS")
        phone = await box.phone("102")
        call = await connect(box, caller, phone, offer=srtp_sdp(4000))
        offer_to_phone = parse_sdp(call.invite)
        assert offer_to_phone.media[0].proto == "RTP/AVP"
        assert not offer_to_phone.media[0].has("crypto")
        answer = parse_sdp(call.ok)
        assert answer.media[0].proto == "RTP/SAVP"
        ours = the_crypto(call.ok.body)
        assert (ours.tag, ours.suite) == (1, "AES_CM_128_HMAC_SHA1_80")  # the offer's usable one
        assert ours.key_salt != bytes(range(30)) and ours.usable
        assert call.ok.via.transport == "TLS"
        assert ";transport=tls" in (call.ok.get("Contact") or "")
        a, b = box.legs()
        assert a.media.srtp is not None and b.media.srtp is None

        # A re-INVITE with the same key (hold) keeps the streams; a new key renews ours.
        context = a.media.srtp
        assert call.a_dialog is not None
        ok = await caller.reinvite(call.a_dialog, srtp_sdp(4000, 2))
        assert ok.status == 200 and the_crypto(ok.body) == ours and a.media.srtp is context
        ok = await caller.reinvite(call.a_dialog, srtp_sdp(4000, 3, OTHER_KEY))
        assert ok.status == 200 and a.media.srtp is not context
        renewed = the_crypto(ok.body)
        assert renewed.key_salt != ours.key_salt
        # A re-INVITE dropping SRTP on a line that allows plain RTP turns it off.
        ok = await caller.reinvite(call.a_dialog, phone_sdp(4000, 4))
        assert ok.status == 200 and a.media.srtp is None
        assert parse_sdp(ok).media[0].proto == "RTP/AVP"

    run(tmp_path, monkeypatch, body)


@pytest.mark.parametrize(
    ("transport", "offer", "prepare", "reason"),
    [
        ("UDP", "srtp", {}, "SRTP keys are taken only over SIP over TLS"),
        ("TCP", "srtp", {}, "SRTP keys are taken only over SIP over TLS"),
        ("TLS", "srtp", {"e101": "none"}, "SRTP is off for this line"),
        ("TLS", "plain", {"e101": "required"}, "SRTP required"),
        ("UDP", "plain", {"e101": "required"}, "SRTP required"),
        ("TLS", "no-crypto", {}, "no usable a=crypto"),
    ],
)
def test_refused_offers_get_488(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, transport: str, offer: str,
    prepare: dict[str, str], reason: str,
) -> None:  # fmt: skip
    bodies = {
        "srtp": srtp_sdp(4000),
        "plain": phone_sdp(4000),
        "no-crypto": phone_sdp(4000, proto="RTP/SAVP"),
    }

    async def body(box: Box) -> None:
        caller = await box.ua("101", transport)
        await box.phone("102")
        out = caller.call("102", bodies[offer])
        final = await out.final()
        assert final.status == 488 and reason in (final.reason or ""), final.reason
        cdr = await box.cdr()
        assert cdr.disposition == "failed"
        assert box.counters()["media_legs"] == 0

    run(tmp_path, monkeypatch, body, prepare=policies(**prepare))


def test_a_phone_that_requires_srtp_is_offered_only_srtp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(box: Box) -> None:
        caller = await box.ua("101")
        phone = await box.phone("102", "TLS")
        out = caller.call("102", phone_sdp(4000))
        invite, txn = await phone.next("INVITE")
        offered = parse_sdp(invite).media[0]
        assert offered.proto == "RTP/SAVP"
        ours = the_crypto(invite.body)
        assert ours.suite == "AES_CM_128_HMAC_SHA1_80" and ours.usable
        phone.respond(txn, 200, srtp_sdp(5000, tag=ours.tag))
        await phone.ack()
        ok = await out.status(200)
        out.ack(ok)
        await caller.barrier()
        assert parse_sdp(ok).media[0].proto == "RTP/AVP"  # the caller stays plain
        a, b = box.legs()
        assert a.media.srtp is None and b.media.srtp is not None

    run(tmp_path, monkeypatch, body, prepare=policies(e102="required"))


def test_a_plain_answer_to_an_srtp_offer_ends_the_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(box: Box) -> None:
        caller = await box.ua("101")
        phone = await box.phone("102", "TLS")
        out = caller.call("102", phone_sdp(4000))
        invite, txn = await phone.next("INVITE")
        assert parse_sdp(invite).media[0].proto == "RTP/SAVP"
        phone.respond(txn, 200, phone_sdp(5000))
        await phone.ack()
        await phone.next("BYE")
        final = await out.final()
        assert final.status >= 400, final.status

    run(tmp_path, monkeypatch, body, prepare=policies(e102="required"))


def test_a_phone_requiring_srtp_on_udp_is_not_rung(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(box: Box) -> None:
        caller = await box.ua("101")
        phone = await box.phone("102")
        final = await caller.call("102", phone_sdp(4000)).final()
        assert final.status == 488 and "not on SIP over TLS" in (final.reason or "")
        assert phone.received("INVITE") == []

    run(tmp_path, monkeypatch, body, prepare=policies(e102="required"))


def test_a_sips_request_gets_a_sips_contact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RFC 3261 §12.1.1: a dialog begun by a sips: Request-URI has sips: Contacts."""

    async def body(box: Box) -> None:
        caller = await box.ua("101", "TLS")
        phone = await box.phone("102")
        request = caller.invite_request("102", srtp_sdp(4000))
        request.uri = request.uri.replace("sip:", "sips:", 1)
        out = Outgoing(caller, request)
        invite, txn = await phone.next("INVITE")
        phone.respond(txn, 200, phone_sdp(5000))
        await phone.ack()
        ok = await out.status(200)
        out.ack(ok)
        await caller.barrier()
        contact = ok.get("Contact") or ""
        assert contact.startswith("<sips:pbx@") and "transport" not in contact, contact
        assert box.core.endpoint.tls is not None
        assert f":{box.core.endpoint.tls.local[1]}>" in contact
        assert (invite.get("Contact") or "").startswith("<sip:pbx@")  # the plain leg: sip:

    run(tmp_path, monkeypatch, body)
