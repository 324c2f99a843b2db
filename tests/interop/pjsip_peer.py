"""A PJSIP (pjsua2) phone driven over stdin/stdout: it registers, places and takes calls, sends
and receives DTMF, holds and transfers. Run as a subprocess by :mod:`tests.interop.pjsip`.

    python tests/interop/pjsip_peer.py --registrar 127.0.0.1:5060 --user 101 --password X \\
        --local-port 5072 --rtp-port 40000 [--regint 60] [--auto-answer] [--tone 440] \\
        [--record-dir DIR] [--log-level 4]

It registers one account over UDP (``--tls``: over TLS; ``--srtp mandatory``: its calls in
SRTP with SDES keys) and prints one JSON object a line on stdout. Every call is
named by its pjsua call id (``"call": 0``); ``call_id`` is its SIP Call-ID.

- ``{"event": "ready", "local": "127.0.0.1:5072", "uri": "sip:101@127.0.0.1"}`` once started;
- ``{"event": "reg", "code": 200, "reason": "OK", "expires": 60, "active": true}`` on every
  registration state change (failures too: ``"code": 403``, ``408`` for no answer;
  ``expires`` 0 after an un-REGISTER);
- ``{"event": "response", "method": "OPTIONS", "code": 200, "reason": "OK"}`` for ``options``;
- ``{"event": "incoming", "call": 0, "remote": "...", "call_id": "...", "message": "INVITE ..."}``:
  an INVITE arrived (the whole request as received); with ``--auto-answer`` the phone answers
  180 then 200 at once, else the call waits for ``answer``;
- ``{"event": "calling", "call": 1, "uri": "..."}``: ``call URI`` created the call;
- ``{"event": "state", "call": 0, "state": "EARLY", "code": 183, "reason": "Session Progress",
  "call_id": "..."}`` on every INVITE session state change (``CALLING``, ``INCOMING``,
  ``EARLY``, ``CONNECTING``, ``CONFIRMED``, ``DISCONNECTED``);
- ``{"event": "media", "call": 0, "status": "ACTIVE", "state": "EARLY"}`` when the audio stream
  changes (``ACTIVE``, ``LOCAL_HOLD``, ``REMOTE_HOLD``, ``NONE``, ``ERROR``);
- ``{"event": "rx", "call": 0, "method": "INVITE", "role": "uas", "status": 0, "message": "..."}``
  for every SIP message received inside a call (requests: ``role`` ``uas``, ``status`` 0;
  responses: ``uac`` and their status);
- ``{"event": "offer", "call": 0, "sdp": "..."}``: a re-INVITE or UPDATE brought a new SDP offer
  (pjsua answers it by itself);
- ``{"event": "rtp", "call": 0, "rx": 12, "tx": 30, "state": "EARLY", "reason": "first"}``: the
  first RTP packet arrived on a call (``reason`` ``first``), or the count asked for by
  ``watch`` was reached (``watch``);
- ``{"event": "dtmf", "call": 0, "digit": "1", "method": "RFC2833"}`` (or ``INFO``);
- ``{"event": "xfer_status", "call": 0, "code": 200, "reason": "OK", "final": true}`` for each
  status pjsua reports about a transfer this phone asked for: the REFER's acceptance (reported
  as 100 "Accepted"), then the sipfrag status line of each NOTIFY (RFC 3515 §2.4.5);
- ``{"event": "received", "summary": "Response msg 487/INVITE", "message": "..."}`` for every
  SIP message PJSIP logs as received (``--log-level`` 4 or more), even those its call no
  longer reports (the answer to its BYE or CANCEL comes after the call is disconnected);
- ``{"event": "error", "command": "...", "reason": "..."}`` when a command failed;
- ``{"event": "exiting"}`` just before the calls and the account are deleted.

Commands, one a line on stdin (``ID`` is a ``call`` number from the events):
``refresh`` (register again), ``unregister`` (REGISTER with Expires 0), ``options URI`` (an
out-of-dialog OPTIONS), ``call URI``, ``answer ID CODE`` (180, 183 with SDP, 200...),
``hangup ID [CODE]`` (CANCEL, BYE or a rejection, as the state requires), ``hold ID``,
``unhold ID`` (re-INVITEs), ``dtmf ID DIGITS`` (RFC 4733 events, ``Call.dialDtmf``),
``watch ID N`` (report when N more RTP packets have arrived), ``xfer ID URI`` (blind transfer:
REFER with ``Refer-To: URI``), ``xfer_replaces ID OTHER`` (attended transfer: REFER in call
``ID`` whose Refer-To names call ``OTHER``'s dialog with ``Replaces``, RFC 3891), ``quit``.
End of stdin and SIGTERM/SIGINT also quit.

Media: G.711 µ-law first, then A-law and G.722, nothing else; an 8 kHz conference bridge clocked
by the null audio device; VAD off so that RTP is continuous. ``--tone HZ`` plays a continuous
sine into every call, held ones included (PJSIP's tone generator: music on hold);
``--record-dir DIR`` records what each call receives into ``DIR/call-ID.wav``. RTP ports:
``--rtp-port`` and up, within :data:`RTP_PORT_RANGE`.

pjsua2 rules kept here (``/work/shared/design/TEST-PEERS.md``): ``threadCnt=0`` and
``mainThreadOnly=True``, so that every callback runs on this thread inside
``libHandleEvents()``, which the main loop polls; a reference to every :class:`PeerCall` until
it is disconnected (then dropped outside its callback); every call, recorder, the tone and the
account deleted before ``libDestroy()``; at most 4 call legs in one process.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import re
import selectors
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import pjsua2 as pj

logger = logging.getLogger(__name__)

#: Where JSON events go: the original stdout.  :func:`main` points file descriptor 1 at
#: stderr, because PJSIP prints to it before its log writer is set.
events: TextIO = sys.stdout

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
CODECS = ("PCMU/8000", "PCMA/8000", "G722/16000")
"""The codecs the phone offers and accepts, in order of preference; every other is disabled."""
CLOCK_RATE = 8000
"""The conference bridge's rate (and so the recordings')."""
MAX_CALLS = 4
"""Call legs one pjsua2-python process handles, whatever ``maxCalls`` says."""
RTP_PORT_RANGE = 2 * MAX_CALLS
"""RTP ports from ``--rtp-port`` up (RTP even, RTCP above it) for the process's calls."""
TLS_METHODS = {
    "default": pj.PJ_SSL_SOCK_PROTO_DEFAULT,
    "tlsv1": pj.PJ_SSL_SOCK_PROTO_TLS1,
    "tlsv1_2": pj.PJ_SSL_SOCK_PROTO_TLS1_2,
}
"""TLS versions the client offers (`TlsConfig.proto`; its `method` alone does not narrow them:
the default is TLS 1.0 to 1.2)."""
SRTP_USE = {
    "disabled": pj.PJMEDIA_SRTP_DISABLED,
    "optional": pj.PJMEDIA_SRTP_OPTIONAL,
    "mandatory": pj.PJMEDIA_SRTP_MANDATORY,
}
HANGUP_POLLS = 25
"""``libHandleEvents(20)`` rounds at the end that let the BYEs and CANCELs go out (0.5 s)."""
RX_LOG = re.compile(r"RX \d+ bytes (Request msg \w+|Response msg \d+/\w+)[^\n]*:\n(.*?)--end msg--",
                    re.S)  # fmt: skip
"""How PJSIP logs (level 4) each SIP message it receives, whole."""


def emit(event: str, **fields: Any) -> None:
    """Print one JSON event line for the parent process and flush it."""
    events.write(json.dumps({"event": event, **fields}) + "\n")
    events.flush()


class LogWriter(pj.LogWriter):  # type: ignore[misc]
    """Sends PJSIP's log to stderr (stdout is for the JSON events) and queues every SIP message
    it logs as received into `received` (the main loop reports them; a queue because the log
    may be written from any thread)."""

    def __init__(self, received: queue.SimpleQueue[tuple[str, str]]) -> None:
        super().__init__()
        self.received = received

    def write(self, entry: Any) -> None:
        """Write one log entry; queue it if it is a received message."""
        text = str(entry.msg)
        sys.stderr.write(text if text.endswith("\n") else text + "\n")
        sys.stderr.flush()
        found = RX_LOG.search(text)
        if found:
            self.received.put((found[1], found[2].strip()))


class PeerCall(pj.Call):  # type: ignore[misc]
    """One call; reports its callbacks as events. Owned by :class:`Peer`."""

    def __init__(self, peer: Peer, account: pj.Account, call_id: int = pj.PJSUA_INVALID_ID):
        super().__init__(account, call_id)
        self.peer = peer
        self.number = call_id
        self.recorder: Any = None
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
             code=int(info.lastStatusCode), reason=str(info.lastReason),
             call_id=str(info.callIdString))  # fmt: skip
        if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.peer.ended(self)

    def onCallMediaState(self, prm: Any) -> None:
        """The audio stream changed: connect the tone and the recorder to a usable one (PJSIP
        re-creates the stream on every offer/answer)."""
        info = self.getInfo()
        media = info.media  # keep the vector referenced while iterating
        for index in range(len(media)):
            item = media[index]
            if item.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            status = MEDIA_STATUS.get(item.status, str(item.status))
            emit("media", call=self.number, status=status,
                 state=STATES.get(info.state, str(info.state)))  # fmt: skip
            if item.status not in (pj.PJSUA_CALL_MEDIA_NONE, pj.PJSUA_CALL_MEDIA_ERROR):
                self.peer.connect_audio(self, self.getAudioMedia(index))

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

    def onCallTransferStatus(self, prm: Any) -> None:
        """Progress of the REFER this phone sent: its acceptance, then each NOTIFY."""
        emit("xfer_status", call=self.number, code=int(prm.statusCode), reason=str(prm.reason),
             final=bool(prm.finalNotify))  # fmt: skip
        prm.cont = True  # keep the call: the box is the one to hang it up (with a BYE)

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


class PeerAccount(pj.Account):  # type: ignore[misc]
    """The registered account: reports registrations and requests, keeps every incoming call
    (an unreferenced one is hung up)."""

    def __init__(self, peer: Peer) -> None:
        super().__init__()
        self.peer = peer

    def onRegState(self, prm: Any) -> None:
        """Registration state changed (success, failure, un-registration)."""
        info = self.getInfo()
        emit("reg", code=int(prm.code), reason=str(prm.reason), expires=int(prm.expiration),
             active=bool(info.regIsActive))  # fmt: skip

    def onSendRequest(self, prm: Any) -> None:
        """Final outcome of a request sent with :meth:`pj.Account.sendRequest`."""
        tsx = prm.e.body.tsxState.tsx
        emit("response", method=str(tsx.method), code=int(tsx.statusCode),
             reason=str(tsx.statusText))  # fmt: skip

    def onIncomingCall(self, prm: Any) -> None:
        """A new INVITE: keep the call, report the request; answer it with ``--auto-answer``,
        else wait for ``answer``."""
        call = PeerCall(self.peer, self, prm.callId)
        self.peer.calls[call.number] = call
        info = call.getInfo()
        emit("incoming", call=call.number, remote=str(info.remoteUri),
             call_id=str(info.callIdString), message=str(prm.rdata.wholeMsg))  # fmt: skip
        if self.peer.args.auto_answer:
            for code in (180, 200):
                answer = pj.CallOpParam()
                answer.statusCode = code
                call.answer(answer)


class Peer:
    """Owns the endpoint, the account, the calls and the media objects; everything runs on
    the main thread."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.endpoint = pj.Endpoint()
        self.account: PeerAccount | None = None
        self.calls: dict[int, PeerCall] = {}
        self.finished: list[PeerCall] = []
        self.tone: Any = None
        self.recorders: list[Any] = []
        self.received: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
        self.log_writer = LogWriter(self.received)  # referenced for the library's lifetime
        self.stopping = False
        self.buffer = b""

    def start(self) -> None:
        """Create the library, the UDP transport, the tone and the account (which starts
        registering)."""
        args = self.args
        self.endpoint.libCreate()
        config = pj.EpConfig()
        config.uaConfig.threadCnt = 0
        config.uaConfig.mainThreadOnly = True
        config.logConfig.level = args.log_level
        config.logConfig.consoleLevel = args.log_level
        config.logConfig.writer = self.log_writer
        config.logConfig.decor = 0
        config.medConfig.noVad = True  # a steady packet stream, even for silence
        config.medConfig.ecTailLen = 0
        config.medConfig.clockRate = CLOCK_RATE
        self.endpoint.libInit(config)
        transport = pj.TransportConfig()
        transport.port = args.local_port
        transport.boundAddress = args.local_host
        if args.tls:
            # The box's certificate is self-signed: not verified here (the test checks the
            # box's TLS policy by itself). `--tls-method tlsv1` makes a TLS 1.0-only client.
            if TLS_METHODS[args.tls_method]:
                transport.tlsConfig.proto = TLS_METHODS[args.tls_method]
            transport.tlsConfig.verifyServer = False
            self.endpoint.transportCreate(pj.PJSIP_TRANSPORT_TLS, transport)
        else:
            self.endpoint.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
        self.endpoint.libStart()
        self.endpoint.audDevManager().setNullDev()
        for codec in self.endpoint.codecEnum2():
            name = str(codec.codecId)
            wanted = [i for i, prefix in enumerate(CODECS) if name.startswith(prefix)]
            self.endpoint.codecSetPriority(name, 255 - wanted[0] if wanted else 0)
        if args.tone:
            self.tone = pj.ToneGenerator()
            self.tone.createToneGenerator(CLOCK_RATE, 1)
            desc = pj.ToneDesc()
            desc.freq1 = desc.freq2 = args.tone
            desc.on_msec, desc.off_msec, desc.volume = 10000, 0, 0
            tones = pj.ToneDescVector()
            tones.append(desc)
            self.tone.play(tones, True)

        registrar_host = args.registrar.rsplit(":", 1)[0]
        account_config = pj.AccountConfig()
        account_config.idUri = f"sip:{args.user}@{args.domain or registrar_host}"
        tls = ";transport=tls" if args.tls else ""
        account_config.regConfig.registrarUri = f"sip:{args.registrar}{tls}"
        account_config.regConfig.timeoutSec = args.regint
        account_config.regConfig.retryIntervalSec = args.retry
        account_config.sipConfig.authCreds.append(
            pj.AuthCredInfo("digest", "*", args.user, 0, args.password)
        )
        if args.srtp != "disabled":  # SDES (RFC 4568) only, not DTLS-SRTP
            account_config.mediaConfig.srtpUse = SRTP_USE[args.srtp]
            account_config.mediaConfig.srtpSecureSignaling = 0
            keying = pj.IntVector()
            keying.append(pj.PJMEDIA_SRTP_KEYING_SDES)
            account_config.mediaConfig.srtpOpt.keyings = keying
        media = account_config.mediaConfig.transportConfig
        media.port = args.rtp_port
        media.portRange = RTP_PORT_RANGE
        media.boundAddress = args.local_host
        self.account = PeerAccount(self)
        self.account.create(account_config)
        emit("ready", local=f"{args.local_host}:{args.local_port}", uri=account_config.idUri)

    def connect_audio(self, call: PeerCall, media: Any) -> None:
        """Send the tone into the call; record what it receives (one file per call)."""
        if self.tone is not None:
            self.tone.startTransmit(media)
        if self.args.record_dir and call.recorder is None:
            recorder = pj.AudioMediaRecorder()
            recorder.createRecorder(str(Path(self.args.record_dir) / f"call-{call.number}.wav"))
            self.recorders.append(recorder)  # kept until the end: deleting it closes the file
            call.recorder = recorder
        if call.recorder is not None:
            media.startTransmit(call.recorder)

    def ended(self, call: PeerCall) -> None:
        """A call disconnected: drop it after the callback has returned."""
        if self.calls.pop(call.number, None) is call:
            self.finished.append(call)

    def call(self, number: str) -> PeerCall:
        """The live call with that id, or a ValueError."""
        call = self.calls.get(int(number))
        if call is None:
            raise ValueError("no such call")
        return call

    def command(self, line: str) -> None:
        """Execute one stdin command; report a failure as an ``error`` event."""
        verb, *words = line.split()
        try:
            self._command(verb, words)
        except (pj.Error, ValueError, IndexError) as exc:
            reason = str(exc.info()) if isinstance(exc, pj.Error) else str(exc)
            emit("error", command=line.strip(), reason=reason)

    def _command(self, verb: str, words: list[str]) -> None:
        if verb == "quit":
            self.stopping = True
            return
        account = self.account
        if account is None:
            raise ValueError("no account")
        if verb == "refresh":
            account.setRegistration(True)
        elif verb == "unregister":
            account.setRegistration(False)
        elif verb == "options":
            request = pj.SendRequestParam()
            request.method = "OPTIONS"
            request.txOption.targetUri = words[0]
            account.sendRequest(request)
        elif verb == "call":
            self.place_call(account, words[0])
        elif verb in ("answer", "hangup", "hold", "unhold", "dtmf", "watch", "xfer",
                      "xfer_replaces"):  # fmt: skip
            self.call_command(self.call(words[0]), verb, words[1:])
        else:
            raise ValueError("unknown command")

    def place_call(self, account: PeerAccount, uri: str) -> None:
        call = PeerCall(self, account)
        call.makeCall(uri, pj.CallOpParam(True))
        call.number = int(call.getId())
        self.calls[call.number] = call
        emit("calling", call=call.number, uri=uri)

    def call_command(self, call: PeerCall, verb: str, args: list[str]) -> None:
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
        elif verb == "xfer":
            call.xfer(args[0], prm)
        elif verb == "xfer_replaces":
            call.xferReplaces(self.call(args[0]), prm)

    def read_stdin(self) -> None:
        """Consume what stdin has; run complete lines; quit on EOF."""
        data = os.read(sys.stdin.fileno(), 4096)
        if not data:
            self.stopping = True
            return
        self.buffer += data
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            if line.strip():
                self.command(line.decode("utf-8", "replace"))

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
        """Hang up and delete every call, then the tone, the recorders and the account (which
        un-registers if registered), then destroy the library."""
        emit("exiting")
        if self.calls:
            self.endpoint.hangupAllCalls()
            for _ in range(HANGUP_POLLS):
                self.endpoint.libHandleEvents(20)
        self.calls.clear()  # the last references: deleted before libDestroy
        self.finished.clear()
        if self.tone is not None:
            self.tone.stop()
            self.tone = None
        self.recorders.clear()  # closes the WAV files
        if self.account is not None:
            self.account.shutdown()
            self.account = None
        self.endpoint.libDestroy()


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registrar", required=True, help="HOST:PORT of the registrar")
    parser.add_argument("--user", required=True, help="user part and digest username")
    parser.add_argument("--password", required=True, help="digest password")
    parser.add_argument("--domain", help="domain of the AOR (default: registrar host)")
    parser.add_argument("--local-host", default="127.0.0.1", help="address to bind")
    parser.add_argument("--local-port", type=int, default=5072, help="UDP port to bind")
    parser.add_argument("--rtp-port", type=int, default=4000, help="first RTP port (even)")
    parser.add_argument("--regint", type=int, default=60, help="requested expiry, seconds")
    parser.add_argument(
        "--retry", type=int, default=0,
        help="seconds before retrying a failed registration (0: never)",
    )  # fmt: skip
    parser.add_argument("--auto-answer", action="store_true", help="answer calls (180, 200)")
    parser.add_argument("--tone", type=int, default=0, help="sine (Hz) played into calls")
    parser.add_argument("--record-dir", help="record each call's received audio here")
    parser.add_argument("--log-level", type=int, default=1, help="PJSIP log level on stderr")
    parser.add_argument("--poll-ms", type=int, default=20, help="libHandleEvents timeout")
    parser.add_argument(
        "--tls",
        action="store_true",
        help="SIP over TLS: --local-port is the TLS port, --registrar the box's",
    )
    parser.add_argument(
        "--tls-method",
        choices=sorted(TLS_METHODS),
        default="default",
        help="TLS versions the client offers (tlsv1: TLS 1.0 only)",
    )
    parser.add_argument(
        "--srtp",
        choices=sorted(SRTP_USE),
        default="disabled",
        help="SRTP with SDES keys: optional or mandatory",
    )
    args = parser.parse_args(argv)

    global events
    sys.stdout.flush()
    events = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    peer = Peer(args)

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
