"""One FXO port: the city line plugged into the box, as an IP trunk of the core whose server is
the gateway.

Calls in: the exchange rings the line; the port reads the caller ID the line sends (ETSI V.23
or DTMF before the first ring, Bell 202 after it), seizes the line and INVITEs the core, as the
trunk, to the line's number (the trunk's DID), the caller in From. Calls out: the core INVITEs
the gateway; the port seizes the line, waits for the country's dial tone (503 when none comes),
dials the number by DTMF into the line and answers with 200. Disconnect supervision: a drop of
the loop current, a polarity reversal, or the country's busy (or congestion) tone in the line
audio ends the call; the line is released on every way a call ends.

Built like `appliance.lines.fxs`: the stack's user-agent role (`appliance.sip.ua`), the gateway's
media engine for RTP, and `tick` every 20 ms moving one frame each way between the line's ALSA
PCM and the call's RTP leg.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import secrets
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from appliance import numbering
from appliance.lines import protocol as p
from appliance.lines.audio import PortAudio
from appliance.lines.callerid import CallerIdMessage, CallerIdReceiver, CallerIdStandard
from appliance.lines.fxs import FRAME, PCMU, PLAYOUT_FRAMES, SipContext, _FrameQueue
from appliance.lines.tones import CountryPlan, ToneDetector, ToneKind
from appliance.media.dtmf import dtmf_tone
from appliance.media.engine import MediaEngine, MediaLeg
from appliance.sip import sdp
from appliance.sip.dialog import Dialog, Reliable
from appliance.sip.endpoint import new_tag
from appliance.sip.message import Request, Response, make_response
from appliance.sip.transaction import ServerTransaction
from appliance.sip.ua import uac
from appliance.sip.ua.invite import OutgoingInvite

logger = logging.getLogger(__name__)

DIAL_TONE_TIMEOUT_S = 5.0
"""How long the seized line may stay without the country's dial tone before the call is
refused with 503."""
BELL_CID_WAIT_S = 3.0
"""Bell 202 caller ID comes between the first and the second ring: how long after the end of
the first ring the port waits for it before calling without it."""
CID_VALID_S = 8.0
"""Caller ID received before the first ring belongs to that ring only if this recent."""
DIGIT_ON_MS = 80
DIGIT_OFF_MS = 80
"""DTMF dialled into the line: 80 ms tone, 80 ms pause (ITU-T Q.24 asks for at least 40)."""
DIGIT_AMPLITUDE = 0.3
DIALLABLE = frozenset("0123456789*#ABCD")
SEPARATORS = frozenset("-.()/")


class State(enum.StrEnum):
    IDLE = "idle"
    RINGING = "ringing"
    """The exchange rings the line; caller ID is being received."""
    CALLING = "calling"
    """The line is seized and the core INVITEd; the extension rings."""
    SEIZED = "seized"
    """A call out: the line is seized, dial tone awaited."""
    DIALLING = "dialling"
    IN_CALL = "in-call"
    FAULT = "fault"


LINE_STATES = {
    State.IDLE: "on-hook",
    State.RINGING: "ringing",
    State.CALLING: "off-hook",
    State.SEIZED: "off-hook",
    State.DIALLING: "off-hook",
    State.IN_CALL: "in-call",
    State.FAULT: "fault",
}
"""How the Ports page shows each state (`status()["state"]`; `line_state` is the exact one)."""


class FxoError(ValueError):
    """A number the line cannot dial; `str()` says why."""


def line_digits(number: str, country: str) -> str:
    """`number` as a person dials it on the office's city line: E.164 (`+74951112233`) becomes
    the national format of the office's country (`84951112233`) or its international prefix
    and the number; separators are dropped. `FxoError` when nothing dialable remains."""
    text = number.strip()
    if text.startswith("+"):
        try:
            plan = numbering.numbering_plan(country)
        except numbering.CountryError:
            plan = None
        rest = text[1:]
        if not rest:
            raise FxoError(f"the number {number!r} cannot be dialled on an analog line")
        if plan is not None and rest.startswith(plan.calling_code) and plan.trunk_prefix:
            text = plan.trunk_prefix + rest[len(plan.calling_code) :]
        elif plan is not None and plan.international_prefixes:
            text = plan.international_prefixes[0] + rest
        else:
            text = rest
    kept = [c for c in text.upper() if not c.isspace() and c not in SEPARATORS]
    if not kept or any(c not in DIALLABLE for c in kept):
        raise FxoError(f"the number {number!r} cannot be dialled on an analog line")
    return "".join(kept)


def dial_signal(digits: str) -> npt.NDArray[np.int16]:
    """The DTMF of `digits` as the line hears them, each `DIGIT_ON_MS` long and apart."""
    pause = bytes(2 * 8 * DIGIT_OFF_MS)
    pcm = b"".join(dtmf_tone(d, DIGIT_ON_MS, 8000, DIGIT_AMPLITUDE) + pause for d in digits)
    return np.frombuffer(pcm, dtype="<i2").astype(np.int16)


def audio_offer(leg: MediaLeg) -> bytes:
    """Our SDP (offer or answer): PCMU and RFC 4733 events on `leg`'s address."""
    host, port = leg.address[0], leg.address[1]
    offer = sdp.audio_offer(
        host, port,
        [(0, sdp.Rtpmap("PCMU", 8000), None), (101, sdp.Rtpmap("telephone-event", 8000), "0-15")],
        session_id=str(secrets.randbelow(10**9)), session_version=1,
    )  # fmt: skip
    return bytes(offer)


def offers_pcmu(body: bytes) -> bool:
    """Whether an SDP offer has PCMU in its audio stream (no offer: we make one, so yes)."""
    if not body:
        return True
    try:
        desc = sdp.SessionDescription.parse(body)
    except sdp.SdpError:
        return False
    for media in desc.media:
        if media.kind == "audio" and media.port:
            return "0" in media.formats
    return False


class FxoPort:
    """The state machine of one FXO port. `line_number` is what calls coming in on the line
    are INVITEd to (the trunk's DID; the trunk's name when it has none); `send` sends a board
    command (the link's)."""

    def __init__(
        self,
        number: int,
        trunk: str,
        line_number: str,
        plan: CountryPlan,
        caller_id: str,
        sip: SipContext,
        media: MediaEngine,
        audio: PortAudio | None,
        send: Callable[[p.Message], None],
        *,
        dial_tone_timeout: float = DIAL_TONE_TIMEOUT_S,
    ) -> None:
        self.number = number
        self.trunk = trunk
        self.line_number = line_number or trunk
        self.plan = plan
        self.caller_id = caller_id
        self.sip = sip
        self.media = media
        self.audio = audio
        self.send = send
        self.dial_tone_timeout = dial_tone_timeout
        self.state = State.IDLE
        self.last_event = ""
        self.at = time.time()
        self.seized = False
        self.caller: CallerIdMessage | None = None
        """The caller ID of the last call in, once decoded."""
        self.board_ok = True
        self._cid = CallerIdReceiver()
        self._cid_at = 0.0
        self._detector: ToneDetector | None = None
        self._busy: ToneDetector | None = None
        self._dialling: npt.NDArray[np.int16] | None = None
        self._leg: MediaLeg | None = None
        self._rx: object | None = None
        self._tx = _FrameQueue()
        self._invite: OutgoingInvite | None = None
        """A call in: our INVITE to the core."""
        self._incoming: tuple[Request, ServerTransaction, str] | None = None
        """A call out: the core's INVITE, not answered yet."""
        self._dialog: Dialog | None = None
        self._reliable: Reliable | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._digits = ""

    # -- what the gateway reports -----------------------------------------------------------

    def status(self) -> dict[str, object]:
        return {
            "port": self.number,
            "kind": "fxo",
            "trunk": self.trunk,
            "state": LINE_STATES[self.state],
            "line_state": str(self.state),
            "seized": self.seized,
            "last_event": self.last_event,
            "at": self.at,
        }

    def contact(self) -> str:
        port = self.sip.via.rpartition(":")[2]
        return f"sip:{self.trunk}@{uac.via_host(self.sip.via)}:{port};line={self.number}"

    def _set(self, state: State, event: str = "") -> None:
        self.state = state
        self.at = time.time()
        if event:
            self.last_event = event
        logger.info("port %d (fxo): %s (%s)", self.number, state, event)

    def _after(self, seconds: float, then: Callable[[], None]) -> None:
        self._cancel_timer()
        self._timer = asyncio.get_running_loop().call_later(seconds, then)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- the line ---------------------------------------------------------------------------

    def _seize(self) -> None:
        self.seized = True
        self.send(p.Seize(self.number))

    def _release(self, event: str) -> None:
        """End whatever the port does and put the line back on hook."""
        self._cancel_timer()
        self._detector = self._busy = None
        self._dialling = None
        if self.seized:
            self.seized = False
            self.send(p.Release(self.number))
        self._close_media()
        if self._reliable is not None:
            self._reliable.stop()
            self._reliable = None
        self._cid = CallerIdReceiver()
        self._set(State.IDLE if self.board_ok else State.FAULT, event)

    def board_event(self, event: p.Message) -> None:
        if isinstance(event, p.RingStart):
            self._ring_start()
        elif isinstance(event, p.RingStop):
            self._ring_stop()
        elif isinstance(event, p.LoopDrop):
            self._far_end_gone(f"loop current drop {event.duration_ms} ms")
        elif isinstance(event, p.PolarityReversal):
            self._far_end_gone("polarity reversal")
        elif isinstance(event, p.BoardFault):
            self.last_event = f"fault {event.code}: {event.text}"

    def board_down(self) -> None:
        """The link is gone: the line cannot be held nor watched; a call on it ends."""
        self.board_ok = False
        if self.state is not State.IDLE and self.state is not State.FAULT:
            self._hang_up_sip(503, "Service Unavailable (line board down)")
            self.seized = False  # nothing reaches the board; it releases lines on reset
            self._release("board down")
        self._set(State.FAULT, "board down")

    def board_up(self) -> None:
        self.board_ok = True
        if self.state is State.FAULT:
            self._set(State.IDLE, "board up")

    # -- the audio, every 20 ms -------------------------------------------------------------

    def tick(self, now: float) -> None:
        audio = self.audio
        if audio is None:
            return
        heard = audio.read_frame()
        if heard is not None and len(heard) == FRAME:
            self._listen(heard)
        audio.write_frame(self._to_line())

    def _listen(self, frame: bytes) -> None:
        state = self.state
        if state in (State.IDLE, State.RINGING) and self.caller_id != "none":
            if (
                state is State.IDLE
                and self._cid_at
                and (time.monotonic() - self._cid_at > CID_VALID_S)
            ):
                self._cid, self._cid_at = CallerIdReceiver(), 0.0  # a message no ring followed
            if self._cid.feed(frame) is not None and not self._cid_at:
                self._cid_at = time.monotonic()
                self.last_event = "caller ID received"
                if state is State.RINGING and self._bell_waiting():
                    self._call_in()
            return
        if state is State.SEIZED and self._detector is not None:
            if self._detector.feed(frame) is ToneKind.DIAL:
                self._detector = None
                self._dial()
            return
        if self._busy is not None and state in (State.CALLING, State.IN_CALL):
            found = self._busy.feed(frame)
            if found is not None:
                self._far_end_gone(f"{found} tone")
                return
        if self._leg is not None and state is State.IN_CALL:
            self._tx.frames.append(frame)

    def _to_line(self) -> bytes:
        if self._dialling is not None:
            chunk, self._dialling = self._dialling[:160], self._dialling[160:]
            if not len(self._dialling):
                self._dialling = None
                self._dialled()
            return np.pad(chunk, (0, 160 - len(chunk))).astype("<i2").tobytes()
        if self._rx is not None and self.state is State.IN_CALL:
            return self._rx.pull()  # type: ignore[attr-defined, no-any-return]
        return bytes(FRAME)

    # -- media ------------------------------------------------------------------------------

    def _open_media(self) -> MediaLeg:
        leg = self.media.open_leg()
        leg.set_codec(PCMU)
        self._leg = leg
        self._rx = leg.tap(delay_frames=PLAYOUT_FRAMES)
        return leg

    def _close_media(self) -> None:
        if self._leg is not None:
            self._leg.close()
        self._leg = self._rx = None
        self._tx.frames.clear()

    def _remote_media(self, body: bytes) -> None:
        if not body or self._leg is None:
            return
        try:
            desc = sdp.SessionDescription.parse(body)
        except sdp.SdpError:
            return
        for media in desc.media:
            if media.kind == "audio" and media.port:
                address = desc.address(media)
                if address:
                    self._leg.set_remote(address, media.port)
                    self._leg.play(self._tx)
                return

    # -- calls in: the exchange rings -------------------------------------------------------

    def _bell_waiting(self) -> bool:
        return self.caller_id == CallerIdStandard.BELL202.value

    def _ring_start(self) -> None:
        if self.state is State.RINGING:
            if self._bell_waiting():
                self._call_in()  # the second ring: no caller ID came between the rings
            return
        if self.state is not State.IDLE:
            return
        self._set(State.RINGING, "ring")
        if self.caller_id == "none" or not self._bell_waiting():
            self._call_in()  # ETSI and DTMF caller ID came before this first ring

    def _ring_stop(self) -> None:
        if self.state is State.RINGING and self._bell_waiting():
            self._after(BELL_CID_WAIT_S, self._call_in)

    def _call_in(self) -> None:
        if self.state is not State.RINGING:
            return
        self._cancel_timer()
        message = self._cid.message if self._cid_at else None
        if message is not None and time.monotonic() - self._cid_at > CID_VALID_S:
            message = None
        self.caller = message
        self._cid, self._cid_at = CallerIdReceiver(), 0.0
        self._seize()
        self._busy = ToneDetector(self.plan, (ToneKind.BUSY, ToneKind.CONGESTION))
        leg = self._open_media()
        domain = self.sip.domain
        user = message.number if message is not None and message.number else "anonymous"
        name = message.name if message is not None else ""
        display = f'"{_quote(name)}" ' if name else ""
        req = uac.request(
            "INVITE",
            f"sip:{self.line_number}@{domain}",
            via=self.sip.via,
            from_=f"{display}<sip:{user}@{domain}>;tag={new_tag()}",
            to=f"<sip:{self.line_number}@{domain}>",
            call_id=uac.new_call_id(self.sip.via),
            cseq=1,
            headers=[("Contact", f"<{self.contact()}>"), ("Content-Type", "application/sdp")],
            body=audio_offer(leg),
        )
        self._set(State.CALLING, f"call from {user}")
        invite = OutgoingInvite(self.sip.endpoint, req, self.sip.core, self._response)
        self._invite = invite
        invite.start()

    def _response(self, resp: Response) -> None:
        invite = self._invite
        if invite is None:
            return
        status = resp.status
        if 200 <= status < 300:
            dialog = self._dialog
            if dialog is None:
                dialog = Dialog.as_uac(invite.request, resp, self.sip.core, self.sip.via)
            self.sip.endpoint.send(bytes(dialog.ack(invite.request.cseq.number)), self.sip.core)
            if self._dialog is not None:
                return  # a retransmitted 2xx, ACKed again
            self._dialog = dialog
            if self.state is not State.CALLING:
                self._bye()  # the line went away while the answer was on its way
                return
            self._remote_media(resp.body)
            self._set(State.IN_CALL, "answered")
            return
        if status < 200:
            return
        self._invite = None
        if self.state is State.CALLING:
            self._release(f"core refused: {status}")

    def _bye(self) -> None:
        dialog, self._dialog = self._dialog, None
        self._invite = None
        if dialog is not None:
            self.sip.endpoint.request(dialog.request("BYE"), dialog.dest)

    # -- calls out: the core INVITEs the line -----------------------------------------------

    def idle(self) -> bool:
        return self.state is State.IDLE and self.audio is not None and self.board_ok

    def invite_received(self, req: Request, txn: ServerTransaction) -> None:
        if not self.idle():
            txn.respond(self.sip.endpoint.response(req, 486, "Busy Here (the line is in use)"))
            return
        try:
            digits = line_digits(uri_user(req.uri), self.plan.country)
        except FxoError as exc:
            txn.respond(self.sip.endpoint.response(req, 484, f"Address Incomplete ({exc})"))
            return
        if not offers_pcmu(req.body):
            txn.respond(self.sip.endpoint.response(req, 488, "Not Acceptable Here (PCMU only)"))
            return
        tag = new_tag()
        txn.respond(make_response(req, 100))
        self._incoming = (req, txn, tag)
        self._digits = digits
        self._open_media()
        self._remote_media(req.body)
        self._seize()
        self._detector = ToneDetector(self.plan, (ToneKind.DIAL,))
        self._set(State.SEIZED, f"seized to dial {digits}")
        self._after(self.dial_tone_timeout, self._no_dial_tone)

    def _no_dial_tone(self) -> None:
        if self.state is State.SEIZED:
            self._fail_incoming(503, "Service Unavailable (no dial tone on the line)")
            self._release("no dial tone")

    def _dial(self) -> None:
        self._cancel_timer()
        self._set(State.DIALLING, f"dial tone; dialling {self._digits}")
        self._dialling = dial_signal(self._digits)

    def _dialled(self) -> None:
        incoming, self._incoming = self._incoming, None
        if incoming is None or self._leg is None or self.state is not State.DIALLING:
            return
        req, txn, tag = incoming
        body = audio_offer(self._leg)
        resp = make_response(
            req, 200, to_tag=tag, body=body,
            headers=[("Contact", f"<{self.contact()}>"), ("Content-Type", "application/sdp")],
        )  # fmt: skip
        txn.respond(resp)
        self._reliable = Reliable(
            self.sip.endpoint.send, bytes(resp), txn.dest, self.sip.endpoint.transactions.timers,
            on_timeout=self._no_ack,
        )  # fmt: skip
        self._dialog = Dialog.as_uas(req, tag, self.sip.core, self.sip.via, f"<{self.contact()}>")
        self._busy = ToneDetector(self.plan, (ToneKind.BUSY, ToneKind.CONGESTION))
        self._set(State.IN_CALL, f"dialled {self._digits}")

    def _no_ack(self) -> None:
        if self._reliable is not None and self.state is State.IN_CALL:
            self._reliable = None
            self._bye()
            self._release("no ACK from the core")

    def ack_received(self, req: Request) -> None:
        if self._reliable is not None:
            self._reliable.stop()
            self._reliable = None
        if req.body and self._leg is not None:
            self._remote_media(req.body)  # a late offer's answer

    def _fail_incoming(self, status: int, reason: str) -> None:
        incoming, self._incoming = self._incoming, None
        if incoming is not None:
            req, txn, tag = incoming
            txn.respond(make_response(req, status, reason, to_tag=tag))

    # -- the far end hangs up (line supervision) --------------------------------------------

    def _far_end_gone(self, why: str) -> None:
        if not self.seized or self.state in (State.IDLE, State.FAULT, State.RINGING):
            return
        logger.info("port %d (fxo): far end gone: %s", self.number, why)
        self._hang_up_sip(480, f"Temporarily Unavailable (line: {why})")
        self._release(why)

    def _hang_up_sip(self, status: int, reason: str) -> None:
        """End the SIP side of whatever call there is: BYE, CANCEL, or a final response."""
        if self._dialog is not None:
            self._bye()
        elif self._invite is not None:
            self._invite.cancel()
        elif self._incoming is not None:
            self._fail_incoming(status, reason)

    # -- in-dialog requests from the core ---------------------------------------------------

    def owns(self, req: Request) -> bool:
        call_id = req.call_id
        if self._dialog is not None and call_id == self._dialog.call_id:
            return True
        if self._invite is not None and call_id == self._invite.request.call_id:
            return True
        return self._incoming is not None and call_id == self._incoming[0].call_id

    def bye_received(self, req: Request, txn: ServerTransaction) -> None:
        txn.respond(self.sip.endpoint.response(req, 200))
        self._dialog = None
        self._invite = None
        self._release("the core hung up")

    def cancel_received(self, req: Request, txn: ServerTransaction) -> None:
        txn.respond(self.sip.endpoint.response(req, 200))
        self._fail_incoming(487, "Request Terminated")
        self._release("the core cancelled")


def uri_user(uri: str) -> str:
    """The user part of a SIP Request-URI (`sip:84951112233@host;params` -> `84951112233`)."""
    rest = uri.partition(":")[2]
    user, at, _ = rest.partition("@")
    return user.split(";")[0] if at else ""


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
