"""A PJSIP (pjsua2) SIP phone driven over stdin/stdout, run as a subprocess by tests.

    python tests/interop/pjsua_peer.py --registrar 127.0.0.1:5060 --user 101 \\
        --password X --local-port 5072 [--regint 60]

It registers one account over UDP and prints one JSON object per line on
stdout, e.g. ``{"event": "ready", ...}`` once started, ``{"event": "reg",
"code": 200, "reason": "OK", "expires": 60, "active": true}`` on every
registration state change (failures too: ``"code": 403``, ``408`` for no
answer; ``expires`` 0 after an un-REGISTER), ``{"event": "response",
"method": "OPTIONS", "code": 200, "reason": "OK"}`` for ``options``, and
``{"event": "exiting"}`` just before the library is destroyed.  PJSIP's own
log goes to stderr.

Commands, one per line on stdin: ``refresh`` (register again),
``unregister`` (REGISTER with Expires 0), ``options URI`` (an out-of-dialog
OPTIONS), ``quit``.  End of stdin and SIGTERM/SIGINT also quit; the account
is deleted (which un-registers if registered) before ``libDestroy()``.

PJSIP runs with ``threadCnt=0`` and ``mainThreadOnly=True``: every callback
runs on this thread inside ``libHandleEvents()``, which the main loop polls.
Incoming calls are not handled (pjsua2 rejects them).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import selectors
import signal
import sys
from types import FrameType
from typing import Any, TextIO

import pjsua2 as pj

logger = logging.getLogger(__name__)


#: Where JSON events go: the original stdout.  :func:`main` points file
#: descriptor 1 at stderr, because PJSIP prints to it before its log writer is set.
events: TextIO = sys.stdout


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


class PeerAccount(pj.Account):  # type: ignore[misc]
    """The registered account; reports registration and request outcomes."""

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

    def onSendRequest(self, prm: Any) -> None:
        """Final outcome of a request sent with :meth:`pj.Account.sendRequest`."""
        tsx = prm.e.body.tsxState.tsx
        emit(
            "response",
            method=str(tsx.method),
            code=int(tsx.statusCode),
            reason=str(tsx.statusText),
        )


class Peer:
    """Owns the endpoint and the account; everything runs on the main thread."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.endpoint = pj.Endpoint()
        self.account: PeerAccount | None = None
        self.log_writer = StderrLogWriter()  # referenced for the library's lifetime
        self.stopping = False
        self.buffer = b""

    def start(self) -> None:
        """Create the library, the UDP transport and the account (starts registering)."""
        args = self.args
        self.endpoint.libCreate()
        config = pj.EpConfig()
        config.uaConfig.threadCnt = 0
        config.uaConfig.mainThreadOnly = True
        config.logConfig.level = args.log_level
        config.logConfig.consoleLevel = args.log_level
        config.logConfig.writer = self.log_writer
        config.logConfig.decor = 0
        self.endpoint.libInit(config)
        transport = pj.TransportConfig()
        transport.port = args.local_port
        transport.boundAddress = args.local_host
        self.endpoint.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
        self.endpoint.libStart()
        self.endpoint.audDevManager().setNullDev()

        registrar_host = args.registrar.rsplit(":", 1)[0]
        account_config = pj.AccountConfig()
        account_config.idUri = f"sip:{args.user}@{args.domain or registrar_host}"
        account_config.regConfig.registrarUri = f"sip:{args.registrar}"
        account_config.regConfig.timeoutSec = args.regint
        account_config.regConfig.retryIntervalSec = args.retry
        account_config.sipConfig.authCreds.append(
            pj.AuthCredInfo("digest", "*", args.user, 0, args.password)
        )
        self.account = PeerAccount()
        self.account.create(account_config)
        emit("ready", local=f"{args.local_host}:{args.local_port}", uri=account_config.idUri)

    def command(self, line: str) -> None:
        """Execute one stdin command."""
        verb, _, rest = line.strip().partition(" ")
        account = self.account
        try:
            if verb == "quit":
                self.stopping = True
            elif account is None:
                emit("error", command=line, reason="no account")
            elif verb == "refresh":
                account.setRegistration(True)
            elif verb == "unregister":
                account.setRegistration(False)
            elif verb == "options" and rest:
                request = pj.SendRequestParam()
                request.method = "OPTIONS"
                request.txOption.targetUri = rest.strip()
                account.sendRequest(request)
            elif verb:
                emit("error", command=line, reason="unknown command")
        except pj.Error as exc:
            emit("error", command=line, reason=str(exc.info()))

    def read_stdin(self) -> None:
        """Consume what stdin has; run complete lines; quit on EOF."""
        data = os.read(sys.stdin.fileno(), 4096)
        if not data:
            self.stopping = True
            return
        self.buffer += data
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
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
        """Delete the account (un-registers if registered), then destroy the library."""
        emit("exiting")
        if self.account is not None:
            self.account.shutdown()
            self.account = None  # the last reference: deleted before libDestroy
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
    parser.add_argument("--regint", type=int, default=60, help="requested expiry, seconds")
    parser.add_argument(
        "--retry",
        type=int,
        default=0,
        help="seconds before retrying a failed registration (0: never)",
    )
    parser.add_argument("--log-level", type=int, default=1, help="PJSIP log level on stderr")
    parser.add_argument("--poll-ms", type=int, default=20, help="libHandleEvents timeout")
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
