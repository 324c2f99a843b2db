"""A call's life after its set-up, per leg: new offers (RFC 3264 §8: hold, resume, codec
change) in re-INVITE and UPDATE (RFC 3311), passed to the other side when they change what it
must do, and session timers (RFC 4028), the box refreshing where it is the refresher."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from appliance.pbx.legs import CallHooks, Leg
from appliance.pbx.offer import CallError, audio, offered_codecs
from appliance.sip import sdp
from appliance.sip.dialog import Reliable
from appliance.sip.message import Request, Response, SipParseError
from appliance.sip.transaction import ServerTransaction, State

if TYPE_CHECKING:
    from appliance.pbx.b2bua import CallEngine

logger = logging.getLogger(__name__)

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, PRACK, REFER, NOTIFY"
MIN_SE = 90
HOLD_DIRECTIONS = ("sendonly", "inactive")
"""What a phone's offer says when it puts its call on hold (RFC 3264 §8.4)."""
"""RFC 4028 §4: the smallest session interval we accept (its recommended minimum)."""


def session_expires(req: Request) -> tuple[int, str | None] | None:
    """RFC 4028 §4: `Session-Expires: delta-seconds[;refresher=uac|uas]`, or None if absent."""
    value = req.get("Session-Expires")
    if value is None:
        return None
    delta, _, params = value.partition(";")
    delta = delta.strip()
    if not delta.isdigit() or not delta.isascii() or len(delta) > 10:
        raise SipParseError("invalid Session-Expires header")
    refresher = None
    for param in params.split(";"):
        name, _, val = param.partition("=")
        if name.strip().lower() == "refresher":
            refresher = val.strip().lower()
            if refresher not in ("uac", "uas"):
                raise SipParseError("invalid refresher in Session-Expires")
    return int(delta), refresher


class Sessions:
    """re-INVITE, UPDATE and session refreshes of the engine's dialogs."""

    def __init__(self, engine: CallEngine) -> None:
        self.engine = engine

    def on_reinvite(self, req: Request, txn: ServerTransaction) -> None:
        leg = self.engine.leg_for(req, txn)
        if leg is None or leg.dialog is None:
            return
        txn.on_ack = self.engine.on_ack
        self._reoffer(leg, req, txn)

    def on_update(self, req: Request, txn: ServerTransaction) -> None:
        leg = self.engine.leg_for(req, txn)
        if leg is None:
            return
        self._reoffer(leg, req, txn)

    def _reoffer(self, leg: Leg, req: Request, txn: ServerTransaction) -> None:
        """A phone's new offer (or refresh) in a dialog: answer it, via the peer if it changed."""
        assert leg.dialog is not None
        session_expires(req)  # checked now (400), as the answer may come from a callback
        leg.dialog.refresh_target(req)
        peer = leg.peer
        if leg.invite is not None or (peer is not None and peer.invite is not None):
            txn.respond(leg.dialog.response(req, 491))  # glare: our own re-INVITE is pending
            return
        desc = None
        if req.body:
            try:
                desc = sdp.SessionDescription.parse(req.body)
                media = audio(desc)
            except sdp.SdpError as exc:
                txn.respond(leg.dialog.response(req, 400, f"Bad Request (SDP: {exc})"))
                return
            except CallError as exc:
                txn.respond(leg.dialog.response(req, exc.status, exc.reason))
                return
        if leg.codec is None:
            # Our answer to the first offer is not out yet (RFC 3311 §5.2).
            if desc is not None:
                retry = [("Retry-After", "1")]
                txn.respond(leg.dialog.response(req, 500, "Server Internal Error (offer pending)",
                                                retry))  # fmt: skip
            else:
                txn.respond(leg.dialog.response(req, 200, headers=self.timer_headers(req)))
            return
        if desc is None and req.method == "UPDATE":
            txn.respond(leg.dialog.response(req, 200, headers=self.timer_headers(req)))
            return
        changed = desc is not None and desc.origin.session_version != leg.remote_version
        if desc is None or not changed:
            self._answer_reoffer(leg, req, txn, leg.direction)  # a refresh: nothing to tell
            return
        offered, _ = offered_codecs(media)
        if not offered:
            txn.respond(leg.dialog.response(req, 488, "Not Acceptable Here (no usable codec)"))
            return
        before = leg.snapshot()
        was_held = leg.remote_direction in HOLD_DIRECTIONS
        try:
            leg.take_remote(desc)
        except CallError as exc:  # SRTP refused (`encryption`): the offer changes nothing
            leg.restore(before)
            txn.respond(leg.dialog.response(req, exc.status, exc.reason))
            return
        holds = leg.remote_direction in HOLD_DIRECTIONS
        if holds != was_held and leg.call is not None:
            CallHooks.fire(self.engine.hooks.held, leg.call, leg, holds)
        leg.offered = offered
        current = [c for c in offered if c.name == leg.codec.name]
        # The same codec if still offered, else a codec change: then the engine transcodes.
        leg.codec = current[0] if current else offered[0]
        leg.media.set_codec(leg.codec)
        wanted = leg.remote_direction
        if peer is None or peer.dialog is None:
            self._answer_reoffer(leg, req, txn, sdp.answer_direction(wanted))
            return
        if peer.direction == wanted:
            self._answer_reoffer(leg, req, txn, sdp.answer_direction(wanted))
            return
        peer_before = peer.direction

        def answered(resp: Response) -> None:
            if resp.status < 200:
                return
            withdrawn = txn.state not in (State.TRYING, State.PROCEEDING)
            if resp.status >= 300 or withdrawn:
                leg.restore(before)  # RFC 3264 §8: a rejected offer changes nothing
            if withdrawn:
                # The phone CANCELled its re-INVITE meanwhile and was answered 487, so its
                # offer never took effect (RFC 3261 §9.2): if the peer took it, undo it there.
                if resp.status < 300:
                    self.reinvite(peer, peer_before)
                return
            if resp.status < 300:
                # The peer's answer says what it does; we do the same toward this phone.
                self._answer_reoffer(leg, req, txn, peer.remote_direction)
            else:
                txn.respond(leg.dialog.response(req, resp.status))  # type: ignore[union-attr]

        self.reinvite(peer, wanted, answered)

    def _answer_reoffer(
        self, leg: Leg, req: Request, txn: ServerTransaction, direction: str
    ) -> None:
        assert leg.dialog is not None and leg.codec is not None
        body = leg.our_sdp([leg.codec], direction)
        headers = [("Content-Type", "application/sdp"), ("Allow", ALLOW)]
        headers += self.timer_headers(req)
        resp = leg.dialog.response(req, 200, None, headers, body)
        txn.respond(resp)
        if req.method == "INVITE":
            leg.ack_cseq = req.cseq.number
            if leg.reliable is not None:
                leg.reliable.stop()
            endpoint = self.engine.endpoint
            leg.reliable = Reliable(
                endpoint.send, bytes(resp), txn.dest, endpoint.transactions.timers
            )

    def schedule_refresh(self, leg: Leg, interval: int) -> None:
        """RFC 4028 §10: as the refresher, re-INVITE at half the session interval."""
        loop = asyncio.get_running_loop()
        leg.refresh = loop.call_later(interval / 2, self._refresh, leg, interval)

    def _refresh(self, leg: Leg, interval: int) -> None:
        if leg.ended or leg.dialog is None:
            return
        if leg.invite is None:
            # RFC 4028 §7.4: the sender of the refresh is its UAC, and stays the refresher.
            expires = [("Session-Expires", f"{interval};refresher=uac")]
            self.reinvite(leg, leg.direction, headers=expires)
        self.schedule_refresh(leg, interval)

    @staticmethod
    def timer_headers(req: Request) -> list[tuple[str, str]]:
        """RFC 4028 §9: a refresh request's Session-Expires, echoed in the 2xx."""
        timer = session_expires(req)
        if timer is None:
            return []
        return [("Session-Expires", f"{max(timer[0], MIN_SE)};refresher={timer[1] or 'uac'}")]

    def reinvite(
        self,
        leg: Leg,
        direction: str,
        done: Callable[[Response], None] | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        """Send our new offer to a phone: its current codec first, the direction asked."""
        if leg.dialog is None or leg.ended:
            return
        codecs = [leg.codec] if leg.codec else []
        codecs += [c for c in leg.offered if leg.codec is None or c.name != leg.codec.name]
        agreed = leg.direction
        body = leg.our_sdp(codecs or leg.offered, direction)

        def response(resp: Response) -> None:
            if resp.status < 200:
                return
            assert leg.dialog is not None
            if resp.status < 300:
                self.engine.endpoint.send(bytes(leg.dialog.ack(cseq)), leg.dialog.dest)
                if leg.invite is None:
                    return  # a retransmitted 2xx: ACKed again above
                leg.invite = None
                try:
                    desc = sdp.SessionDescription.parse(resp.body)
                    media = leg.take_remote(desc, answer=True)
                    answered, dtmf = offered_codecs(media)
                    if answered:
                        answered[0].dtmf_payload_type = dtmf
                        leg.codec = answered[0]
                        leg.media.set_codec(leg.codec)
                except (sdp.SdpError, CallError) as exc:
                    logger.info("re-INVITE answer unusable: %s", exc)
            else:
                leg.invite = None
                leg.direction = agreed  # RFC 3264 §8: the refused offer changed nothing
            if done is not None:
                done(resp)

        leg.invite = leg.send("INVITE", [("Allow", ALLOW), *(headers or [])], body, response)
        cseq = leg.dialog.local_seq
