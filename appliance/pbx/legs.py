"""The objects of a call in the B2BUA: its legs (one SIP dialog and one media leg each), the
INVITEs it sends to the places it rings (forks, one per target), and the call itself with its
life cycle and CDR."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from appliance.media.engine import Codec, MediaLeg
from appliance.pbx import encryption
from appliance.pbx.encryption import LegCrypto
from appliance.pbx.offer import AUDIO_CODECS, CallError, audio, rtcp_port
from appliance.sip import sdp
from appliance.sip.dialog import Dialog, Reliable
from appliance.sip.message import Request, Response
from appliance.sip.transaction import ClientTransaction, Destination, ServerTransaction
from appliance.sip.ua.auth import Credentials
from appliance.sip.ua.invite import OutgoingInvite
from appliance.store import cdrs

if TYPE_CHECKING:
    from appliance.pbx.b2bua import CallEngine

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a call came from, as the dial plan and the CDR see it."""

    kind: str = "extension"
    """"extension" (a registered phone, authenticated) or "trunk" (a provider's call)."""
    trunk: str | None = None
    did: str | None = None
    did_label: str = ""


@dataclass(slots=True)
class Target:
    """One place the box sends an INVITE to: a registered contact of an extension, or a
    trunk's provider. Destinations make them; the B2BUA rings them."""

    number: str
    """The extension rung, or the number as sent to the provider (the CDR's `sent`)."""
    uri: str
    """The Request-URI."""
    to: str
    """The To URI."""
    dest: Destination
    """Where the INVITE goes: the flow the contact registered from, or the trunk's proxy."""
    identity: str
    """The caller as the callee sees it (From and P-Asserted-Identity), a name-addr."""
    via: str
    """Our sent-by, `TRANSPORT host:port`."""
    contact: str
    credentials: Credentials | None = None
    codecs: tuple[str, ...] = ("PCMU", "PCMA", "G722")
    late_offer: bool = False
    trunk: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    sdp_host: str | None = None
    """The address the box gives in SDP toward this target (a trunk's external address
    behind NAT); None: the media engine's own."""


class Leg:
    """One side of a call: a SIP dialog with a phone, and the box's media leg facing it."""

    def __init__(self, engine: CallEngine, media: MediaLeg, number: str, role: str) -> None:
        self.engine = engine
        self.media = media
        self.number = number
        self.role = role  # "caller" or "callee" (who started the call, for the CDR)
        self.dialog: Dialog | None = None
        self.call: Call | None = None
        self.session_id = str(int(time.time() * 1000) % 10**12)
        self.sdp_version = 0
        self.direction = "sendrecv"  # what we last told this phone we do
        self.remote_direction = "sendrecv"
        self.remote_version: int | None = None
        self.codec: Codec | None = None
        self.offered: list[Codec] = []
        self.sdp_host: str | None = None
        """The box's address in SDP toward this phone, when not the media engine's own."""
        self.layout: list[sdp.Media] = []
        """The m= lines of the phone's last SDP; the box's SDP to it keeps their number."""
        self.audio_index = 0
        self.crypto = LegCrypto()
        """SRTP on this leg: its line's policy, and the keys when its media is SRTP."""
        self.invite: ClientTransaction | None = None  # our pending re-INVITE to this phone
        self.reliable: Reliable | None = None  # our 2xx to its INVITE, until the ACK
        self.ack_cseq = 0
        self.refresh: asyncio.TimerHandle | None = None  # RFC 4028, when we are the refresher
        self.transfer: Call | None = None  # a blind transfer calling for this leg
        self.ended = False

    def our_sdp(self, codecs: list[Codec], direction: str | None = None) -> bytes:
        """An SDP body for this leg: the box's address and port, the given codecs and DTMF."""
        self.sdp_version += 1
        if direction is not None:
            self.direction = direction
        payloads: list[tuple[int, sdp.Rtpmap, str | None]] = [
            (c.payload_type, sdp.Rtpmap(c.name, 8000), None) for c in codecs
        ]
        dtmf = codecs[0].dtmf_payload_type if codecs else None
        if dtmf is not None:
            payloads.append((dtmf, sdp.Rtpmap("telephone-event", 8000), "0-16"))
        host, port = self.media.address
        host = self.sdp_host or host
        desc = sdp.audio_offer(
            host, port, payloads, session_id=self.session_id, session_version=self.sdp_version,
            direction=self.direction,
        )  # fmt: skip
        if self.crypto.ours is not None:
            encryption.secure_sdp(desc, 0, self.crypto.ours)
        if len(self.layout) > 1:
            # RFC 3264 §6 and §8: as many m= lines as the phone's SDP, in its order; the streams
            # the box does not take (video, a second audio) are declined with port 0.
            ours = desc.media[0]
            desc.media = [ours if i == self.audio_index else sdp.rejected_media(m)
                          for i, m in enumerate(self.layout)]  # fmt: skip
        return bytes(desc)

    def take_remote(self, desc: sdp.SessionDescription, *, answer: bool = False) -> sdp.Media:
        """Point the media leg at what the phone's SDP says: its offer, or its `answer` to
        ours (which decides SRTP differently: `encryption`)."""
        media = audio(desc)
        address = desc.address(media)
        if address is None:
            raise CallError(488, "Not Acceptable Here (no connection address)")
        if answer:
            encryption.take_answer(self.crypto, media, self.media)
        else:
            encryption.take_offer(self.crypto, media, self.media)
        self.layout = list(desc.media)
        self.audio_index = next(i for i, m in enumerate(desc.media) if m is media)
        self.media.set_remote(address, media.port, rtcp_port(media))
        self.remote_direction = desc.direction(media)
        self.remote_version = desc.origin.session_version
        return media

    def snapshot(self) -> tuple[Any, ...]:
        """What an offer changes on this leg, to be put back if the offer is rejected."""
        m = self.media
        return (m.sdp_remote, m.remote_rtcp, self.codec, list(self.offered),
                self.remote_direction, self.remote_version,
                self.crypto.ours, self.crypto.theirs, m.srtp)  # fmt: skip

    def restore(self, saved: tuple[Any, ...]) -> None:
        remote, rtcp, codec, offered, direction, version, ours, theirs, srtp = saved
        self.crypto.ours, self.crypto.theirs = ours, theirs
        self.media.set_srtp(srtp)
        if remote is not None:
            self.media.set_remote(remote[0], remote[1], rtcp[1] if rtcp else None)
        if codec is not None:
            self.codec = codec
            self.media.set_codec(codec)
        self.offered, self.remote_direction, self.remote_version = offered, direction, version

    def send(
        self,
        method: str,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        on_response: Callable[[Response], None] | None = None,
    ) -> ClientTransaction | None:
        if self.dialog is None:
            return None
        hdrs = list(headers or [])
        if body and not any(name.lower() == "content-type" for name, _ in hdrs):
            hdrs.append(("Content-Type", "application/sdp"))
        req = self.dialog.request(method, hdrs, body)
        return self.engine.endpoint.request(req, self.dialog.dest, on_response)

    def hangup(self) -> None:
        """Send BYE (once) and forget the dialog."""
        if self.ended:
            return
        self.ended = True
        if self.reliable is not None:
            self.reliable.stop()
        self.send("BYE")
        self.release()

    def release(self) -> None:
        self.ended = True
        self.invite = None  # (its callback is a closure over this leg)
        if self.reliable is not None:
            self.reliable.stop()
        if self.refresh is not None:
            self.refresh.cancel()
        if self.dialog is not None:
            self.engine.dialogs.pop(self.dialog.id, None)
        self.media.close()

    @property
    def peer(self) -> Leg | None:
        call = self.call
        if call is None:
            return None
        return call.b if call.a is self else call.a


class Fork:
    """One INVITE the box sent to one target of the call."""

    def __init__(self, call: Call, target: Target) -> None:
        self.call = call
        self.target = target
        self.number = target.number
        self.dest = target.dest
        self.invite: OutgoingInvite | None = None
        self.codecs: list[Codec] = []
        """What the box offered this target (the callee leg's codecs if it answers)."""
        self.sdp = ("", 0)
        """Session id and version of that offer: the callee leg goes on from them."""
        self.ack_body: tuple[bytes, list[tuple[str, str]]] = (b"", [])
        """Body and headers of our ACK to its 2xx: our answer when it made the offer."""
        self.early: Dialog | None = None
        self.rseq = 0
        self.done = False
        self.crypto = LegCrypto()
        """SRTP toward this target: its line's policy, the key the box offered it."""
        self.cancelled = False
        self.hung_up: tuple[str, str, str] | None = None
        """The dialog of a late 2xx the box ACKed and hung up (BYE once, however often the
        2xx comes)."""
        self.last_request: Request | None = None
        """The INVITE outstanding when the call ended and let go of `invite`: a 2xx crossing
        the CANCEL still comes, and is ACKed and hung up from it (RFC 3261 §15)."""

    @property
    def request(self) -> Request:
        """The INVITE now outstanding (after any answers to the target's challenges)."""
        if self.invite is None:
            assert self.last_request is not None
            return self.last_request
        return self.invite.request


@dataclass(slots=True)
class CallHooks:
    """What call features (recording, hold music, statistics) watch, without the B2BUA knowing
    them: each list's callables are called in order, and one that raises is logged, not fatal."""

    bridged: list[Callable[[Call], None]] = field(default_factory=list)
    """Two parties talk: the callee answered, or a transfer joined new ones (`call.a`/`call.b`)."""
    finished: list[Callable[[Call], None]] = field(default_factory=list)
    """The call ended; its CDR has been made."""
    held: list[Callable[[Call, Leg, bool], None]] = field(default_factory=list)
    """A phone put its call on hold (True) or took it off (False); the leg is the phone's that
    asked, so its peer is the party held."""

    @staticmethod
    def fire(hooks: list[Callable[..., None]], *args: Any) -> None:
        for hook in list(hooks):
            try:
                hook(*args)
            except Exception:
                logger.exception("call hook %r failed", hook)


class Call:
    """A call attempt from a caller leg to a number, its CDR, and its life cycle."""

    def __init__(
        self, engine: CallEngine, caller: Leg, caller_name: str, dialled: str,
        origin: Origin = Origin(),
    ) -> None:  # fmt: skip
        self.engine = engine
        self.origin = origin
        self.id = uuid.uuid4().hex
        self.a = caller
        self.b: Leg | None = None
        caller.call = self
        self.callee_media: MediaLeg | None = None
        self.caller_name = caller_name
        self.dialled = dialled
        self.started_at = time.time()
        self.answered_at: float | None = None
        self.state = "ringing"
        self.forks: list[Fork] = []
        self.invite: Request | None = None  # the caller's INVITE while it has no final answer
        self.invite_txn: ServerTransaction | None = None
        self.ring_timer: asyncio.TimerHandle | None = None
        self.max_forwards = 69
        """Max-Forwards for the INVITEs the call sends: the caller's, less one (§16.6)."""
        self.statuses: list[int] = []
        self.rel100 = False
        self.rseq = 0
        self.prov_queue: list[Response] = []
        self.prov_reliable: Reliable | None = None
        self.ringing_sent = False
        self.early_sdp: bytes | None = None
        self.session_timer: tuple[int, str] | None = None
        self.on_answer: Callable[[Call], None] | None = None
        self.on_fail: Callable[[Call, int, str], None] | None = None
        self.on_targets_failed: Callable[[Call, int], bool] | None = None
        """Asked when every target rung has failed, with the status the caller would get:
        True when the destination goes on (the next trunk), False to fail the call."""
        self.direction = "inbound" if origin.kind == "trunk" else "internal"
        self.trunk = origin.trunk
        self.sent: str | None = None
        self.late_offer = False
        self.offer_codecs: tuple[str, ...] = tuple(AUDIO_CODECS)
        """Codecs the box may offer the caller (a trunk's), when it offers in its 2xx."""
        """The caller's INVITE had no SDP: the box offers in its 2xx, the answer is in the ACK."""
        self.last_rx = 0
        self.silent_since = time.monotonic()
        self.ended = False
        self.box_answered = False
        """The box answered the caller itself (an IVR menu, an announcement, voicemail): the
        caller's dialog is confirmed with no callee, and targets may still be rung."""
        self.on_acked: Callable[[Call], None] | None = None
        self.on_caller_gone: list[Callable[[Call], None]] = []
        """Run once when the call ends, whoever ended it: destinations stop their timers."""

    @property
    def wants_callee(self) -> bool:
        """Whether a target that answers now is taken: the caller still waits for one."""
        return not self.ended and self.b is None and (
            self.state == "ringing" or self.box_answered
        )  # fmt: skip

    @property
    def answered_by(self) -> str | None:
        return self.b.number if self.b is not None else None

    # -- reporting ----------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        now = time.time()
        return {
            "id": self.id,
            "caller": self.a.number,
            "dialled": self.dialled,
            "state": self.state,
            "answered_by": self.answered_by,
            "direction": self.direction,
            "trunk": self.trunk,
            "duration": round(now - self.started_at, 1),
            "codecs": [leg.codec.name if leg.codec else None for leg in (self.a, self.b) if leg],
        }

    def finish(self, disposition: str, side: str, cause: str) -> None:
        """End the call: timers stopped, media closed, the CDR written. Once."""
        if self.ended:
            return
        self.ended = True
        self.state = "ended"
        if self.ring_timer is not None:
            self.ring_timer.cancel()
        if self.prov_reliable is not None:
            self.prov_reliable.stop()
        for leg in (self.a, self.b):
            if leg is not None and leg.call is self and not leg.ended:
                leg.release()
        if self.callee_media is not None and (self.b is None or self.b.media is not
                                              self.callee_media):  # fmt: skip
            self.callee_media.close()
        self.engine.calls.pop(self.id, None)
        if self.invite_txn is not None:
            self.engine.pending.pop(self.invite_txn.key, None)
        a, b = self.a, self.b
        self.engine.record(self.cdr(disposition, side, cause, time.time()))
        gone, self.on_caller_gone = self.on_caller_gone, []
        CallHooks.fire(gone, self)
        CallHooks.fire(self.engine.hooks.finished, self)
        # Break the call's reference cycles (call <-> legs, forks <-> their transactions), so
        # that reference counting frees it all now, not a collector pass that stalls the loop.
        for fork in self.forks:
            if fork.invite is not None:
                fork.last_request = fork.invite.request
            fork.invite = None
        self.forks = []
        self.on_answer = self.on_fail = None
        self.on_targets_failed = None
        self.on_acked = None
        self.ring_timer = None
        self.prov_reliable = None
        for leg in (a, b):
            if leg is not None and leg.call is self:
                leg.call = None

    def cdr(
        self, disposition: str, side: str, cause: str, ended_at: float, stats: bool = True
    ) -> cdrs.Cdr:
        """The call's record as it stands, ended at `ended_at` so (also what the live-call
        checkpoint saves, without the RTP statistics: `stats`)."""
        a, b = self.a, self.b
        stats = stats and self.answered_at is not None
        return cdrs.Cdr(
            id=self.id,
            started_at=self.started_at,
            ended_at=ended_at,
            caller=a.number,
            caller_name=self.caller_name,
            dialled=self.dialled,
            disposition=disposition,
            hangup_side=side,
            hangup_cause=cause,
            answered_at=self.answered_at,
            answered_by=self.answered_by,
            codec_caller=a.codec.name if a.codec else None,
            codec_callee=b.codec.name if b and b.codec else None,
            rtp_caller=_stats(a.media) if stats else None,
            rtp_callee=_stats(b.media) if b and stats else None,
            direction=self.direction,
            trunk=self.trunk,
            did=self.origin.did,
            did_label=self.origin.did_label or None,
            sent=self.sent,
        )


def _stats(media: MediaLeg) -> dict[str, Any]:
    s = media.stats()
    return {
        "packets": s.packets, "lost": s.lost, "jitter_ms": s.jitter_ms,
        "sent": s.sent_packets, "remote_lost": s.remote_lost,
        "remote_jitter_ms": s.remote_jitter_ms,
    }  # fmt: skip
