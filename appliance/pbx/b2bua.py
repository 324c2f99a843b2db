"""The call engine: a B2BUA (RFC 3261 §6 "back-to-back user agent") for every call.

Each call has a caller leg (the box is the UAS of the INVITE it received) and a callee leg (the
box is the UAC of its own INVITE), each a SIP dialog with a media leg of its own; the media
engine joins the two media legs. Because the box is a party to both dialogs it authenticates the
caller (407, like REGISTER's 401) or recognises its trunk, decides the caller ID the callee
sees, hangs up both sides together, and carries out transfers itself (`transfer.py`).

The engine knows no feature. A new call is handed to the dial plan (`dialplan.py`), which names
a destination (`destinations/`); the destination asks the engine to ring targets (`ring`) or
to refuse the call (`reject`), and may go on when every target failed (`on_targets_failed`).

Offer/answer (RFC 3264) is done per leg: the callee is offered what the caller offered (in the
caller's order, then the box's other codecs), so that the two legs usually agree on a codec and
media is relayed without decoding; when they do not, the media engine transcodes. A caller that
sends no offer (late offer) gets the box's offer in the 2xx and answers in its ACK.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from appliance.media.engine import Codec, MediaEngine, MediaError
from appliance.media.sources import tones
from appliance.pbx import encryption
from appliance.pbx.encryption import LegCrypto, Policies
from appliance.pbx.legs import Call, CallHooks, Fork, Leg, Origin, Target
from appliance.pbx.offer import (
    AUDIO_CODECS,
    CallError,
    audio,
    box_codecs,
    offered_codecs,
    rtcp_port,
)
from appliance.pbx.session import ALLOW, MIN_SE, Sessions, session_expires
from appliance.pbx.speech import ringback
from appliance.pbx.transfer import Transfers
from appliance.sip import sdp
from appliance.sip.dialog import Dialog, DialogId, Reliable, new_branch, request_dialog_id
from appliance.sip.digest import DigestServer, Verdict
from appliance.sip.endpoint import SERVER, SipEndpoint, new_tag
from appliance.sip.headers import NameAddr
from appliance.sip.message import HeaderField, Request, Response, SipParseError, make_response
from appliance.sip.registrar import Registrar
from appliance.sip.transaction import Destination, ServerTransaction, State
from appliance.sip.ua.invite import OutgoingInvite
from appliance.sip.uri import SipUri
from appliance.store import cdrs
from appliance.store.registrations import Registration

if TYPE_CHECKING:
    from appliance.pbx.dialplan import DialPlan

logger = logging.getLogger(__name__)

SUPPORTED = ("100rel", "replaces", "timer")
SILENT_CHECK = 1.0


@dataclass(frozen=True, slots=True)
class CallConfig:
    ring_timeout: float = 30.0
    media_timeout: float = 60.0
    max_duration: float = 10800.0


def _number_of(value: str | None) -> str:
    if not value:
        return ""
    try:
        uri = NameAddr.parse(value, "To").uri
    except SipParseError:
        return ""
    return uri.user or "" if uri is not None else ""


# -- the engine ----------------------------------------------------------------------------


class CallEngine:
    """Handles INVITE and everything in its dialogs; plug into `SipEndpoint.handlers`."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        registrar: Registrar,
        digest: DigestServer,
        media: MediaEngine,
        dialplan: DialPlan,
        record: Callable[[cdrs.Cdr], None],
        config: CallConfig | None = None,
        advertised: str = "",
    ) -> None:
        self.endpoint = endpoint
        self._advertised = advertised
        self.registrar = registrar
        self.digest = digest
        self.media = media
        self.dialplan = dialplan
        self.directory = dialplan.directory
        self.trunks = dialplan.trunks
        self.record = record
        self.config = config or CallConfig()
        self.encryption = Policies()
        """Each line's SRTP policy (the core's configuration sets it)."""
        self.calls: dict[str, Call] = {}
        self.dialogs: dict[DialogId, Leg] = {}
        self.pending: dict[tuple[str, ...], Call] = {}
        self.sessions = Sessions(self)
        self.transfers = Transfers(self)
        self.hooks = CallHooks()
        """What call features (recording, hold music) watch: `legs.CallHooks`."""
        self._sweeper: asyncio.Task[None] | None = None
        endpoint.handlers.update({
            "INVITE": self.on_invite,
            "BYE": self.on_bye,
            "CANCEL": self.on_cancel,
            "PRACK": self.on_prack,
            "INFO": self.on_info,
            "NOTIFY": self.on_notify,
            "UPDATE": self.sessions.on_update,
            "REFER": self.transfers.on_refer,
        })  # fmt: skip
        endpoint.on_ack = self.on_ack
        endpoint.supported = endpoint.supported | frozenset(SUPPORTED)

    def start(self) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    def close(self) -> None:
        for call in list(self.calls.values()):
            self.hangup_all(call, "system", "shutdown")
        if self._sweeper is not None:
            self._sweeper.cancel()

    @property
    def advertised(self) -> str:
        """Our address in Via, Contact and From: where the SIP socket listens, unless that is a
        wildcard address."""
        return self._advertised or self.endpoint.local[0]

    @property
    def box(self) -> str:
        """Our host:port as phones reach it."""
        return _hostport(self.advertised, self.endpoint.local[1])

    def box_on(self, transport: str) -> str:
        """Our host:port on `transport`: TLS listens on a port of its own."""
        tls = self.endpoint.tls
        if transport == "TLS" and tls is not None:
            return _hostport(self.advertised, tls.local[1])
        return self.box

    def via(self, transport: str) -> str:
        """Our sent-by for a Via on `transport` (`TCP host:port`)."""
        return f"{transport} {self.box_on(transport)}"

    def contact(self, transport: str = "UDP", *, sips: bool = False) -> str:
        """Our Contact on `transport`; a `sips:` one in a dialog a `sips:` request began
        (RFC 3261 §12.1.1), reached over TLS whatever it says (RFC 5630)."""
        if sips and transport == "TLS":
            return f"<sips:pbx@{self.box_on(transport)}>"
        tp = "" if transport == "UDP" else f";transport={transport.lower()}"
        return f"<sip:pbx@{self.box_on(transport)}{tp}>"

    # -- a new INVITE ---------------------------------------------------------------------

    def on_invite(self, req: Request, txn: ServerTransaction) -> None:
        if req.to.tag:
            self.sessions.on_reinvite(req, txn)
            return
        hops = req.int_header("Max-Forwards")
        if hops is not None and hops <= 0:
            txn.respond(self.endpoint.response(req, 483))  # a loop between trunks (§16.3)
            return
        origin, caller, name = self._identify(req, txn)
        if origin is None:
            return
        line = self.trunks.get(origin.trunk) if origin.trunk else None
        if line is not None and not line.has_room():
            self._reject(req, txn, 503, f"Service Unavailable (trunk {line.name} is full)",
                         caller=caller)  # fmt: skip
            return
        offer = None
        if req.body:
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
        self._start_call(req, txn, caller, name, offer, origin)

    def _identify(self, req: Request, txn: ServerTransaction) -> tuple[Origin | None, str, str]:
        """Who calls: a trunk recognised by where the INVITE came from (never by what it
        claims), or an extension proving itself with digest credentials; else answered."""
        trunk = self.trunks.match(req, txn.source)
        if trunk is not None:
            caller, name = trunk.caller_of(req)
            did = trunk.did_of(req)
            origin = self.dialplan.inbound_origin(trunk.name, did)
            return origin, caller, name
        user = self._authenticate(req, txn)
        if user is None:
            return None, "", ""
        return Origin(), user, self.directory.name(user)

    def _authenticate(self, req: Request, txn: ServerTransaction) -> str | None:
        """The caller's extension if the INVITE carries good credentials; else answered, and
        counted by the gate rather than recorded: an attempt that never authenticated is no
        call, and a scanner's guesses must not fill the disk with CDRs."""
        auth = req.get("Proxy-Authorization")
        caller = req.from_.uri.user if req.from_.uri else None
        if auth is None:
            self._challenge(req, txn)
            return None
        result = self.digest.verify(
            auth, "INVITE", self.registrar.ha1, expected_user=caller or "",
        )  # fmt: skip
        if result.verdict in (Verdict.CHALLENGE, Verdict.STALE):
            self._challenge(req, txn, stale=result.verdict is Verdict.STALE)
            return None
        if result.verdict is Verdict.OK:
            self.trunks.gate.authenticated(txn.dest.host)  # never banned for an hour
            return caller
        if result.verdict is Verdict.BAD_REQUEST:
            response = self.endpoint.response(req, 400, f"Bad Request ({result.reason})")
        else:  # FORBIDDEN: the same answer for an unknown user as for a wrong password
            response = self.endpoint.response(req, 403)
        known = self.registrar.ha1(result.username or "", "MD5") is not None
        self.trunks.gate.refused(
            txn.dest.host, f"INVITE from {caller}: {result.reason}",
            "wrong_password" if known else "unauthenticated",
        )  # fmt: skip
        txn.respond(response)
        return None

    def _challenge(self, req: Request, txn: ServerTransaction, stale: bool = False) -> None:
        headers = [("Proxy-Authenticate", c) for c in self.digest.challenges(stale=stale)]
        txn.respond(self.endpoint.response(req, 407, headers=headers))

    def _reject(
        self, req: Request, txn: ServerTransaction, status: int, reason: str | None,
        *, caller: str | None = None,
    ) -> None:  # fmt: skip
        """Refuse a new call (a trunk's, or an extension's that authenticated) before it
        exists, and record the attempt."""
        response = self.endpoint.response(req, status, reason)
        txn.respond(response)
        now = time.time()
        self.record(
            cdrs.Cdr(
                id=uuid.uuid4().hex,
                started_at=now,
                ended_at=now,
                caller=caller if caller is not None else _number_of(req.get("From")),
                dialled=_dialled(req),
                disposition="failed",
                hangup_side="system",
                hangup_cause=f"{status} {response.reason}",
            )
        )

    def _start_call(
        self, req: Request, txn: ServerTransaction, caller: str, name: str,
        offer: sdp.SessionDescription | None, origin: Origin,
    ) -> None:  # fmt: skip
        dialled = origin.did if origin.did is not None else _dialled(req)
        offered: list[Codec] = []
        try:
            if offer is not None:
                offered, _ = offered_codecs(audio(offer))
                if not offered:
                    raise CallError(488, "Not Acceptable Here (none of PCMU, PCMA, G722 offered)")
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
        a_media.signalled_from = txn.dest.host
        a = Leg(self, a_media, caller, "caller")
        a.offered = offered
        a.crypto = LegCrypto(self._policy(origin, caller), txn.dest.transport)
        if offer is not None:
            try:
                a.take_remote(offer)
            except CallError as exc:  # SRTP refused by the line's policy or the transport
                a_media.close()
                b_media.close()
                self._reject(req, txn, exc.status, exc.reason, caller=caller)
                return
        transport = txn.dest.transport
        a.dialog = Dialog.as_uas(req, new_tag(), txn.dest, self.via(transport),
                                 self.contact(transport, sips=_is_sips(req.uri)))  # fmt: skip
        call = Call(self, a, name, dialled, origin)
        call.late_offer = offer is None
        hops = req.int_header("Max-Forwards")
        call.max_forwards = (70 if hops is None else min(hops, 70)) - 1
        line = self.trunks.get(origin.trunk) if origin.trunk else None
        if line is not None:
            call.offer_codecs = tuple(x for x in line.config.codecs.split(",") if x)
            a.sdp_host = line.config.external_address or None
        call.invite, call.invite_txn = req, txn
        call.rel100 = "100rel" in [r.lower() for r in req.get_all("require")]
        timer = session_expires(req)
        if timer is not None:
            call.session_timer = (timer[0], timer[1] or "uac")
        self.calls[call.id] = call
        self.pending[txn.key] = call
        self.dialogs[a.dialog.id] = a
        txn.on_ack = self.on_ack
        call.callee_media = b_media
        call.ring_timer = asyncio.get_running_loop().call_later(
            self.config.ring_timeout, self.ring_timeout, call
        )
        self.dialplan.resolve(dialled, call).route(call, self)

    # -- what destinations ask of the engine ---------------------------------------------------

    def reject(
        self, call: Call, status: int, reason: str | None, disposition: str = "failed"
    ) -> None:
        """End a call that has not been answered: `status` to the caller, the CDR written."""
        self._fail_caller(call, status, reason, disposition, "system")

    def answer(self, call: Call, on_answered: Callable[[Call], None]) -> None:
        """The box answers the caller itself (an IVR menu, an announcement, voicemail): 200 with
        its own SDP in the caller's codec; `on_answered` once the caller's ACK is in and media
        flows. The call is then answered with no callee: a destination plays into, collects
        digits on and records `call.a.media`, and may still `ring` targets."""
        if call.ended:
            return
        if call.box_answered or call.state == "answered":
            if call.on_acked is None:
                on_answered(call)
            else:
                call.on_acked = on_answered
            return
        a = call.a
        for fork in call.forks:  # whatever rang before (no answer: to voicemail)
            if not fork.done:
                self._cancel_fork(fork)
        call.box_answered = True
        call.on_acked = on_answered
        if a.codec is None and a.offered:
            a.codec = a.offered[0]
            a.media.set_codec(a.codec)
        self._answer_caller(call)

    def goto(self, call: Call, destination: str) -> None:
        """Hand the call to the destination `KIND:TARGET` (an IVR choice, a timeout's target)."""
        if not call.ended:
            self.dialplan.stored(destination).route(call, self)

    def hangup(self, call: Call, cause: str) -> None:
        """End the call from the box: BYE to an answered caller, else a final response."""
        if not call.ended:
            self.hangup_all(call, "system", cause)

    def identity(self, call: Call) -> str:
        """The caller as the callee sees it: name and number (a DID's label before them)."""
        number = call.a.number
        display = call.caller_name or number
        if call.origin.did_label:
            display = f"{call.origin.did_label}: {display}"
        return f'"{_quote(display)}" <sip:{number}@{self.box}>'

    def contact_target(self, call: Call, number: str, reg: Registration) -> Target:
        """Ring one registered contact of an extension, at the flow it registered from (NAT:
        the source address, not the Contact URI)."""
        transport, _, hostport = reg.source.partition(" ")
        src_host, _, src_port = hostport.rpartition(":")
        contact_uri = NameAddr.parse(reg.contact, "Contact").uri
        assert contact_uri is not None
        return Target(
            number=number, uri=str(contact_uri), to=f"sip:{number}@{self.box}",
            dest=Destination(transport, src_host.strip("[]"), int(src_port)),
            identity=self.identity(call), via=self.via(transport),
            contact=self.contact(transport),
        )  # fmt: skip

    def ring(self, call: Call, targets: list[Target], codecs: list[Codec] | None = None) -> None:
        """Send an INVITE to every target at once (RFC 3261 §16.6 in spirit); the first to
        answer is joined to the caller. `codecs`: what to offer first (the caller's)."""
        assert call.callee_media is not None
        first = call.a.offered if codecs is None else codecs
        call.statuses = []
        probe = Leg(self, call.callee_media, "", "callee")
        key = None  # one SRTP key for the callee leg, whichever target answers
        rung = 0
        for target in targets:
            crypto = self._target_crypto(target)
            if crypto is None:
                continue
            if crypto.offers_srtp and not target.late_offer:
                if key is None:
                    encryption.offer_key(crypto)
                    key = crypto.ours
                crypto.ours = key
            rung += 1
            probe.crypto = crypto
            ours = box_codecs(first, target.codecs)
            probe.sdp_host = target.sdp_host
            body = b"" if target.late_offer else probe.our_sdp(ours)
            fork = Fork(call, target)
            fork.crypto = crypto
            fork.codecs, fork.sdp = ours, (probe.session_id, probe.sdp_version)
            from_tag = new_tag()
            headers = [
                ("Via", f"SIP/2.0/{target.via};branch={new_branch()};rport"),
                ("Max-Forwards", str(call.max_forwards)),
                ("From", f"{target.identity};tag={from_tag}"),
                ("To", f"<{target.to}>"),
                ("Call-ID", f"{uuid.uuid4().hex}@{self.advertised}"),
                ("CSeq", "1 INVITE"),
                ("Contact", target.contact),
                ("P-Asserted-Identity", target.identity),
                *target.headers,
                ("Allow", ALLOW),
                ("Supported", "100rel, replaces"),
                ("Server", SERVER),
            ]  # fmt: skip
            if body:
                headers.append(("Content-Type", "application/sdp"))
            headers.append(("Content-Length", str(len(body))))
            req = Request(
                headers=[HeaderField(n, v) for n, v in headers], body=body,
                method="INVITE", uri=target.uri,
            )  # fmt: skip
            call.forks.append(fork)
            on_response = functools.partial(self._fork_response, fork)
            fork.invite = OutgoingInvite(
                self.endpoint, req, target.dest, on_response, credentials=target.credentials
            )
            fork.invite.start()
        if targets and not rung:
            self.reject(call, 488, "Not Acceptable Here (SRTP required, and the phone is not"
                                   " on SIP over TLS)")  # fmt: skip
        elif call.box_answered and rung:
            call.a.media.play(tones(ringback(self.dialplan.country)))
            if call.ring_timer is not None:
                call.ring_timer.cancel()
            call.ring_timer = asyncio.get_running_loop().call_later(
                self.config.ring_timeout, self.ring_timeout, call
            )

    def _policy(self, origin: Origin, caller: str) -> str:
        """The SRTP policy of the line a call comes from: its trunk's or its extension's."""
        if origin.trunk:
            return self.encryption.of_trunk(origin.trunk)
        return self.encryption.of_extension(caller)

    def _target_crypto(self, target: Target) -> LegCrypto | None:
        """The SRTP state toward a target; None when its line requires SRTP and its SIP is
        not on TLS (SDES keys go only over TLS): it is not rung."""
        policy = (self.encryption.of_trunk(target.trunk) if target.trunk
                  else self.encryption.of_extension(target.number))  # fmt: skip
        crypto = LegCrypto(policy, target.dest.transport)
        if crypto.offers_srtp and target.dest.transport not in encryption.SECURE_TRANSPORTS:
            logger.warning("%s requires SRTP but is reached over %s: not rung",
                           target.number, target.dest.transport)  # fmt: skip
            return None
        return crypto

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
        if call.wants_callee and all(f.done for f in call.forks):
            self._forks_failed(call)

    def _fork_provisional(self, fork: Fork, resp: Response) -> None:
        call = fork.call
        if resp.status == 100 or fork.done or not call.wants_callee:
            return
        if resp.to.tag and fork.early is None:
            fork.early = Dialog.as_uac(fork.request, resp, fork.dest, fork.target.via)
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
        if resp.body and call.early_sdp is None and not call.late_offer and (
            not fork.target.late_offer
        ):  # fmt: skip
            try:
                desc = sdp.SessionDescription.parse(resp.body)
                self._callee_answer(call, desc, fork.dest.host, crypto=fork.crypto)
            except (sdp.SdpError, CallError) as exc:
                logger.info("call %s: unusable early SDP: %s", call.id, exc)
                return
            if not call.box_answered:
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

    def _callee_answer(
        self, call: Call, desc: sdp.SessionDescription, signalled_from: str, *,
        offer: bool = False, crypto: LegCrypto | None = None,
    ) -> None:  # fmt: skip
        """The callee's SDP answer arrived (in a 18x or the 2xx), or its offer (in the 2xx, to
        our INVITE without SDP), from a phone whose SIP comes from `signalled_from`: set up
        both media legs."""
        b_media = call.callee_media
        assert b_media is not None
        b_media.signalled_from = signalled_from
        media = audio(desc)
        if crypto is not None:  # SRTP toward the callee, as its answer (or offer) says
            (encryption.take_offer if offer else encryption.take_answer)(crypto, media, b_media)
        answered, dtmf = offered_codecs(media)
        if not answered:
            raise CallError(488, "Not Acceptable Here (callee chose no codec we have)")
        b_codec = answered[0]
        if offer:
            # The callee offered (we sent it no offer): the caller's codec if it has it.
            mine = [c.name for c in call.a.offered] or list(AUDIO_CODECS)
            b_codec = next((c for c in answered if c.name in mine), b_codec)
        b_codec.dtmf_payload_type = dtmf
        address = desc.address(media)
        if address is None:
            raise CallError(488)
        b_media.set_remote(address, media.port, rtcp_port(media))
        b_media.set_codec(b_codec)
        a = call.a
        if call.invite is None:
            return  # a transfer's new leg: joined to the transferee when it answers
        if a.codec is None and a.offered:
            # The caller's codec: the callee's if the caller offered it, so media is relayed.
            same = [c for c in a.offered if c.name == b_codec.name]
            a.codec = same[0] if same else a.offered[0]
            a.media.set_codec(a.codec)
            call.early_sdp = a.our_sdp([a.codec], sdp.answer_direction(a.remote_direction))
        if a.media.peer is not b_media:
            a.media.connect(b_media)

    def _fork_answered(self, fork: Fork, resp: Response) -> None:
        call = fork.call
        dialog = Dialog.as_uac(fork.request, resp, fork.dest, fork.target.via)
        cseq = fork.request.cseq.number
        if fork.done and call.b is not None and call.b.dialog is not None and (
            call.b.dialog.id == dialog.id
        ):  # fmt: skip
            ack = call.b.dialog.ack(cseq, *fork.ack_body)
            self.endpoint.send(bytes(ack), fork.dest)  # the 2xx retransmitted
            return
        if not call.wants_callee or fork.done:
            # Another phone won, or the call is gone: ACK and BYE this one (§13.2.2.4); a
            # repeated 2xx (our ACK lost) is ACKed again, and not hung up twice.
            self.endpoint.send(bytes(dialog.ack(cseq)), fork.dest)
            if fork.hung_up != dialog.id:
                self.endpoint.request(dialog.request("BYE"), fork.dest)
                fork.hung_up = dialog.id
            fork.done = True
            return
        fork.done = True
        late = fork.target.late_offer
        try:
            if resp.body or late:
                desc = sdp.SessionDescription.parse(resp.body)
                self._callee_answer(call, desc, fork.dest.host, offer=late, crypto=fork.crypto)
            elif call.callee_media is None or call.callee_media.codec is None:
                raise CallError(488, "Not Acceptable Here (no SDP answer from the callee)")
            # else: the answer came in a reliable 18x (RFC 3262) and the 2xx repeats nothing
        except (sdp.SdpError, CallError) as exc:
            logger.info("call %s: callee's answer unusable: %s", call.id, exc)
            self.endpoint.send(bytes(dialog.ack(cseq)), fork.dest)
            self.endpoint.request(dialog.request("BYE"), fork.dest)
            call.statuses.append(488)
            if all(f.done for f in call.forks):
                self._forks_failed(call)
            return
        assert call.callee_media is not None
        b = Leg(self, call.callee_media, fork.number, "callee")
        b.dialog = dialog
        b.call = call
        b.codec = call.callee_media.codec
        b.session_id, b.sdp_version = fork.sdp
        b.remote_version = None
        b.offered = list(fork.codecs)
        b.sdp_host = fork.target.sdp_host
        b.crypto = fork.crypto
        if late:
            # Our answer to the callee's offer goes in the ACK (RFC 3261 §13.2.2.4).
            assert b.codec is not None
            desc = sdp.SessionDescription.parse(resp.body)
            b.remote_version = desc.origin.session_version
            direction = sdp.answer_direction(desc.direction(audio(desc)))
            fork.ack_body = (b.our_sdp([b.codec], direction),
                             [("Content-Type", "application/sdp")])  # fmt: skip
        self.endpoint.send(bytes(dialog.ack(cseq, *fork.ack_body)), fork.dest)
        call.b = b
        call.sent = fork.number if fork.target.trunk is not None else call.sent
        self.dialogs[dialog.id] = b
        for other in call.forks:
            if other is not fork and not other.done:
                self._cancel_fork(other)
        if call.box_answered:  # the caller has been talking to the box: now to the callee
            if call.ring_timer is not None:
                call.ring_timer.cancel()
            call.a.media.stop_playback()
            if call.a.media.peer is not b.media:
                call.a.media.connect(b.media)
            CallHooks.fire(self.hooks.bridged, call)
            return
        self._answer_caller(call)
        CallHooks.fire(self.hooks.bridged, call)

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
        if call.late_offer:
            # The caller sent no offer: ours goes in the 2xx, its answer comes in the ACK.
            first = [call.b.codec] if call.b is not None and call.b.codec is not None else []
            a.offered = box_codecs(first, call.offer_codecs)
            if a.crypto.transport in encryption.SECURE_TRANSPORTS:
                encryption.offer_key(a.crypto)
            body = a.our_sdp(a.offered)
        elif body is None:
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
                self.sessions.schedule_refresh(a, interval)
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
            self.hangup_all(call, "system", "no ACK from the caller")

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
        go_on = call.on_targets_failed
        if go_on is not None and go_on(call, min(statuses)):
            return  # the destination rings somewhere else
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
        if call.box_answered:  # the caller talked to the box: a BYE ends its dialog
            call.a.hangup()
            disposition = "answered"
        call.finish(disposition, side, f"{status} {phrase}".strip())

    def _cancel_fork(self, fork: Fork) -> None:
        """Stop ringing a target: CANCEL (§9.1, sent once it has answered provisionally)."""
        fork.done = True
        if fork.invite is None or fork.cancelled:
            return
        fork.cancelled = True
        fork.invite.cancel()

    def ring_timeout(self, call: Call) -> None:
        if call.state == "ringing":
            self._fail_caller(call, 480, "Temporarily Unavailable (no answer)", "no-answer",
                              "system")  # fmt: skip
        elif call.wants_callee and call.forks:  # rung after the box answered: nobody took it
            for fork in call.forks:
                if not fork.done:
                    self._cancel_fork(fork)
            call.statuses.append(480)
            self._forks_failed(call)

    # -- CANCEL and ACK from the caller --------------------------------------------------------

    def on_cancel(self, req: Request, txn: ServerTransaction) -> None:
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

    def on_ack(self, req: Request) -> None:
        leg = self.dialogs.get(request_dialog_id(req))
        if leg is None or leg.reliable is None:
            return
        if req.cseq.number == leg.ack_cseq:
            leg.reliable.stop()
            call = leg.call
            if call is not None and call.late_offer and leg is call.a and leg.codec is None:
                self._late_answer(call, req)
            if call is not None and leg is call.a and call.on_acked is not None and (
                not call.ended
            ):  # fmt: skip
                acked, call.on_acked = call.on_acked, None
                acked(call)

    def _late_answer(self, call: Call, ack: Request) -> None:
        """The caller's answer to the offer in our 2xx, in its ACK: the media can flow."""
        a, b = call.a, call.b
        try:
            desc = sdp.SessionDescription.parse(ack.body)
            media = a.take_remote(desc, answer=True)
            answered, dtmf = offered_codecs(media)
            if not answered:
                raise CallError(488, "Not Acceptable Here (no codec in the answer)")
        except (sdp.SdpError, CallError) as exc:
            logger.info("call %s: the caller's answer in its ACK is unusable: %s", call.id, exc)
            self.hangup_all(call, "system", "no usable answer in the ACK")
            return
        a.codec = answered[0]
        a.codec.dtmf_payload_type = dtmf
        a.offered = answered
        a.media.set_codec(a.codec)
        if b is not None and a.media.peer is not b.media:
            a.media.connect(b.media)

    # -- requests inside a dialog ---------------------------------------------------------------

    def leg_for(self, req: Request, txn: ServerTransaction) -> Leg | None:
        leg = self.dialogs.get(request_dialog_id(req))
        if leg is None or leg.dialog is None:
            txn.respond(self.endpoint.response(req, 481))
            return None
        if not leg.dialog.accept_remote_seq(req):
            txn.respond(leg.dialog.response(req, 500, "Server Internal Error (CSeq out of order)"))
            return None
        return leg

    def on_bye(self, req: Request, txn: ServerTransaction) -> None:
        leg = self.leg_for(req, txn)
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
        for fork in call.forks:  # rung from an IVR menu, say: stop ringing
            if not fork.done:
                self._cancel_fork(fork)
        peer = leg.peer
        if peer is not None and peer.transfer is not None:
            peer.call = peer.transfer  # the transferor left, as it may: the transfer goes on
            call.finish("answered", side, "transferred")
            return
        if peer is not None:
            peer.hangup()
        call.finish("answered", side, "BYE")

    def hangup_all(self, call: Call, side: str, cause: str) -> None:
        if call.state == "ringing":
            self._fail_caller(call, 480, None, "failed", side)
            return
        for fork in call.forks:
            if not fork.done:
                self._cancel_fork(fork)
        for leg in (call.a, call.b):
            if leg is not None and leg.call is call:
                leg.hangup()
        call.finish("answered", side, cause)

    def on_prack(self, req: Request, txn: ServerTransaction) -> None:
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

    def on_notify(self, req: Request, txn: ServerTransaction) -> None:
        leg = self.leg_for(req, txn)
        if leg is not None and leg.dialog is not None:
            txn.respond(leg.dialog.response(req, 200))

    def on_info(self, req: Request, txn: ServerTransaction) -> None:
        leg = self.leg_for(req, txn)
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
            if len(digit) == 1 and digit in "0123456789*#ABCD":
                # to a collector (IVR, PIN) when one is active, else observed and relayed
                leg.media.dtmf_received(digit, duration)

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
            if call.state != "answered" or (call.b is None and not call.box_answered):
                continue
            if call.answered_at is not None and wall - call.answered_at > self.config.max_duration:
                self.hangup_all(call, "system", "maximum call duration")
                continue
            legs = [leg for leg in (call.a, call.b) if leg is not None]
            held = any(leg.direction != "sendrecv" for leg in legs)
            rx = sum(leg.media.rx_packets for leg in legs)
            if rx != call.last_rx or held:
                call.last_rx, call.silent_since = rx, now
            elif now - call.silent_since > self.config.media_timeout:
                logger.info("call %s: no RTP for %.0f s", call.id, now - call.silent_since)
                self.hangup_all(call, "system", "media timeout")

    def calls_on(self, trunk: str) -> int:
        """How many calls are on a trunk now."""
        return sum(1 for call in self.calls.values() if call.trunk == trunk)

    def live_calls(self) -> list[dict[str, Any]]:
        return [call.info() for call in self.calls.values()]


def _dialled(req: Request) -> str:
    try:
        return SipUri.parse(req.uri).user or ""
    except SipParseError:
        return ""


def _is_sips(uri: str) -> bool:
    return uri[:5].lower() == "sips:"


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
