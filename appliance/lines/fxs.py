"""One FXS port as a person sees it: a handset that gets dial tone, dials, hears ringback or
busy, talks, hangs up, and rings when someone calls it.

To the core the port is an extension's SIP user agent, like an external ATA: it calls by
INVITE with digest credentials and is called at the contact it registered. Everything here
runs on the event loop; `tick` is called every 20 ms by the gateway's media clock and moves
one frame of audio each way between the port's ALSA PCM and the call's RTP leg.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import numpy as np

from appliance.lines import protocol as p
from appliance.lines.audio import PortAudio
from appliance.lines.callerid import (
    TIMING,
    CallerIdMessage,
    CallerIdStandard,
    callerid_signal,
)
from appliance.lines.tones import CountryPlan, ToneGenerator, ToneKind
from appliance.media.dtmf import InbandDtmfDetector
from appliance.media.engine import Codec, MediaEngine, MediaLeg
from appliance.sip import sdp
from appliance.sip.dialog import Dialog
from appliance.sip.endpoint import SipEndpoint, new_tag
from appliance.sip.message import Request, Response
from appliance.sip.transaction import Destination, ServerTransaction
from appliance.sip.ua import uac
from appliance.sip.ua.auth import Credentials
from appliance.sip.ua.invite import OutgoingInvite

logger = logging.getLogger(__name__)

FRAME = 320
"""Bytes of one 20 ms frame of 16-bit mono PCM at 8 kHz."""
INTER_DIGIT_S = 4.0
"""Dialling ends this long after the last digit (unless '#' or a full number ends it first)."""
HOWLER_AFTER_S = 30.0
"""Congestion tone after the far end hung up, then the howler (the country's receiver-off-hook
tone) for this long, then silence."""
HOWLER_FOR_S = 60.0
PCMU = Codec("PCMU", 0)
PLAYOUT_FRAMES = 2
"""A port plays what the core sends after 40 ms (a recorder's buffer waits 60): the core is on
this box or its LAN, and the handset's delay counts in the one-way 150 ms of G.114."""


@dataclass(frozen=True, slots=True)
class LedPattern:
    """What a port's LED does: `p.LedMode` and, for BLINK, its lit and dark milliseconds."""

    mode: p.LedMode
    on_ms: int = 0
    off_ms: int = 0

    def command(self, led: int) -> p.Led:
        return p.Led(led, self.mode, self.on_ms, self.off_ms)


LED_IDLE = LedPattern(p.LedMode.OFF)
LED_OFF_HOOK = LedPattern(p.LedMode.ON)
LED_RINGING = LedPattern(p.LedMode.BLINK, 500, 500)
LED_IN_CALL = LedPattern(p.LedMode.BLINK, 1000, 100)
"""Lit, with a short wink each second: a call is up."""
LED_FAULT = LedPattern(p.LedMode.BLINK, 100, 100)
STATUS_REGISTERED = LedPattern(p.LedMode.ON)
STATUS_UNREGISTERED = LedPattern(p.LedMode.BLINK, 100, 900)
"""The status LED (led 0): lit while every FXS port is registered to the core, a short
flash each second while one is not."""


class State(enum.StrEnum):
    IDLE = "idle"
    DIALTONE = "dialtone"
    DIALLING = "dialling"
    CALLING = "calling"
    RINGBACK = "ringback"
    BUSY = "busy"
    CONGESTION = "congestion"
    IN_CALL = "in-call"
    RINGING = "ringing"
    HOWLER = "howler"
    SILENT = "silent"
    FAULT = "fault"


def led_pattern(state: State) -> LedPattern:
    """The port LED for a port in `state`: idle, off hook, ringing, in a call, or faulty."""
    if state is State.IDLE:
        return LED_IDLE
    if state is State.RINGING:
        return LED_RINGING
    if state is State.IN_CALL:
        return LED_IN_CALL
    if state is State.FAULT:
        return LED_FAULT
    return LED_OFF_HOOK


@dataclass(frozen=True, slots=True)
class SipContext:
    """What each port's user agent shares: the endpoint, where the core is, and who we are."""

    endpoint: SipEndpoint
    core: Destination
    domain: str
    """The core's SIP domain (host[:port]), in From, To and Request-URIs."""
    via: str
    """`UDP host:port` of the gateway's endpoint."""


@dataclass(slots=True)
class _HeldCall:
    """The call put on hold by a hook flash while the handset consults another number."""

    dialog: Dialog
    leg: MediaLeg
    rx: object | None


TRANSFER_TIMEOUT_S = 32.0
"""How long the dialogs of a transfer handed to the core are kept for its NOTIFY and BYEs
before the port ends them itself."""


class _FrameQueue:
    """The media source the RTP leg plays: what the handset's microphone gave last."""

    rate = 8000

    def __init__(self) -> None:
        self.frames: deque[bytes] = deque(maxlen=5)

    def read(self) -> bytes | None:
        return self.frames.popleft() if self.frames else bytes(FRAME)


class FxsPort:
    """The state machine of one FXS port. `send` sends a board command (the link's), and
    `extension_lengths` are the lengths a complete internal number has (dialling then ends
    at once)."""

    def __init__(
        self,
        number: int,
        extension: str,
        password: str,
        plan: CountryPlan,
        caller_id: str,
        sip: SipContext,
        media: MediaEngine,
        audio: PortAudio | None,
        send: Callable[[p.Message], None],
        extension_lengths: frozenset[int] = frozenset(),
    ) -> None:
        self.number = number
        self.extension = extension
        self.credentials = Credentials(extension, password)
        self.plan = plan
        self.caller_id = caller_id
        self.sip = sip
        self.media = media
        self.audio = audio
        self.send = send
        self.extension_lengths = extension_lengths
        self.state = State.IDLE
        self.last_event = ""
        self.at = time.time()
        self.registered = False
        self.digits = ""
        self._tone: ToneGenerator | None = None
        self._cid: np.ndarray | None = None
        self._dtmf = InbandDtmfDetector()
        self._last_digit = 0.0
        self._leg: MediaLeg | None = None
        self._rx: object | None = None
        self._tx = _FrameQueue()
        self._invite: OutgoingInvite | None = None
        self._dialog: Dialog | None = None
        self._incoming: tuple[Request, ServerTransaction, str] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._early = False
        self._led: LedPattern | None = None
        self._cid_ring_after = False
        self._held: _HeldCall | None = None
        self._transferring: dict[str, tuple[Dialog, MediaLeg | None]] = {}
        """Dialogs handed over by a transfer (by Call-ID), until the core ends them."""
        self.howler_after_s = HOWLER_AFTER_S
        self.howler_for_s = HOWLER_FOR_S

    # -- what the gateway reports -----------------------------------------------------------

    def status(self) -> dict[str, object]:
        return {
            "port": self.number,
            "kind": "fxs",
            "state": str(self.state),
            "registered": self.registered,
            "last_event": self.last_event,
            "at": self.at,
        }

    def contact(self) -> str:
        host = uac.via_host(self.sip.via)
        return f"sip:{self.extension}@{host}:{self._via_port()};port={self.number}"

    def _via_port(self) -> str:
        return self.sip.via.rpartition(":")[2]

    def _set(self, state: State, event: str = "") -> None:
        self.state = state
        self.at = time.time()
        if event:
            self.last_event = event
        logger.info("port %d: %s (%s)", self.number, state, event)
        self.show_led()

    def show_led(self, *, again: bool = False) -> None:
        """Set the port's LED for its state (sent only when it changes, unless `again`)."""
        pattern = led_pattern(self.state)
        if pattern != self._led or again:
            self._led = pattern
            self._command(pattern.command(self.number))

    def _play(self, kind: ToneKind | None) -> None:
        self._tone = ToneGenerator(self.plan.tone(kind)) if kind is not None else None

    def _after(self, seconds: float, then: Callable[[], None]) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(seconds, then)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- board events -----------------------------------------------------------------------

    def board_event(self, event: p.Message) -> None:
        if isinstance(event, p.OffHook):
            self._off_hook()
        elif isinstance(event, p.OnHook):
            self._on_hook()
        elif isinstance(event, p.PulseDigit):
            self._digit("0123456789"[event.digit % 10], "pulse")
        elif isinstance(event, p.Flash):
            self.last_event = f"flash {event.duration_ms} ms"
            self._flash(event.duration_ms)
        elif isinstance(event, p.BoardFault):
            self._fault(f"board fault {event.code}: {event.text}".rstrip(": "))

    def _fault(self, why: str) -> None:
        """The line cannot be trusted (the board found it faulty, e.g. a ring overload, or
        the board is gone): a call that is up goes on (its audio never goes through the
        link), anything else ends. The fault clears when the board next reports the hook."""
        self._cancel_timer()
        self._play(None)
        if self._dialog is None:
            if self._incoming is not None:
                req, txn, tag = self._incoming
                self._incoming = None
                txn.respond(self._reply(req, 480, tag))
                self._stop_ringing()
            if self._invite is not None:
                self._invite.cancel()
            self._close_media()
        self._set(State.FAULT, why)

    def board_down(self) -> None:
        """The link is gone: the line's state is unknown until the board reports it again."""
        self._fault("board down")

    def board_up(self) -> None:
        """The board is back; it reports every port that is not idle, so start from idle,
        keeping a call that is up (its audio never went through the link)."""
        if self.state is State.FAULT:
            self._set(State.IN_CALL if self._dialog is not None else State.IDLE, "board up")
        else:
            self.show_led(again=True)  # a board that lost power lost its LEDs too

    def _off_hook(self) -> None:
        if self.state is State.RINGING and self._incoming is not None:
            self._answer()
            return
        if self.state in (State.IDLE, State.FAULT):
            self.digits = ""
            self._dtmf = InbandDtmfDetector()
            self._set(State.DIALTONE, "off-hook")
            self._play(ToneKind.DIAL)

    def _on_hook(self) -> None:
        self._cancel_timer()
        self._play(None)
        if self._held is not None:
            self._transfer()
        if self._invite is not None and self._dialog is None:
            self._invite.cancel()
        if self._dialog is not None:
            self._bye()
        self._close_media()
        self._set(State.IDLE, "on-hook")

    def _digit(self, digit: str, how: str) -> None:
        if self.state not in (State.DIALTONE, State.DIALLING):
            return
        self._play(None)
        self._set(State.DIALLING, f"digit {digit} ({how})")
        if digit == "#":
            self._dial_done()
            return
        self.digits += digit
        if len(self.digits) in self.extension_lengths:
            self._dial_done()
            return
        self._after(INTER_DIGIT_S, self._dial_done)

    def _dial_done(self) -> None:
        self._cancel_timer()
        if self.state is not State.DIALLING or not self.digits:
            return
        self._call(self.digits)

    # -- hook flash: hold, consult, transfer ------------------------------------------------

    def _flash(self, duration_ms: int) -> None:
        """A hook flash (a loop break inside the country's window; the board reports longer
        breaks as on-hook): in a call, hold it and give recall dial tone for a consultation;
        while consulting, drop the consultation and go back to the held call."""
        window = self.plan.flash
        if not window.min_ms <= duration_ms <= window.max_ms:
            logger.info("port %d: a %d ms break is no hook flash", self.number, duration_ms)
            return
        if self._held is not None:
            self._drop_consultation()
            self._resume()
        elif self.state is State.IN_CALL and self._dialog is not None and self._leg is not None:
            self._hold()

    def _hold(self) -> None:
        assert self._dialog is not None and self._leg is not None
        self._leg.stop_playback()  # the held party hears nothing from the handset
        self._held = _HeldCall(self._dialog, self._leg, self._rx)
        self._dialog, self._leg, self._rx, self._invite = None, None, None, None
        self._tx.frames.clear()
        self.digits = ""
        self._dtmf = InbandDtmfDetector()
        self._set(State.DIALTONE, "flash: call held")
        self._play(ToneKind.RECALL_DIAL)

    def _drop_consultation(self) -> None:
        self._cancel_timer()
        if self._invite is not None and self._dialog is None:
            self._invite.cancel()
        if self._dialog is not None:
            self._bye()
        self._invite = None
        self._close_media()

    def _resume(self) -> None:
        held, self._held = self._held, None
        if held is None:
            return
        self._dialog, self._leg, self._rx = held.dialog, held.leg, held.rx
        held.leg.play(self._tx)
        self._play(None)
        self._set(State.IN_CALL, "flash: back to the held call")

    def _transfer(self) -> None:
        """On-hook with a call held: hand the held party to the consulted number (RFC 3515
        REFER on the held call's dialog). Consultation answered: attended, the Refer-To
        replaces the consultation's dialog (RFC 3891); still ringing: blind, to the number
        dialled; nothing dialled: the held call ends like any call at on-hook."""
        held, self._held = self._held, None
        assert held is not None
        domain = self.sip.domain
        if self._dialog is not None:
            consult = self._dialog
            replaces = quote(
                f"{consult.call_id};to-tag={consult.remote_tag};from-tag={consult.local_tag}",
                safe="",
            )
            target = f"<sip:{self.digits}@{domain}?Replaces={replaces}>"
            self._transferring[consult.call_id] = (consult, self._leg)
            self._dialog, self._leg, self._rx, self._invite = None, None, None, None
            how = "attended"
        elif self._invite is not None and self.digits:
            target = f"<sip:{self.digits}@{domain}>"
            how = "blind"
        else:
            self._close_media()
            self._dialog, self._leg, self._rx = held.dialog, held.leg, held.rx
            return
        self._transferring[held.dialog.call_id] = (held.dialog, held.leg)
        refer = held.dialog.request(
            "REFER",
            [("Refer-To", target), ("Referred-By", f"<sip:{self.extension}@{domain}>"),
             ("Contact", f"<{self.contact()}>")],
        )  # fmt: skip
        logger.info("port %d: %s transfer to %s", self.number, how, self.digits)

        def answered(resp: Response) -> None:
            if resp.status >= 300:
                logger.warning("port %d: transfer refused: %d", self.number, resp.status)
                self._end_transferring()

        self.sip.endpoint.request(refer, held.dialog.dest, answered)
        self.last_event = f"{how} transfer to {self.digits}"
        asyncio.get_running_loop().call_later(TRANSFER_TIMEOUT_S, self._end_transferring)

    def _end_transferring(self) -> None:
        """End (BYE) what a transfer left that the core has not ended itself."""
        parked, self._transferring = self._transferring, {}
        for dialog, leg in parked.values():
            self.sip.endpoint.request(dialog.request("BYE"), dialog.dest)
            if leg is not None:
                leg.close()

    def notify_received(self, req: Request, txn: ServerTransaction) -> None:
        """The refer subscription's progress (RFC 3515 §2.4.5): acknowledged; the core ends
        the transferred dialogs itself once the transfer is done."""
        txn.respond(self.sip.endpoint.response(req, 200))

    # -- the audio, every 20 ms -------------------------------------------------------------

    def tick(self, now: float) -> None:
        audio = self.audio
        if audio is None:
            return
        mic = audio.read_frame()
        if mic is not None and len(mic) == FRAME:
            if self.state in (State.DIALTONE, State.DIALLING):
                for digit in self._dtmf.feed(mic):
                    self._digit(digit, "dtmf")
            if self._leg is not None and self._talking():
                self._tx.frames.append(mic)
        audio.write_frame(self._earpiece())

    def _talking(self) -> bool:
        """A call is up: its audio flows, even while the board's link is down (the audio
        never goes through the link)."""
        return self.state is State.IN_CALL or (
            self.state is State.FAULT and self._dialog is not None
        )

    def _earpiece(self) -> bytes:
        if self._cid is not None:
            chunk, self._cid = self._cid[:160], self._cid[160:]
            if not len(self._cid):
                self._cid = None
                self._cid_done()
            return np.pad(chunk, (0, 160 - len(chunk))).astype("<i2").tobytes()
        if self._tone is not None:
            return self._tone.frame(160)
        if self._rx is not None and (self._talking() or self._early):
            return self._rx.pull()  # type: ignore[attr-defined, no-any-return]
        return bytes(FRAME)

    # -- calling out ------------------------------------------------------------------------

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
        self._early = False

    def _offer(self, leg: MediaLeg) -> bytes:
        host, port = leg.address[0], leg.address[1]
        offer = sdp.audio_offer(
            host,
            port,
            [
                (0, sdp.Rtpmap("PCMU", 8000), None),
                (101, sdp.Rtpmap("telephone-event", 8000), "0-15"),
            ],
            session_id=str(secrets.randbelow(10**9)),
            session_version=1,
        )
        return bytes(offer)

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

    def _call(self, number: str) -> None:
        leg = self._open_media()
        domain = self.sip.domain
        local = f"<sip:{self.extension}@{domain}>;tag={new_tag()}"
        req = uac.request(
            "INVITE",
            f"sip:{number}@{domain}",
            via=self.sip.via,
            from_=local,
            to=f"<sip:{number}@{domain}>",
            call_id=uac.new_call_id(self.sip.via),
            cseq=1,
            headers=[("Contact", f"<{self.contact()}>"), ("Content-Type", "application/sdp")],
            body=self._offer(leg),
        )
        self._set(State.CALLING, f"calling {number}")
        invite = OutgoingInvite(
            self.sip.endpoint, req, self.sip.core, self._response, self.credentials
        )
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
            if self.state is not State.CALLING and self.state is not State.RINGBACK:
                self._bye()  # the handset hung up while the answer crossed the CANCEL
                self._close_media()
                return
            self._remote_media(resp.body)
            self._play(None)
            self._set(State.IN_CALL, "answered")
            return
        if status < 200:
            if self.state is State.CALLING and status in (180, 183):
                self._set(State.RINGBACK, str(status))
                if status == 183 and resp.body:
                    self._early = True
                    self._remote_media(resp.body)
                    self._play(None)
                else:
                    self._play(ToneKind.RINGBACK)
            return
        self._invite = None
        self._close_media()
        if self.state in (State.CALLING, State.RINGBACK):
            if status in (486, 600):
                self._set(State.BUSY, str(status))
                self._play(ToneKind.BUSY)
            else:
                self._set(State.CONGESTION, str(status))
                self._play(ToneKind.CONGESTION)

    def _bye(self) -> None:
        dialog, self._dialog = self._dialog, None
        self._invite = None
        if dialog is not None:
            self.sip.endpoint.request(dialog.request("BYE"), dialog.dest)

    # -- in-dialog requests from the core ---------------------------------------------------

    def has_dialogs(self) -> bool:
        """Whether any dialog is still the port's: a call, a held one, or a transfer's."""
        return bool(
            self._dialog or self._held or self._transferring or self._incoming or self._invite
        )

    def owns(self, req: Request) -> bool:
        dialog = self._dialog
        if dialog is not None and req.call_id == dialog.call_id:
            return True
        if self._held is not None and req.call_id == self._held.dialog.call_id:
            return True
        if req.call_id in self._transferring:
            return True
        return self._incoming is not None and req.call_id == self._incoming[0].call_id

    def bye_received(self, req: Request, txn: ServerTransaction) -> None:
        txn.respond(self.sip.endpoint.response(req, 200))
        held = self._held
        if held is not None and req.call_id == held.dialog.call_id:
            held.leg.close()  # the held party hung up; the consultation goes on
            self._held = None
            return
        parked = self._transferring.pop(req.call_id, None)
        if parked is not None:
            if parked[1] is not None:
                parked[1].close()
            return
        self._dialog = None
        self._invite = None
        self._close_media()
        if self.state is State.RINGING:
            self._stop_ringing()
            self._set(State.IDLE, "caller hung up")
            return
        self._far_end_gone()

    def cancel_received(self, req: Request, txn: ServerTransaction) -> None:
        txn.respond(self.sip.endpoint.response(req, 200))
        incoming, self._incoming = self._incoming, None
        if incoming is not None:
            invite, itxn, _tag = incoming
            resp = self.sip.endpoint.response(invite, 487)
            itxn.respond(resp)
        self._stop_ringing()
        self._close_media()
        self._set(State.IDLE, "caller cancelled")

    def _far_end_gone(self) -> None:
        self._set(State.CONGESTION, "far end hung up")
        self._play(ToneKind.CONGESTION)
        self._after(self.howler_after_s, self._howl)

    def _howl(self) -> None:
        if self.state is State.CONGESTION:
            self._set(State.HOWLER)
            try:
                self._play(ToneKind.HOWLER)
            except KeyError:
                self._play(None)
            self._after(self.howler_for_s, self._silence)

    def _silence(self) -> None:
        if self.state is State.HOWLER:
            self._play(None)
            self._set(State.SILENT)

    # -- being called -----------------------------------------------------------------------

    def invite_received(self, req: Request, txn: ServerTransaction) -> None:
        if self.state is not State.IDLE:
            txn.respond(self.sip.endpoint.response(req, 486))
            return
        tag = new_tag()
        self._incoming = (req, txn, tag)
        self._open_media()
        self._remote_media(req.body)
        txn.respond(self._reply(req, 180, tag))
        self._set(State.RINGING, "incoming call")
        message = self._caller(req)
        standard = self.caller_id
        if message is None or standard == "none":
            self._ring()
        elif standard == "bell202":
            self._ring()
            self._after(self._first_ring_s() + 0.5, lambda: self._send_cid(message))
        else:
            self._send_cid(message)

    def _caller(self, req: Request) -> CallerIdMessage | None:
        try:
            caller = req.from_
        except Exception:  # noqa: BLE001 - a From we cannot read gives no caller ID
            return None
        number = (caller.uri.user if caller.uri is not None else "") or ""
        name = caller.name
        if not number:
            return None
        return CallerIdMessage.of(number, name)

    def _first_ring_s(self) -> float:
        return self.plan.ring[0] if self.plan.ring else 1.0

    def _send_cid(self, message: CallerIdMessage) -> None:
        if self.state is not State.RINGING:
            return
        standard = CallerIdStandard(self.caller_id)
        self._cid = callerid_signal(standard, message)
        self._cid_ring_after = standard is not CallerIdStandard.BELL202

    def _cid_done(self) -> None:
        """The last caller-ID frame went to the handset: for a standard that sends it before
        the first ring, the ring starts the standard's `after_data` later (ETSI: at least
        200 ms after the data)."""
        if self._cid_ring_after and self.state is State.RINGING:
            self._cid_ring_after = False
            timing = TIMING[CallerIdStandard(self.caller_id)]
            self._after(timing.after_data, self._ring_if_ringing)

    def _ring_if_ringing(self) -> None:
        if self.state is State.RINGING:
            self._ring()

    def _ring(self) -> None:
        ring = self.plan.ring
        pairs = tuple(
            (round(ring[i] * 1000), round(ring[i + 1] * 1000)) for i in range(0, len(ring) - 1, 2)
        ) or ((1000, 4000),)
        self._command(p.Ring(self.number, pairs[:8]))

    def _stop_ringing(self) -> None:
        self._command(p.StopRing(self.number))

    def _command(self, command: p.Message) -> None:
        self.send(command)

    def _reply(self, req: Request, status: int, tag: str, body: bytes = b"") -> Response:
        headers = [("Contact", f"<{self.contact()}>")]
        if body:
            headers.append(("Content-Type", "application/sdp"))
        from appliance.sip.message import make_response

        return make_response(req, status, to_tag=tag, headers=headers, body=body)

    def _answer(self) -> None:
        incoming, self._incoming = self._incoming, None
        if incoming is None or self._leg is None:
            return
        req, txn, tag = incoming
        self._stop_ringing()
        self._cid = None
        txn.respond(self._reply(req, 200, tag, self._offer(self._leg)))
        self._dialog = Dialog.as_uas(req, tag, self.sip.core, self.sip.via, f"<{self.contact()}>")
        self._play(None)
        self._set(State.IN_CALL, "answered")
