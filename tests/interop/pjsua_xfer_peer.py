"""A PJSIP (pjsua2) phone that makes, answers, holds and transfers calls, driven over stdio.

    python tests/interop/pjsua_xfer_peer.py --registrar 10.99.0.1:5060 --user 102 \\
        --password X --local-host 10.99.0.1 --local-port 5080 --auto-answer --tone 1000

It registers one account over UDP and prints one JSON object per line on stdout (the same
protocol as ``pjsua_peer.py``, driven by :class:`tests.interop.pjsua_xfer.XferPhone`):

* ``{"event": "ready"}``, ``{"event": "reg", "code": 200, "expires": 60, ...}``;
* ``{"event": "incoming", "call": 0, "remote": "...", "call_id": "..."}`` for a new INVITE
  (answered 180 then 200 at once with ``--auto-answer``, else 486);
* ``{"event": "calling", "call": 1, "uri": "..."}`` after the ``call`` command;
* ``{"event": "state", "call": 0, "state": "CONFIRMED", "code": 200, "reason": "OK",
  "call_id": "..."}`` on every INVITE session state change (``DISCONNECTED`` at the end);
* ``{"event": "media", "call": 0, "status": "active"}`` (``local_hold``, ``remote_hold``,
  ``none``, ``error``) when the call's audio changes;
* ``{"event": "xfer_status", "call": 0, "code": 200, "reason": "OK", "final": true}`` for
  each status pjsua reports about a transfer this phone asked for: the REFER's acceptance
  (reported as 100 "Accepted"), then the sipfrag status line of each NOTIFY (RFC 3515 §2.4.5);
* ``{"event": "request", "call": 0, "method": "BYE"}`` for every request received in a call's
  dialog (BYE, re-INVITE, UPDATE, INFO, NOTIFY, ...);
* ``{"event": "error", "command": "...", "reason": "..."}`` when a command failed.

Commands, one per line on stdin (``ID`` is the ``call`` number from the events): ``call URI``,
``hold ID``, ``unhold ID``, ``xfer ID URI`` (blind transfer: REFER with ``Refer-To: URI``),
``xfer_replaces ID OTHER`` (attended transfer: REFER in call ``ID`` whose Refer-To names call
``OTHER``'s dialog with ``Replaces``, RFC 3891), ``hangup ID``, ``quit``.

Audio: ``--tone HZ`` plays a continuous sine into every call, held ones included (PJSIP's tone
generator); ``--record-dir DIR`` records what each call receives into ``DIR/call-ID.wav``. There
is no sound device (``setNullDev``): the null device's clock paces the conference bridge.

PJSIP runs with ``threadCnt=0`` and ``mainThreadOnly=True``: every callback runs on this thread
inside ``libHandleEvents()``. Every ``Call``, recorder and the account are kept in explicit
registries and deleted before ``libDestroy()``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import selectors
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import pjsua2 as pj

logger = logging.getLogger(__name__)

#: Where JSON events go: the original stdout (file descriptor 1 is pointed at stderr).
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
MEDIA_STATES = {
    pj.PJSUA_CALL_MEDIA_NONE: "none",
    pj.PJSUA_CALL_MEDIA_ACTIVE: "active",
    pj.PJSUA_CALL_MEDIA_LOCAL_HOLD: "local_hold",
    pj.PJSUA_CALL_MEDIA_REMOTE_HOLD: "remote_hold",
    pj.PJSUA_CALL_MEDIA_ERROR: "error",
}
#: The codecs the box handles; every other codec is disabled so offers stay short.
WANTED_CODECS = ("PCMU/8000", "PCMA/8000", "G722/16000")


def emit(event: str, **fields: Any) -> None:
    """Print one JSON event line for the parent process and flush it."""
    events.write(json.dumps({"event": event, **fields}) + "\n")
    events.flush()


class StderrLogWriter(pj.LogWriter):  # type: ignore[misc]
    """Sends PJSIP's log to stderr, keeping stdout for JSON events."""

    def write(self, entry: Any) -> None:
        """Write one log entry."""
        sys.stderr.write(entry.msg if entry.msg.endswith("\n") else entry.msg + "\n")
        sys.stderr.flush()


class PeerCall(pj.Call):  # type: ignore[misc]
    """One call; reports its state, media, transfer progress and in-dialog requests."""

    def __init__(self, phone: Phone, account: pj.Account, call_id: int = pj.PJSUA_INVALID_ID):
        super().__init__(account, call_id)
        self.phone = phone
        self.recorder: pj.AudioMediaRecorder | None = None

    def onCallState(self, prm: Any) -> None:
        """The INVITE session changed state."""
        info = self.getInfo()
        emit(
            "state",
            call=int(info.id),
            state=STATES.get(info.state, str(info.state)),
            code=int(info.lastStatusCode),
            reason=str(info.lastReason),
            call_id=str(info.callIdString),
        )

    def onCallMediaState(self, prm: Any) -> None:
        """Audio became active, held or gone: connect the tone and the recorder."""
        info = self.getInfo()
        for index, media in enumerate(info.media):
            if media.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            status = MEDIA_STATES.get(media.status, str(media.status))
            emit("media", call=int(info.id), status=status)
            if media.status not in (pj.PJSUA_CALL_MEDIA_NONE, pj.PJSUA_CALL_MEDIA_ERROR):
                # PJSIP re-creates the stream on every offer/answer: connect the new one.
                self.phone.connect_audio(self, self.getAudioMedia(index), int(info.id))

    def onCallTransferStatus(self, prm: Any) -> None:
        """Progress of the REFER this phone sent: its acceptance, then each NOTIFY."""
        emit(
            "xfer_status",
            call=int(self.getId()),
            code=int(prm.statusCode),
            reason=str(prm.reason),
            final=bool(prm.finalNotify),
        )
        prm.cont = True  # keep the call: the box is the one to hang it up (with a BYE)

    def onCallTsxState(self, prm: Any) -> None:
        """A transaction of this call changed state; report requests received."""
        if prm.e.type != pj.PJSIP_EVENT_TSX_STATE:
            return
        tsx = prm.e.body.tsxState.tsx
        if tsx.role == pj.PJSIP_ROLE_UAS and tsx.state == pj.PJSIP_TSX_STATE_TRYING:
            emit("request", call=int(self.getId()), method=str(tsx.method))


class PeerAccount(pj.Account):  # type: ignore[misc]
    """The registered account; reports registrations and takes incoming calls."""

    def __init__(self, phone: Phone) -> None:
        super().__init__()
        self.phone = phone

    def onRegState(self, prm: Any) -> None:
        """Registration state changed (success, failure, un-registration)."""
        info = self.getInfo()
        emit(
            "reg",
            code=int(prm.code),
            reason=str(prm.reason),
            expires=int(prm.expiration),
            active=bool(info.regIsActive),
        )

    def onIncomingCall(self, prm: Any) -> None:
        """A new INVITE: keep the call (or pjsua hangs it up) and answer it."""
        call = PeerCall(self.phone, self, prm.callId)
        self.phone.calls[int(prm.callId)] = call
        info = call.getInfo()
        emit(
            "incoming",
            call=int(prm.callId),
            remote=str(info.remoteUri),
            call_id=str(info.callIdString),
        )
        answer = pj.CallOpParam()
        if self.phone.args.auto_answer:
            answer.statusCode = 180
            call.answer(answer)
            answer = pj.CallOpParam()
            answer.statusCode = 200
        else:
            answer.statusCode = 486
        call.answer(answer)


class Phone:
    """Owns the endpoint, the account, the calls and the media objects."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.endpoint = pj.Endpoint()
        self.account: PeerAccount | None = None
        self.calls: dict[int, PeerCall] = {}
        self.tone: pj.ToneGenerator | None = None
        self.recorders: list[pj.AudioMediaRecorder] = []
        self.log_writer = StderrLogWriter()  # referenced for the library's lifetime
        self.stopping = False
        self.buffer = b""

    def start(self) -> None:
        """Create the library, the UDP transport, the tone and the account."""
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
        self.endpoint.libInit(config)
        transport = pj.TransportConfig()
        transport.port = args.local_port
        transport.boundAddress = args.local_host
        self.endpoint.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
        self.endpoint.libStart()
        self.endpoint.audDevManager().setNullDev()
        for codec in self.endpoint.codecEnum2():
            wanted = any(codec.codecId.startswith(name) for name in WANTED_CODECS)
            self.endpoint.codecSetPriority(codec.codecId, 200 if wanted else 0)
        if args.tone:
            tone = pj.ToneGenerator()
            tone.createToneGenerator()
            desc = pj.ToneDesc()
            desc.freq1 = desc.freq2 = args.tone
            desc.on_msec, desc.off_msec, desc.volume = 10000, 0, 0
            tones = pj.ToneDescVector()
            tones.append(desc)
            tone.play(tones, True)
            self.tone = tone

        registrar_host = args.registrar.rsplit(":", 1)[0]
        account_config = pj.AccountConfig()
        account_config.idUri = f"sip:{args.user}@{args.domain or registrar_host}"
        account_config.regConfig.registrarUri = f"sip:{args.registrar}"
        account_config.regConfig.timeoutSec = args.regint
        account_config.regConfig.retryIntervalSec = 0
        account_config.mediaConfig.transportConfig.port = args.rtp_port
        account_config.mediaConfig.transportConfig.boundAddress = args.local_host
        account_config.sipConfig.authCreds.append(
            pj.AuthCredInfo("digest", "*", args.user, 0, args.password)
        )
        self.account = PeerAccount(self)
        self.account.create(account_config)
        emit("ready", local=f"{args.local_host}:{args.local_port}", uri=account_config.idUri)

    def connect_audio(self, call: PeerCall, media: Any, number: int) -> None:
        """Send the tone into the call; record what it receives (one file per call)."""
        if self.tone is not None:
            self.tone.startTransmit(media)
        if self.args.record_dir and call.recorder is None:
            recorder = pj.AudioMediaRecorder()
            recorder.createRecorder(str(Path(self.args.record_dir) / f"call-{number}.wav"))
            self.recorders.append(recorder)
            call.recorder = recorder
        if call.recorder is not None:
            media.startTransmit(call.recorder)

    def call(self, number: str) -> PeerCall:
        """The call with that id, or a ValueError."""
        call = self.calls.get(int(number))
        if call is None:
            raise ValueError(f"no call {number}")
        return call

    def command(self, line: str) -> None:
        """Execute one stdin command."""
        verb, *words = line.split()
        try:
            self._command(verb, words)
        except (pj.Error, ValueError, IndexError) as exc:
            reason = str(exc.info()) if isinstance(exc, pj.Error) else str(exc)
            emit("error", command=line.strip(), reason=reason)

    def _command(self, verb: str, words: list[str]) -> None:
        if verb == "quit":
            self.stopping = True
        elif verb == "call":
            assert self.account is not None
            call = PeerCall(self, self.account)
            call.makeCall(words[0], pj.CallOpParam(True))
            self.calls[int(call.getId())] = call
            emit("calling", call=int(call.getId()), uri=words[0])
        elif verb == "hold":
            self.call(words[0]).setHold(pj.CallOpParam(True))
        elif verb == "unhold":
            param = pj.CallOpParam(True)
            param.opt.flag = pj.PJSUA_CALL_UNHOLD
            self.call(words[0]).reinvite(param)
        elif verb == "xfer":
            self.call(words[0]).xfer(words[1], pj.CallOpParam(True))
        elif verb == "xfer_replaces":
            self.call(words[0]).xferReplaces(self.call(words[1]), pj.CallOpParam(True))
        elif verb == "hangup":
            self.call(words[0]).hangup(pj.CallOpParam(True))
        else:
            raise ValueError("unknown command")

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
        """Poll PJSIP and stdin until told to stop."""
        selector = selectors.DefaultSelector()
        selector.register(sys.stdin.fileno(), selectors.EVENT_READ)
        while not self.stopping:
            self.endpoint.libHandleEvents(self.args.poll_ms)
            if selector.select(timeout=0):
                self.read_stdin()
        selector.close()

    def stop(self) -> None:
        """Hang up, delete calls, media and the account, then destroy the library."""
        emit("exiting")
        self.endpoint.hangupAllCalls()
        for _ in range(10):  # let the BYEs go out
            self.endpoint.libHandleEvents(20)
        self.calls.clear()  # the last references: deleted before libDestroy
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
    parser.add_argument("--rtp-port", type=int, default=4000, help="first RTP port to try")
    parser.add_argument("--regint", type=int, default=60, help="requested expiry, seconds")
    parser.add_argument("--auto-answer", action="store_true", help="answer calls (else 486)")
    parser.add_argument("--tone", type=int, default=0, help="sine (Hz) played into calls")
    parser.add_argument("--record-dir", help="record each call's received audio here")
    parser.add_argument("--log-level", type=int, default=3, help="PJSIP log level on stderr")
    parser.add_argument("--poll-ms", type=int, default=20, help="libHandleEvents timeout")
    args = parser.parse_args(argv)

    global events
    sys.stdout.flush()
    events = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    phone = Phone(args)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("signal %d: stopping", signum)
        phone.stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        phone.start()
        phone.run()
    finally:
        phone.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
