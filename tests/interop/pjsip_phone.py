"""Drive ``pjsip_phone_peer.py`` (a PJSIP phone that places and takes calls) from a test.

The same JSON-lines process protocol as :class:`tests.interop.pjsua.PjsuaPeer` (which this
extends), with the call-capable script and waits for the call events it prints:

    with PjsipPhone(f"{core.host}:{core.port}", "101", password, rtp_port=40000) as phone:
        phone.wait_registered()
        call = phone.place_call(f"sip:102@{core.host}:{core.port}")
        phone.wait_state(call, "CONFIRMED")
        phone.send(f"dtmf {call} 1234")
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from tests.interop.pjsua import Event, PjsuaPeer

PHONE_SCRIPT = Path(__file__).with_name("pjsip_phone_peer.py")


class PjsipPhone(PjsuaPeer):
    """One ``pjsip_phone_peer.py`` process and the events it printed."""

    def __init__(
        self,
        registrar: str,
        user: str,
        password: str,
        *,
        local_port: int,
        rtp_port: int,
        local_host: str = "127.0.0.1",
        regint: int = 60,
        log_level: int = 4,
        python: str = sys.executable,
        stderr_path: Path | None = None,
    ) -> None:
        """Describe the phone; :meth:`start` runs it.

        ``rtp_port`` is the even port its call's RTP uses (RTCP above it). PJSIP's log, at
        ``log_level`` (4 includes every SIP message), goes to ``stderr_path``.
        """
        extra = ["--log-level", str(log_level), "--rtp-port", str(rtp_port)]
        super().__init__(
            registrar, user, password, local_port=local_port, local_host=local_host,
            regint=regint, python=python, extra_args=extra, stderr_path=stderr_path,
        )  # fmt: skip
        self.argv[1] = str(PHONE_SCRIPT)

    def wait_registered(self, timeout: float = 15.0) -> Event:
        """Wait for a successful registration."""
        return self.wait_event(
            lambda e: e["event"] == "reg" and e["code"] == 200 and e["expires"] > 0, timeout
        )

    def place_call(self, uri: str, timeout: float = 10.0) -> int:
        """Call ``uri``; return the call's id."""
        mark = self.mark()
        self.send(f"call {uri}")
        event = self.wait_event(lambda e: e["event"] in ("calling", "error"), timeout, mark)
        assert event["event"] == "calling", event
        return int(event["call"])

    def wait_incoming(self, timeout: float = 15.0, since: int = 0) -> Event:
        """Wait for an incoming INVITE; the event holds ``call`` and the whole ``message``."""
        return self.wait_event(lambda e: e["event"] == "incoming", timeout, since)

    def wait_state(self, call: int, state: str, timeout: float = 15.0, since: int = 0) -> Event:
        """Wait until call ``call`` reports INVITE session state ``state``."""
        return self.wait_event(
            lambda e: e["event"] == "state" and e["call"] == call and e["state"] == state,
            timeout,
            since,
        )

    def wait_media(self, call: int, status: str, timeout: float = 15.0, since: int = 0) -> Event:
        """Wait until call ``call`` reports audio status ``status`` (``ACTIVE``, ...)."""
        return self.wait_event(
            lambda e: e["event"] == "media" and e["call"] == call and e["status"] == status,
            timeout,
            since,
        )

    def wait_rx(
        self, call: int, method: str, *, role: str, timeout: float = 15.0, since: int = 0
    ) -> Event:
        """Wait until call ``call`` receives a ``method`` request (``role`` ``uas``) or a final
        response to one (``uac``); the event holds the whole ``message``."""
        return self.wait_event(
            lambda e: e["event"] == "rx" and e["call"] == call and e["method"] == method
            and e["role"] == role and (role == "uas" or e["status"] >= 200),
            timeout,
            since,
        )  # fmt: skip

    def wait_rtp(self, call: int, packets: int, timeout: float = 15.0) -> Event:
        """Wait until ``packets`` more RTP packets than now have reached call ``call``."""
        mark = self.mark()
        self.send(f"watch {call} {packets}")
        return self.wait_event(
            lambda e: e["event"] in ("rtp", "error") and e.get("reason") != "first"
            and e.get("call", call) == call,
            timeout,
            mark,
        )  # fmt: skip

    def wait_received(self, summary: str, timeout: float = 15.0, since: int = 0) -> Event:
        """Wait until PJSIP's log shows it received ``summary`` (``Request msg BYE``,
        ``Response msg 487/INVITE``...), also after its call has ended."""
        return self.wait_event(
            lambda e: e["event"] == "received" and e["summary"] == summary, timeout, since
        )

    def digits(self, call: int, count: int, timeout: float = 15.0, since: int = 0) -> str:
        """Wait for ``count`` DTMF digits on call ``call``; return them in order."""
        found: list[str] = []

        def enough(event: Event) -> bool:
            if event["event"] == "dtmf" and event["call"] == call:
                found.append(str(event["digit"]))
            return len(found) >= count

        self.wait_event(enough, timeout, since)
        return "".join(found)


def free_rtp_port(host: str = "127.0.0.1") -> int:
    """An even UDP port whose odd neighbour is free too (PJSIP's RTP and RTCP)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rtp:
            rtp.bind((host, 0))
            port = int(rtp.getsockname()[1])
        if port % 2 or port + 1 > 65535:
            continue
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b,
        ):
            try:
                a.bind((host, port))
                b.bind((host, port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free even/odd UDP port pair")
