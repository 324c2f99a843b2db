"""Trunk benchmark: PSTN caller (sipp) → Kamailio provider → `pbx run` → extension (sipp).

Every call is an inbound trunk call as a provider delivers it: a sipp UAC on the provider's
"PSTN side" (bench/trunks_pstn_call.xml) sends an INVITE without credentials to one of the
office's DIDs at a real Kamailio (tests/interop/kamailio.py, the trunk tests' provider); the
provider finds the DID's subscriber (office1, the box's register trunk) and relays the INVITE,
record-routed, to the box's registered Contact; the box recognises the trunk by the source
address, resolves the DID in its dial plan (`did add ... --to extension:101 --trunk kam`) and
sends its own INVITE to extension 101, a sipp UAS (tests/interop/sipp/uas_answer.xml)
registered from the port it answers on; 180 and 200 come back through the box and the
provider; ACK and the caller's BYE follow the Record-Route. Both phones stream µ-law RTP in
20 ms packets through the box (the provider handles signalling only) for the hold time.
The core is pinned to one CPU; Kamailio, both sipps and tcpdump to another; traffic stays on
127.0.0.1.

Three parts:

* Concurrency (default 20, 50, 100 calls held 12 s): sipp starts N/hold calls per second with
  at most N open, 5N in all, so that from `hold` to 5 x `hold` seconds N calls are up. Over
  that period the core's CPU is read over one window, then RTP is captured on `lo` over a
  second (the relay figures of bench/calls). Post-dial delay through the box, from a capture of
  the box's and the provider's SIP ports, for the calls started with N up: the provider's
  INVITE arriving at the box → the box's INVITE leaving for the extension; the extension's 180
  arriving → the box's 180 leaving for the provider; the same for the 200. Also the ringback
  delay the PSTN caller sees (its INVITE reaching the provider → the provider's 180 to it),
  which adds the provider twice and the extension.
* Setup rate (default 10, 25, 50 … 150 calls/s, 15 s each, 5 s hold with RTP): a step passes
  with < 1 % of its calls failed (failed, timed out or never started).
* Dial-plan lookup, in this process: a `DialPlan` with a `Directory` loaded from a store of
  10 … 10,000 DIDs and 1 … 100 outbound routes (three patterns each); per-lookup time of
  `inbound_origin()` and `resolve()` for DIDs, and of `resolve()` for outbound numbers matching
  the first route, the last route and none (best of several timed passes).

DIDs are created through `appliance.store.dids.add` in one transaction; the extension, the
trunk and settings through the `pbx` CLI. Captures need root and Debian's tcpdump (installed
with apt-get when missing, unless --no-install); the provider needs Debian's `kamailio` and
`kamailio-sqlite-modules`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, cast

from bench import pcap
from bench.calls_bench import (
    RECV_TIMEOUT_MS,
    RTP_PORT_MAX,
    RTP_PORT_MIN,
    UAS_SCENARIO,
    Capture,
    CdrFigures,
    Processes,
    RelayFigures,
    Setup,
    Signalling,
    SippFigures,
    _sip_head,
    analyse_relay,
    calls_in_box,
    cdr_figures,
    code_version,
    ensure_tcpdump,
    finish_callers,
    free_media_port,
    measure,
    open_files_limit,
    other_captures,
    parse_list,
    percentile,
    process_cpu,
    register_callee,
    rtp_capture,
    sleep_until,
    start_callee,
    wait_idle,
    write_audio,
)
from bench.register_bench import (
    BenchError,
    Core,
    busy_cpu_pct,
    cpu_times,
    machine_info,
    pbx_cli,
    rss_mb,
    runqueue_wait,
)
from tests.interop.kamailio import Provider, ProviderFailed
from tests.interop.sipp import free_port

if TYPE_CHECKING:
    from appliance.pbx.legs import Call
    from appliance.pbx.trunks import Trunks
    from appliance.store.database import Database

ROOT = Path(__file__).resolve().parent.parent
PSTN_SCENARIO = Path(__file__).resolve().parent / "trunks_pstn_call.xml"
REGISTER_SCENARIO = ROOT / "tests" / "interop" / "sipp" / "register.xml"
TRUNK = "kam"
SUBSCRIBER, SUBSCRIBER_PASSWORD = "office1", "Tr1-Bench-Secret-42x"
EXTENSION, EXTENSION_PASSWORD = "101", "Kq7vT9pLm2benchX"
COUNTRY, AREA_CODE = "RU", "495"
LOAD_DID_BASE = 74951000000
"""The load's DIDs: +7 495 100-00-00 on (the provider writes them without the plus)."""
LOOKUP_DID_BASE = 74952000000
CALLER_BASE = 74990000000
"""PSTN callers: +7 499 000-00-00 on, a new number for every call of the run."""
DEFAULT_CONCURRENCY = (20, 50, 100)
DEFAULT_RATES = (10, 25, 50, 75, 100, 125, 150)
DEFAULT_LOOKUP_DIDS = (10, 100, 1000, 10000)
DEFAULT_LOOKUP_ROUTES = (1, 10, 100)
QUICK_CONCURRENCY = (5,)
QUICK_RATES = (10,)
QUICK_LOOKUP_DIDS = (10, 100, 1000)
QUICK_LOOKUP_ROUTES = (1, 10)
DEFAULT_ROUNDS, QUICK_ROUNDS = 5, 3
"""A concurrency step makes ROUNDS x N calls: N are up from `hold` to ROUNDS x `hold` s."""
FAIL_LIMIT_PCT = 1.0
RATE_BAR = 50
"""The issue's bar: the box is never the limit below this setup rate."""
PDD_BAR_MS, PDD_BAR_CALLS = 5.0, 50
BUSY_CORE_PCT = 90.0
BOX_DELAY_MS = 100.0
"""The box is the limit at a rate when its core is this busy (of its one CPU) over some second
of the step, or when the post-dial delay it adds reaches BOX_DELAY_MS at the 99th percentile
(20 x the bar: calls queue inside it)."""
BUSY_MACHINE_WAIT_PCT = 10.0
"""A step in which the core waited this share of the time for its (pinned) CPU measured the
machine's other tenants, not the box: it decides no bar."""
SCALING_FLAT, SCALING_LOG = 2.0, 4.0
"""Lookup time at the largest size over the smallest: up to 2 is flat (noise), up to 4 no worse
than logarithmic (log 10,000 / log 10 = 4); a linear search would give 1,000 (DIDs) or 100."""


# ---------------------------------------------------------------- figures


@dataclass
class Delays:
    n: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0

    @classmethod
    def of(cls, seconds: Iterable[float]) -> Delays:
        values = sorted(seconds)
        if not values:
            return cls()
        return cls(
            len(values),
            1000 * percentile(values, 50),
            1000 * percentile(values, 99),
            1000 * values[-1],
        )

    def text(self) -> str:
        return f"{self.p50_ms:.1f}/{self.p99_ms:.1f}/{self.max_ms:.1f} ({self.n})"


@dataclass
class TrunkSetupFigures:
    """Call set-up through the box (and the provider), from a SIP capture."""

    invites_in: int = 0
    """The provider's INVITEs arriving at the box."""
    invites_out: int = 0
    """The box's INVITEs to the extension."""
    answered: int = 0
    """The box's 200s to the provider."""
    invite: Delays = field(default_factory=Delays)
    """The provider's INVITE in → the box's INVITE out to the extension (the PDD it adds)."""
    ringing: Delays = field(default_factory=Delays)
    """The extension's 180 in → the box's 180 out to the provider."""
    answer: Delays = field(default_factory=Delays)
    """The extension's 200 in → the box's 200 out to the provider."""
    ringback: Delays = field(default_factory=Delays)
    """The PSTN caller's INVITE reaching the provider → the provider's 180 to it (end to end:
    the provider twice, the box twice, the extension's immediate 180)."""
    first_invite: float = 0.0
    last_invite: float = 0.0
    capture_dropped: int | None = None


@dataclass
class ConcurrencyStep:
    calls: int
    hold_s: float
    rounds: int
    sipp: SippFigures = field(default_factory=SippFigures)
    window_s: float = 0.0
    calls_in_box: float = 0.0
    core_cpu_pct: float = 0.0
    core_sys_pct: float = 0.0
    core_wait_pct: float = 0.0
    tools_cpu_pct: float = 0.0
    provider_cpu_pct: float = 0.0
    cpu_s_per_call_s: float = 0.0
    relay: RelayFigures = field(default_factory=RelayFigures)
    setup: TrunkSetupFigures = field(default_factory=TrunkSetupFigures)
    cdr: CdrFigures = field(default_factory=CdrFigures)
    rss_mb_after: float = 0.0
    calls_left: int = 0
    """Calls of this step the box still held 60 s after its last call ended (none, if well)."""
    stray_messages: int = 0

    @property
    def disturbed(self) -> bool:
        return max(self.core_wait_pct, self.relay.core_wait_pct) > BUSY_MACHINE_WAIT_PCT


@dataclass
class RateStep:
    offered_rate: int
    duration_s: float
    hold_s: float
    sipp: SippFigures = field(default_factory=SippFigures)
    achieved_rate: float = 0.0
    elapsed_s: float = 0.0
    peak_calls_in_box: int = 0
    core_cpu_pct: float = 0.0
    core_cpu_peak_pct: float = 0.0
    """The core's busiest second of the step."""
    core_sys_pct: float = 0.0
    core_wait_pct: float = 0.0
    tools_cpu_pct: float = 0.0
    provider_cpu_pct: float = 0.0
    setup: TrunkSetupFigures = field(default_factory=TrunkSetupFigures)
    cdr: CdrFigures = field(default_factory=CdrFigures)
    rss_mb_after: float = 0.0
    calls_left: int = 0
    stray_messages: int = 0

    @property
    def passed(self) -> bool:
        return self.sipp.failures_pct < FAIL_LIMIT_PCT

    @property
    def kept_up(self) -> bool:
        """The provider delivered at least 95 % of the offered rate to the box."""
        return self.achieved_rate >= 0.95 * self.offered_rate

    @property
    def disturbed(self) -> bool:
        return self.core_wait_pct > BUSY_MACHINE_WAIT_PCT

    @property
    def box_limited(self) -> bool:
        """The box was the limit: its CPU ran out, or calls queued inside it (BOX_DELAY_MS)."""
        return self.core_cpu_peak_pct >= BUSY_CORE_PCT or self.setup.invite.p99_ms >= BOX_DELAY_MS


@dataclass
class LookupRow:
    """Per-lookup times (µs, best of the timed passes) with `dids` DIDs and `routes` routes."""

    dids: int
    routes: int
    patterns: int
    reload_ms: float = 0.0
    """Directory.load + DialPlan.load from the store (what a `pbx reload` costs)."""
    did_origin_us: float = 0.0
    """inbound_origin(trunk, DID as the provider writes it)."""
    did_resolve_us: float = 0.0
    """resolve(DID) for a trunk's call: the DID's destination."""
    unknown_did_us: float = 0.0
    out_first_us: float = 0.0
    """resolve(number) for an extension's call matching the first route."""
    out_last_us: float = 0.0
    """... matching the last route (a linear scan's worst case)."""
    out_none_us: float = 0.0
    """... matching no route (404)."""
    table_last_us: float = 0.0
    """PatternTable.lookup alone of a number matching the last route."""
    cold_out_us: float = 0.0
    """resolve() of distinct outbound numbers in the first pass after a load (the table's
    automaton builds its transitions on first use)."""


@dataclass
class Result:
    machine: dict[str, Any]
    config: dict[str, Any]
    idle_rss_mb: float = 0.0
    concurrency: list[ConcurrencyStep] = field(default_factory=list)
    rates: list[RateStep] = field(default_factory=list)
    lookups: list[LookupRow] = field(default_factory=list)
    gc_after: dict[str, Any] = field(default_factory=dict)
    """The core's `gc` control command after the calls: cycles that ended calls left."""
    reloads: list[dict[str, Any]] = field(default_factory=list)
    """The running core's `reload` (what every `pbx did add` asks for), timed over the control
    socket with the load's DIDs and again with more: the event loop serves nothing meanwhile."""

    def best_rate(self) -> RateStep | None:
        """The highest offered rate that passed and was kept up."""
        kept = [s for s in self.rates if s.passed and s.kept_up]
        return max(kept, key=lambda s: s.offered_rate) if kept else None

    def best_clean_rate(self) -> RateStep | None:
        """The highest kept-up passing rate at which the box was not the limit and no SIP
        message was retransmitted (every answer within 500 ms)."""
        clean = [
            s for s in self.rates
            if s.passed and s.kept_up and not s.box_limited and s.sipp.retransmissions == 0
        ]  # fmt: skip
        return max(clean, key=lambda s: s.offered_rate) if clean else None

    def rate_bar(self) -> bool | None:
        """The box never the limit up to RATE_BAR/s: every step there passed, kept up, and
        the box was not its limit (None when no step reached RATE_BAR)."""
        steps = [s for s in self.rates if s.offered_rate <= RATE_BAR]
        if not steps or max(s.offered_rate for s in steps) < RATE_BAR:
            return None
        failed = [s for s in steps if not (s.passed and s.kept_up and not s.box_limited)]
        if any(s.disturbed for s in failed):
            return None  # the machine was busy: the step measured it, not the box
        return not failed

    def pdd_bar(self) -> bool | None:
        """PDD p99 at PDD_BAR_CALLS concurrent calls within PDD_BAR_MS (None when not measured,
        or when it missed on a busy machine)."""
        step = self.pdd_step()
        if step is None or step.setup.invite.n == 0:
            return None
        met = step.setup.invite.p99_ms <= PDD_BAR_MS
        return None if not met and step.disturbed else met

    def pdd_step(self) -> ConcurrencyStep | None:
        return next((s for s in self.concurrency if s.calls == PDD_BAR_CALLS), None)

    def scaling(self) -> dict[str, float]:
        """Lookup time at the largest size over the smallest, with the other size largest."""
        if not self.lookups:
            return {}
        most_dids = max(r.dids for r in self.lookups)
        most_routes = max(r.routes for r in self.lookups)
        by_dids = sorted((r for r in self.lookups if r.routes == most_routes), key=lambda r: r.dids)
        by_routes = sorted((r for r in self.lookups if r.dids == most_dids), key=lambda r: r.routes)
        out: dict[str, float] = {}

        def ratio(rows: Sequence[LookupRow], get: Callable[[LookupRow], float]) -> float:
            low, high = get(rows[0]), get(rows[-1])
            return high / low if low > 0 else math.inf

        if len(by_dids) > 1:
            out["did_origin"] = ratio(by_dids, lambda r: r.did_origin_us)
            out["did_resolve"] = ratio(by_dids, lambda r: r.did_resolve_us)
        if len(by_routes) > 1:
            out["out_last"] = ratio(by_routes, lambda r: r.out_last_us)
            out["table_last"] = ratio(by_routes, lambda r: r.table_last_us)
        return out

    def to_json(self) -> dict[str, Any]:
        best, clean = self.best_rate(), self.best_clean_rate()
        pdd = self.pdd_step()
        return {
            "machine": self.machine,
            "config": self.config,
            "idle_rss_mb": self.idle_rss_mb,
            "concurrency": [
                {
                    **asdict(s),
                    "failures_pct": s.sipp.failures_pct,
                    "loss_pct": s.relay.loss_pct,
                    "disturbed": s.disturbed,
                }
                for s in self.concurrency
            ],
            "rates": [
                {
                    **asdict(s),
                    "passed": s.passed,
                    "kept_up": s.kept_up,
                    "box_limited": s.box_limited,
                    "disturbed": s.disturbed,
                    "failures_pct": s.sipp.failures_pct,
                }
                for s in self.rates
            ],
            "lookups": [asdict(r) for r in self.lookups],
            "gc_after": self.gc_after,
            "reloads": self.reloads,
            "lookup_scaling": self.scaling(),
            "max_setup_rate_under_1pct": best.offered_rate if best else None,
            "max_setup_rate_box_not_the_limit": clean.offered_rate if clean else None,
            "box_never_the_limit_to_50": self.rate_bar(),
            "pdd_bar_met": self.pdd_bar(),
            "pdd_p99_ms_at_50": pdd.setup.invite.p99_ms if pdd else None,
        }


# ---------------------------------------------------------------- SIP through the box


@dataclass
class TrunkSignalling(Signalling):
    """The SIP of a step at the box's and the provider's ports.

    As in bench/calls: `invites_in` are the provider's INVITEs to the box (first copy),
    `invites_out` the box's to the extension, both keyed by the caller's number (the box keeps
    it in From, normalised, and gives its INVITE a Call-ID of its own); `answers` the box's
    200s to the provider; `byes` the caller's BYEs reaching the box; `media_ports` the box's RTP
    port in each dialog's SDP (its INVITE to the extension, its 200 to the provider)."""

    ringing_in: dict[str, float] = field(default_factory=dict)
    """The box's Call-ID → the extension's first 180 arriving."""
    ringing_out: dict[str, float] = field(default_factory=dict)
    """The provider's Call-ID → the box's first 180 to it."""
    answers_in: dict[str, float] = field(default_factory=dict)
    """The box's Call-ID → the extension's first 200 (to the INVITE) arriving."""
    pstn_invites: dict[str, float] = field(default_factory=dict)
    """Call-ID → the PSTN caller's INVITE reaching the provider (first copy)."""
    pstn_ringing: dict[str, float] = field(default_factory=dict)
    """Call-ID → the provider's first 180 to the PSTN caller."""


_FROM_USER = re.compile(r"<sips?:([^@;>]+)@", re.IGNORECASE)
_AUDIO_PORT = re.compile(rb"^m=audio (\d+) ", re.MULTILINE)


def caller_key(from_header: str) -> str:
    """The caller's number in a From header, as its last ten digits: the provider writes it
    74990000001, the box +74990000001."""
    found = _FROM_USER.search(from_header)
    digits = re.sub(r"\D", "", found.group(1)) if found else ""
    return digits[-10:]


def read_trunk_signalling(
    datagrams: Sequence[pcap.Datagram],
    box_port: int,
    provider_port: int,
    callee_port: int,
    pstn_port: int,
) -> TrunkSignalling:
    sig = TrunkSignalling()
    seen_in: set[str] = set()
    seen_out: set[str] = set()
    for d in datagrams:
        if not d.payload[:3].isalpha():
            continue  # keep-alives and anything that is not a SIP message
        start, headers, body = _sip_head(d.payload)
        call_id = headers.get("call-id", "")
        to_invite = headers.get("cseq", "").upper().endswith("INVITE")
        initial = start.startswith("INVITE ") and ";tag=" not in headers.get("to", "")
        ringing = start.startswith("SIP/2.0 180")
        port = _AUDIO_PORT.search(body)
        src, dst = d.src[1], d.dst[1]
        if src == provider_port and dst == box_port:
            if initial and call_id not in seen_in:
                seen_in.add(call_id)
                sig.invites_in.append((d.time, caller_key(headers.get("from", "")), call_id))
            elif start.startswith("BYE "):
                sig.byes.setdefault(call_id, d.time)
        elif src == box_port and dst == provider_port and to_invite:
            if ringing:
                sig.ringing_out.setdefault(call_id, d.time)
            elif start.startswith("SIP/2.0 200") and call_id not in sig.answers:
                sig.answers[call_id] = d.time
                if port:
                    sig.media_ports[call_id] = int(port.group(1))
        elif src == box_port and dst == callee_port:
            if initial and call_id not in seen_out:
                seen_out.add(call_id)
                user = caller_key(headers.get("from", ""))
                sig.invites_out.setdefault(user, []).append((d.time, call_id))
                if port:
                    sig.media_ports[call_id] = int(port.group(1))
        elif src == callee_port and dst == box_port and to_invite:
            if ringing:
                sig.ringing_in.setdefault(call_id, d.time)
            elif start.startswith("SIP/2.0 200"):
                sig.answers_in.setdefault(call_id, d.time)
        elif src == pstn_port and dst == provider_port and initial:
            sig.pstn_invites.setdefault(call_id, d.time)
        elif src == provider_port and dst == pstn_port and to_invite and ringing:
            sig.pstn_ringing.setdefault(call_id, d.time)
    for times in sig.invites_out.values():
        times.sort()
    return sig


def analyse_trunk_setup(sig: TrunkSignalling, since: float = 0.0) -> TrunkSetupFigures:
    """Delays through the box for the calls whose INVITE reached it at or after `since` (Unix
    time); the counts cover the whole capture."""
    fig = TrunkSetupFigures(
        invites_in=len(sig.invites_in),
        invites_out=sum(len(v) for v in sig.invites_out.values()),
        answered=len(sig.answers),
        first_invite=min((t for t, _, _ in sig.invites_in), default=0.0),
        last_invite=max((t for t, _, _ in sig.invites_in), default=0.0),
    )
    calls = [m for m in sig.matched() if m[0] >= since]
    fig.invite = Delays.of(t_out - t_in for t_in, t_out, _, _ in calls)

    def through(inside: Mapping[str, float], outside: Mapping[str, float]) -> Delays:
        return Delays.of(
            outside[id_in] - inside[id_out]
            for _, _, id_in, id_out in calls
            if id_in in outside and id_out in inside
        )

    fig.ringing = through(sig.ringing_in, sig.ringing_out)
    fig.answer = through(sig.answers_in, sig.answers)
    fig.ringback = Delays.of(
        sig.pstn_ringing[id_in] - sig.pstn_invites[id_in]
        for _, _, id_in, _ in calls
        if id_in in sig.pstn_ringing and id_in in sig.pstn_invites
    )
    return fig


# ---------------------------------------------------------------- the set-up


class PinnedProvider(Provider):
    """The Kamailio provider, pinned with taskset (which execs: the PID stays Kamailio's)."""

    def __init__(
        self, workdir: Path, cpu: int | None, subscribers: Mapping[str, str],
        dids: Mapping[str, str],
    ) -> None:  # fmt: skip
        super().__init__(workdir, subscribers=subscribers, dids=dids)
        self.cpu = cpu

    def argv(self) -> list[str]:
        argv = super().argv()
        return argv if self.cpu is None else ["taskset", "-c", str(self.cpu), *argv]

    def cpu_seconds(self) -> float:
        """User + system time of every live process of the provider (its process group)."""
        if self.proc is None:
            return 0.0
        return sum(process_cpu(pid) for pid in group_members(self.proc.pid))


def group_members(pgid: int) -> list[int]:
    """PIDs of the live processes of process group `pgid` (Kamailio's main and its workers)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # exited meanwhile
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


@dataclass
class TrunkSetup:
    base: Setup
    """bench/calls' set-up: the core, the callee sipp (extension 101), the processes; its
    "caller" is the PSTN sipp (`uac_port`, `uac_media`)."""
    provider: PinnedProvider
    dids: list[str]
    """The load's DIDs as the provider writes them (E.164 without the plus)."""
    next_caller: int = CALLER_BASE

    def tools_cpu(self) -> dict[int, float]:
        return {p: process_cpu(p) for p in self.base.tool_pids()}


def add_dids(data: Path, numbers: Sequence[str], destination: str, trunk: str) -> None:
    """The office's DIDs, in one transaction of the store."""
    from appliance.store import dids
    from appliance.store.db import open_db, transaction

    db = open_db(data)
    try:
        with transaction(db):
            for number in numbers:
                dids.add(db, number, destination, trunk=trunk)
    finally:
        db.conn.close()


def trunk_state(data: Path) -> str:
    from appliance import control

    try:
        trunks = control.call(data, "status", timeout=5.0)["trunks"]
    except (control.ControlError, OSError, KeyError):
        return "unknown"
    return next((str(t["state"]) for t in trunks if t.get("name") == TRUNK), "missing")


def wait_trunk_registered(setup: TrunkSetup, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (state := trunk_state(setup.base.data)) != "registered":
        if time.monotonic() > deadline or not setup.base.core.alive():
            raise BenchError(
                f"trunk {TRUNK} did not register with the provider (state {state}):\n"
                + setup.base.core.tail()
                + "\n"
                + "\n".join(setup.provider.output()[-20:])
            )
        time.sleep(0.2)  # polling the core's status: it changes on its own
    try:
        setup.provider.wait_registered(SUBSCRIBER, timeout=max(1.0, deadline - time.monotonic()))
    except AssertionError as exc:
        raise BenchError(str(exc)) from None


def write_pstn_calls(path: Path, setup: TrunkSetup, count: int, hold_s: float) -> None:
    """`count` rows CALLER;DID;HOLD_MS: a new caller number for every call, the DIDs in turn."""
    rows = []
    for i in range(count):
        caller = setup.next_caller
        setup.next_caller += 1
        rows.append(f"{caller};{setup.dids[i % len(setup.dids)]};{round(hold_s * 1000)}")
    path.write_text("SEQUENTIAL\n" + "\n".join(rows) + "\n")


def start_pstn(
    setup: TrunkSetup,
    name: str,
    hold_s: float,
    rate: str,
    period_ms: int,
    count: int,
    limit: int,
    timeout_s: int,
) -> tuple[subprocess.Popen[bytes], Path]:
    base = setup.base
    rows = base.work / f"{name}.csv"
    write_pstn_calls(rows, setup, count, hold_s)
    stf = base.work / f"{name}-stat.csv"
    host, port = setup.provider.address
    argv = base.taskset([
        "sipp", f"{host}:{port}", "-sf", str(PSTN_SCENARIO), "-inf", str(rows),
        "-i", "127.0.0.1", "-p", str(base.uac_port), "-mp", str(base.uac_media), "-t", "u1",
        "-r", rate, "-rp", str(period_ms), "-m", str(count), "-l", str(limit),
        "-recv_timeout", str(RECV_TIMEOUT_MS), "-timeout", f"{timeout_s}s",
        "-max_recv_loops", "10000", "-max_sched_loops", "10000", "-nostdin",
        # A UA drops a provisional response that comes after the final one (its INVITE
        # transaction is over); sipp would abort the call, and its BYE then lacks the route.
        "-default_behaviors", "all,-abortunexp",
        "-trace_stat", "-stf", str(stf), "-fd", "1",
        "-trace_err", "-error_file", str(base.work / f"{name}-errors.log"),
    ])  # fmt: skip
    return base.procs.start(argv, base.work, base.work / f"{name}.out"), stf


def stray_messages(setup: TrunkSetup, name: str) -> int:
    """Messages the PSTN caller received out of its scenario's order and ignored (a 180 the
    provider's two workers relayed after the 200, say), from its error file."""
    path = setup.base.work / f"{name}-errors.log"
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return 0
    return text.count("Continuing call on unexpected message")


def calls_now(setup: TrunkSetup) -> int:
    return calls_in_box(setup.base.data) or 0


def wait_calls(setup: TrunkSetup, at_most: int, timeout: float) -> int:
    """Wait (bounded) until the box holds at most `at_most` calls; how many it holds then."""
    deadline = time.monotonic() + timeout
    while True:
        n = calls_in_box(setup.base.data)
        if (n is not None and n <= at_most) or time.monotonic() > deadline:
            return n or 0
        time.sleep(0.2)


def sip_capture(setup: TrunkSetup, name: str) -> Capture:
    base = setup.base
    return Capture(
        base.procs,
        base.tcpdump,
        base.work / f"{name}-sip.pcap",
        f"udp and (port {base.core.port} or port {setup.provider.port})",
        4096,
        base.sipp_cpu,
        immediate=True,
    )


def signalling(setup: TrunkSetup, capture: Capture) -> TrunkSignalling:
    base = setup.base
    return read_trunk_signalling(
        capture.datagrams(), base.core.port, setup.provider.port, base.uas_port, base.uac_port
    )


def warm_up(setup: TrunkSetup) -> None:
    """Two calls, one after the other: the whole path works (or the bench stops here)."""
    proc, stf = start_pstn(setup, "warmup", 1.0, "1", 1000, 2, 1, 30)
    fig = finish_callers(setup.base, proc, stf, 2, 45)
    if fig.successful != 2:
        work = setup.base.work
        errors = work / "warmup-errors.log"
        raise BenchError(
            f"the warm-up calls through the provider failed ({fig.successful} of 2 succeeded,"
            f" sipp exit {fig.exit}):\n"
            + (errors.read_text(errors="replace")[-1500:] if errors.exists() else "")
            + "\ncore:\n"
            + setup.base.core.tail()
            + "\nprovider:\n"
            + "\n".join(setup.provider.output()[-15:])
        )
    wait_idle(setup.base, 30)
    time.sleep(1.5)  # the steps' CDR windows start a second before them: keep these out


# ---------------------------------------------------------------- steps


def run_concurrency(setup: TrunkSetup, calls: int, hold_s: float, rounds: int) -> ConcurrencyStep:
    """N calls up from `hold` to `rounds` x `hold` s: a CPU window, then an RTP capture."""
    base = setup.base
    step = ConcurrencyStep(calls=calls, hold_s=hold_s, rounds=rounds)
    name = f"conc-{calls}"
    steady = (rounds - 1) * hold_s
    window = max(1.0, (steady - 3.0) / 2)
    step.window_s = window
    count = rounds * calls
    timeout_s = int((rounds + 1) * hold_s + 60)
    before = calls_now(setup)
    sip = sip_capture(setup, name)
    since = time.time()
    t0 = time.monotonic()
    proc, stf = start_pstn(
        setup, name, hold_s, str(calls), round(hold_s * 1000), count, calls, timeout_s
    )
    try:
        sleep_until(t0 + hold_s + 1.0)
        kam0 = setup.provider.cpu_seconds()
        w = measure(base, window)
        kam1 = setup.provider.cpu_seconds()
        rtp = rtp_capture(base, name)
        wait0, c0 = runqueue_wait(base.core.pid), time.monotonic()
        sleep_until(time.monotonic() + window + 1.0)  # +1 s: tcpdump's last ring block
        capture_wait = (runqueue_wait(base.core.pid) - wait0) / (time.monotonic() - c0)
        rtp_dropped = rtp.stop()
        step.sipp = finish_callers(base, proc, stf, count, timeout_s + 15)
    except BaseException:
        base.procs.stop(proc, signal.SIGKILL)
        raise
    sip_dropped = sip.stop()
    step.core_cpu_pct = 100 * w.core_cpu / w.seconds
    step.core_sys_pct = 100 * w.core_sys / w.seconds
    step.core_wait_pct = 100 * w.core_wait / w.seconds
    step.tools_cpu_pct = 100 * w.tools_cpu / w.seconds
    step.provider_cpu_pct = 100 * (kam1 - kam0) / w.seconds
    step.calls_in_box = sum(w.calls) / len(w.calls) if w.calls else float(calls)
    if step.calls_in_box > 0:
        step.cpu_s_per_call_s = w.core_cpu / (step.calls_in_box * w.seconds)
    sig = signalling(setup, sip)
    step.setup = analyse_trunk_setup(sig, since=since + hold_s)
    step.setup.capture_dropped = sip_dropped
    phones = frozenset({base.uac_media, base.uas_media})
    box = range(RTP_PORT_MIN, RTP_PORT_MAX + 1)
    step.relay = analyse_relay(rtp.datagrams(), box, phones, sig.media_pairs(), sig.media_ends())
    step.relay.capture_dropped = rtp_dropped
    step.relay.core_wait_pct = 100 * capture_wait
    step.calls_left = max(0, wait_calls(setup, before, 60) - before)
    step.stray_messages = stray_messages(setup, name)
    step.cdr = cdr_figures(base.data, since - 1, time.time())
    step.rss_mb_after = rss_mb(base.core.pid)
    return step


def run_rate(setup: TrunkSetup, rate: int, duration_s: float, hold_s: float) -> RateStep:
    base = setup.base
    step = RateStep(offered_rate=rate, duration_s=duration_s, hold_s=hold_s)
    name = f"rate-{rate}"
    count = max(1, round(rate * duration_s))
    limit = max(100, int(rate * (hold_s + 5) * 3))
    timeout_s = int(duration_s * 2 + hold_s + 60)
    sip = sip_capture(setup, name)
    pid = base.core.pid
    u0, s0 = cpu_times(pid)
    w0 = runqueue_wait(pid)
    kam0 = setup.provider.cpu_seconds()
    before = calls_now(setup)
    since = time.time()
    t0 = time.monotonic()
    proc, stf = start_pstn(setup, name, hold_s, str(rate), 1000, count, limit, timeout_s)
    tools0 = setup.tools_cpu()
    tools1 = dict(tools0)  # the last reading of each: the PSTN sipp exits during the step
    peak = 0
    busiest = 0.0
    last_cpu, last_t = u0 + s0, time.monotonic()
    try:
        deadline = t0 + timeout_s + 15
        while proc.poll() is None and time.monotonic() < deadline:
            peak = max(peak, calls_in_box(base.data) or 0)
            now_cpu, now_t = sum(cpu_times(pid)), time.monotonic()
            if now_t - last_t >= 0.5:
                busiest = max(busiest, (now_cpu - last_cpu) / (now_t - last_t))
                last_cpu, last_t = now_cpu, now_t
            tools1.update({p: max(tools1[p], process_cpu(p)) for p in tools0})
            try:
                proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                pass
        tools1.update({p: max(tools1[p], process_cpu(p)) for p in tools0})
        step.sipp = finish_callers(base, proc, stf, count, max(1.0, deadline - time.monotonic()))
    except BaseException:
        base.procs.stop(proc, signal.SIGKILL)
        raise
    wall = time.monotonic() - t0
    u1, s1 = cpu_times(pid)
    w1 = runqueue_wait(pid)
    kam1 = setup.provider.cpu_seconds()
    sip_dropped = sip.stop()
    step.elapsed_s = wall
    step.peak_calls_in_box = peak
    step.core_cpu_pct = 100 * ((u1 - u0) + (s1 - s0)) / wall
    step.core_cpu_peak_pct = 100 * busiest
    step.core_sys_pct = 100 * (s1 - s0) / wall
    step.core_wait_pct = 100 * (w1 - w0) / wall
    step.tools_cpu_pct = 100 * (sum(tools1.values()) - sum(tools0.values())) / wall
    step.provider_cpu_pct = 100 * (kam1 - kam0) / wall
    step.setup = analyse_trunk_setup(signalling(setup, sip))
    step.setup.capture_dropped = sip_dropped
    # The rate the box was offered: the provider's INVITEs reaching it, over their span.
    span = step.setup.last_invite - step.setup.first_invite
    if step.setup.invites_in > 1 and span > 0:
        step.achieved_rate = (step.setup.invites_in - 1) / span
    step.calls_left = max(0, wait_calls(setup, before, 60) - before)
    step.stray_messages = stray_messages(setup, name)
    step.cdr = cdr_figures(base.data, since - 1, time.time())
    step.rss_mb_after = rss_mb(pid)
    return step


# ---------------------------------------------------------------- dial-plan lookup


@dataclass
class _Media:
    signalled_from: str = "192.0.2.1"
    """Where the caller's SIP came from: the guard counts a call to no route against it."""


@dataclass
class _Leg:
    number: str
    media: _Media = field(default_factory=_Media)


@dataclass
class _Call:
    """What `DialPlan.resolve` reads of a call: where it comes from and the caller's number."""

    origin: Any
    a: _Leg


class _Trunks:
    """What `DialPlan` reads of the running trunks: their names, and the guard that counts
    calls to unknown numbers (a real one: its cost is part of a lookup that finds no route)."""

    def __init__(self) -> None:
        from appliance.sip.guard import Guard

        self.gate = Guard()

    def names(self) -> tuple[str, ...]:
        return (TRUNK,)

    def get(self, name: str) -> None:
        return None


def route_patterns(k: int) -> list[str]:
    """Route k's patterns: `9` + a national number in area code 300+k (8 ... or +7 ...), and
    `9` + 810 + country code 200+k + any number."""
    code = 300 + k
    return [f"9|8{code}XXXXXXX", f"9|+7{code}XXXXXXX", f"9|810{200 + k}."]


def time_per_call(
    fn: Callable[[str], object], inputs: Sequence[str], calls: int, passes: int
) -> float:
    """µs per call of `fn` over `calls` calls cycling through `inputs`: the best of `passes`
    timed passes (the least disturbed by the rest of the machine)."""
    seq = [inputs[i % len(inputs)] for i in range(calls)]
    best = math.inf
    for _ in range(passes):
        t0 = time.perf_counter_ns()
        for x in seq:
            fn(x)
        best = min(best, time.perf_counter_ns() - t0)
    return best / calls / 1000


def run_lookups(
    work: Path, did_sizes: Sequence[int], route_sizes: Sequence[int], calls: int, passes: int
) -> list[LookupRow]:
    """The dial plan's lookups at each size: a store per route count, its DIDs grown in turn."""
    from appliance.numbering import PERMISSION_CLASSES
    from appliance.store import dids, extensions, routes, settings, trunks
    from appliance.store.db import open_db, transaction

    rows: list[LookupRow] = []
    rng = random.Random(7)
    for n_routes in sorted(route_sizes):
        db = open_db(work / f"dialplan-{n_routes}")
        try:
            with transaction(db):
                settings.set_value(db, "office.country", COUNTRY)
                settings.set_value(db, "office.area_code", AREA_CODE)
                extensions.add(db, EXTENSION, "Bench", EXTENSION_PASSWORD)
                extensions.set_permissions(db, EXTENSION, PERMISSION_CLASSES)
                trunks.add(
                    db, TRUNK, server="127.0.0.1:5062", username=SUBSCRIBER,
                    password=SUBSCRIBER_PASSWORD,
                )  # fmt: skip
                for k in range(n_routes):
                    routes.add(db, f"r{k}", route_patterns(k), [TRUNK])
            have = 0
            for n_dids in sorted(did_sizes):
                with transaction(db):
                    for i in range(have, n_dids):
                        destination = f"extension:{EXTENSION}"
                        dids.add(db, f"+{LOOKUP_DID_BASE + i}", destination, trunk=TRUNK)
                have = n_dids
                sample = rng.sample(range(n_dids), min(n_dids, 1000))
                row = time_lookups(db, n_dids, n_routes, sample, rng, calls, passes)
                rows.append(row)
                print(lookup_row(row), flush=True)
        finally:
            db.conn.close()
    return rows


def time_lookups(
    db: Database, n_dids: int, n_routes: int, sample: Sequence[int], rng: random.Random,
    calls: int, passes: int,
) -> LookupRow:  # fmt: skip
    """Load a dial plan from `db` and time its lookups (`sample`: indexes of DIDs to look up)."""
    from appliance.numbering import PatternTable
    from appliance.pbx.destinations.extension import Extension
    from appliance.pbx.destinations.hangup import Hangup
    from appliance.pbx.destinations.route import Outbound
    from appliance.pbx.dialplan import DialPlan
    from appliance.pbx.directory import Directory
    from appliance.pbx.legs import Origin
    from appliance.store import routes

    stand_in = cast("Trunks", _Trunks())
    t0 = time.perf_counter()
    directory = Directory()
    directory.load(db)
    plan = DialPlan(directory, stand_in)
    plan.load(db)
    row = LookupRow(n_dids, n_routes, 3 * n_routes, reload_ms=1000 * (time.perf_counter() - t0))
    table = PatternTable((p, r.name) for r in routes.list_all(db) for p in r.patterns)
    provider_form = [str(LOOKUP_DID_BASE + i) for i in sample]
    office_form = [f"+{n}" for n in provider_form]
    trunk_call = cast("Call", _Call(Origin("trunk", TRUNK), _Leg(str(CALLER_BASE))))
    ext_call = cast("Call", _Call(Origin(), _Leg(EXTENSION)))
    last = 300 + n_routes - 1
    first_numbers = [f"98300{i:07d}" for i in range(100)]
    last_numbers = [f"98{last}{i:07d}" for i in range(100)]
    none_numbers = [f"9555{i:07d}" for i in range(100)]
    unknown = ["+74959999999"]

    # What each resolves to: the bench times the path it means to.
    checks: list[tuple[object, type]] = [
        (plan.resolve(office_form[0], trunk_call), Extension),
        (plan.resolve(unknown[0], trunk_call), Hangup),
        (plan.resolve(first_numbers[0], ext_call), Outbound),
        (plan.resolve(last_numbers[0], ext_call), Outbound),
        (plan.resolve(none_numbers[0], ext_call), Hangup),
    ]
    origin = plan.inbound_origin(TRUNK, provider_form[0])
    if origin.did != office_form[0] or any(not isinstance(got, kind) for got, kind in checks):
        raise BenchError(f"the dial plan resolved unexpectedly: {origin}, {checks}")

    fresh = DialPlan(directory, stand_in)  # a table whose automaton has seen no number yet
    fresh.load(db)
    cold = [f"98{300 + k}{rng.randrange(10**7):07d}" for k in range(n_routes)]
    t0 = time.perf_counter()
    for number in cold:
        fresh.resolve(number, ext_call)
    row.cold_out_us = 1e6 * (time.perf_counter() - t0) / len(cold)

    def origin_of(number: str) -> object:
        return plan.inbound_origin(TRUNK, number)

    def from_trunk(number: str) -> object:
        return plan.resolve(number, trunk_call)

    def from_extension(number: str) -> object:
        return plan.resolve(number, ext_call)

    row.did_origin_us = time_per_call(origin_of, provider_form, calls, passes)
    row.did_resolve_us = time_per_call(from_trunk, office_form, calls, passes)
    row.unknown_did_us = time_per_call(from_trunk, unknown, calls, passes)
    row.out_first_us = time_per_call(from_extension, first_numbers, calls, passes)
    row.out_last_us = time_per_call(from_extension, last_numbers, calls, passes)
    row.out_none_us = time_per_call(from_extension, none_numbers, calls, passes)
    row.table_last_us = time_per_call(table.lookup, last_numbers, calls, passes)
    return row


# ---------------------------------------------------------------- driver


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench/trunks",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__,
        epilog=(
            "Output: a table of concurrency steps (the core's CPU, RTP loss through the box,"
            " post-dial delay through the box), a table of setup-rate steps, a table of"
            " dial-plan lookup times by size, and each of the issue's bars, met or not."
            "\nExample: .venv/bin/python bench/trunks --concurrency 50 --rates 25,50"
            " --lookup-dids 0 --json out.json"
        ),
    )
    p.add_argument(
        "--concurrency",
        type=parse_list,
        default=None,
        metavar="N,N,...",
        help="concurrent calls per step (default "
        + ",".join(map(str, DEFAULT_CONCURRENCY))
        + "; '0' for none)",
    )
    p.add_argument(
        "--hold",
        type=float,
        default=None,
        help="seconds each call of a concurrency step is held (default 12)",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="a concurrency step makes ROUNDS x N calls, N of them up from one hold time"
        f" to ROUNDS hold times (default {DEFAULT_ROUNDS})",
    )
    p.add_argument(
        "--rates",
        type=parse_list,
        default=None,
        metavar="R,R,...",
        help="setup rates (calls/s) to offer, in order (default "
        + ",".join(map(str, DEFAULT_RATES))
        + "; '0' for none)",
    )
    p.add_argument(
        "--rate-duration",
        type=float,
        default=None,
        help="seconds of call arrivals per setup-rate step (default 15)",
    )
    p.add_argument(
        "--rate-hold",
        type=float,
        default=None,
        help="seconds each call of a setup-rate step is held, with RTP (default 5)",
    )
    p.add_argument(
        "--confirm",
        type=int,
        default=1,
        help="after a failing setup-rate step, stop unless one of the next CONFIRM"
        " steps passes (default 1)",
    )
    p.add_argument(
        "--dids",
        type=int,
        default=None,
        metavar="N",
        help="DIDs of the load part, all to extension 101 (default 200)",
    )
    p.add_argument(
        "--lookup-dids",
        type=parse_list,
        default=None,
        metavar="N,N,...",
        help="DID counts of the dial-plan lookup part (default "
        + ",".join(map(str, DEFAULT_LOOKUP_DIDS))
        + "; '0' for none)",
    )
    p.add_argument(
        "--lookup-routes",
        type=parse_list,
        default=None,
        metavar="N,N,...",
        help="route counts of the lookup part, 3 patterns each (default "
        + ",".join(map(str, DEFAULT_LOOKUP_ROUTES))
        + ")",
    )
    p.add_argument(
        "--lookup-calls",
        type=int,
        default=None,
        metavar="N",
        help="lookups per timed pass (default 20000)",
    )
    p.add_argument("--core-cpu", type=int, default=0, help="CPU for the core (default 0)")
    p.add_argument(
        "--tools-cpu",
        type=int,
        default=1,
        help="CPU for Kamailio, both sipps and tcpdump (default 1)",
    )
    p.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    p.add_argument(
        "--no-install",
        action="store_true",
        help="fail instead of installing tcpdump with apt-get when it is missing",
    )
    p.add_argument(
        "--pbx", default=None, help="the pbx command (default .venv/bin/pbx of this checkout)"
    )
    p.add_argument(
        "--json",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the figures to FILE as JSON",
    )
    p.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary directory (logs, captures, sipp statistics)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 20 DIDs; 5 concurrent calls held 4 s (3 rounds); one setup-rate step at"
        " 10/s for 3 s with a 2 s hold; lookups at 10-1,000 DIDs and 1-10 routes",
    )
    return p


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(143)  # unwind through the finally blocks: stop every child, clean up


def run(args: argparse.Namespace) -> Result:
    quick = bool(args.quick)

    def pick(
        value: list[int] | None, quick_value: Sequence[int], default: Sequence[int]
    ) -> list[int]:
        return value if value is not None else list(quick_value if quick else default)

    concurrency = pick(args.concurrency, QUICK_CONCURRENCY, DEFAULT_CONCURRENCY)
    rates = pick(args.rates, QUICK_RATES, DEFAULT_RATES)
    lookup_dids = pick(args.lookup_dids, QUICK_LOOKUP_DIDS, DEFAULT_LOOKUP_DIDS)
    lookup_routes = pick(args.lookup_routes, QUICK_LOOKUP_ROUTES, DEFAULT_LOOKUP_ROUTES)
    hold: float = args.hold or (4.0 if quick else 12.0)
    rounds: int = args.rounds or (QUICK_ROUNDS if quick else DEFAULT_ROUNDS)
    rate_duration: float = args.rate_duration or (3.0 if quick else 15.0)
    rate_hold: float = args.rate_hold or (2.0 if quick else 5.0)
    n_dids: int = args.dids or (20 if quick else 200)
    lookup_calls: int = args.lookup_calls or (2000 if quick else 20000)
    passes = 3 if quick else 5
    if not 2 <= rounds <= 20:
        raise BenchError("--rounds must be 2 to 20")
    if not 1 <= n_dids <= 5000:
        raise BenchError("--dids must be 1 to 5000 (the provider's config tests each in turn)")
    if not 4 <= hold <= 600 or not 0 < rate_duration <= 600 or not 1 <= rate_hold <= 600:
        raise BenchError("--hold must be 4-600 s, --rate-duration 0-600 s, --rate-hold 1-600 s")
    if any(n > 1000 for n in concurrency) or any(r > 500 for r in rates):
        raise BenchError("at most 1000 concurrent calls and 500 calls/s")
    if any(n > 100_000 for n in lookup_dids) or any(n > 1000 for n in lookup_routes):
        raise BenchError("at most 100,000 DIDs and 1,000 routes for the lookup part")
    if not 100 <= lookup_calls <= 1_000_000:
        raise BenchError("--lookup-calls must be 100 to 1,000,000")
    if lookup_dids and not lookup_routes:
        raise BenchError("the lookup part needs at least one route count")
    if not concurrency and not rates and not lookup_dids:
        raise BenchError("nothing to run")
    calls_part = bool(concurrency or rates)
    pbx = args.pbx or str(ROOT / ".venv" / "bin" / "pbx")
    core_cpu: int | None = None if args.no_pin else args.core_cpu
    tools_cpu: int | None = None if args.no_pin else args.tools_cpu
    tcpdump = ""
    if calls_part:
        if shutil.which(pbx) is None:
            raise BenchError(f"no pbx command at {pbx}")
        for tool in ("sipp", "kamailio", "kamcmd") + (() if args.no_pin else ("taskset",)):
            if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
                raise BenchError(f"{tool} is not installed")
        for scenario in (PSTN_SCENARIO, UAS_SCENARIO, REGISTER_SCENARIO):
            if not scenario.is_file():
                raise BenchError(f"no sipp scenario at {scenario}")
        tcpdump = ensure_tcpdump(not args.no_install)
        allowed = os.sched_getaffinity(0)
        for cpu in (core_cpu, tools_cpu):
            if cpu is not None and cpu not in allowed:
                raise BenchError(f"CPU {cpu} is not available (have {sorted(allowed)}); --no-pin")

    result = Result(
        machine=machine_info(),
        config={
            "concurrency": concurrency, "hold_s": hold, "rounds": rounds, "rates": rates,
            "rate_duration_s": rate_duration, "rate_hold_s": rate_hold, "dids": n_dids,
            "lookup_dids": lookup_dids, "lookup_routes": lookup_routes,
            "lookup_calls_per_pass": lookup_calls, "lookup_passes": passes,
            "core_cpu": core_cpu, "tools_cpu": tools_cpu,
            "path": "sipp (PSTN) -> Kamailio 5.6 provider -> box -> sipp (extension 101)",
            "codec": "PCMU both legs (relayed)", "transport": "UDP 127.0.0.1",
            "rtp_ports": f"{RTP_PORT_MIN}-{RTP_PORT_MAX}", "quick": quick,
        },
    )  # fmt: skip
    result.machine["code"] = code_version()
    background = busy_cpu_pct(1.0)
    result.machine["background_busy_pct"] = round(background, 1)
    result.machine["kamailio"] = kamailio_version()
    captures = other_captures()
    result.machine["other_packet_captures"] = len(captures)
    if captures:
        print(f"warning: {len(captures)} other tcpdump process(es) running: capturing on lo"
              " costs every sender CPU", flush=True)  # fmt: skip
    if background > 10:
        print(f"warning: the machine is already {background:.0f}% busy (all CPUs) before the"
              " run; figures will be worse than the box can do", flush=True)  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="pbx-bench-trunks-"))
    print(f"data in {work}", flush=True)
    procs = Processes()
    core: Core | None = None
    provider: PinnedProvider | None = None
    affinity = os.sched_getaffinity(0)
    try:
        if calls_part:
            if tools_cpu is not None:
                # This process (its thread reading Kamailio's log, its polling of the core)
                # keeps off the core's CPU too; the core's taskset overrides it.
                os.sched_setaffinity(0, {tools_cpu})
            dids = [str(LOAD_DID_BASE + i) for i in range(n_dids)]
            provider = PinnedProvider(
                work, tools_cpu, subscribers={SUBSCRIBER: SUBSCRIBER_PASSWORD},
                dids=dict.fromkeys(dids, SUBSCRIBER),
            )  # fmt: skip
            try:
                provider.start()
            except (ProviderFailed, FileNotFoundError) as exc:
                raise BenchError(f"the Kamailio provider did not start: {exc}") from None
            data = work / "var"
            host, port = provider.address
            for argv in (
                ["config", "set", "office.country", COUNTRY],
                ["config", "set", "office.area_code", AREA_CODE],
                ["config", "set", "rtp.port_min", str(RTP_PORT_MIN)],
                ["config", "set", "rtp.port_max", str(RTP_PORT_MAX)],
                ["ext", "add", EXTENSION, "--name", "Bench", "--password", EXTENSION_PASSWORD],
                ["trunk", "add", TRUNK, "--server", f"{host}:{port}", "--username", SUBSCRIBER,
                 "--password", SUBSCRIBER_PASSWORD, "--codecs", "PCMU", "--expires", "3600"],
            ):  # fmt: skip
                pbx_cli(pbx, data, *argv)
            add_dids(data, [f"+{d}" for d in dids], f"extension:{EXTENSION}", TRUNK)
            write_audio(work)
            core = Core(pbx, data, work / "core.log", core_cpu)
            core.wait_ready(timeout=30)
            result.machine["core_open_files_limit"] = open_files_limit(core.pid)
            taken = {core.port, port}
            pstn_port, uas_port = free_port(), free_port()
            taken |= {pstn_port, uas_port}
            base = Setup(
                pbx=pbx, work=work, data=data, core=core, procs=procs, tcpdump=tcpdump,
                callers=[], callee=EXTENSION, uac_port=pstn_port, uas_port=uas_port,
                uac_media=free_media_port(taken), uas_media=free_media_port(taken),
                sipp_cpu=tools_cpu,
            )  # fmt: skip
            setup = TrunkSetup(base, provider, dids)
            wait_trunk_registered(setup, 30)
            register_callee(base, EXTENSION_PASSWORD)
            bound = sum(int((rounds + 2) * hold + 150) for _ in concurrency)
            bound += sum(int(2 * rate_duration + rate_hold + 150) for _ in rates)
            start_callee(base, bound + 180)
            warm_up(setup)
            result.idle_rss_mb = rss_mb(core.pid)
            print(
                f"{n_dids} DIDs -> extension {EXTENSION}; core pid {core.pid} on"
                f" 127.0.0.1:{core.port} (cpu {core_cpu}); trunk {TRUNK} registered with"
                f" Kamailio {host}:{port} as {SUBSCRIBER}; PSTN sipp :{pstn_port} (RTP"
                f" :{base.uac_media}), extension sipp :{uas_port} (RTP :{base.uas_media});"
                f" Kamailio, sipps, tcpdump on cpu {tools_cpu}; idle RSS"
                f" {result.idle_rss_mb:.1f} MiB",
                flush=True,
            )
            reload_dids = max(lookup_dids or (QUICK_LOOKUP_DIDS if quick else DEFAULT_LOOKUP_DIDS))
            run_calls(setup, result, concurrency, hold, rounds, rates, rate_duration, rate_hold,
                      args.confirm, reload_dids)  # fmt: skip
        os.sched_setaffinity(0, affinity)
        if lookup_dids:
            print(
                f"\ndial-plan lookups, µs each (best of {passes} passes of {lookup_calls:,});"
                " DIDs in the directory, routes of 3 patterns each; inbound: inbound_origin()"
                " and resolve() of a DID; outbound: resolve() of a number matching the first,"
                " the last or no route; table: PatternTable.lookup alone; cold: first resolve()"
                " after a load; reload: Directory.load + DialPlan.load:"
            )
            print(LOOKUP_HEADER, flush=True)
            result.lookups = run_lookups(work, lookup_dids, lookup_routes, lookup_calls, passes)
    finally:
        procs.stop_all()
        if core is not None:
            rc = core.stop()
            if rc not in (0, -signal.SIGTERM):
                print(f"warning: core exited with status {rc}:\n{core.tail()}", flush=True)
        if provider is not None:
            provider.close()
        if args.keep:
            print(f"kept {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return result


def run_calls(
    setup: TrunkSetup, result: Result, concurrency: Sequence[int], hold: float, rounds: int,
    rates: Sequence[int], rate_duration: float, rate_hold: float, confirm: int, reload_dids: int,
) -> None:  # fmt: skip
    base = setup.base

    def check() -> None:
        if not base.core.alive():
            raise BenchError("the core exited during the run:\n" + base.core.tail())
        if not setup.provider.running:
            raise BenchError("Kamailio exited during the run:\n" + "\n".join(
                setup.provider.output()[-20:]))  # fmt: skip
        if base.uas is None or base.uas.poll() is not None:
            raise BenchError(
                "the extension's sipp exited during the run:\n"
                + (base.work / "uas.out").read_text(errors="replace")[-2000:]
            )

    if concurrency:
        steady = (rounds - 1) * hold
        print(
            f"\nconcurrent inbound calls held {hold:g} s (CPU window"
            f" {max(1.0, (steady - 3) / 2):g} s, then an RTP capture window as long):"
        )
        print(
            "(core: `pbx run` on its CPU; tools: sipps and tcpdump; kam: Kamailio; PDD through"
            " the box p50/p99/max ms (calls started with N up): INVITE from the provider →"
            " INVITE to the extension, 180 in → 180 out, 200 in → 200 out; ringback: the PSTN"
            " caller's INVITE at the provider → its 180 back)"
        )
        print(CONC_HEADER, flush=True)
    for n in concurrency:
        check()
        step = run_concurrency(setup, n, hold, rounds)
        result.concurrency.append(step)
        wait = max(step.core_wait_pct, step.relay.core_wait_pct)
        notes = _notes(
            step.sipp, step.relay.capture_dropped, wait, step.calls_left, step.stray_messages
        )
        print(conc_row(step) + notes, flush=True)
    if rates:
        print(
            f"\nsetup rates, {rate_duration:g} s of arrivals each, calls held {rate_hold:g} s"
            " with RTP (achieved: the provider's INVITEs reaching the box):"
        )
        print(RATE_HEADER, flush=True)
    failing_run = 0
    for rate in rates:
        check()
        rstep = run_rate(setup, rate, rate_duration, rate_hold)
        result.rates.append(rstep)
        notes = _notes(
            rstep.sipp, rstep.setup.capture_dropped, rstep.core_wait_pct, rstep.calls_left,
            rstep.stray_messages,
        )  # fmt: skip
        print(rate_row(rstep) + notes, flush=True)
        failing_run = 0 if rstep.passed else failing_run + 1
        if failing_run > confirm:
            break
    check()
    result.gc_after = core_gc(base.data)
    result.reloads.append(time_reloads(base.data, len(setup.dids)))
    more = max(reload_dids, len(setup.dids))
    if more > len(setup.dids):
        extra = [f"+{LOOKUP_DID_BASE + i}" for i in range(more - len(setup.dids))]
        add_dids(base.data, extra, f"extension:{EXTENSION}", TRUNK)
        result.reloads.append(time_reloads(base.data, more))


def time_reloads(data: Path, dids: int, times: int = 5) -> dict[str, Any]:
    """`times` reloads of the running core: each one's round trip over the control socket,
    and the part of it that held the core's event loop (the swap; the store is read in a
    thread)."""
    from appliance import control

    took, held = [], []
    for _ in range(times):
        t0 = time.perf_counter()
        answer = control.call(data, "reload", timeout=30.0)
        took.append(1000 * (time.perf_counter() - t0))
        held.append(float(answer["apply_ms"]))
        time.sleep(0.2)
    took.sort()
    held.sort()
    return {"dids": dids, "median_ms": took[len(took) // 2], "max_ms": took[-1],
            "loop_median_ms": held[len(held) // 2], "loop_max_ms": held[-1]}  # fmt: skip


def core_gc(data: Path) -> dict[str, Any]:
    """Run the core's cyclic collector: what the calls left for it (ended calls should leave no
    reference cycles; each would wait for a collection that stalls the event loop)."""
    from appliance import control

    try:
        return dict(control.call(data, "gc", timeout=30.0))
    except (control.ControlError, OSError) as exc:
        return {"error": str(exc)}


def kamailio_version() -> str:
    try:
        out = subprocess.run(
            ["kamailio", "-v"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    first = out.splitlines()[0] if out else ""
    return first.replace("version: ", "").strip() or "unknown"


def _notes(
    sipp: SippFigures, dropped: int | None, wait_pct: float, calls_left: int, stray: int
) -> str:
    notes = []
    if calls_left:
        notes.append(f"{calls_left} of its calls still in the box 60 s after the step")
    if stray:
        notes.append(f"the PSTN caller ignored {stray} out-of-order responses")
    if wait_pct > 10:
        notes.append(f"the core waited for its CPU {wait_pct:.0f}% of the time: machine busy")
    if sipp.timed_out:
        notes.append("sipp killed at the time limit")
    if sipp.reasons:
        notes.append("failed: " + ", ".join(f"{k} {v}" for k, v in sipp.reasons.items()))
    if dropped:
        notes.append(f"capture dropped {dropped} packets")
    return f"  ({'; '.join(notes)})" if notes else ""


CONC_HEADER = (
    f"{'calls':>5} {'in box':>6} {'CPU-s/call-s':>12} {'core':>5} {'wait':>4} {'tools':>5}"
    f" {'kam':>4} {'RTP in':>7} {'lost':>6} {'transit p50/p99':>15}"
    f" {'PDD INVITE':>20} {'180':>20} {'200':>20} {'ringback':>20} {'failed':>7}"
)


def conc_row(s: ConcurrencyStep) -> str:
    r, u = s.relay, s.setup
    return (
        f"{s.calls:>5} {s.calls_in_box:>6.1f} {s.cpu_s_per_call_s:>12.5f}"
        f" {s.core_cpu_pct:>4.0f}% {s.core_wait_pct:>3.0f}% {s.tools_cpu_pct:>4.0f}%"
        f" {s.provider_cpu_pct:>3.0f}% {r.packets_in:>7} {r.loss_pct:>5.2f}%"
        f" {f'{r.transit_p50_ms:.2f}/{r.transit_p99_ms:.2f}':>15}"
        f" {u.invite.text():>20} {u.ringing.text():>20} {u.answer.text():>20}"
        f" {u.ringback.text():>20} {s.sipp.failures_pct:>6.2f}%"
    )


RATE_HEADER = (
    f"{'offered/s':>9} {'achieved/s':>10} {'calls':>6} {'failed':>7} {'peak in box':>11}"
    f" {'core':>5} {'peak':>5} {'wait':>4} {'tools':>5} {'kam':>4} {'PDD INVITE':>22} {'180':>20}"
    f" {'ringback':>22} {'retrans':>7}"
)


def rate_row(s: RateStep) -> str:
    u = s.setup
    return (
        f"{s.offered_rate:>9} {s.achieved_rate:>10.1f} {s.sipp.count:>6}"
        f" {s.sipp.failures_pct:>6.2f}% {s.peak_calls_in_box:>11} {s.core_cpu_pct:>4.0f}%"
        f" {s.core_cpu_peak_pct:>4.0f}% {s.core_wait_pct:>3.0f}% {s.tools_cpu_pct:>4.0f}%"
        f" {s.provider_cpu_pct:>3.0f}%"
        f" {u.invite.text():>22} {u.ringing.text():>20} {u.ringback.text():>22}"
        f" {s.sipp.retransmissions:>7}"
    )


LOOKUP_HEADER = (
    f"{'DIDs':>6} {'routes':>6} {'patterns':>8} {'reload ms':>9} {'origin':>7} {'DID':>6}"
    f" {'unknown':>7} {'out first':>9} {'out last':>8} {'no route':>8} {'table':>6}"
    f" {'cold':>6}"
)


def lookup_row(r: LookupRow) -> str:
    return (
        f"{r.dids:>6} {r.routes:>6} {r.patterns:>8} {r.reload_ms:>9.1f} {r.did_origin_us:>7.2f}"
        f" {r.did_resolve_us:>6.2f} {r.unknown_did_us:>7.2f} {r.out_first_us:>9.2f}"
        f" {r.out_last_us:>8.2f} {r.out_none_us:>8.2f} {r.table_last_us:>6.2f}"
        f" {r.cold_out_us:>6.1f}"
    )


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("met" if ok else "NOT MET")


def report(result: Result) -> None:
    m = result.machine
    print()
    for s in result.concurrency:
        u = s.setup
        print(
            f"{s.calls} concurrent inbound calls: PDD through the box (provider's INVITE in →"
            f" INVITE to the extension) p50 {u.invite.p50_ms:.1f} ms, p99 {u.invite.p99_ms:.1f}"
            f" ms over {u.invite.n} calls; 180 through the box p99 {u.ringing.p99_ms:.1f} ms,"
            f" 200 p99 {u.answer.p99_ms:.1f} ms; ringback at the PSTN caller p99"
            f" {u.ringback.p99_ms:.1f} ms; core {s.cpu_s_per_call_s:.5f} CPU-s per"
            f" call-second; RTP loss {s.relay.loss_pct:.3f}% of {s.relay.packets_in};"
            f" {s.sipp.failures_pct:.2f}% calls failed"
        )
    pdd = result.pdd_step()
    if result.concurrency or result.rates:
        figure = f"{pdd.setup.invite.p99_ms:.1f} ms" if pdd is not None else "-"
        busy = " (the machine was busy: re-run)" if pdd is not None and pdd.disturbed else ""
        print(f"bar: PDD p99 <= {PDD_BAR_MS:g} ms at {PDD_BAR_CALLS} concurrent calls:"
              f" {figure}: {_verdict(result.pdd_bar())}{busy}")  # fmt: skip
    if result.rates:
        best = result.best_rate()
        if best is None:
            print("highest setup rate with < 1% failures: none (no step passed and kept up)")
        else:
            print(
                f"highest setup rate with < 1% failures: {best.offered_rate}/s offered,"
                f" {best.achieved_rate:.1f}/s reaching the box, core CPU"
                f" {best.core_cpu_pct:.0f}%, {best.peak_calls_in_box} calls up at the peak,"
                f" PDD through the box p99 {best.setup.invite.p99_ms:.1f} ms"
                + (" (the highest rate offered)" if best is result.rates[-1] else "")
            )
        clean = result.best_clean_rate()
        if clean is None:
            print("highest setup rate at which the box is not the limit: none")
        else:
            print(
                f"highest setup rate at which the box is not the limit (core below"
                f" {BUSY_CORE_PCT:.0f}% in every second, PDD through it p99 below"
                f" {BOX_DELAY_MS:.0f} ms, no retransmission): {clean.offered_rate}/s, core"
                f" {clean.core_cpu_pct:.0f}% (peak {clean.core_cpu_peak_pct:.0f}%), PDD p99"
                f" {clean.setup.invite.p99_ms:.1f} ms"
            )
        bar = result.rate_bar()
        busy_at = [
            r.offered_rate for r in result.rates if r.offered_rate <= RATE_BAR and r.disturbed
        ]
        note = ""
        if busy_at and bar is None:
            note = f" (the machine was busy at {', '.join(map(str, busy_at))}/s: re-run)"
        print(f"bar: the box is never the limit up to {RATE_BAR} setups/s: {_verdict(bar)}{note}")
        for r in result.rates:
            if r.offered_rate <= RATE_BAR and not (r.passed and r.kept_up and not r.box_limited):
                print(
                    f"  at {r.offered_rate}/s: {r.sipp.failures_pct:.2f}% failed,"
                    f" {r.achieved_rate:.1f}/s reached the box, core {r.core_cpu_pct:.0f}%"
                    f" (peak {r.core_cpu_peak_pct:.0f}%), PDD through the box p99"
                    f" {r.setup.invite.p99_ms:.1f} ms; tools {r.tools_cpu_pct:.0f}%,"
                    f" Kamailio {r.provider_cpu_pct:.0f}%"
                )
        limit = next((s for s in result.rates if s.box_limited or not s.passed), None)
        if limit is not None:
            print(
                f"first step where the box was the limit or calls failed: {limit.offered_rate}/s"
                f" ({limit.sipp.failures_pct:.2f}% failed; core {limit.core_cpu_pct:.0f}%, peak"
                f" {limit.core_cpu_peak_pct:.0f}%; PDD through the box p99"
                f" {limit.setup.invite.p99_ms:.0f} ms; {limit.sipp.retransmissions} sipp"
                f" retransmissions; on the other CPU sipps and tcpdump {limit.tools_cpu_pct:.0f}%,"
                f" Kamailio {limit.provider_cpu_pct:.0f}%)"
            )
    if result.lookups:
        scaling = result.scaling()
        worst = max(scaling.values(), default=0.0)
        ok = None if not scaling else worst <= SCALING_LOG
        shape = "flat" if worst <= SCALING_FLAT else "at most logarithmic"
        ratios = ", ".join(f"{k} x{v:.2f}" for k, v in scaling.items())
        print(
            f"bar: dial-plan lookup O(1)-O(log n) up to {max(r.dids for r in result.lookups):,}"
            f" DIDs and {max(r.routes for r in result.lookups)} routes (largest / smallest"
            f" size: {ratios}): {_verdict(ok)}" + (f" ({shape})" if ok else "")
        )
    if result.concurrency or result.rates:
        print(f"idle RSS of the core: {result.idle_rss_mb:.1f} MiB")
        for timed in result.reloads:
            print(
                f"reload of the running core with {timed['dids']:,} DIDs (control round trip, 5"
                f" times): median {timed['median_ms']:.1f} ms, max {timed['max_ms']:.1f} ms; of"
                f" which its event loop was held (the swap; the store is read in a thread):"
                f" median {timed['loop_median_ms']:.3f} ms, max {timed['loop_max_ms']:.3f} ms"
            )
        gc_after = result.gc_after
        if "unreachable" in gc_after:
            print(
                f"the core's cyclic collector after the calls: {gc_after['unreachable']}"
                f" unreachable objects now, {gc_after.get('collected_since_start')} collected"
                " since start-up (ended calls should leave none)"
            )
    print(
        f"machine: {m['cpu_model']}; nproc {m['nproc']}; kernel {m['kernel']};"
        f" Python {m['python']}; {m['sipp']}; {m['kamailio']}; {m['date']};"
        f" busy before the run {m['background_busy_pct']}%; code {m['code']}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        result = run(args)
    except BenchError as exc:
        print(f"bench/trunks: {exc}", file=sys.stderr)
        return 2
    report(result)
    if args.json is not None:
        args.json.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    return 0
