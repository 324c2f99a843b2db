"""Transfers (RFC 3515 REFER, RFC 3891 Replaces), carried out by the box itself: the REFER
is answered and followed by NOTIFYs, the transferred phone sees at most a re-INVITE."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING
from urllib.parse import unquote

from appliance.media.engine import MediaError
from appliance.pbx.legs import Call, CallHooks, Leg
from appliance.sip.dialog import DialogId
from appliance.sip.headers import NameAddr
from appliance.sip.message import Request, SipParseError
from appliance.sip.transaction import ServerTransaction
from appliance.sip.uri import SipUri

if TYPE_CHECKING:
    from appliance.pbx.b2bua import CallEngine


class Transfers:
    """REFER in the engine's dialogs: blind and attended transfer."""

    def __init__(self, engine: CallEngine) -> None:
        self.engine = engine

    def on_refer(self, req: Request, txn: ServerTransaction) -> None:
        leg = self.engine.leg_for(req, txn)
        if leg is None or leg.dialog is None:
            return
        call, peer = leg.call, leg.peer
        try:
            target = NameAddr.parse(req.get("Refer-To") or "", "Refer-To")
        except SipParseError as exc:
            txn.respond(leg.dialog.response(req, 400, f"Bad Request ({exc})"))
            return
        uri = target.uri
        if call is None or peer is None or call.state != "answered" or uri is None:
            txn.respond(leg.dialog.response(req, 603, "Decline (nothing to transfer)"))
            return
        replaces = _replaces_of(uri)
        if replaces is not None:
            other = self.engine.dialogs.get(replaces)
            if other is None or other.peer is None or other.call is None or other is leg:
                txn.respond(leg.dialog.response(req, 481, "Call/Transaction Does Not Exist "
                                                "(the call to replace)"))  # fmt: skip
                return
            txn.respond(leg.dialog.response(req, 202))
            self._notify(leg, 100, "Trying", final=False)
            self._attended(leg, other)
            return
        number = uri.user or ""
        if self.engine.directory.extension(number) is None:
            txn.respond(leg.dialog.response(req, 404, f"Not Found (no extension {number})"))
            return
        txn.respond(leg.dialog.response(req, 202))
        self._notify(leg, 100, "Trying", final=False)
        self._blind(leg, peer, number)

    def _notify(self, leg: Leg, status: int, reason: str, *, final: bool) -> None:
        """RFC 3515 §2.4.5: the refer subscription's state, as a sipfrag."""
        state = "terminated;reason=noresource" if final else "active;expires=60"
        headers = [("Event", "refer"), ("Subscription-State", state),
                   ("Content-Type", "message/sipfrag;version=2.0")]  # fmt: skip
        leg.send("NOTIFY", headers, f"SIP/2.0 {status} {reason}\r\n".encode())

    def _blind(self, transferor: Leg, transferee: Leg, number: str) -> None:
        """Call `number` for the transferee; once answered, it replaces the transferor."""
        old = transferor.call
        assert old is not None
        contacts = self.engine.registrar.bindings(number)
        if not contacts:
            self._notify(transferor, 480, "Temporarily Unavailable", final=True)
            return

        try:
            media = self.engine.media.open_leg()
        except MediaError:
            self._notify(transferor, 503, "Service Unavailable", final=True)
            return
        names = self.engine.directory
        call = Call(self.engine, transferee, names.name(transferee.number), number)
        transferee.call = old  # still in the old call until the new one is answered
        transferee.transfer = call
        call.callee_media = media
        side = "caller" if transferor is old.a else "callee"

        def answered(new: Call) -> None:
            transferee.call, transferee.transfer = new, None
            assert new.b is not None
            transferee.media.connect(new.b.media)
            self._notify(transferor, 200, "OK", final=True)
            if not transferor.ended:
                transferor.hangup()
            old.finish("answered", side, "transferred")
            if transferee.direction != "sendrecv":
                self.engine.sessions.reinvite(transferee, "sendrecv")

        def failed(_new: Call, status: int, reason: str) -> None:
            transferee.transfer = None
            if not transferor.ended:
                self._notify(transferor, status, reason or "Failed", final=True)
            elif not transferee.ended:  # nobody left to take the call back
                transferee.hangup()
                old.finish("answered", "system", f"transfer failed ({status})")

        call.on_answer, call.on_fail = answered, failed
        self.engine.calls[call.id] = call
        call.ring_timer = asyncio.get_running_loop().call_later(
            self.engine.config.ring_timeout, self.engine.ring_timeout, call
        )
        codecs = [transferee.codec] if transferee.codec else transferee.offered
        targets = [self.engine.contact_target(call, number, reg) for reg in contacts]
        self.engine.ring(call, targets, codecs)

    def _attended(self, transferor: Leg, replaced: Leg) -> None:
        """Join the transferor's peer with the peer of the dialog it replaces; drop both."""
        first, second = transferor.call, replaced.call
        a, b = transferor.peer, replaced.peer
        assert first is not None and second is not None and a is not None and b is not None
        call = Call(self.engine, a, self.engine.directory.name(a.number), b.number)
        call.b, b.call, a.call = b, call, call
        call.state = "answered"
        call.answered_at = time.time()
        self.engine.calls[call.id] = call
        a.media.connect(b.media)
        self._notify(transferor, 200, "OK", final=True)
        for leg, old in ((transferor, first), (replaced, second)):
            leg.hangup()
            old.finish("answered", "caller" if leg is old.a else "callee", "transferred")
        for leg in (a, b):
            if leg.direction != "sendrecv":
                self.engine.sessions.reinvite(leg, "sendrecv")
        CallHooks.fire(self.engine.hooks.bridged, call)


def _replaces_of(uri: SipUri) -> DialogId | None:
    """RFC 3891 §6.1: `Replaces=call-id;to-tag=T;from-tag=F` in a Refer-To URI's headers.

    The dialog is named as the transferor sees it; to the box, its to-tag is our local tag."""
    headers = getattr(uri, "headers", None) or ""
    for part in str(headers).lstrip("?").split("&"):
        name, _, value = part.partition("=")
        if name.lower() != "replaces":
            continue
        fields = unquote(value).split(";")
        params = dict(p.strip().partition("=")[::2] for p in fields[1:])
        to_tag, from_tag = params.get("to-tag"), params.get("from-tag")
        if to_tag is None or from_tag is None:
            return None
        return (fields[0].strip(), to_tag, from_tag)
    return None
