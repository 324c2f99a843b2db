"""The call engine: a B2BUA (RFC 3261 §6 "back-to-back user agent") for every call.

Each call has a caller leg (the box is the UAS of the phone's INVITE) and a callee leg (the box
is the UAC of its own INVITE), each a SIP dialog with a media leg of its own; the media engine
joins the two media legs. Because the box is a party to both dialogs it authenticates the caller
(407, like REGISTER's 401), decides the caller ID the callee sees, forks to every registered
contact of the callee, hangs up both sides together, and carries out transfers (RFC 3515 REFER,
RFC 3891 Replaces) itself, the transferred phone seeing at most a re-INVITE.

Offer/answer (RFC 3264) is done per leg: the callee is offered what the caller offered (in the
caller's order, then the box's other codecs), so that the two legs usually agree on a codec and
media is relayed without decoding; when they do not, the media engine transcodes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from appliance.media.engine import Codec, MediaEngine, MediaError, MediaLeg
from appliance.sip import sdp
from appliance.sip.dialog import Dialog, DialogId, Reliable, new_branch, request_dialog_id
from appliance.sip.digest import DigestServer, Verdict
from appliance.sip.endpoint import SERVER, SipEndpoint, new_tag
from appliance.sip.headers import NameAddr
from appliance.sip.message import HeaderField, Request, Response, SipParseError, make_response
from appliance.sip.registrar import Registrar
from appliance.sip.transaction import ClientTransaction, Destination, ServerTransaction, State
from appliance.sip.uri import SipUri
from appliance.store import cdrs

logger = logging.getLogger(__name__)

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, PRACK, REFER, NOTIFY"
SUPPORTED = ("100rel", "replaces", "timer")
MIN_SE = 90
"""RFC 4028 §4: the smallest session interval we accept (its recommended minimum)."""

AUDIO_CODECS = {"PCMU": 0, "PCMA": 8, "G722": 9}
"""Codecs the engine relays and transcodes, with their static payload types (RFC 3551)."""
DTMF_PT = 101
SILENT_CHECK = 1.0


@dataclass(frozen=True, slots=True)
class CallConfig:
    ring_timeout: float = 30.0
    media_timeout: float = 60.0
    max_duration: float = 10800.0


class CallError(Exception):
    """A call cannot go on; `status` and `reason` are what the caller is answered."""

    def __init__(self, status: int, reason: str | None = None) -> None:
        super().__init__(f"{status} {reason or ''}".strip())
        self.status = status
        self.reason = reason


# -- offer/answer helpers ------------------------------------------------------------------


def _audio(desc: sdp.SessionDescription) -> sdp.Media:
    for media in desc.media:
        if media.kind == "audio" and media.port:
            return media
    raise CallError(488, "Not Acceptable Here (no audio stream offered)")


def _offered_codecs(media: sdp.Media) -> tuple[list[Codec], int | None]:
    """The codecs of an offer we can handle, in the offerer's order, and its RFC 4733 type."""
    codecs: list[Codec] = []
    dtmf: int | None = None
    for fmt in media.formats:
        if not fmt.isdigit():
            continue
        pt = int(fmt)
        try:
            rtpmap = media.rtpmap(pt)
        except sdp.SdpError:
            continue  # a malformed a=rtpmap: that format is unusable, the rest may do
        if rtpmap is None:
            continue
        name = rtpmap.encoding.upper()
        if name in AUDIO_CODECS and rtpmap.clock_rate == 8000:
            if all(c.name != name for c in codecs):
                codecs.append(Codec(name, pt))
        elif name == "TELEPHONE-EVENT" and rtpmap.clock_rate == 8000 and dtmf is None:
            dtmf = pt
    for c in codecs:
        c.dtmf_payload_type = dtmf
    return codecs, dtmf


def _rtcp_port(media: sdp.Media) -> int | None:
    try:
        return media.rtcp_port
    except sdp.SdpError:
        return None  # a malformed a=rtcp: RTCP goes to the port above RTP, as by default


def _number_of(value: str | None) -> str:
    if not value:
        return ""
    try:
        uri = NameAddr.parse(value, "To").uri
    except SipParseError:
        return ""
    return uri.user or "" if uri is not None else ""


# -- legs and calls ------------------------------------------------------------------------


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
        desc = sdp.audio_offer(
            host, port, payloads, session_id=self.session_id, session_version=self.sdp_version,
            direction=self.direction,
        )  # fmt: skip
        return bytes(desc)

    def take_remote(self, desc: sdp.SessionDescription) -> sdp.Media:
        """Point the media leg at what the phone's SDP says."""
        media = _audio(desc)
        address = desc.address(media)
        if address is None:
            raise CallError(488, "Not Acceptable Here (no connection address)")
        self.media.set_remote(address, media.port, _rtcp_port(media))
        self.remote_direction = desc.direction(media)
        self.remote_version = desc.origin.session_version
        return media

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
    """One INVITE the box sent to one registered contact of the callee."""

    def __init__(self, call: Call, number: str, request: Request, dest: Destination) -> None:
        self.call = call
        self.number = number
        self.request = request
        self.dest = dest
        self.txn: ClientTransaction | None = None
        self.early: Dialog | None = None
        self.rseq = 0
        self.done = False
        self.cancelled = False


class Call:
    """A call attempt from a caller leg to a number, its CDR, and its life cycle."""

    def __init__(self, engine: CallEngine, caller: Leg, caller_name: str, dialled: str) -> None:
        self.engine = engine
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
        self.fork_sdp = ("", 0)  # session id and version of the offer sent to the forks
        self.fork_codecs: list[Codec] = []
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
        self.last_rx = 0
        self.silent_since = time.monotonic()
        self.ended = False

    # -- reporting ----------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        now = time.time()
        return {
            "id": self.id,
            "caller": self.a.number,
            "dialled": self.dialled,
            "state": self.state,
            "answered_by": self.b.number if self.b else None,
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
        record = cdrs.Cdr(
            id=self.id,
            started_at=self.started_at,
            ended_at=time.time(),
            caller=a.number,
            caller_name=self.caller_name,
            dialled=self.dialled,
            disposition=disposition,
            hangup_side=side,
            hangup_cause=cause,
            answered_at=self.answered_at,
            answered_by=b.number if b else None,
            codec_caller=a.codec.name if a.codec else None,
            codec_callee=b.codec.name if b and b.codec else None,
            rtp_caller=_stats(a.media) if self.answered_at else None,
            rtp_callee=_stats(b.media) if b and self.answered_at else None,
        )
        self.engine.record(record)
        # Break the call's reference cycles (call <-> legs, forks <-> their transactions), so
        # that reference counting frees it all now, not a collector pass that stalls the loop.
        for fork in self.forks:
            fork.txn = None
        self.forks = []
        self.on_answer = self.on_fail = None
        self.ring_timer = None
        self.prov_reliable = None
        for leg in (a, b):
            if leg is not None and leg.call is self:
                leg.call = None


def _stats(media: MediaLeg) -> dict[str, Any]:
    s = media.stats()
    return {
        "packets": s.packets, "lost": s.lost, "jitter_ms": s.jitter_ms,
        "sent": s.sent_packets, "remote_lost": s.remote_lost,
        "remote_jitter_ms": s.remote_jitter_ms,
    }  # fmt: skip


# -- the engine ----------------------------------------------------------------------------


class CallEngine:
    """Handles INVITE and everything in its dialogs; plug into `SipEndpoint.handlers`."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        registrar: Registrar,
        digest: DigestServer,
        media: MediaEngine,
        names: Callable[[], dict[str, str]],
        record: Callable[[cdrs.Cdr], None],
        config: CallConfig | None = None,
        advertised: str = "",
    ) -> None:
        self.endpoint = endpoint
        self._advertised = advertised
        self.registrar = registrar
        self.digest = digest
        self.media = media
        self.names = names
        self.record = record
        self.config = config or CallConfig()
        self.calls: dict[str, Call] = {}
        self.dialogs: dict[DialogId, Leg] = {}
        self.pending: dict[tuple[str, ...], Call] = {}
        self._sweeper: asyncio.Task[None] | None = None
        for method in ("INVITE", "BYE", "CANCEL", "UPDATE", "INFO", "PRACK", "REFER", "NOTIFY"):
            endpoint.handlers[method] = getattr(self, f"_on_{method.lower()}")
        endpoint.on_ack = self._on_ack
        endpoint.supported = endpoint.supported | frozenset(SUPPORTED)

    def start(self) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    def close(self) -> None:
        for call in list(self.calls.values()):
            self._hangup_all(call, "system", "shutdown")
        if self._sweeper is not None:
            self._sweeper.cancel()

    @property
    def advertised(self) -> str:
        """Our address in Via, Contact and From: where the SIP socket listens, unless that is a
        wildcard address."""
        return self._advertised or self.endpoint.local[0]

    @property
    def _via(self) -> str:
        host, port = self.advertised, self.endpoint.local[1]
        return f"UDP {_hostport(host, port)}"

    def _contact(self, transport: str = "UDP") -> str:
        host, port = self.advertised, self.endpoint.local[1]
        tp = "" if transport == "UDP" else f";transport={transport.lower()}"
        return f"<sip:pbx@{_hostport(host, port)}{tp}>"

    # -- INVITE from a phone -----------------------------------------------------------

    def _on_invite(self, req: Request, txn: ServerTransaction) -> None:
        if req.to.tag:
            self._in_dialog(req, txn)
            return
        caller = self._authenticate(req, txn)
        if caller is None:
            return
        if not req.body:
            self._reject(req, txn, 488, "Not Acceptable Here (an SDP offer is required)")
            return
        try:
            offer = sdp.SessionDescription.parse(req.body)
        except sdp.SdpError as exc:
            self._reject(req, txn, 400, f"Bad Request (SDP: {exc})")
            return
        timer = session_expires(req)  # (a SipParseError becomes a 400 at the endpoint)
        if timer is not None and timer[0] < MIN_SE:
            txn.respond(self.endpoint.response(req, 422, headers=[("Min-SE", str(MIN_SE))]))
            return
        txn.respond(make_response(req, 100, headers=[("Server", SERVER)]))
        self._start_call(req, txn, caller, offer)

    def _authenticate(self, req: Request, txn: ServerTransaction) -> str | None:
        """The caller's extension if the INVITE carries good credentials; else answered."""
        auth = req.get("Proxy-Authorization")
        caller = req.from_.uri.user if req.from_.uri else None
        if auth is None:
            self._challenge(req, txn)
            return None
        result = self.digest.verify(
            auth, "INVITE", self.registrar._ha1, expected_user=caller or "",
        )  # fmt: skip
        if result.verdict in (Verdict.CHALLENGE, Verdict.STALE):
            self._challenge(req, txn, stale=result.verdict is Verdict.STALE)
            return None
        if result.verdict is Verdict.BAD_REQUEST:
            txn.respond(self.endpoint.response(req, 400, f"Bad Request ({result.reason})"))
            return None
        if result.verdict is Verdict.FORBIDDEN:
            logger.info("INVITE from %s at %s: %s", caller, txn.dest.host, result.reason)
            self._reject(req, txn, 403, None, caller=caller or "")
            return None
        return caller

    def _challenge(self, req: Request, txn: ServerTransaction, stale: bool = False) -> None:
        headers = [("Proxy-Authenticate", c) for c in self.digest.challenges(stale=stale)]
        txn.respond(self.endpoint.response(req, 407, headers=headers))

    def _reject(
        self, req: Request, txn: ServerTransaction, status: int, reason: str | None,
        *, caller: str | None = None,
    ) -> None:  # fmt: skip
        """Refuse a new call and record the attempt."""
        response = self.endpoint.response(req, status, reason)
        txn.respond(response)
        self._record_failed(req, caller, "failed", "system", f"{status} {response.reason}")

    def _record_failed(
        self, req: Request, caller: str | None, disposition: str, side: str, cause: str
    ) -> None:
        now = time.time()
        self.record(
            cdrs.Cdr(
                id=uuid.uuid4().hex,
                started_at=now,
                ended_at=now,
                caller=caller if caller is not None else _number_of(req.get("From")),
                dialled=_dialled(req),
                disposition=disposition,
                hangup_side=side,
                hangup_cause=cause,
            )
        )

    def _start_call(
        self, req: Request, txn: ServerTransaction, caller: str, offer: sdp.SessionDescription
    ) -> None:
        dialled = _dialled(req)
        names = self.names()
        try:
            media = _audio(offer)
            offered, _ = _offered_codecs(media)
            if not offered:
                raise CallError(488, "Not Acceptable Here (none of PCMU, PCMA, G722 offered)")
            if dialled not in names:
                raise CallError(404, f"Not Found (no extension {dialled})")
            contacts = self.registrar.bindings(dialled)
            if not contacts:
                raise CallError(480, f"Temporarily Unavailable ({dialled} is not registered)")
            a_media = self.media.open_leg()
        except CallError as exc:
            self._reject(req, txn, exc.status, exc.reason, caller=caller)
            return
        except MediaError as exc:
            logger.error("%s", exc)
            self._reject(req, txn, 503, "Service Unavailable (no RTP port free)", caller=caller)
            return
        try:
            b_media = self.media.open_leg()
        except MediaError as exc:
            a_media.close()
            logger.error("%s", exc)
            self._reject(req, txn, 503, "Service Unavailable (no RTP port free)", caller=caller)
            return
        a = Leg(self, a_media, caller, "caller")
        a.offered = offered
        a.take_remote(offer)
        a.dialog = Dialog.as_uas(req, new_tag(), txn.dest, self._via, self._contact(
            txn.dest.transport))  # fmt: skip
        call = Call(self, a, names.get(caller, ""), dialled)
        call.invite, call.invite_txn = req, txn
        call.rel100 = "100rel" in [r.lower() for r in req.get_all("require")]
        timer = session_expires(req)
        if timer is not None:
            call.session_timer = (timer[0], timer[1] or "uac")
        self.calls[call.id] = call
        self.pending[txn.key] = call
        self.dialogs[a.dialog.id] = a
        txn.on_ack = self._on_ack
        call.callee_media = b_media
        call.ring_timer = asyncio.get_running_loop().call_later(
            self.config.ring_timeout, self._ring_timeout, call
        )
        self._dial(call, dialled, contacts, offered)

    def _dial(self, call: Call, number: str, contacts: list[Any], codecs: list[Codec]) -> None:
        """Fork an INVITE to every registered contact of `number` (RFC 3261 §16.6 in spirit)."""
        assert call.callee_media is not None
        names = self.names()
        caller = call.a.number
        display = names.get(caller, "") or caller
        theirs = [Codec(c.name, c.payload_type) for c in codecs]
        ours = theirs + [
            Codec(name, pt) for name, pt in AUDIO_CODECS.items()
            if all(c.name != name for c in theirs)
        ]  # fmt: skip
        for c in ours:
            c.payload_type = AUDIO_CODECS[c.name]
            c.dtmf_payload_type = DTMF_PT
        probe = Leg(self, call.callee_media, number, "callee")
        body = probe.our_sdp(ours)
        call.fork_sdp = (probe.session_id, probe.sdp_version)
        call.fork_codecs = ours
        host, port = self.advertised, self.endpoint.local[1]
        box = _hostport(host, port)
        identity = f'"{_quote(display)}" <sip:{caller}@{box}>'
        for reg in contacts:
            transport, _, hostport = reg.source.partition(" ")
            src_host, _, src_port = hostport.rpartition(":")
            dest = Destination(transport, src_host.strip("[]"), int(src_port))
            contact_uri = NameAddr.parse(reg.contact, "Contact").uri
            assert contact_uri is not None
            from_tag = new_tag()
            headers = [
                ("Via", f"SIP/2.0/{transport} {box};branch={new_branch()};rport"),
                ("Max-Forwards", "70"),
                ("From", f"{identity};tag={from_tag}"),
                ("To", f"<sip:{number}@{box}>"),
                ("Call-ID", f"{uuid.uuid4().hex}@{host}"),
                ("CSeq", "1 INVITE"),
                ("Contact", self._contact(transport)),
                ("P-Asserted-Identity", identity),
                ("Allow", ALLOW),
                ("Supported", "100rel, replaces"),
                ("Server", SERVER),
                ("Content-Type", "application/sdp"),
                ("Content-Length", str(len(body))),
            ]  # fmt: skip
            req = Request(
                headers=[HeaderField(n, v) for n, v in headers], body=body,
                method="INVITE", uri=str(contact_uri),
            )  # fmt: skip
            fork = Fork(call, number, req, dest)
            call.forks.append(fork)
            on_response = functools.partial(self._fork_response, fork)
            fork.txn = self.endpoint.request(req, dest, on_response)

    # -- responses from the callee's phones ------------------------------------------------

    def _fork_response(self, fork: Fork, resp: Response) -> None:
        call = fork.call
        status = resp.status
        if status < 200:
            self._fork_provisional(fork, resp)
            return
        if status < 300:
            self._fork_answered(fork, resp)
            return
        if fork.done:
            return
        fork.done = True
        call.statuses.append(status)
        if call.state == "ringing" and all(f.done for f in call.forks):
            self._forks_failed(call)

    def _fork_provisional(self, fork: Fork, resp: Response) -> None:
        call = fork.call
        if resp.status == 100 or fork.done or call.state != "ringing":
            return
        if resp.to.tag and fork.early is None:
            fork.early = Dialog.as_uac(fork.request, resp, fork.dest, self._via)
        rseq = resp.int_header("RSeq")
        if rseq is not None and "100rel" in [r.lower() for r in resp.get_all("require")]:
            if rseq <= fork.rseq:
                return  # a retransmission: our PRACK transaction deals with it
            fork.rseq = rseq
            if fork.early is not None:
                prack = fork.early.request(
                    "PRACK", [("RAck", f"{rseq} {fork.request.cseq.number} INVITE")]
                )
                self.endpoint.request(prack, fork.dest)
        if resp.body and call.early_sdp is None:
            try:
                desc = sdp.SessionDescription.parse(resp.body)
                self._callee_answer(call, desc)
            except (sdp.SdpError, CallError) as exc:
                logger.info("call %s: unusable early SDP: %s", call.id, exc)
                return
            self._provisional(call, 183, body=call.early_sdp)
            return
        if resp.status == 180 and not call.ringing_sent:
            call.ringing_sent = True
            self._provisional(call, 180)

    def _provisional(self, call: Call, status: int, body: bytes | None = None) -> None:
        """A provisional response to the caller: reliable (RFC 3262) when it asked for it."""
        a = call.a
        req, txn = call.invite, call.invite_txn
        if req is None or txn is None or a.dialog is None:
            return
        headers: list[tuple[str, str]] = [("Allow", ALLOW), ("Server", SERVER)]
        if body:
            headers.append(("Content-Type", "application/sdp"))
        if call.rel100:
            call.rseq += 1
            headers += [("Require", "100rel"), ("RSeq", str(call.rseq))]
        resp = a.dialog.response(req, status, None, headers, body or b"")
        if not call.rel100:
            txn.respond(resp)
            return
        call.prov_queue.append(resp)
        if call.prov_reliable is None or call.prov_reliable.done:
            self._next_reliable(call)

    def _next_reliable(self, call: Call) -> None:
        txn = call.invite_txn
        if not call.prov_queue or txn is None or txn.state is not State.PROCEEDING:
            return
        resp = call.prov_queue.pop(0)
        txn.respond(resp)  # sent once by the transaction; retransmitted by Reliable below

        def resend(data: bytes, dest: Destination) -> None:
            if txn.state is State.PROCEEDING:
                self.endpoint.send(data, dest)

        call.prov_reliable = Reliable(
            resend, bytes(resp), txn.dest, self.endpoint.transactions.timers
        )

    def _callee_answer(self, call: Call, desc: sdp.SessionDescription) -> None:
        """The callee's SDP answer arrived (in a 18x or the 2xx): set up both media legs."""
        b_media = call.callee_media
        assert b_media is not None
        media = _audio(desc)
        answered, dtmf = _offered_codecs(media)
        if not answered:
            raise CallError(488, "Not Acceptable Here (callee chose no codec we have)")
        b_codec = answered[0]
        b_codec.dtmf_payload_type = dtmf
        address = desc.address(media)
        if address is None:
            raise CallError(488)
        b_media.set_remote(address, media.port, _rtcp_port(media))
        b_media.set_codec(b_codec)
        a = call.a
        if call.invite is None:
            return  # a transfer's new leg: joined to the transferee when it answers
        if a.codec is None:
            # The caller's codec: the callee's if the caller offered it, so media is relayed.
            same = [c for c in a.offered if c.name == b_codec.name]
            a.codec = same[0] if same else a.offered[0]
            a.media.set_codec(a.codec)
            call.early_sdp = a.our_sdp([a.codec], sdp.answer_direction(a.remote_direction))
        if a.media.peer is not b_media:
            a.media.connect(b_media)

    def _fork_answered(self, fork: Fork, resp: Response) -> None:
        call = fork.call
        dialog = Dialog.as_uac(fork.request, resp, fork.dest, self._via)
        cseq = fork.request.cseq.number
        if fork.done and call.b is not None and call.b.dialog is not None and (
            call.b.dialog.id == dialog.id
        ):  # fmt: skip
            self.endpoint.send(bytes(call.b.dialog.ack(cseq)), fork.dest)  # 2xx retransmitted
            return
        if call.state != "ringing" or fork.done:
            # Another phone won, or the call is gone: ACK and BYE this one (§13.2.2.4).
            self.endpoint.send(bytes(dialog.ack(cseq)), fork.dest)
            self.endpoint.request(dialog.request("BYE"), fork.dest)
            fork.done = True
            return
        fork.done = True
        try:
            desc = sdp.SessionDescription.parse(resp.body)
            self._callee_answer(call, desc)
        except (sdp.SdpError, CallError) as exc:
            logger.info("call %s: callee's answer unusable: %s", call.id, exc)
            self.endpoint.send(bytes(dialog.ack(cseq)), fork.dest)
            self.endpoint.request(dialog.request("BYE"), fork.dest)
            call.statuses.append(488)
            if all(f.done for f in call.forks):
                self._forks_failed(call)
            return
        self.endpoint.send(bytes(dialog.ack(cseq)), fork.dest)
        assert call.callee_media is not None
        b = Leg(self, call.callee_media, fork.number, "callee")
        b.dialog = dialog
        b.call = call
        b.codec = call.callee_media.codec
        b.session_id, b.sdp_version = call.fork_sdp
        b.remote_version = None
        b.offered = list(call.fork_codecs)
        call.b = b
        self.dialogs[dialog.id] = b
        for other in call.forks:
            if other is not fork and not other.done:
                self._cancel_fork(other)
        self._answer_caller(call)

    def _answer_caller(self, call: Call) -> None:
        a = call.a
        req, txn = call.invite, call.invite_txn
        call.state = "answered"
        call.answered_at = time.time()
        if call.ring_timer is not None:
            call.ring_timer.cancel()
        if call.prov_reliable is not None:
            call.prov_reliable.stop()
        if req is None or txn is None or a.dialog is None:
            if call.on_answer is not None:
                call.on_answer(call)
            return
        body = call.early_sdp
        if body is None:
            assert a.codec is not None
            body = a.our_sdp([a.codec], sdp.answer_direction(a.remote_direction))
        headers: list[tuple[str, str]] = [
            ("Allow", ALLOW), ("Supported", ", ".join(SUPPORTED)), ("Server", SERVER),
            ("Content-Type", "application/sdp"),
        ]  # fmt: skip
        if call.session_timer is not None:
            interval, refresher = call.session_timer
            headers.append(("Session-Expires", f"{interval};refresher={refresher}"))
            if "timer" in [s.lower() for s in req.get_all("supported")]:
                headers.append(("Require", "timer"))
            if refresher == "uas":
                self._schedule_refresh(a, interval)
        resp = a.dialog.response(req, 200, None, headers, body)
        txn.respond(resp)
        self.pending.pop(txn.key, None)
        a.ack_cseq = req.cseq.number
        a.reliable = Reliable(
            self.endpoint.send, bytes(resp), txn.dest, self.endpoint.transactions.timers,
            on_timeout=lambda: self._no_ack(call),
        )  # fmt: skip
        call.invite = call.invite_txn = None
        call.silent_since = time.monotonic()

    def _no_ack(self, call: Call) -> None:
        if call.a.reliable is not None and call.a.reliable.done and not call.ended:
            logger.info("call %s: caller never ACKed our 200", call.id)
            self._hangup_all(call, "system", "no ACK from the caller")

    def _forks_failed(self, call: Call) -> None:
        statuses = call.statuses
        if any(s in (486, 600) for s in statuses):
            status, disposition = 486, "busy"
        elif any(s >= 600 for s in statuses):
            status, disposition = next(s for s in statuses if s >= 600), "failed"
        elif all(s in (408, 480, 487) for s in statuses):
            status, disposition = 480, "no-answer"
        else:
            status, disposition = min(statuses), "failed"
        reason = {480: "Temporarily Unavailable (no answer)"}.get(status)
        self._fail_caller(call, status, reason, disposition, "callee")

    def _fail_caller(
        self, call: Call, status: int, reason: str | None, disposition: str, side: str
    ) -> None:
        """The call ends before it was answered: a final response to the caller, the CDR."""
        for fork in call.forks:
            if not fork.done:
                self._cancel_fork(fork)
        req, txn = call.invite, call.invite_txn
        response = None
        dialog = call.a.dialog
        if req is not None and txn is not None and dialog and txn.state is State.PROCEEDING:
            response = dialog.response(req, status, reason, [("Server", SERVER)])
            txn.respond(response)
        if call.on_fail is not None:
            call.on_fail(call, status, reason or "")
        phrase = response.reason if response is not None else (reason or "")
        call.finish(disposition, side, f"{status} {phrase}".strip())

    def _cancel_fork(self, fork: Fork) -> None:
        """§9.1: CANCEL an INVITE that has had a provisional response (else just stop it)."""
        fork.done = True
        txn = fork.txn
        if txn is None or fork.cancelled:
            return
        fork.cancelled = True
        req = fork.request
        headers = [HeaderField("Via", req.get_all("via")[0])]
        headers += [HeaderField(h.name, h.value) for h in req.headers
                    if h.key in ("from", "to", "call-id", "max-forwards", "route")]  # fmt: skip
        headers += [HeaderField("CSeq", f"{req.cseq.number} CANCEL"),
                    HeaderField("Content-Length", "0")]  # fmt: skip
        cancel = Request(headers=headers, method="CANCEL", uri=req.uri)
        self.endpoint.request(cancel, fork.dest)

    def _ring_timeout(self, call: Call) -> None:
        if call.state == "ringing":
            self._fail_caller(call, 480, "Temporarily Unavailable (no answer)", "no-answer",
                              "system")  # fmt: skip

    # -- CANCEL and ACK from the caller --------------------------------------------------------

    def _on_cancel(self, req: Request, txn: ServerTransaction) -> None:
        invite_key = (*txn.key[:-1], "INVITE")
        invite = self.endpoint.transactions.match_server(invite_key)
        if invite is None:
            txn.respond(self.endpoint.response(req, 481))
            return
        txn.respond(self.endpoint.response(req, 200))
        call = self.pending.get(invite_key)
        if call is not None and call.state == "ringing":
            self._fail_caller(call, 487, None, "cancelled", "caller")
        elif invite.state is State.PROCEEDING:
            invite.respond(self.endpoint.response(invite.request, 487))

    def _on_ack(self, req: Request) -> None:
        leg = self.dialogs.get(request_dialog_id(req))
        if leg is None or leg.reliable is None:
            return
        if req.cseq.number == leg.ack_cseq:
            leg.reliable.stop()

    # -- requests inside a dialog ---------------------------------------------------------------

    def _leg_for(self, req: Request, txn: ServerTransaction) -> Leg | None:
        leg = self.dialogs.get(request_dialog_id(req))
        if leg is None or leg.dialog is None:
            txn.respond(self.endpoint.response(req, 481))
            return None
        if not leg.dialog.accept_remote_seq(req):
            txn.respond(leg.dialog.response(req, 500, "Server Internal Error (CSeq out of order)"))
            return None
        return leg

    def _on_bye(self, req: Request, txn: ServerTransaction) -> None:
        leg = self._leg_for(req, txn)
        if leg is None or leg.dialog is None:
            return
        txn.respond(leg.dialog.response(req, 200))
        call = leg.call
        leg.release()
        if leg.transfer is not None:  # the transferee gave up: stop calling for it
            self._fail_caller(leg.transfer, 487, None, "cancelled", "caller")
        if call is None:
            return
        if call.state == "ringing":
            self._fail_caller(call, 487, None, "cancelled", leg.role)
            return
        side = "caller" if leg is call.a else "callee"
        peer = leg.peer
        if peer is not None and peer.transfer is not None:
            peer.call = peer.transfer  # the transferor left, as it may: the transfer goes on
            call.finish("answered", side, "transferred")
            return
        if peer is not None:
            peer.hangup()
        call.finish("answered", side, "BYE")

    def _hangup_all(self, call: Call, side: str, cause: str) -> None:
        if call.state == "ringing":
            self._fail_caller(call, 480, None, "failed", side)
            return
        for leg in (call.a, call.b):
            if leg is not None and leg.call is call:
                leg.hangup()
        call.finish("answered", side, cause)

    def _on_prack(self, req: Request, txn: ServerTransaction) -> None:
        leg = self.dialogs.get(request_dialog_id(req))
        call = leg.call if leg is not None else None
        if leg is None or leg.dialog is None or call is None:
            txn.respond(self.endpoint.response(req, 481))
            return
        rack = (req.get("RAck") or "").split()
        if len(rack) != 3 or not rack[0].isdigit() or int(rack[0]) != call.rseq:
            txn.respond(leg.dialog.response(req, 481, "Call/Transaction Does Not Exist (RAck)"))
            return
        if call.prov_reliable is not None:
            call.prov_reliable.stop()
        txn.respond(leg.dialog.response(req, 200))
        self._next_reliable(call)

    def _on_notify(self, req: Request, txn: ServerTransaction) -> None:
        leg = self._leg_for(req, txn)
        if leg is not None and leg.dialog is not None:
            txn.respond(leg.dialog.response(req, 200))

    def _on_info(self, req: Request, txn: ServerTransaction) -> None:
        leg = self._leg_for(req, txn)
        if leg is None or leg.dialog is None:
            return
        kind = (req.get("Content-Type") or "").split(";")[0].strip().lower()
        digit = None
        duration = 160
        text = req.body.decode("utf-8", "replace")
        if kind == "application/dtmf-relay":
            for line in text.splitlines():
                name, _, value = line.partition("=")
                name, value = name.strip().lower(), value.strip()
                if name == "signal":
                    digit = value
                elif name == "duration" and value.isdigit() and len(value) < 6:
                    duration = int(value)
        elif kind == "application/dtmf":
            digit = text.strip()
        elif req.body:
            accept = [("Accept", "application/dtmf-relay, application/dtmf")]
            txn.respond(leg.dialog.response(req, 415, headers=accept))
            return
        txn.respond(leg.dialog.response(req, 200))
        if digit:
            digit = {"10": "*", "11": "#"}.get(digit, digit).upper()
            peer = leg.peer
            if peer is not None and len(digit) == 1 and digit in "0123456789*#ABCD":
                peer.media.send_dtmf(digit, duration)

    # -- re-INVITE and UPDATE: hold, resume, codec change, session refresh ----------------------

    def _in_dialog(self, req: Request, txn: ServerTransaction) -> None:
        leg = self._leg_for(req, txn)
        if leg is None or leg.dialog is None:
            return
        txn.on_ack = self._on_ack
        self._reoffer(leg, req, txn)

    def _on_update(self, req: Request, txn: ServerTransaction) -> None:
        leg = self._leg_for(req, txn)
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
                media = _audio(desc)
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
                txn.respond(leg.dialog.response(req, 200, headers=self._timer_headers(req)))
            return
        if desc is None and req.method == "UPDATE":
            txn.respond(leg.dialog.response(req, 200, headers=self._timer_headers(req)))
            return
        changed = desc is not None and desc.origin.session_version != leg.remote_version
        if desc is None or not changed:
            self._answer_reoffer(leg, req, txn, leg.direction)  # a refresh: nothing to tell
            return
        offered, _ = _offered_codecs(media)
        if not offered:
            txn.respond(leg.dialog.response(req, 488, "Not Acceptable Here (no usable codec)"))
            return
        leg.take_remote(desc)
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

        def answered(resp: Response) -> None:
            if resp.status < 200:
                return
            if resp.status < 300:
                # The peer's answer says what it does; we do the same toward this phone.
                self._answer_reoffer(leg, req, txn, peer.remote_direction)
            else:
                txn.respond(leg.dialog.response(req, resp.status))  # type: ignore[union-attr]

        self._reinvite(peer, wanted, answered)

    def _answer_reoffer(
        self, leg: Leg, req: Request, txn: ServerTransaction, direction: str
    ) -> None:
        assert leg.dialog is not None and leg.codec is not None
        body = leg.our_sdp([leg.codec], direction)
        headers = [("Content-Type", "application/sdp"), ("Allow", ALLOW)]
        headers += self._timer_headers(req)
        resp = leg.dialog.response(req, 200, None, headers, body)
        txn.respond(resp)
        if req.method == "INVITE":
            leg.ack_cseq = req.cseq.number
            if leg.reliable is not None:
                leg.reliable.stop()
            leg.reliable = Reliable(
                self.endpoint.send, bytes(resp), txn.dest, self.endpoint.transactions.timers
            )

    def _schedule_refresh(self, leg: Leg, interval: int) -> None:
        """RFC 4028 §10: as the refresher, re-INVITE at half the session interval."""
        loop = asyncio.get_running_loop()
        leg.refresh = loop.call_later(interval / 2, self._refresh, leg, interval)

    def _refresh(self, leg: Leg, interval: int) -> None:
        if leg.ended or leg.dialog is None:
            return
        if leg.invite is None:
            expires = [("Session-Expires", f"{interval};refresher=uas")]
            self._reinvite(leg, leg.direction, headers=expires)
        self._schedule_refresh(leg, interval)

    @staticmethod
    def _timer_headers(req: Request) -> list[tuple[str, str]]:
        """RFC 4028 §9: a refresh request's Session-Expires, echoed in the 2xx."""
        timer = session_expires(req)
        if timer is None:
            return []
        return [("Session-Expires", f"{max(timer[0], MIN_SE)};refresher={timer[1] or 'uac'}")]

    def _reinvite(
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
        body = leg.our_sdp(codecs or leg.offered, direction)

        def response(resp: Response) -> None:
            if resp.status < 200:
                return
            assert leg.dialog is not None
            if resp.status < 300:
                self.endpoint.send(bytes(leg.dialog.ack(cseq)), leg.dialog.dest)
                if leg.invite is None:
                    return  # a retransmitted 2xx: ACKed again above
                leg.invite = None
                try:
                    desc = sdp.SessionDescription.parse(resp.body)
                    media = leg.take_remote(desc)
                    answered, dtmf = _offered_codecs(media)
                    if answered:
                        answered[0].dtmf_payload_type = dtmf
                        leg.codec = answered[0]
                        leg.media.set_codec(leg.codec)
                except (sdp.SdpError, CallError) as exc:
                    logger.info("re-INVITE answer unusable: %s", exc)
            else:
                leg.invite = None
            if done is not None:
                done(resp)

        leg.invite = leg.send("INVITE", [("Allow", ALLOW), *(headers or [])], body, response)
        cseq = leg.dialog.local_seq

    # -- transfers (RFC 3515 REFER, RFC 3891 Replaces) -------------------------------------------

    def _on_refer(self, req: Request, txn: ServerTransaction) -> None:
        leg = self._leg_for(req, txn)
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
            other = self.dialogs.get(replaces)
            if other is None or other.peer is None or other.call is None or other is leg:
                txn.respond(leg.dialog.response(req, 481, "Call/Transaction Does Not Exist "
                                                "(the call to replace)"))  # fmt: skip
                return
            txn.respond(leg.dialog.response(req, 202))
            self._notify(leg, 100, "Trying", final=False)
            self._attended(leg, other)
            return
        number = uri.user or ""
        if number not in self.names():
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
        contacts = self.registrar.bindings(number)
        if not contacts:
            self._notify(transferor, 480, "Temporarily Unavailable", final=True)
            return

        try:
            media = self.media.open_leg()
        except MediaError:
            self._notify(transferor, 503, "Service Unavailable", final=True)
            return
        call = Call(self, transferee, self.names().get(transferee.number, ""), number)
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
                self._reinvite(transferee, "sendrecv")

        def failed(_new: Call, status: int, reason: str) -> None:
            transferee.transfer = None
            if not transferor.ended:
                self._notify(transferor, status, reason or "Failed", final=True)
            elif not transferee.ended:  # nobody left to take the call back
                transferee.hangup()
                old.finish("answered", "system", f"transfer failed ({status})")

        call.on_answer, call.on_fail = answered, failed
        self.calls[call.id] = call
        call.ring_timer = asyncio.get_running_loop().call_later(
            self.config.ring_timeout, self._ring_timeout, call
        )
        codecs = [transferee.codec] if transferee.codec else transferee.offered
        self._dial(call, number, contacts, codecs)

    def _attended(self, transferor: Leg, replaced: Leg) -> None:
        """Join the transferor's peer with the peer of the dialog it replaces; drop both."""
        first, second = transferor.call, replaced.call
        a, b = transferor.peer, replaced.peer
        assert first is not None and second is not None and a is not None and b is not None
        call = Call(self, a, self.names().get(a.number, ""), b.number)
        call.b, b.call, a.call = b, call, call
        call.state = "answered"
        call.answered_at = time.time()
        self.calls[call.id] = call
        a.media.connect(b.media)
        self._notify(transferor, 200, "OK", final=True)
        for leg, old in ((transferor, first), (replaced, second)):
            leg.hangup()
            old.finish("answered", "caller" if leg is old.a else "callee", "transferred")
        for leg in (a, b):
            if leg.direction != "sendrecv":
                self._reinvite(leg, "sendrecv")

    # -- media timeouts ---------------------------------------------------------------------------

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SILENT_CHECK)
            self.check_timeouts()

    def check_timeouts(self) -> None:
        """Hang up answered calls with no RTP either way for media_timeout, or too long."""
        now = time.monotonic()
        wall = time.time()
        for call in list(self.calls.values()):
            if call.state != "answered" or call.b is None:
                continue
            if call.answered_at is not None and wall - call.answered_at > self.config.max_duration:
                self._hangup_all(call, "system", "maximum call duration")
                continue
            held = call.a.direction != "sendrecv" or call.b.direction != "sendrecv"
            rx = call.a.media.rx_packets + call.b.media.rx_packets
            if rx != call.last_rx or held:
                call.last_rx, call.silent_since = rx, now
            elif now - call.silent_since > self.config.media_timeout:
                logger.info("call %s: no RTP for %.0f s", call.id, now - call.silent_since)
                self._hangup_all(call, "system", "media timeout")

    def live_calls(self) -> list[dict[str, Any]]:
        return [call.info() for call in self.calls.values()]


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


def _dialled(req: Request) -> str:
    try:
        return SipUri.parse(req.uri).user or ""
    except SipParseError:
        return ""


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


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
