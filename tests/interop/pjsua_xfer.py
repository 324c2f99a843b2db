"""Drive ``pjsua_xfer_peer.py`` (a PJSIP phone that makes, answers and transfers calls).

The same JSON-lines process protocol as :class:`tests.interop.pjsua.PjsuaPeer`, with the
call-capable peer script and helpers to wait for call events:

    with XferPhone(f"{ns.host}:5060", "102", pw, local_host=ns.host, local_port=5080,
                       netns=ns, auto_answer=True, tone=1000) as phone:
        phone.wait_registered()
        call = phone.wait_event(lambda e: e["event"] == "incoming")["call"]
        phone.wait_state(call, "CONFIRMED")
        phone.send(f"xfer {call} sip:103@{ns.host}")
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from tests.interop.netns import NetNamespace
from tests.interop.pjsua import Event, PjsuaPeer

XFER_PEER_SCRIPT = Path(__file__).with_name("pjsua_xfer_peer.py")


class XferPhone(PjsuaPeer):
    """One ``pjsua_xfer_peer.py`` process and the events it printed."""

    def __init__(
        self,
        registrar: str,
        user: str,
        password: str,
        *,
        local_port: int = 5072,
        local_host: str = "127.0.0.1",
        regint: int = 60,
        rtp_port: int = 4000,
        auto_answer: bool = False,
        tone: int = 0,
        record_dir: Path | None = None,
        log_level: int = 4,
        python: str = sys.executable,
        stderr_path: Path | None = None,
        netns: NetNamespace | None = None,
    ) -> None:
        """Describe the phone; :meth:`start` runs it.

        ``rtp_port`` is the first RTP port its calls try; ``auto_answer`` answers every
        incoming call (180, then 200); ``tone`` plays a sine of that many Hz into every call;
        ``record_dir`` receives ``call-ID.wav`` per call. PJSIP's log, at ``log_level`` (4
        includes every SIP message), goes to ``stderr_path``.
        """
        extra: list[str] = ["--log-level", str(log_level), "--rtp-port", str(rtp_port)]
        if auto_answer:
            extra.append("--auto-answer")
        if tone:
            extra += ["--tone", str(tone)]
        if record_dir is not None:
            extra += ["--record-dir", str(record_dir)]
        super().__init__(
            registrar, user, password, local_port=local_port, local_host=local_host,
            regint=regint, python=python, extra_args=extra, stderr_path=stderr_path,
            netns=netns,
        )  # fmt: skip
        self.argv[1] = str(XFER_PEER_SCRIPT)

    def wait_registered(self, timeout: float = 15.0) -> Event:
        """Wait for a successful registration."""
        return self.wait_event(
            lambda e: e["event"] == "reg" and e["code"] == 200 and e["expires"] > 0, timeout
        )

    def wait_state(self, call: int, state: str, timeout: float = 15.0, since: int = 0) -> Event:
        """Wait until call ``call`` reports INVITE session state ``state``."""
        return self.wait_event(
            lambda e: e["event"] == "state" and e["call"] == call and e["state"] == state,
            timeout,
            since,
        )

    def wait_media(self, call: int, status: str, timeout: float = 15.0, since: int = 0) -> Event:
        """Wait until call ``call`` reports audio status ``status`` (``active``, ...)."""
        return self.wait_event(
            lambda e: e["event"] == "media" and e["call"] == call and e["status"] == status,
            timeout,
            since,
        )

    def events_of(self, call: int, kinds: Sequence[str]) -> list[Event]:
        """Every event so far about call ``call`` whose kind is in ``kinds``."""
        return [e for e in self.events if e.get("call") == call and e["event"] in kinds]
