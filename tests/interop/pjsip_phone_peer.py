"""A PJSIP (pjsua2) phone that places and takes calls, driven over stdin/stdout by tests.

    python tests/interop/pjsip_phone_peer.py --registrar 127.0.0.1:5060 --user 101 \\
        --password X --local-port 5072 --rtp-port 40000

It extends ``pjsua_peer.py`` (same options, same ``ready``/``reg``/``exiting``
events) with calls.  Every call it has is named by its pjsua call id.  Besides
the registration events it prints, one JSON object a line:

- ``{"event": "incoming", "call": 0, "message": "INVITE ..."}``: an INVITE
  arrived (the whole request as received); the call then waits for ``answer``;
- ``{"event": "calling", "call": 0}``: ``call URI`` created the call;
- ``{"event": "state", "call": 0, "state": "EARLY", "code": 183,
  "reason": "Session Progress"}`` on every INVITE session state change
  (``CALLING``, ``INCOMING``, ``EARLY``, ``CONNECTING``, ``CONFIRMED``,
  ``DISCONNECTED``);
- ``{"event": "media", "call": 0, "status": "ACTIVE", "state": "EARLY"}`` when
  the audio stream changes (``ACTIVE``, ``LOCAL_HOLD``, ``REMOTE_HOLD``,
  ``NONE``, ``ERROR``); the phone's tone generator (440 Hz) is connected to
  every active stream, so PJSIP sends RTP whenever its direction allows;
- ``{"event": "rx", "call": 0, "method": "INVITE", "role": "uas",
  "status": 0, "message": "..."}`` for every SIP message received inside a
  call (requests: ``role`` ``uas``, ``status`` 0; responses: ``uac``);
- ``{"event": "offer", "call": 0, "sdp": "..."}``: a re-INVITE or UPDATE
  brought a new SDP offer (pjsua answers it by itself);
- ``{"event": "rtp", "call": 0, "rx": 12, "tx": 30, "state": "EARLY",
  "reason": "first"}``: the first RTP packet arrived on a call (``reason``
  ``first``), or the count asked for by ``watch`` was reached (``watch``);
- ``{"event": "dtmf", "call": 0, "digit": "1", "method": "RFC2833"}``;
- ``{"event": "received", "summary": "Response msg 487/INVITE", "message": "..."}``
  for every SIP message PJSIP logs as received (``--log-level`` 4 or more), even
  those its call no longer reports (the answer to its BYE or CANCEL comes after
  the call has been disconnected).

Commands, one per line: ``call URI``, ``answer ID CODE`` (180, 183 with SDP,
200...), ``hangup ID [CODE]`` (CANCEL, BYE or a rejection, as the state
requires), ``hold ID``, ``unhold ID`` (re-INVITEs), ``dtmf ID DIGITS`` (RFC 4733
events, ``Call.dialDtmf``), ``watch ID N`` (report when N more RTP packets
have arrived), plus ``pjsua_peer.py``'s ``refresh``, ``unregister``,
``options URI`` and ``quit``.

pjsua2 rules kept here: one thread (``mainThreadOnly``, polled with
``libHandleEvents``), a reference to every :class:`PhoneCall` until it is
disconnected (then dropped outside its callback), every call and the account
deleted before ``libDestroy()``, the null audio device, VAD off so that RTP is
continuous.
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import re
import selectors
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import pjsua2 as pj

if __package__ in (None, ""):  # run as a script: make `tests.interop` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.interop import pjsua_peer
from tests.interop.pjsua_peer import Peer, PeerAccount, StderrLogWriter, emit

logger = logging.getLogger(__name__)

STATES = {
    pj.PJSIP_INV_STATE_NULL: "NULL",
    pj.PJSIP_INV_STATE_CALLING: "CALLING",
    pj.PJSIP_INV_STATE_INCOMING: "INCOMING",
    pj.PJSIP_INV_STATE_EARLY: "EARLY",
    pj.PJSIP_INV_STATE_CONNECTING: "CONNECTING",
    pj.PJSIP_INV_STATE_CONFIRMED: "CONFIRMED",
    pj.PJSIP_INV_STATE_DISCONNECTED: "DISCONNECTED",
}
MEDIA_STATUS = {
    pj.PJSUA_CALL_MEDIA_NONE: "NONE",
    pj.PJSUA_CALL_MEDIA_ACTIVE: "ACTIVE",
    pj.PJSUA_CALL_MEDIA_LOCAL_HOLD: "LOCAL_HOLD",
    pj.PJSUA_CALL_MEDIA_REMOTE_HOLD: "REMOTE_HOLD",
    pj.PJSUA_CALL_MEDIA_ERROR: "ERROR",
}
DTMF_METHODS = {pj.PJSUA_DTMF_METHOD_RFC2833: "RFC2833", pj.PJSUA_DTMF_METHOD_SIP_INFO: "INFO"}
TONE_HZ = 440
RX_LOG = re.compile(r"RX \d+ bytes (Request msg \w+|Response msg \d+/\w+)[^\n]*:\n(.*?)--end msg--",
                    re.S)  # fmt: skip
"""How PJSIP logs (level 4) each SIP message it receives, whole."""


class RxLogWriter(StderrLogWriter):
    """PJSIP's log to stderr, and every SIP message it logs as received into `received`
    (a queue: the log may be written from any thread; the main loop reports them)."""

    def __init__(self, received: queue.SimpleQueue[tuple[str, str]]) -> None:
        super().__init__()
        self.received = received

    def write(self, entry: Any) -> None:
        """Write one log entry; queue it if it is a received message."""
        super().write(entry)
        found = RX_LOG.search(str(entry.msg))
        if found:
            self.received.put((found[1], found[2].strip()))


class PhoneCall(pj.Call):  # type: ignore[misc]
    """One call; reports its callbacks as events. Owned by :class:`CallPeer`."""

    def __init__(self, phone: CallPeer, account: pj.Account, call_id: int = -1) -> None:
        super().__init__(account, call_id)
        self.phone = phone
        self.number = call_id
        self.first_rtp = False
        self.watch_at: int | None = None

    def state_name(self) -> str:
        info = self.getInfo()
        return STATES.get(info.state, str(info.state))

    def onCallState(self, prm: Any) -> None:
        """INVITE session state changed; a disconnected call is let go after the callback."""
        info = self.getInfo()
        if self.number < 0:  # the first state change happens inside makeCall()
            self.number = int(info.id)
        emit("state", call=self.number, state=STATES.get(info.state, str(info.state)),
             code=int(info.lastStatusCode), reason=str(info.lastReason))  # fmt: skip
        if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.phone.ended(self)

    def onCallMediaState(self, prm: Any) -> None:
        """The audio stream changed: connect the tone generator to it when it is usable."""
        info = self.getInfo()
        media = info.media  # keep the vector referenced while iterating
        for index in range(len(media)):
            item = media[index]
            if item.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            status = MEDIA_STATUS.get(item.status, str(item.status))
            emit("media", call=self.number, status=status,
                 state=STATES.get(info.state, str(info.state)))  # fmt: skip
            if item.status in (pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD):
                audio = self.getAudioMedia(index)
                self.phone.tone.startTransmit(audio)

    def onCallTsxState(self, prm: Any) -> None:
        """Report each SIP message received in this call's transactions."""
        event = prm.e.body.tsxState
        if event.type != pj.PJSIP_EVENT_RX_MSG:
            return
        tsx = event.tsx
        uas = tsx.role == pj.PJSIP_ROLE_UAS
        emit("rx", call=self.number, method=str(tsx.method), role="uas" if uas else "uac",
             status=0 if uas else int(tsx.statusCode),
             message=str(event.src.rdata.wholeMsg))  # fmt: skip

    def onCallRxOffer(self, prm: Any) -> None:
        """A new SDP offer inside the call (re-INVITE, UPDATE); pjsua answers it (200)."""
        emit("offer", call=self.number, sdp=str(prm.offer.wholeSdp))

    def onDtmfDigit(self, prm: Any) -> None:
        """A DTMF digit arrived (RFC 4733 event or SIP INFO)."""
        emit("dtmf", call=self.number, digit=str(prm.digit),
             method=DTMF_METHODS.get(prm.method, str(prm.method)))  # fmt: skip

    def check_rtp(self) -> None:
        """Report the first RTP packet and a reached ``watch`` count (polled by the loop)."""
        if self.first_rtp and self.watch_at is None:
            return
        if not self.hasMedia():
            return
        try:
            stat = self.getStreamStat(0)
        except pj.Error:
            return  # no audio stream (yet)
        rx, tx = int(stat.rtcp.rxStat.pkt), int(stat.rtcp.txStat.pkt)
        if not self.first_rtp and rx > 0:
            self.first_rtp = True
            emit("rtp", call=self.number, rx=rx, tx=tx, state=self.state_name(), reason="first")
        if self.watch_at is not None and rx >= self.watch_at:
            self.watch_at = None
            emit("rtp", call=self.number, rx=rx, tx=tx, state=self.state_name(), reason="watch")

    def watch(self, packets: int) -> None:
        """Report when ``packets`` more RTP packets than now have arrived."""
        try:
            rx = int(self.getStreamStat(0).rtcp.rxStat.pkt)
        except pj.Error:
            rx = 0
        self.watch_at = rx + packets


class CallAccount(PeerAccount):
    """The registered account; keeps every incoming call (an unreferenced one is hung up)."""

    def __init__(self, phone: CallPeer) -> None:
        super().__init__()
        self.phone = phone

    def onIncomingCall(self, prm: Any) -> None:
        """A new INVITE: keep the call, report the request, wait for ``answer``."""
        call = PhoneCall(self.phone, self, prm.callId)
        self.phone.calls[call.number] = call
        emit("incoming", call=call.number, message=str(prm.rdata.wholeMsg))


class CallPeer(Peer):
    """:class:`pjsua_peer.Peer` with calls, a tone source and RTP watching."""

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args)
        self.received: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
        self.log_writer = RxLogWriter(self.received)
        self.calls: dict[int, PhoneCall] = {}
        self.finished: list[PhoneCall] = []
        self.tone: Any = None

    def start(self) -> None:
        """Create the library (VAD off, PCMU first), the UDP transport, the tone and account."""
        args = self.args
        self.endpoint.libCreate()
        config = pj.EpConfig()
        config.uaConfig.threadCnt = 0
        config.uaConfig.mainThreadOnly = True
        config.logConfig.level = args.log_level
        config.logConfig.consoleLevel = args.log_level
        config.logConfig.writer = self.log_writer
        config.logConfig.decor = 0
        config.medConfig.noVad = True
        config.medConfig.ecTailLen = 0
        config.medConfig.clockRate = 8000
        self.endpoint.libInit(config)
        transport = pj.TransportConfig()
        transport.port = args.local_port
        transport.boundAddress = args.local_host
        self.endpoint.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
        self.endpoint.libStart()
        self.endpoint.audDevManager().setNullDev()
        self.endpoint.codecSetPriority("PCMU/8000", 255)

        self.tone = pj.ToneGenerator()
        self.tone.createToneGenerator(8000, 1)
        tones = pj.ToneDescVector()
        tone = pj.ToneDesc()
        tone.freq1, tone.freq2, tone.on_msec, tone.off_msec = TONE_HZ, 0, 1000, 0
        tones.append(tone)
        self.tone.play(tones, True)

        registrar_host = args.registrar.rsplit(":", 1)[0]
        account_config = pj.AccountConfig()
        account_config.idUri = f"sip:{args.user}@{args.domain or registrar_host}"
        account_config.regConfig.registrarUri = f"sip:{args.registrar}"
        account_config.regConfig.timeoutSec = args.regint
        account_config.regConfig.retryIntervalSec = args.retry
        account_config.sipConfig.authCreds.append(
            pj.AuthCredInfo("digest", "*", args.user, 0, args.password)
        )
        media = account_config.mediaConfig.transportConfig
        media.port = args.rtp_port
        media.portRange = 2
        media.boundAddress = args.local_host
        self.account = CallAccount(self)
        self.account.create(account_config)
        emit("ready", local=f"{args.local_host}:{args.local_port}", uri=account_config.idUri)

    def ended(self, call: PhoneCall) -> None:
        """A call disconnected: drop it after the callback has returned."""
        if self.calls.pop(call.number, None) is call:
            self.finished.append(call)

    def command(self, line: str) -> None:
        """Execute one stdin command; the registration ones go to :class:`Peer`."""
        verb, _, rest = line.strip().partition(" ")
        args = rest.split()
        try:
            if verb == "call" and len(args) == 1:
                self.place_call(args[0])
            elif verb in ("answer", "hangup", "hold", "unhold", "dtmf", "watch") and args:
                call = self.calls.get(int(args[0]))
                if call is None:
                    emit("error", command=line, reason="no such call")
                else:
                    self.call_command(call, verb, args[1:])
            else:
                super().command(line)
        except (pj.Error, ValueError) as exc:
            reason = str(exc.info()) if isinstance(exc, pj.Error) else str(exc)
            emit("error", command=line, reason=reason)

    def place_call(self, uri: str) -> None:
        assert self.account is not None
        call = PhoneCall(self, self.account)
        prm = pj.CallOpParam(True)
        call.makeCall(uri, prm)
        call.number = call.getId()
        self.calls[call.number] = call
        emit("calling", call=call.number)

    def call_command(self, call: PhoneCall, verb: str, args: list[str]) -> None:
        prm = pj.CallOpParam(True)
        if verb == "answer":
            prm.statusCode = int(args[0])
            call.answer(prm)
        elif verb == "hangup":
            if args:
                prm.statusCode = int(args[0])
            call.hangup(prm)
        elif verb == "hold":
            call.setHold(prm)
        elif verb == "unhold":
            prm.opt.flag = pj.PJSUA_CALL_UNHOLD
            call.reinvite(prm)
        elif verb == "dtmf":
            call.dialDtmf(args[0])
        elif verb == "watch":
            call.watch(int(args[0]))

    def run(self) -> None:
        """Poll PJSIP, the calls' RTP counters and stdin until told to stop."""
        selector = selectors.DefaultSelector()
        selector.register(sys.stdin.fileno(), selectors.EVENT_READ)
        while not self.stopping:
            self.endpoint.libHandleEvents(self.args.poll_ms)
            self.finished.clear()  # disconnected calls, deleted outside their callbacks
            while not self.received.empty():
                summary, message = self.received.get()
                emit("received", summary=summary, message=message)
            for call in list(self.calls.values()):
                call.check_rtp()
            if selector.select(timeout=0):
                self.read_stdin()
        selector.close()

    def stop(self) -> None:
        """Hang up and delete every call, stop the tone, then what :class:`Peer` deletes."""
        if self.calls:
            self.endpoint.hangupAllCalls()
            for _ in range(25):  # let the BYEs/CANCELs go out (0.5 s at most)
                self.endpoint.libHandleEvents(20)
        self.calls.clear()
        self.finished.clear()
        if self.tone is not None:
            self.tone.stop()
            self.tone = None
        super().stop()


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: ``pjsua_peer.py``'s options plus ``--rtp-port``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registrar", required=True, help="HOST:PORT of the registrar")
    parser.add_argument("--user", required=True, help="user part and digest username")
    parser.add_argument("--password", required=True, help="digest password")
    parser.add_argument("--domain", help="domain of the AOR (default: registrar host)")
    parser.add_argument("--local-host", default="127.0.0.1", help="address to bind")
    parser.add_argument("--local-port", type=int, default=5072, help="UDP port to bind")
    parser.add_argument("--rtp-port", type=int, default=4000, help="first RTP port (even)")
    parser.add_argument("--regint", type=int, default=60, help="requested expiry, seconds")
    parser.add_argument("--retry", type=int, default=0, help="seconds before re-registering")
    parser.add_argument("--log-level", type=int, default=1, help="PJSIP log level on stderr")
    parser.add_argument("--poll-ms", type=int, default=20, help="libHandleEvents timeout")
    args = parser.parse_args(argv)

    sys.stdout.flush()
    pjsua_peer.events = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    peer = CallPeer(args)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("signal %d: stopping", signum)
        peer.stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        peer.start()
        peer.run()
    finally:
        peer.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
