"""Calls through the box (the B2BUA) between real sipp peers: a sipp caller registered nowhere
dials as extension 101 (it answers the 407 challenge), sipp callees registered as 102 answer,
ring, refuse or hang up; each test asserts what both phones saw on the wire and the CDR row the
box wrote (table `cdrs`), and the leak test what the core holds after 1,000 calls.

Every callee registers with `register.xml` from the port it then answers on (the box sends its
INVITE to the address the REGISTER came from). Scenarios: ``tests/interop/sipp/call_*.xml``.
"""

from __future__ import annotations

import os
import random
import socket
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from appliance import control
from appliance.media.dtmf import TelephoneEvent
from tests.conftest import CoreProcess
from tests.interop.call_records import all_cdrs, wait_cdrs
from tests.interop.rtp_endpoint import rtp_header
from tests.interop.sipp import (
    BackgroundSipp,
    SipMessage,
    SippPeers,
    SippRun,
    credentials,
    free_media_port,
    free_port,
    run_sipp,
)

CALLER, CALLER_NAME, CALLER_PASSWORD = "101", "Alice Office", "Kq7vT9pLm2"
CALLEE, CALLEE_NAME, CALLEE_PASSWORD = "102", "Bob Desk", "Zr4wX8nQp3"
CLAIMED_NAME = "Mallory"
"""The display name the caller's own From claims; the callee must never see it."""

LEAK_CALLS = 1000
"""Sequential calls in the leak test."""
LEAK_HOLDS_MS = (100, *[0] * 9)
"""How long each leak-test caller holds before its BYE, in turn: every tenth call lasts long
enough for a few RTP packets each way (sipp's stream starts some 20-60 ms after the ACK), the
others hang up at once (about 20 ms of signalling a call), so 1,000 calls take about 35 s."""
DRAIN = 45.0
"""Seconds the leak test waits for the core's transactions to end after the last call: the
longest-lived ones (Timer J for a non-INVITE server transaction, Timer L and M for the INVITE
transactions of an answered call) last 64*T1 = 32 s, and the machine is shared."""
CDR_WAIT = 10.0
"""Seconds to wait for a CDR row: the core writes it just after its last message of the call."""

RTP_RANGES = (20000, 32000)
"""Where each test's core takes its RTP ports, a block nothing else holds when it starts:
above the default range (10000-20000) other tests' cores use, below the ephemeral ports
(32768 up) sipp and the kernel take."""
RTP_PORTS = 200
"""RTP and RTCP ports each core gets (100 media legs)."""

DTMF_PT = 101
"""The RFC 4733 payload type the callee scenarios answer with (`a=rtpmap:101 telephone-event`)."""


@dataclass
class Office:
    """The core with extensions 101 (the caller) and 102 (the callee), and sipp to drive it."""

    core: CoreProcess
    peers: SippPeers
    workdir: Path

    def register(self, port: int, number: str = CALLEE, password: str = CALLEE_PASSWORD) -> None:
        run = run_sipp(
            "register.xml", (self.core.host, self.core.port),
            [[number, credentials(number, password), 3600]], workdir=self.workdir, port=port,
        )  # fmt: skip
        run.assert_passed()
        assert run.statuses == [401, 200], run.describe()

    def callee(
        self, scenario: str, *, media: int | None = None, ring_ms: int = 0, rtp: bool = True,
        hold_ms: int = 0, calls: int = 1, timeout: float = 30.0, port: int | None = None,
    ) -> BackgroundSipp:  # fmt: skip
        """Register 102 from a new port (or `port`) and start `scenario` answering there; the
        SDP answer names `media` (default: that sipp's own media port)."""
        if port is None:
            port = free_port()
            self.register(port)
        media_port = free_media_port()
        row: list[str | int] = [media or media_port, ring_ms, int(rtp), hold_ms]
        return self.peers.start(
            scenario, [row], port=port, media_port=media_port, calls=calls, timeout=timeout
        )

    def caller(
        self, scenario: str, *, dialled: str = CALLEE, hold_ms: int | Sequence[int] = 1000,
        rtp: bool = True, password: str = CALLER_PASSWORD, extra: str = "", calls: int = 1,
        timeout: float = 30.0, sipp_args: tuple[str, ...] = (),
    ) -> BackgroundSipp:  # fmt: skip
        """Start `scenario` as 101 (claiming the display name Mallory) dialling `dialled`;
        several `hold_ms` values make one injection row each, used by the calls in turn."""
        auth = credentials(CALLER, password)
        holds = [hold_ms] if isinstance(hold_ms, int) else list(hold_ms)
        rows: list[list[str | int]] = [
            [CALLER, auth, hold, dialled, CLAIMED_NAME, extra, int(rtp)] for hold in holds
        ]
        return self.peers.start(
            scenario, rows, port=free_port(), media_port=free_media_port(), calls=calls,
            timeout=timeout, extra=sipp_args,
        )  # fmt: skip

    def call(self, scenario: str, **kwargs: Any) -> SippRun:
        """Run a caller to its end."""
        return self.caller(scenario, **kwargs).wait()

    def cdr_rows(self) -> list[dict[str, Any]]:
        """Every CDR row, oldest first."""
        return all_cdrs(self.core.data)

    def wait_cdrs(self, n: int, timeout: float = CDR_WAIT) -> list[dict[str, Any]]:
        """The CDR rows once there are `n` (polled: the row has no other signal)."""
        rows = wait_cdrs(self.core.data, lambda found: len(found) >= n, timeout, f"{n} CDRs")
        assert len(rows) == n, f"expected {n} CDR rows, found {rows}"
        return rows

    def open_files(self) -> Counter[str]:
        """What the core's file descriptors point at (for a leak's message)."""
        assert self.core.proc is not None
        fd_dir = Path(f"/proc/{self.core.proc.pid}/fd")
        sockets = _socket_names(self.core.proc.pid)
        found: Counter[str] = Counter()
        for fd in fd_dir.iterdir():
            try:
                target = os.readlink(fd)
            except FileNotFoundError:
                continue  # closed while we looked
            name = sockets.get(target, target)
            found[f"{name} (fd {fd.name})" if "sqlite3" in name else name] += 1
        return found

    def collect(self) -> int:
        """Run the core's garbage collector; how many objects in cycles it has ever freed."""
        reply = control.call(self.core.data, "gc")
        return int(reply["collected_since_start"])

    def counters(self) -> dict[str, int]:
        return {k: v for k, v in control.call(self.core.data, "counters").items() if k != "ok"}


def free_rtp_range() -> int:
    """The first port of :data:`RTP_PORTS` consecutive UDP ports in :data:`RTP_RANGES` that
    nothing has bound right now (other tests and benchmarks take ranges of their own there)."""
    for _ in range(50):
        low = random.randrange(RTP_RANGES[0], RTP_RANGES[1] - RTP_PORTS, 2)
        with ExitStack() as stack:
            try:
                for port in range(low, low + RTP_PORTS):
                    sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                    sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return low
    raise RuntimeError(f"no {RTP_PORTS} free UDP ports in a row in {RTP_RANGES}")


def _socket_names(pid: int) -> dict[str, str]:
    """`socket:[INODE]` -> `udp 127.0.0.1:PORT (socket:[INODE])` for the IPv4 sockets of `pid`."""
    names = {}
    for proto in ("udp", "tcp"):
        table = Path(f"/proc/{pid}/net/{proto}").read_text().splitlines()[1:]
        for line in table:
            fields = line.split()
            host, port = fields[1].split(":")
            address = socket.inet_ntoa(bytes.fromhex(host)[::-1])
            inode = f"socket:[{fields[9]}]"
            names[inode] = f"{proto} {address}:{int(port, 16)} ({inode})"
    return names


@pytest.fixture
def office(core_factory: type[CoreProcess], tmp_path: Path) -> Iterator[Office]:
    """The core, on an RTP port range of its own: other tests' cores on this machine use the
    default range, and a stream still flowing to a port one of them closed must not reach (and,
    by latching, take over) a leg of ours."""
    core = core_factory(data=tmp_path / "var")
    low = free_rtp_range()
    core.cli("config", "set", "rtp.port_min", str(low))
    core.cli("config", "set", "rtp.port_max", str(low + RTP_PORTS - 1))
    core.start()
    core.cli("ext", "add", CALLER, "--name", CALLER_NAME, "--password", CALLER_PASSWORD)
    core.cli("ext", "add", CALLEE, "--name", CALLEE_NAME, "--password", CALLEE_PASSWORD)
    peers = SippPeers((core.host, core.port), tmp_path / "sipp")
    try:
        yield Office(core, peers, tmp_path / "sipp")
    finally:
        peers.close()


# -- helpers for assertions ------------------------------------------------------------------


def statuses(responses: list[SipMessage]) -> list[int]:
    """Status codes in order of first arrival (a retransmitted response counted once)."""
    return list(dict.fromkeys(m.status for m in responses if m.status is not None))


def sdp_formats(message: SipMessage) -> list[str]:
    """The payload types of the first m=audio line of a message's SDP body."""
    for line in message.body.splitlines():
        if line.startswith("m=audio "):
            return line.split()[3:]
    raise AssertionError(f"no m=audio line in\n{message}")


def only(messages: list[SipMessage], what: str) -> SipMessage:
    assert len(messages) == 1, f"expected one {what}, got {len(messages)}:\n" + "\n".join(
        map(str, messages)
    )
    return messages[0]


def assert_rtp(stats: dict[str, Any] | None, leg: str) -> None:
    assert stats is not None, f"no RTP statistics for the {leg}"
    assert stats["packets"] > 0, f"the box received no RTP from the {leg}: {stats}"
    assert stats["sent"] > 0, f"the box sent no RTP to the {leg}: {stats}"
    assert stats["lost"] == 0, f"RTP from the {leg} was lost on loopback: {stats}"


# -- 1. answered calls -----------------------------------------------------------------------


def test_answered_call_caller_hangs_up(office: Office) -> None:
    callee = office.callee("call_uas_answer.xml", ring_ms=300)

    caller = office.call("call_uac.xml", hold_ms=1500)
    caller.assert_passed()
    answering = callee.wait()
    answering.assert_passed()

    assert statuses(caller.responses_to("INVITE", 1)) == [407], caller.describe()
    assert statuses(caller.responses_to("INVITE", 2)) == [100, 180, 200], caller.describe()
    assert statuses(caller.responses_to("BYE")) == [200], caller.describe()
    ok = caller.responses_to("INVITE", 2)[-1]
    assert sdp_formats(ok)[0] == "0", f"the caller was not answered with PCMU:\n{ok}"

    invite = only(answering.requests("INVITE"), "INVITE at the callee")
    identity = f'"{CALLER_NAME}" <sip:{CALLER}@{office.core.host}:{office.core.port}>'
    assert invite.one("From").startswith(identity + ";tag="), invite
    assert invite.one("P-Asserted-Identity") == identity, invite
    assert CLAIMED_NAME not in str(invite), invite
    assert invite.one("Call-ID") != caller.sent[0].one("Call-ID"), "the box must be a B2BUA"
    formats = sdp_formats(invite)
    assert formats[0] == "0" and "a=rtpmap:0 PCMU/8000" in invite.body, invite
    only(answering.requests("BYE"), "BYE at the callee")

    (row,) = office.wait_cdrs(1)
    assert row["caller"] == CALLER and row["caller_name"] == CALLER_NAME, row
    assert row["dialled"] == CALLEE and row["answered_by"] == CALLEE, row
    assert (row["disposition"], row["hangup_side"], row["hangup_cause"]) == (
        "answered", "caller", "BYE",
    ), row  # fmt: skip
    assert (row["codec_caller"], row["codec_callee"]) == ("PCMU", "PCMU"), row
    assert 1.0 <= row["billsec"] <= row["duration"], row
    assert row["started_at"] <= row["answered_at"] <= row["ended_at"], row
    assert_rtp(row["rtp_caller"], "caller")
    assert_rtp(row["rtp_callee"], "callee")


def test_pbx_status_lists_a_live_call(office: Office) -> None:
    callee = office.callee("call_uas_answer.xml")
    caller = office.caller("call_uac.xml", hold_ms=4000)
    deadline = time.monotonic() + 15
    live: list[dict[str, Any]] = []
    while not live and time.monotonic() < deadline:  # a state to poll: no event tells it
        live = [c for c in control.call(office.core.data, "status")["calls"]
                if c["state"] == "answered"]  # fmt: skip
        time.sleep(0.1)
    assert live, "the call never showed as answered in the core's status"
    out = office.core.cli("status").stdout
    assert "calls: 1" in out, out
    assert f"{CALLER} -> {CALLEE}" in out and "answered" in out and "PCMU/PCMU" in out, out
    caller.wait().assert_passed()
    callee.wait().assert_passed()
    assert "calls: 0" in office.core.cli("status").stdout


def test_reliable_provisionals_when_the_caller_requires_them(office: Office) -> None:
    """RFC 3262: a caller that requires 100rel gets its 180 with RSeq and Require: 100rel,
    its PRACK is answered 200, and the call goes on to be answered."""
    callee = office.callee("call_uas_answer.xml", ring_ms=300)
    caller = office.call("call_uac_100rel.xml", hold_ms=200)
    caller.assert_passed()
    callee.wait().assert_passed()

    ringing = [r for r in caller.responses_to("INVITE", 2) if r.status == 180]
    assert ringing, caller.describe()
    assert ringing[0].one("Require") == "100rel" and ringing[0].one("RSeq").isdigit(), ringing[0]
    assert statuses(caller.responses_to("PRACK")) == [200], caller.describe()
    assert statuses(caller.responses_to("INVITE", 2))[-1] == 200, caller.describe()
    (row,) = office.wait_cdrs(1)
    assert (row["disposition"], row["hangup_side"]) == ("answered", "caller"), row


def test_answered_call_callee_hangs_up(office: Office) -> None:
    callee = office.callee("call_uas_hangup.xml", hold_ms=1500)

    caller = office.call("call_uac_await_bye.xml")
    caller.assert_passed()
    hanging_up = callee.wait()
    hanging_up.assert_passed()

    assert statuses(caller.responses_to("INVITE", 2)) == [100, 180, 200], caller.describe()
    only(caller.requests("BYE"), "BYE at the caller")
    assert statuses(hanging_up.responses_to("BYE")) == [200], hanging_up.describe()

    (row,) = office.wait_cdrs(1)
    assert (row["disposition"], row["hangup_side"], row["hangup_cause"]) == (
        "answered", "callee", "BYE",
    ), row  # fmt: skip
    assert row["answered_by"] == CALLEE and row["billsec"] >= 1.0, row
    assert (row["codec_caller"], row["codec_callee"]) == ("PCMU", "PCMU"), row
    assert_rtp(row["rtp_caller"], "caller")
    assert_rtp(row["rtp_callee"], "callee")


# -- 2. failure paths ------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    callee: str | None  # the callee's scenario; None: 102 is not registered
    dialled: str
    password: str
    status: int
    disposition: str
    side: str
    cause: str  # the CDR's hangup_cause


REFUSALS = {
    "busy": Refusal("call_uas_busy.xml", CALLEE, CALLER_PASSWORD, 486, "busy", "callee",
                    "486 Busy Here"),
    "unknown number": Refusal(None, "999", CALLER_PASSWORD, 404, "failed", "system",
                              "404 Not Found (no extension 999)"),
    "callee not registered": Refusal(None, CALLEE, CALLER_PASSWORD, 480, "failed", "system",
                                     f"480 Temporarily Unavailable ({CALLEE} is not registered)"),
}  # fmt: skip
"""Calls from a caller that authenticated: each refusal is recorded (a wrong password is not:
see the test after)."""


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refused_call(office: Office, case: str) -> None:
    refusal = REFUSALS[case]
    callee = office.callee(refusal.callee, timeout=15) if refusal.callee else None

    caller = office.call("call_uac_rejected.xml", dialled=refusal.dialled,
                         password=refusal.password)  # fmt: skip
    caller.assert_passed()

    assert statuses(caller.responses_to("INVITE", 1)) == [407], caller.describe()
    assert caller.final.status == refusal.status, caller.describe()
    if refusal.status == 486:
        assert callee is not None
        callee.wait().assert_passed()
    elif callee is not None:  # ready to answer, but the box must not have rung it
        assert not callee.stop().requests("INVITE"), "the callee was rung"
    (row,) = office.wait_cdrs(1)
    assert (row["caller"], row["dialled"]) == (CALLER, refusal.dialled), row
    assert (row["disposition"], row["hangup_side"]) == (refusal.disposition, refusal.side), row
    assert row["hangup_cause"] == refusal.cause, row
    assert row["answered_at"] is None and row["answered_by"] is None, row
    assert row["billsec"] == 0, row


def test_a_wrong_password_is_refused_and_counted_but_not_recorded(office: Office) -> None:
    callee = office.callee("call_uas_answer.xml", timeout=15)
    caller = office.call("call_uac_rejected.xml", dialled=CALLEE, password="Wr0ngPassw0rd")
    caller.assert_passed()
    assert statuses(caller.responses_to("INVITE", 1)) == [407], caller.describe()
    assert caller.final.status == 403, caller.describe()
    assert not callee.stop().requests("INVITE"), "the callee was rung"
    assert control.call(office.core.data, "counters")["refused.wrong_password"] == 1
    # A refused call that is recorded, after it: its row is the only one (CDRs are written in
    # order, so a row for the attempt before would be there already).
    office.call("call_uac_rejected.xml", dialled="999").assert_passed()
    (row,) = office.wait_cdrs(1)
    assert (row["caller"], row["dialled"], row["hangup_cause"]) == (
        CALLER, "999", "404 Not Found (no extension 999)",
    ), row  # fmt: skip


def test_no_answer_ends_after_the_ring_timeout(office: Office) -> None:
    office.core.cli("config", "set", "calls.ring_timeout", "5")
    callee = office.callee("call_uas_ring.xml")

    caller = office.call("call_uac_rejected.xml")
    caller.assert_passed()
    ringing = callee.wait()
    ringing.assert_passed()

    assert statuses(caller.responses_to("INVITE", 2)) == [100, 180, 480], caller.describe()
    invite = caller.requests("INVITE", "sent")[-1]
    final = caller.final
    waited = caller.time_of(final) - caller.time_of(invite)
    assert 4.5 <= waited <= 10.0, f"480 after {waited:.2f} s, expected about 5 s"
    cancel = only(ringing.requests("CANCEL"), "CANCEL at the callee")
    assert cancel.one("Call-ID") == ringing.requests("INVITE")[0].one("Call-ID")

    (row,) = office.wait_cdrs(1)
    assert (row["disposition"], row["hangup_side"]) == ("no-answer", "system"), row
    assert row["hangup_cause"] == "480 Temporarily Unavailable (no answer)", row
    assert row["answered_by"] is None and 4.5 <= row["duration"] <= 10.0, row


def test_caller_cancels_while_ringing(office: Office) -> None:
    callee = office.callee("call_uas_ring.xml")

    caller = office.call("call_uac_cancel.xml")
    caller.assert_passed()
    ringing = callee.wait()
    ringing.assert_passed()

    assert statuses(caller.responses_to("CANCEL")) == [200], caller.describe()
    assert statuses(caller.responses_to("INVITE", 2)) == [100, 180, 487], caller.describe()
    only(ringing.requests("CANCEL"), "CANCEL at the callee")

    (row,) = office.wait_cdrs(1)
    assert (row["disposition"], row["hangup_side"]) == ("cancelled", "caller"), row
    assert row["hangup_cause"] == "487 Request Terminated", row
    assert row["answered_by"] is None, row


# -- 3. parallel fork --------------------------------------------------------------------------


def test_both_contacts_ring_and_the_loser_is_cancelled(office: Office) -> None:
    answers = office.callee("call_uas_answer.xml", ring_ms=1000)
    rings = office.callee("call_uas_ring.xml")

    caller = office.call("call_uac.xml", hold_ms=500)
    caller.assert_passed()
    answered, cancelled = answers.wait(), rings.wait()
    answered.assert_passed()
    cancelled.assert_passed()

    assert statuses(caller.responses_to("INVITE", 2)) == [100, 180, 200], caller.describe()
    for run in (answered, cancelled):
        only(run.requests("INVITE"), "INVITE at each contact")
        assert 180 in [m.status for m in run.sent], run.describe()
    only(cancelled.requests("CANCEL"), "CANCEL at the contact that did not answer")
    assert not answered.requests("CANCEL"), answered.describe()
    only(answered.requests("BYE"), "BYE at the contact that answered")

    (row,) = office.wait_cdrs(1)
    assert (row["disposition"], row["answered_by"]) == ("answered", CALLEE), row


# -- 4. media timeout --------------------------------------------------------------------------


def test_silent_call_is_hung_up_after_the_media_timeout(office: Office) -> None:
    office.core.cli("config", "set", "calls.media_timeout", "5")
    callee = office.callee("call_uas_answer.xml", rtp=False)

    caller = office.call("call_uac_await_bye.xml", rtp=False)
    caller.assert_passed()
    answering = callee.wait()
    answering.assert_passed()

    ok = caller.responses_to("INVITE", 2)[-1]
    for run, answer in ((caller, ok), (answering, answering.requests("ACK")[0])):
        bye = only(run.requests("BYE"), "BYE from the box")
        after = run.time_of(bye) - run.time_of(answer)
        assert 4.5 <= after <= 9.0, f"BYE {after:.2f} s after the answer\n{run.describe()}"

    (row,) = office.wait_cdrs(1)
    assert (row["disposition"], row["hangup_side"], row["hangup_cause"]) == (
        "answered", "system", "media timeout",
    ), row  # fmt: skip
    assert row["rtp_caller"]["packets"] == 0 and row["rtp_callee"]["packets"] == 0, row


# -- 5. SIP INFO becomes RFC 4733 --------------------------------------------------------------


def test_sip_info_dtmf_reaches_the_callee_as_rfc4733(office: Office) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as media:
        media.bind(("127.0.0.1", 0))
        callee = office.callee("call_uas_answer.xml", media=media.getsockname()[1], rtp=False)

        caller = office.call("call_uac_info_dtmf.xml", hold_ms=300, rtp=False)
        caller.assert_passed()
        callee.wait().assert_passed()
        assert statuses(caller.responses_to("INFO")) == [200], caller.describe()

        events: list[tuple[tuple[int, bool, int, int], TelephoneEvent]] = []
        media.settimeout(5.0)
        while sum(e.end for _, e in events) < 3:  # RFC 4733 §2.5.1.4: the end packet 3 times
            try:
                packet = media.recv(2048)
            except TimeoutError:
                raise AssertionError(f"no (more) RFC 4733 packets; got {events}") from None
            header = rtp_header(packet)
            if header is not None and header[0] == DTMF_PT:
                events.append((header, TelephoneEvent.parse(packet[12:])))

    assert {e.event for _, e in events} == {5}, events
    assert len({h[3] for h, _ in events}) == 1, f"one event, one timestamp: {events}"
    ends = [e.end for _, e in events]
    assert ends == sorted(ends) and ends[-3:] == [True] * 3, f"end bit on the last: {events}"
    assert events[0][0][1], "the first packet of an event has the marker bit"
    assert events[-1][1].duration == 160 * 8, f"Duration=160 ms is 1280 at 8 kHz: {events}"


# -- 6. session timer (RFC 4028) ---------------------------------------------------------------


def test_session_interval_below_min_se_is_refused_with_422(office: Office) -> None:
    caller = office.call("call_uac_rejected.xml", extra="Session-Expires: 60")
    caller.assert_passed()

    final = caller.final
    assert final.status == 422, caller.describe()
    assert final.one("Min-SE").split(";")[0].strip() == "90", final


def test_session_interval_is_echoed_in_the_200(office: Office) -> None:
    callee = office.callee("call_uas_answer.xml")

    caller = office.call("call_uac.xml", hold_ms=200, extra="Session-Expires: 1800")
    caller.assert_passed()
    callee.wait().assert_passed()

    ok = caller.responses_to("INVITE", 2)[-1]
    assert ok.status == 200 and ok.one("Session-Expires") == "1800;refresher=uac", ok


# -- 7. leaks ----------------------------------------------------------------------------------

DRAINED = ("calls", "dialogs", "pending_invites", "media_legs", "server_transactions",
           "client_transactions")  # fmt: skip
"""Counters that must be back to 0; also `call_tasks` when the core reports it (a core that
sets calls up without tasks of their own does not; `tasks` counts every task either way)."""
RESTORED = ("free_rtp_ports", "tasks", "open_fds")
MAX_CYCLE_OBJECTS = 20
"""Objects the collector may find in cycles after all the calls: none come from a call (seen:
0 after 300 concurrent calls with RTP), a few may from a rare path such as a logged error."""
"""Counters that must be back to their value before the calls."""


def drained(counters: dict[str, int]) -> bool:
    return all(counters[k] == 0 for k in DRAINED) and counters.get("call_tasks", 0) == 0


def idle(counters: dict[str, int]) -> bool:
    """No call in progress (transactions may linger: they end by their timers)."""
    return drained({**counters, "server_transactions": 0, "client_transactions": 0})


def test_sequential_calls_leak_nothing(office: Office) -> None:
    port = free_port()
    office.register(port)
    # A first call, not counted: what a process opens once, on first use, is no leak.
    first = office.callee("call_uas_answer.xml", port=port)
    office.call("call_uac.xml", hold_ms=0).assert_passed()
    first.wait().assert_passed()
    office.wait_cdrs(1)
    before = wait_counters(office, idle, DRAIN)
    fds_before = office.open_files()
    cycles_before = office.collect()

    callee = office.callee("call_uas_answer.xml", port=port, calls=LEAK_CALLS, timeout=300)
    caller = office.call(
        "call_uac.xml", hold_ms=LEAK_HOLDS_MS, calls=LEAK_CALLS, timeout=300,
        sipp_args=("-l", "1", "-r", "1000"),
    )  # fmt: skip
    assert caller.returncode == 0 and not caller.errors, caller.describe()[-6000:]
    answering = callee.wait()
    assert answering.returncode == 0 and not answering.errors, answering.describe()[-6000:]
    rows = office.wait_cdrs(1 + LEAK_CALLS)[1:]

    after = wait_counters(
        office, lambda c: drained(c) and all(c[k] == before[k] for k in RESTORED), DRAIN
    )
    for key in (*DRAINED, *(["call_tasks"] if "call_tasks" in after else [])):
        assert after[key] == 0, f"{key} left after {LEAK_CALLS} calls: {after}"
    fds_after = office.open_files()
    for key in RESTORED:
        assert after[key] == before[key], (
            f"{key}: {before[key]} before, {after[key]} after; files opened: "
            f"{sorted((fds_after - fds_before).elements())}, closed: "
            f"{sorted((fds_before - fds_after).elements())}; before: {sorted(fds_before.items())}"
        )

    # Ended calls leave no reference cycles: each would wait for the cyclic garbage collector,
    # whose passes stall the event loop (SIP and RTP alike) for as long as they take.
    cycles = office.collect() - cycles_before
    assert cycles <= MAX_CYCLE_OBJECTS, f"{cycles} objects in reference cycles after the calls"

    assert Counter(r["disposition"] for r in rows) == {"answered": LEAK_CALLS}
    assert all(r["hangup_side"] == "caller" and r["answered_by"] == CALLEE for r in rows)
    for leg in ("rtp_caller", "rtp_callee"):
        assert sum(r[leg]["packets"] for r in rows) > 0, f"no call carried RTP ({leg})"
        assert sum(r[leg]["sent"] for r in rows) > 0, f"the box relayed no RTP ({leg})"


def wait_counters(office: Office, done: Any, timeout: float) -> dict[str, int]:
    """Poll the core's counters (they have no event to wait on) until `done(counters)`, at most
    `timeout` s; return the last reading either way."""
    deadline = time.monotonic() + timeout
    while True:
        counters = office.counters()
        if done(counters) or time.monotonic() > deadline:
            return counters
        time.sleep(0.5)
