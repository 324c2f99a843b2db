"""Call benchmark: sipp UAC → `pbx run` → sipp UAS, G.711 RTP both ways through the box.

Every call is the whole thing: INVITE, 407 challenge, INVITE with an MD5 digest, the box's own
INVITE to the callee (a sipp UAS registered as one extension), 180, 200, ACK both sides, µ-law
RTP in 20 ms packets from both phones relayed by the box for the hold time, BYE from the caller.
The core is pinned to one CPU, sipp and tcpdump to another; traffic stays on 127.0.0.1.

Two kinds of step:

* Concurrency (default 20, 50, 100, 200 calls held 30 s): sipp starts calls at N/hold per
  second with at most N open, 2N in all, so that from `hold` to 2 x `hold` seconds N calls are
  up while calls keep ending and starting. In that period the core's CPU is read over one
  window (CPU-seconds per call-second = CPU / (mean calls in the box x seconds)) and RTP is
  captured on `lo` over a second window (capturing costs the sender's CPU, so not during the
  first). Each RTP packet entering the box has a counterpart leaving it for the other phone
  (same payload: the box relays without decoding and rewrites only the header): unmatched ones
  are lost, and the time between the two is the transit through the box; added jitter is the
  99th percentile of |transit - median transit|. Post-dial delay is the time from the caller's
  authenticated INVITE arriving to the box's INVITE leaving for the callee (SIP captured over
  the whole step, calls that started with N up).
* Setup rate (default 20 … 120 calls/s, 15 s each, 5 s hold with RTP): a step passes with
  < 1 % of its calls failed (failed, timed out or never started).

Extensions are created through `appliance.store.extensions.add` in one process (as
bench/register does); settings through the `pbx` CLI. Captures need root and Debian's tcpdump,
which the bench installs with apt-get when it is missing (unless --no-install).
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from bench import pcap
from bench.register_bench import (
    BenchError,
    Core,
    busy_cpu_pct,
    cpu_seconds,
    cpu_times,
    create_extensions,
    free_udp_port,
    machine_info,
    pbx_cli,
    read_stats,
    rss_mb,
    runqueue_wait,
)

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "tests" / "interop" / "sipp"
UAC_SCENARIO = SCENARIOS / "uac_call.xml"
UAS_SCENARIO = SCENARIOS / "uas_answer.xml"
REGISTER_SCENARIO = SCENARIOS / "register.xml"
DEFAULT_CONCURRENCY = (20, 50, 100, 200)
DEFAULT_RATES = (20, 40, 60, 80, 100, 120)
QUICK_CONCURRENCY = (5,)
QUICK_RATES = (10,)
FAIL_LIMIT_PCT = 1.0
RTP_PORT_MIN, RTP_PORT_MAX = 22000, 31999
"""The box's RTP range for the run: below the ephemeral ports, above other tests' cores."""
PACKET_BYTES = 160  # 20 ms of 8 kHz µ-law
AUDIO_SECONDS = 120
"""Length of the streamed files: every packet of a call's stream has a payload of its own."""
MAX_TRANSIT = 2.0
"""A packet leaving the box later than this after it arrived counts as lost."""
END_MARGIN = 0.5
"""Packets arriving this close to the end of a capture may leave after it: not judged."""
SHORT_STREAM = 25
"""An unmatched stream with fewer packets than this in the window is a call's edge."""
RECV_TIMEOUT_MS = 10_000


# ---------------------------------------------------------------- figures


@dataclass
class RelayFigures:
    """RTP through the box, from a capture: packets in, their counterparts out."""

    streams: int = 0
    streams_paired: int = 0
    streams_unpaired: int = 0
    """Long streams none of whose packets left the box: all counted lost."""
    streams_ambiguous: int = 0
    """Streams the matcher could not tell apart (identical payloads at the same time)."""
    streams_edge: int = 0
    """Short unmatched streams at a call's end or the window's edge: not judged."""
    packets_in: int = 0
    lost: int = 0
    teardown: int = 0
    """Packets that arrived after the caller's BYE, not relayed: the call was over."""
    transit_p50_ms: float = 0.0
    transit_p99_ms: float = 0.0
    transit_max_ms: float = 0.0
    added_jitter_p99_ms: float = 0.0
    added_jitter_max_ms: float = 0.0
    capture_s: float = 0.0
    """From the first to the last packet captured."""
    core_wait_pct: float = 0.0
    """Share of the capture window the core was runnable but waiting for its CPU."""
    capture_dropped: int | None = None

    @property
    def loss_pct(self) -> float:
        return 100 * self.lost / self.packets_in if self.packets_in else 0.0


@dataclass
class SetupFigures:
    """Call set-up through the box, from a SIP capture."""

    invites_in: int = 0
    invites_out: int = 0
    answered: int = 0
    pdd_n: int = 0
    pdd_p50_ms: float = 0.0
    pdd_p99_ms: float = 0.0
    pdd_max_ms: float = 0.0
    first_invite: float = 0.0
    last_invite: float = 0.0
    capture_dropped: int | None = None


@dataclass
class CdrFigures:
    """What the box itself recorded for the step's calls (an independent cross-check)."""

    records: int = 0
    answered: int = 0
    packets: int = 0
    lost: int = 0

    @property
    def loss_pct(self) -> float:
        expected = self.packets + self.lost
        return 100 * self.lost / expected if expected else 0.0


@dataclass
class SippFigures:
    count: int = 0
    created: int = 0
    successful: int = 0
    failed: int = 0
    retransmissions: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    exit: int | None = None
    timed_out: bool = False

    @property
    def failures_pct(self) -> float:
        """Everything offered that did not succeed: failed, timed out or never started."""
        return 100 * (self.count - self.successful) / self.count if self.count else 100.0


@dataclass
class ConcurrencyStep:
    calls: int
    hold_s: float
    sipp: SippFigures = field(default_factory=SippFigures)
    window_s: float = 0.0
    calls_in_box: float = 0.0
    core_cpu_pct: float = 0.0
    core_sys_pct: float = 0.0
    core_wait_pct: float = 0.0
    tools_cpu_pct: float = 0.0
    cpu_s_per_call_s: float = 0.0
    step_cpu_s_per_call_s: float = 0.0
    relay: RelayFigures = field(default_factory=RelayFigures)
    setup: SetupFigures = field(default_factory=SetupFigures)
    cdr: CdrFigures = field(default_factory=CdrFigures)
    rss_mb_after: float = 0.0
    calls_left: int = 0
    """Calls the box still held 60 s after the step's last call ended (should be none)."""


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
    core_sys_pct: float = 0.0
    core_wait_pct: float = 0.0
    tools_cpu_pct: float = 0.0
    setup: SetupFigures = field(default_factory=SetupFigures)
    cdr: CdrFigures = field(default_factory=CdrFigures)
    rss_mb_after: float = 0.0
    calls_left: int = 0

    @property
    def passed(self) -> bool:
        return self.sipp.failures_pct < FAIL_LIMIT_PCT


@dataclass
class Result:
    machine: dict[str, Any]
    config: dict[str, Any]
    idle_rss_mb: float = 0.0
    concurrency: list[ConcurrencyStep] = field(default_factory=list)
    rates: list[RateStep] = field(default_factory=list)

    def best_rate(self) -> RateStep | None:
        """The highest offered rate that passed and was kept up (>= 95 % of it achieved)."""
        kept = [s for s in self.rates if s.passed and s.achieved_rate >= 0.95 * s.offered_rate]
        return max(kept, key=lambda s: s.offered_rate) if kept else None

    def best_clean_rate(self) -> RateStep | None:
        """The highest kept-up passing rate at which sipp never had to retransmit: the box
        answered every request within 500 ms."""
        clean = [
            s for s in self.rates
            if s.passed and s.sipp.retransmissions == 0 and s.achieved_rate >= 0.95 * s.offered_rate
        ]  # fmt: skip
        return max(clean, key=lambda s: s.offered_rate) if clean else None

    def to_json(self) -> dict[str, Any]:
        best, clean = self.best_rate(), self.best_clean_rate()
        return {
            "machine": self.machine,
            "config": self.config,
            "idle_rss_mb": self.idle_rss_mb,
            "concurrency": [
                {
                    **asdict(s),
                    "failures_pct": s.sipp.failures_pct,
                    "loss_pct": s.relay.loss_pct,
                    "cdr_loss_pct": s.cdr.loss_pct,
                }
                for s in self.concurrency
            ],
            "rates": [
                {
                    **asdict(s),
                    "passed": s.passed,
                    "failures_pct": s.sipp.failures_pct,
                    "cdr_loss_pct": s.cdr.loss_pct,
                }
                for s in self.rates
            ],
            "max_setup_rate_under_1pct": best.offered_rate if best else None,
            "max_setup_rate_without_retransmissions": clean.offered_rate if clean else None,
        }


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending sequence (0.0 when it is empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


# ---------------------------------------------------------------- RTP through the box

_Packet = tuple[float, int, int]  # (time, sequence number, hash of the payload)


def analyse_relay(
    datagrams: Sequence[pcap.Datagram],
    box_ports: range,
    phone_ports: frozenset[int],
    pairs: dict[int, int] | None = None,
    ends: dict[int, float] | None = None,
    end: float | None = None,
) -> RelayFigures:
    """Match every RTP packet a phone sent to the box with the one the box relayed.

    A stream into the box is (box port, SSRC); a stream out of it is (box port, the box's
    SSRC). `pairs` maps each of the box's RTP ports to the other leg's port of the same call
    (from the signalling); what arrives on one leaves from the other. The box keeps a
    constant sequence-number offset per relayed stream, so a stream in is paired with the
    stream out, and the offset, that most of a sample of its packets vote for (each votes for
    the earliest packet out, from the partner port when known, with the same payload within
    MAX_TRANSIT). Then each packet in is looked up by its sequence number in its stream out.

    Packets arriving at a port after `ends[port]` (the caller's BYE reached the box) are not
    judged (counted as `teardown`), nor are those in the last END_MARGIN of the capture, whose
    counterparts may have left after it stopped. Without `ends`, a stream that stops inside the
    capture is judged up to its last relayed packet. `end` is when the capture stopped
    (default: its last packet).
    """
    pairs = pairs or {}
    ends = ends or {}
    ins: dict[tuple[int, int], list[_Packet]] = defaultdict(list)
    outs: dict[tuple[int, int], list[_Packet]] = defaultdict(list)
    for d in datagrams:
        data = d.payload
        if len(data) < 12 or data[0] & 0xC0 != 0x80 or 72 <= data[1] & 0x7F <= 79:
            continue  # not RTP, or RTCP
        seq = int.from_bytes(data[2:4], "big")
        ssrc = int.from_bytes(data[8:12], "big")
        packet = (d.time, seq, hash(data[12 + 4 * (data[0] & 0x0F) :]))
        if d.src[1] in phone_ports and d.dst[1] in box_ports:
            ins[(d.dst[1], ssrc)].append(packet)
        elif d.src[1] in box_ports and d.dst[1] in phone_ports:
            outs[(d.src[1], ssrc)].append(packet)
    times = [p[0] for packets in (*ins.values(), *outs.values()) for p in packets]
    if end is None:
        end = max(times, default=0.0)
    start = min(times, default=end)
    # (port, payload) → packets out, and payload → packets out, each in time order
    Entry = tuple[float, tuple[int, int], int]
    by_port: dict[tuple[int, int], list[Entry]] = defaultdict(list)
    by_payload: dict[int, list[Entry]] = defaultdict(list)
    for key, packets in outs.items():
        for t, seq, h in packets:
            by_port[(key[0], h)].append((t, key, seq))
            by_payload[h].append((t, key, seq))
    for entries in (*by_port.values(), *by_payload.values()):
        entries.sort()
    fig = RelayFigures(streams=len(ins), capture_s=end - start)
    chosen: dict[tuple[int, int], tuple[tuple[int, int], int]] = {}
    claimed: Counter[tuple[int, int]] = Counter()
    for key, packets in ins.items():
        partner = pairs.get(key[0])
        votes: Counter[tuple[tuple[int, int], int]] = Counter()
        for t, seq, h in packets[:: max(1, len(packets) // 50)]:
            found = by_payload.get(h) if partner is None else by_port.get((partner, h))
            if not found:
                continue
            i = bisect.bisect_left(found, (t,))
            if i < len(found) and found[i][0] - t <= MAX_TRANSIT:
                _, out_key, out_seq = found[i]
                votes[(out_key, (out_seq - seq) & 0xFFFF)] += 1
        if votes:
            winner, n = votes.most_common(1)[0]
            if 2 * n > sum(votes.values()):
                chosen[key] = winner
                claimed[winner[0]] += 1
            else:
                fig.streams_ambiguous += 1
            continue
        cut = min(end - END_MARGIN, ends.get(key[0], math.inf))
        judged = [p for p in packets if p[0] <= cut]
        fig.teardown += sum(1 for p in packets if cut < p[0] <= end - END_MARGIN)
        if key[0] not in ends and len(judged) < SHORT_STREAM:
            fig.streams_edge += 1  # no signalling to judge this scrap of a stream by
        else:
            fig.streams_unpaired += 1
            fig.packets_in += len(judged)
            fig.lost += len(judged)
    transits: list[float] = []
    for key, (out_key, offset) in chosen.items():
        if claimed[out_key] > 1:
            fig.streams_ambiguous += 1  # two streams in claim one stream out
            continue
        fig.streams_paired += 1
        out_by_seq = {seq: (t, h) for t, seq, h in outs[out_key]}
        packets = ins[key]
        bye = ends.get(key[0], math.inf)
        matched: list[float] = []
        unmatched: list[float] = []
        for t, seq, h in packets:
            if t > end - END_MARGIN:
                continue
            out = out_by_seq.get((seq + offset) & 0xFFFF)
            if out is not None and out[1] == h and 0 <= out[0] - t <= MAX_TRANSIT:
                matched.append(t)
                transits.append(out[0] - t)
            elif t > bye:
                fig.teardown += 1
            else:
                unmatched.append(t)
        if key[0] not in ends and packets[-1][0] < end - 1.0 and unmatched:
            # No signalling, and the phone stopped inside the capture: what followed the
            # last relayed packet is taken for the call's end.
            last_relayed = matched[-1] if matched else -math.inf
            tail = sum(1 for t in unmatched if t > last_relayed)
            fig.teardown += tail
            unmatched = unmatched[: len(unmatched) - tail]
        fig.packets_in += len(matched) + len(unmatched)
        fig.lost += len(unmatched)
    transits.sort()
    if transits:
        median = percentile(transits, 50)
        deviations = sorted(abs(t - median) for t in transits)
        fig.transit_p50_ms = 1000 * median
        fig.transit_p99_ms = 1000 * percentile(transits, 99)
        fig.transit_max_ms = 1000 * transits[-1]
        fig.added_jitter_p99_ms = 1000 * percentile(deviations, 99)
        fig.added_jitter_max_ms = 1000 * deviations[-1]
    return fig


# ---------------------------------------------------------------- SIP through the box


@dataclass
class Signalling:
    """The SIP of a step as the box handled it, read from a capture of its SIP port."""

    invites_in: list[tuple[float, str, str]] = field(default_factory=list)
    """(time, caller, Call-ID) of each caller's authenticated INVITE, first copy only."""
    invites_out: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    """Per caller, (time, Call-ID) of each INVITE the box sent the callee, in time order."""
    answers: dict[str, float] = field(default_factory=dict)
    """Call-ID → time of the box's first 200 to the caller's INVITE."""
    media_ports: dict[str, int] = field(default_factory=dict)
    """Call-ID → the RTP port the box gave in the SDP it sent in that dialog."""
    byes: dict[str, float] = field(default_factory=dict)
    """Call-ID → time of the caller's BYE arriving at the box (first copy)."""

    def matched(self) -> list[tuple[float, float, str, str]]:
        """(time in, time out, Call-ID in, Call-ID out) for each INVITE the box forwarded.

        The box gives its INVITE a Call-ID of its own, so the two are matched by the caller's
        number (the box's From) and time order: each INVITE in pairs with the first INVITE
        out for the same caller that follows it (callers repeat seconds apart, not ms).
        """
        pending = {user: list(times) for user, times in self.invites_out.items()}
        out = []
        for t, user, call_id in sorted(self.invites_in):
            times = pending.get(user, [])
            i = bisect.bisect_left(times, (t,))
            if i < len(times) and times[i][0] - t <= 5.0:
                out.append((t, times[i][0], call_id, times[i][1]))
                del times[i]
        return out

    def media_pairs(self) -> dict[int, int]:
        """The box's two RTP ports of each call, both ways: caller's leg ↔ callee's leg."""
        pairs: dict[int, int] = {}
        for _, _, id_in, id_out in self.matched():
            a, b = self.media_ports.get(id_in), self.media_ports.get(id_out)
            if a is not None and b is not None:
                pairs[a], pairs[b] = b, a
        return pairs

    def media_ends(self) -> dict[int, float]:
        """When each call's media may stop: the box's two RTP ports of a call → the time the
        caller's BYE reached the box. What arrives later the box may drop: the call is over."""
        ends: dict[int, float] = {}
        for _, _, id_in, id_out in self.matched():
            bye = self.byes.get(id_in)
            for call_id in (id_in, id_out):
                port = self.media_ports.get(call_id)
                if bye is not None and port is not None:
                    ends[port] = bye
        return ends


_FROM_USER = re.compile(r"<sips?:([^@;>]+)@", re.IGNORECASE)
_AUDIO_PORT = re.compile(rb"^m=audio (\d+) ", re.MULTILINE)


def _sip_head(payload: bytes) -> tuple[str, dict[str, str], bytes]:
    """Start line, headers (first value of each; names lowered, compact forms expanded), body."""
    raw, _, body = payload.partition(b"\r\n\r\n")
    start, *lines = raw.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            headers.setdefault(name.strip().lower(), value.strip())
    for short, full in (("i", "call-id"), ("f", "from"), ("t", "to")):
        if short in headers:
            headers.setdefault(full, headers[short])
    return start, headers, body


def read_signalling(
    datagrams: Sequence[pcap.Datagram], box_port: int, caller_port: int, callee_port: int
) -> Signalling:
    sig = Signalling()
    seen_in: set[str] = set()
    seen_out: set[str] = set()
    for d in datagrams:
        if not d.payload[:3].isalpha():
            continue  # keep-alives and anything that is not a SIP message
        start, headers, body = _sip_head(d.payload)
        call_id = headers.get("call-id", "")
        user_match = _FROM_USER.search(headers.get("from", ""))
        user = user_match.group(1) if user_match else ""
        port = _AUDIO_PORT.search(body)
        from_caller = d.dst[1] == box_port and d.src[1] == caller_port
        to_caller = d.src[1] == box_port and d.dst[1] == caller_port
        to_callee = d.src[1] == box_port and d.dst[1] == callee_port
        if from_caller and start.startswith("INVITE "):
            if "proxy-authorization" in headers and call_id not in seen_in:
                seen_in.add(call_id)
                sig.invites_in.append((d.time, user, call_id))
        elif from_caller and start.startswith("BYE "):
            sig.byes.setdefault(call_id, d.time)
        elif to_callee and start.startswith("INVITE ") and ";tag=" not in headers.get("to", ""):
            if call_id not in seen_out:
                seen_out.add(call_id)
                sig.invites_out.setdefault(user, []).append((d.time, call_id))
                if port:
                    sig.media_ports[call_id] = int(port.group(1))
        elif to_caller and start.startswith("SIP/2.0 200") and call_id not in sig.answers:
            if not headers.get("cseq", "").upper().endswith("INVITE"):
                continue  # the 200 to a BYE
            sig.answers[call_id] = d.time
            if port:
                sig.media_ports[call_id] = int(port.group(1))
    for times in sig.invites_out.values():
        times.sort()
    return sig


def analyse_setup(sig: Signalling, since: float = 0.0) -> SetupFigures:
    """Post-dial delay: the caller's authenticated INVITE in → the box's INVITE to the callee,
    for INVITEs in at or after `since` (Unix time); counts cover the whole capture."""
    fig = SetupFigures(
        invites_in=len(sig.invites_in),
        invites_out=sum(len(v) for v in sig.invites_out.values()),
        answered=len(sig.answers),
        first_invite=min((t for t, _, _ in sig.invites_in), default=0.0),
        last_invite=max((t for t, _, _ in sig.invites_in), default=0.0),
    )
    delays = sorted(t_out - t_in for t_in, t_out, _, _ in sig.matched() if t_in >= since)
    fig.pdd_n = len(delays)
    if delays:
        fig.pdd_p50_ms = 1000 * percentile(delays, 50)
        fig.pdd_p99_ms = 1000 * percentile(delays, 99)
        fig.pdd_max_ms = 1000 * delays[-1]
    return fig


# ---------------------------------------------------------------- processes


class Processes:
    """Every child the bench starts, so that each is stopped, by its PID, whatever happens."""

    def __init__(self) -> None:
        self.running: list[subprocess.Popen[bytes]] = []

    def start(
        self,
        argv: Sequence[str],
        cwd: Path,
        out: Path,
        err: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start `argv` in `cwd`, its output to `out` (and its errors to `err`, if given)."""
        with out.open("wb") as sink:
            if err is None:
                proc = subprocess.Popen(
                    list(argv),
                    cwd=cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )
            else:
                with err.open("wb") as esink:
                    proc = subprocess.Popen(
                        list(argv), cwd=cwd, stdin=subprocess.DEVNULL, stdout=sink, stderr=esink
                    )
        self.running.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()  # this child, by its PID
                proc.wait(timeout=15)
        if proc in self.running:
            self.running.remove(proc)
        return proc.returncode

    def stop_all(self) -> None:
        for proc in list(reversed(self.running)):
            self.stop(proc)


def code_version() -> str:
    """The checkout's commit, and whether appliance/ differs from it (the code measured)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "appliance"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    return head.stdout.strip() + (" + uncommitted changes in appliance/" if dirty.stdout else "")


def other_captures() -> list[int]:
    """PIDs of tcpdump processes already running: each copies every packet on `lo` we send,
    at the sender's expense, and so inflates the core's system time."""
    found = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "tcpdump":
                found.append(int(comm.parent.name))
        except OSError:
            pass  # exited meanwhile
    return found


def process_cpu(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except (OSError, IndexError, ValueError):
        return 0.0


def open_files_limit(pid: int) -> str:
    try:
        for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return f"{soft} (hard {hard})"
    except OSError:
        pass
    return "unknown"


def free_media_port(taken: set[int]) -> int:
    """An even UDP port on 127.0.0.1 with the three above it free too (sipp binds p and p+2),
    outside the box's RTP range."""
    for _ in range(200):
        port = free_udp_port()
        if port % 2 or port in taken or RTP_PORT_MIN <= port <= RTP_PORT_MAX + 3:
            continue
        socks = []
        try:
            for p in range(port, port + 4):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        taken.update(range(port, port + 4))
        return port
    raise BenchError("no block of four free UDP ports on 127.0.0.1")


def ensure_tcpdump(install: bool) -> str:
    """The tcpdump command; installed from Debian's `tcpdump` package when missing and allowed."""
    for candidate in (shutil.which("tcpdump"), "/usr/bin/tcpdump", "/usr/sbin/tcpdump"):
        if candidate and Path(candidate).exists():
            return candidate
    why = "tcpdump is not installed (Debian package tcpdump: apt-get install tcpdump)"
    if not install:
        raise BenchError(why)
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise BenchError(why + "; installing it needs root and apt-get")
    print("tcpdump is missing: installing Debian's tcpdump with apt-get", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install_argv = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "tcpdump"]
    for argv in (install_argv, ["apt-get", "update", "-q"], install_argv):
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=150, env=env, check=False
        )
        if argv is install_argv and proc.returncode == 0:
            break
    path = shutil.which("tcpdump") or "/usr/bin/tcpdump"
    if not Path(path).exists():
        raise BenchError(why + f"; apt-get failed:\n{proc.stdout[-1000:]}{proc.stderr[-1000:]}")
    return path


class Capture:
    """tcpdump on `lo` writing `path`, pinned to `cpu`; stopped by its PID."""

    def __init__(
        self,
        procs: Processes,
        tcpdump: str,
        path: Path,
        expr: str,
        snaplen: int,
        cpu: int | None,
        *,
        immediate: bool = False,
    ) -> None:
        self.procs = procs
        self.path = path
        self.err = path.with_suffix(".err")
        argv = [
            tcpdump, "-i", "lo", "-n", "-s", str(snaplen), "-B", "65536", "-Z", "root",
            *(["--immediate-mode"] if immediate else []), "-w", str(path), expr,
        ]  # fmt: skip
        if cpu is not None:
            argv = ["taskset", "-c", str(cpu), *argv]
        self.proc = procs.start(argv, path.parent, path.with_suffix(".out"), self.err)
        deadline = time.monotonic() + 15
        while "listening on" not in self._stderr():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.procs.stop(self.proc)
                raise BenchError(
                    f"tcpdump did not start capturing: {self._stderr().strip()}"
                    " (capturing needs root)"
                )
            time.sleep(0.02)

    def _stderr(self) -> str:
        try:
            return self.err.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> int | None:
        """Stop capturing; the number of packets the kernel dropped (None if not reported)."""
        self.procs.stop(self.proc, signal.SIGINT)
        found = re.search(r"(\d+) packets? dropped by kernel", self._stderr())
        return int(found.group(1)) if found else None

    def datagrams(self) -> list[pcap.Datagram]:
        return list(pcap.read(self.path)) if self.path.exists() else []


# ---------------------------------------------------------------- the set-up


@dataclass
class Setup:
    pbx: str
    work: Path
    data: Path
    core: Core
    procs: Processes
    tcpdump: str
    callers: list[tuple[str, str]]
    callee: str
    uac_port: int
    uas_port: int
    uac_media: int
    uas_media: int
    sipp_cpu: int | None
    uas: subprocess.Popen[bytes] | None = None

    def taskset(self, argv: list[str]) -> list[str]:
        return argv if self.sipp_cpu is None else ["taskset", "-c", str(self.sipp_cpu), *argv]

    def tool_pids(self) -> list[int]:
        """The running sipps and tcpdumps (the load generators and the capture)."""
        return [p.pid for p in self.procs.running if p.poll() is None]


def write_audio(work: Path) -> None:
    """caller.ulaw and callee.ulaw in sipp's working directory: AUDIO_SECONDS of 20 ms packets,
    each unique (a packet index, then random bytes; distinct for the two sides)."""
    for name, seed in (("caller.ulaw", 1), ("callee.ulaw", 2)):
        rng = random.Random(seed)
        packets = [
            bytes([0xCA if seed == 1 else 0xCE])
            + i.to_bytes(3, "big")
            + rng.randbytes(PACKET_BYTES - 4)
            for i in range(AUDIO_SECONDS * 50)
        ]
        (work / name).write_bytes(b"".join(packets))


def write_calls(path: Path, setup: Setup, hold_s: float) -> None:
    rows = [
        f"{n};[authentication username={n} password={p}];{round(hold_s * 1000)};x;{setup.callee}"
        for n, p in setup.callers
    ]
    path.write_text("SEQUENTIAL\n" + "\n".join(rows) + "\n")


def register_callee(setup: Setup, password: str) -> None:
    rows = setup.work / "callee.csv"
    rows.write_text(
        f"SEQUENTIAL\n{setup.callee};[authentication username={setup.callee}"
        f" password={password}];3600\n"
    )
    argv = setup.taskset([
        "sipp", f"127.0.0.1:{setup.core.port}", "-sf", str(REGISTER_SCENARIO),
        "-inf", str(rows), "-i", "127.0.0.1", "-p", str(setup.uas_port), "-t", "u1",
        "-m", "1", "-nostdin", "-timeout", "20s", "-timeout_error",
    ])  # fmt: skip
    proc = subprocess.run(
        argv, cwd=setup.work, capture_output=True, text=True, timeout=40, check=False
    )
    if proc.returncode != 0:
        raise BenchError(
            f"the callee's REGISTER failed (sipp exit {proc.returncode}):\n"
            + (proc.stdout + proc.stderr)[-2000:]
        )


def start_callee(setup: Setup, lifetime_s: int) -> None:
    argv = setup.taskset([
        "sipp", "-sf", str(UAS_SCENARIO), "-i", "127.0.0.1", "-p", str(setup.uas_port),
        "-mp", str(setup.uas_media), "-t", "u1", "-nostdin", "-timeout", f"{lifetime_s}s",
        "-max_recv_loops", "10000", "-max_sched_loops", "10000",
        "-trace_stat", "-stf", str(setup.work / "uas-stat.csv"), "-fd", "1",
        "-trace_err", "-error_file", str(setup.work / "uas-errors.log"),
    ])  # fmt: skip
    setup.uas = setup.procs.start(argv, setup.work, setup.work / "uas.out")
    deadline = time.monotonic() + 15
    while not udp_bound(setup.uas_port):  # sipp listens: INVITEs will not meet a closed port
        if setup.uas.poll() is not None or time.monotonic() > deadline:
            out = (setup.work / "uas.out").read_text(errors="replace")[-2000:]
            raise BenchError(f"the callee sipp did not start (status {setup.uas.poll()}):\n{out}")
        time.sleep(0.02)


def udp_bound(port: int) -> bool:
    """Whether some socket is bound to UDP 127.0.0.1:`port` (from /proc/net/udp)."""
    wanted = f"0100007F:{port:04X}"
    lines = Path("/proc/net/udp").read_text().splitlines()[1:]
    return any(line.split()[1] == wanted for line in lines if len(line.split()) > 1)


def start_callers(
    setup: Setup,
    name: str,
    hold_s: float,
    rate: str,
    period_ms: int,
    count: int,
    limit: int,
    timeout_s: int,
) -> tuple[subprocess.Popen[bytes], Path]:
    rows = setup.work / f"{name}.csv"
    write_calls(rows, setup, hold_s)
    stf = setup.work / f"{name}-stat.csv"
    argv = setup.taskset([
        "sipp", f"127.0.0.1:{setup.core.port}", "-sf", str(UAC_SCENARIO), "-inf", str(rows),
        "-i", "127.0.0.1", "-p", str(setup.uac_port), "-mp", str(setup.uac_media), "-t", "u1",
        "-r", rate, "-rp", str(period_ms), "-m", str(count), "-l", str(limit),
        "-recv_timeout", str(RECV_TIMEOUT_MS), "-timeout", f"{timeout_s}s",
        "-max_recv_loops", "10000", "-max_sched_loops", "10000", "-nostdin",
        "-trace_stat", "-stf", str(stf), "-fd", "1",
        "-trace_err", "-error_file", str(setup.work / f"{name}-errors.log"),
    ])  # fmt: skip
    return setup.procs.start(argv, setup.work, setup.work / f"{name}.out"), stf


def finish_callers(
    setup: Setup, proc: subprocess.Popen[bytes], stf: Path, count: int, timeout_s: float
) -> SippFigures:
    fig = SippFigures(count=count)
    try:
        fig.exit = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        fig.timed_out = True
        fig.exit = setup.procs.stop(proc, signal.SIGKILL)
    if proc in setup.procs.running:
        setup.procs.running.remove(proc)
    stats = read_stats(stf)
    if stats is not None:
        fig.created = int(stats.get("TotalCallCreated", "0"))
        fig.successful = int(stats.get("SuccessfulCall(C)", "0"))
        fig.failed = int(stats.get("FailedCall(C)", "0"))
        fig.retransmissions = int(stats.get("Retransmissions(C)", "0"))
        fig.reasons = {
            k[len("Failed") : -len("(C)")]: int(v)
            for k, v in stats.items()
            if k.startswith("Failed")
            and k.endswith("(C)")
            and k != "FailedCall(C)"
            and v.isdigit()
            and int(v)
        }
    return fig


def calls_in_box(data: Path) -> int | None:
    from appliance import control

    try:
        return int(control.call(data, "counters", timeout=5.0)["calls"])
    except (control.ControlError, OSError, ValueError, KeyError):
        return None


def wait_idle(setup: Setup, timeout: float) -> int | None:
    """Wait (bounded) until the box holds no call; the number still held at the end."""
    deadline = time.monotonic() + timeout
    while True:
        n = calls_in_box(setup.data)
        if n == 0 or time.monotonic() > deadline:
            return n
        time.sleep(0.2)


def cdr_figures(data: Path, since: float, until: float) -> CdrFigures:
    fig = CdrFigures()
    uri = f"file:{data / 'pbx.sqlite3'}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=10)
    try:
        rows = conn.execute(
            "SELECT disposition, rtp_caller, rtp_callee FROM cdrs"
            " WHERE started_at >= ? AND started_at <= ?",
            [since, until],
        ).fetchall()
    finally:
        conn.close()
    for disposition, *legs in rows:
        fig.records += 1
        fig.answered += disposition == "answered"
        for leg in legs:
            if leg:
                stats = json.loads(leg)
                fig.packets += int(stats.get("packets") or 0)
                fig.lost += int(stats.get("lost") or 0)
    return fig


@dataclass
class Window:
    seconds: float
    core_cpu: float
    core_sys: float
    core_wait: float
    tools_cpu: float
    calls: list[int]


def measure(setup: Setup, seconds: float) -> Window:
    """The core's CPU (and sipp's) over `seconds`, sampling the box's call count each second."""
    pid = setup.core.pid
    sipp = setup.tool_pids()
    u0, s0 = cpu_times(pid)
    w0 = runqueue_wait(pid)
    p0 = sum(process_cpu(p) for p in sipp)
    t0 = time.monotonic()
    samples: list[int] = []
    deadline = t0 + seconds
    while time.monotonic() < deadline:
        n = calls_in_box(setup.data)
        if n is not None:
            samples.append(n)
        time.sleep(max(0.0, min(1.0, deadline - time.monotonic())))
    wall = time.monotonic() - t0
    u1, s1 = cpu_times(pid)
    w1 = runqueue_wait(pid)
    p1 = sum(process_cpu(p) for p in sipp)
    return Window(wall, (u1 - u0) + (s1 - s0), s1 - s0, w1 - w0, p1 - p0, samples)


def sleep_until(when: float) -> None:
    time.sleep(max(0.0, when - time.monotonic()))


# ---------------------------------------------------------------- steps


def sip_capture(setup: Setup, name: str) -> Capture:
    # Immediate mode: packets reach the file as they come (SIP is a trickle), so stopping
    # loses nothing; by default tcpdump hands them over in ring blocks, the last one lost.
    return Capture(
        setup.procs,
        setup.tcpdump,
        setup.work / f"{name}-sip.pcap",
        f"udp and port {setup.core.port}",
        4096,
        setup.sipp_cpu,
        immediate=True,
    )


def rtp_capture(setup: Setup, name: str) -> Capture:
    a, b = setup.uac_media, setup.uas_media
    box = f"portrange {RTP_PORT_MIN}-{RTP_PORT_MAX}"
    expr = (
        f"udp and (((src port {a} or src port {b}) and dst {box})"
        f" or ((dst port {a} or dst port {b}) and src {box}))"
    )
    return Capture(
        setup.procs, setup.tcpdump, setup.work / f"{name}-rtp.pcap", expr, 256, setup.sipp_cpu
    )


def run_concurrency(setup: Setup, calls: int, hold_s: float) -> ConcurrencyStep:
    """N calls up from `hold` to 2 x `hold` s: a CPU window, then an RTP capture window."""
    step = ConcurrencyStep(calls=calls, hold_s=hold_s)
    name = f"conc-{calls}"
    window = max(1.0, (hold_s - 3.0) / 2)
    step.window_s = window
    count = 2 * calls
    timeout_s = int(3 * hold_s + 60)
    sip = sip_capture(setup, name)
    cpu0 = process_cpu(setup.core.pid)
    since = time.time()
    t0 = time.monotonic()
    proc, stf = start_callers(
        setup, name, hold_s, str(calls), round(hold_s * 1000), count, calls, timeout_s
    )
    try:
        sleep_until(t0 + hold_s + 1.0)
        w = measure(setup, window)
        rtp = rtp_capture(setup, name)
        wait0, c0 = runqueue_wait(setup.core.pid), time.monotonic()
        # tcpdump hands packets over in ring blocks, and the block being filled when it stops
        # is lost: capture a second longer (the window is measured from the packets).
        sleep_until(time.monotonic() + window + 1.0)
        capture_wait = (runqueue_wait(setup.core.pid) - wait0) / (time.monotonic() - c0)
        rtp_dropped = rtp.stop()
        step.sipp = finish_callers(setup, proc, stf, count, timeout_s + 15)
    except BaseException:
        setup.procs.stop(proc, signal.SIGKILL)
        raise
    cpu1 = process_cpu(setup.core.pid)
    sip_dropped = sip.stop()
    step.core_cpu_pct = 100 * w.core_cpu / w.seconds
    step.core_sys_pct = 100 * w.core_sys / w.seconds
    step.core_wait_pct = 100 * w.core_wait / w.seconds
    step.tools_cpu_pct = 100 * w.tools_cpu / w.seconds
    step.calls_in_box = sum(w.calls) / len(w.calls) if w.calls else float(calls)
    if step.calls_in_box > 0:
        step.cpu_s_per_call_s = w.core_cpu / (step.calls_in_box * w.seconds)
    call_seconds = step.sipp.successful * hold_s
    if call_seconds > 0:
        step.step_cpu_s_per_call_s = (cpu1 - cpu0) / call_seconds
    sig = read_signalling(sip.datagrams(), setup.core.port, setup.uac_port, setup.uas_port)
    step.setup = analyse_setup(sig, since=since + hold_s)
    step.setup.capture_dropped = sip_dropped
    phones = frozenset({setup.uac_media, setup.uas_media})
    box = range(RTP_PORT_MIN, RTP_PORT_MAX + 1)
    step.relay = analyse_relay(rtp.datagrams(), box, phones, sig.media_pairs(), sig.media_ends())
    step.relay.capture_dropped = rtp_dropped
    step.relay.core_wait_pct = 100 * capture_wait
    step.calls_left = wait_idle(setup, 60) or 0
    step.cdr = cdr_figures(setup.data, since - 1, time.time())
    step.rss_mb_after = rss_mb(setup.core.pid)
    return step


def run_rate(setup: Setup, rate: int, duration_s: float, hold_s: float) -> RateStep:
    step = RateStep(offered_rate=rate, duration_s=duration_s, hold_s=hold_s)
    name = f"rate-{rate}"
    count = max(1, round(rate * duration_s))
    limit = max(100, int(rate * (hold_s + 5) * 3))
    timeout_s = int(duration_s * 2 + hold_s + 60)
    sip = sip_capture(setup, name)
    pid = setup.core.pid
    u0, s0 = cpu_times(pid)
    w0 = runqueue_wait(pid)
    since = time.time()
    t0 = time.monotonic()
    proc, stf = start_callers(setup, name, hold_s, str(rate), 1000, count, limit, timeout_s)
    tools0 = {p: process_cpu(p) for p in setup.tool_pids()}
    tools1 = dict(tools0)  # the last reading of each: the callers' sipp exits during the step
    peak = 0
    try:
        deadline = t0 + timeout_s + 15
        while proc.poll() is None and time.monotonic() < deadline:
            n = calls_in_box(setup.data)
            peak = max(peak, n or 0)
            tools1.update({p: max(tools1[p], process_cpu(p)) for p in tools0})
            try:
                proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                pass
        tools1.update({p: max(tools1[p], process_cpu(p)) for p in tools0})
        step.sipp = finish_callers(setup, proc, stf, count, max(1.0, deadline - time.monotonic()))
    except BaseException:
        setup.procs.stop(proc, signal.SIGKILL)
        raise
    wall = time.monotonic() - t0
    u1, s1 = cpu_times(pid)
    w1 = runqueue_wait(pid)
    sip_dropped = sip.stop()
    step.elapsed_s = wall
    step.peak_calls_in_box = peak
    step.core_cpu_pct = 100 * ((u1 - u0) + (s1 - s0)) / wall
    step.core_sys_pct = 100 * (s1 - s0) / wall
    step.core_wait_pct = 100 * (w1 - w0) / wall
    step.tools_cpu_pct = 100 * (sum(tools1.values()) - sum(tools0.values())) / wall
    sig = read_signalling(sip.datagrams(), setup.core.port, setup.uac_port, setup.uas_port)
    step.setup = analyse_setup(sig)
    step.setup.capture_dropped = sip_dropped
    # The rate the box was offered: authenticated INVITEs in over their span (sipp may lag
    # or burst when its CPU is busy; failures are counted apart, by sipp).
    span = step.setup.last_invite - step.setup.first_invite
    if step.setup.invites_in > 1 and span > 0:
        step.achieved_rate = (step.setup.invites_in - 1) / span
    step.calls_left = wait_idle(setup, 60) or 0
    step.cdr = cdr_figures(setup.data, since - 1, time.time())
    step.rss_mb_after = rss_mb(pid)
    return step


# ---------------------------------------------------------------- driver


def parse_list(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError("values must be positive (or an empty list)")
    return [v for v in values if v > 0]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench/calls",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__,
        epilog=(
            "Output: a table of concurrency steps (the core's CPU-seconds per call-second, RTP"
            " loss and transit through the box, added jitter, post-dial delay), a table of"
            " setup-rate steps (calls/s achieved, failures, post-dial delay), the highest"
            " setup rate with < 1 % failures, and the machine."
            "\nExample: .venv/bin/python bench/calls --concurrency 50 --hold 20 --rates 40,60"
            " --json out.json"
        ),
    )
    p.add_argument(
        "--concurrency",
        type=parse_list,
        default=None,
        metavar="N,N,...",
        help="concurrent calls per step, in order (default "
        + ",".join(map(str, DEFAULT_CONCURRENCY))
        + "; '0' for none)",
    )
    p.add_argument(
        "--hold",
        type=float,
        default=None,
        help="seconds each call of a concurrency step is held (default 30)",
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
        "--callers",
        type=int,
        default=None,
        metavar="N",
        help="caller extensions, each with its own password (default 200)",
    )
    p.add_argument("--core-cpu", type=int, default=0, help="CPU for the core (default 0)")
    p.add_argument(
        "--sipp-cpu", type=int, default=1, help="CPU for both sipps and tcpdump (default 1)"
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
        help="smoke run: 20 callers; 5 concurrent calls held 6 s; one setup-rate step"
        " at 10/s for 4 s with a 2 s hold",
    )
    return p


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(143)  # unwind through the finally blocks: stop every child, clean up


def run(args: argparse.Namespace) -> Result:
    quick = bool(args.quick)
    concurrency: list[int] = (
        args.concurrency
        if args.concurrency is not None
        else list(QUICK_CONCURRENCY if quick else DEFAULT_CONCURRENCY)
    )
    rates: list[int] = (
        args.rates if args.rates is not None else list(QUICK_RATES if quick else DEFAULT_RATES)
    )
    hold: float = args.hold or (6.0 if quick else 30.0)
    rate_duration: float = args.rate_duration or (4.0 if quick else 15.0)
    rate_hold: float = args.rate_hold or (2.0 if quick else 5.0)
    n_callers: int = args.callers or (20 if quick else 200)
    if not 1 <= n_callers <= 10000:
        raise BenchError("--callers must be 1 to 10000")
    if not 4 <= hold <= 600 or not 0 < rate_duration <= 600 or not 1 <= rate_hold <= 600:
        raise BenchError("--hold must be 4-600 s, --rate-duration 0-600 s, --rate-hold 1-600 s")
    if any(n > 2000 for n in concurrency) or any(r > 1000 for r in rates):
        raise BenchError("at most 2000 concurrent calls and 1000 calls/s")
    if not concurrency and not rates:
        raise BenchError("nothing to run: no concurrency step and no setup rate")
    pbx = args.pbx or str(ROOT / ".venv" / "bin" / "pbx")
    if shutil.which(pbx) is None:
        raise BenchError(f"no pbx command at {pbx}")
    for tool in ("sipp",) + (() if args.no_pin else ("taskset",)):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} is not installed")
    for scenario in (UAC_SCENARIO, UAS_SCENARIO, REGISTER_SCENARIO):
        if not scenario.is_file():
            raise BenchError(f"no sipp scenario at {scenario}")
    tcpdump = ensure_tcpdump(not args.no_install)
    core_cpu: int | None = None if args.no_pin else args.core_cpu
    sipp_cpu: int | None = None if args.no_pin else args.sipp_cpu
    allowed = os.sched_getaffinity(0)
    for cpu in (core_cpu, sipp_cpu):
        if cpu is not None and cpu not in allowed:
            raise BenchError(f"CPU {cpu} is not available (have {sorted(allowed)}); try --no-pin")

    result = Result(
        machine=machine_info(),
        config={
            "concurrency": concurrency,
            "hold_s": hold,
            "rates": rates,
            "rate_duration_s": rate_duration,
            "rate_hold_s": rate_hold,
            "callers": n_callers,
            "core_cpu": core_cpu,
            "sipp_cpu": sipp_cpu,
            "codec": "PCMU both legs (relayed)",
            "digest": "MD5",
            "transport": "UDP 127.0.0.1",
            "rtp_ports": f"{RTP_PORT_MIN}-{RTP_PORT_MAX}",
            "quick": quick,
        },
    )
    result.machine["code"] = code_version()
    background = busy_cpu_pct(1.0)
    result.machine["background_busy_pct"] = round(background, 1)
    captures = other_captures()
    result.machine["other_packet_captures"] = len(captures)
    if captures:
        print(
            f"warning: {len(captures)} other tcpdump process(es) running (pid"
            f" {', '.join(map(str, captures))}): capturing on lo costs every sender CPU",
            flush=True,
        )
    if background > 10:
        print(
            f"warning: the machine is already {background:.0f}% busy (all CPUs) before the"
            " run; figures will be worse than the box can do (see 'CPU wait')",
            flush=True,
        )
    work = Path(tempfile.mkdtemp(prefix="pbx-bench-calls-"))
    procs = Processes()
    core: Core | None = None
    try:
        data = work / "var"
        pbx_cli(pbx, data, "config", "set", "rtp.port_min", str(RTP_PORT_MIN))
        pbx_cli(pbx, data, "config", "set", "rtp.port_max", str(RTP_PORT_MAX))
        creds = create_extensions(data, n_callers + 1)
        (callee, callee_password), callers = creds[-1], creds[:-1]
        write_audio(work)
        print(
            f"created {n_callers} caller extensions and callee {callee}; data in {work}", flush=True
        )

        core = Core(pbx, data, work / "core.log", core_cpu)
        core.wait_ready(timeout=30)
        result.machine["core_open_files_limit"] = open_files_limit(core.pid)
        uac_port = free_udp_port()
        uas_port = free_udp_port()
        while uas_port == uac_port or core.port in (uac_port, uas_port):
            uas_port = free_udp_port()
        taken: set[int] = {core.port, uac_port, uas_port}
        setup = Setup(
            pbx=pbx,
            work=work,
            data=data,
            core=core,
            procs=procs,
            tcpdump=tcpdump,
            callers=callers,
            callee=callee,
            uac_port=uac_port,
            uas_port=uas_port,
            uac_media=free_media_port(taken),
            uas_media=free_media_port(taken),
            sipp_cpu=sipp_cpu,
        )
        register_callee(setup, callee_password)
        bound = sum(int(3 * hold + 150) for _ in concurrency)
        bound += sum(int(2 * rate_duration + rate_hold + 150) for _ in rates)
        start_callee(setup, bound + 120)
        result.idle_rss_mb = rss_mb(core.pid)
        print(
            f"core pid {core.pid} on 127.0.0.1:{core.port} (cpu {core_cpu}, open files"
            f" {result.machine['core_open_files_limit']}); callee {callee} is sipp"
            f" :{uas_port} (RTP :{setup.uas_media}), callers sipp :{uac_port} (RTP"
            f" :{setup.uac_media}) on cpu {sipp_cpu} with tcpdump; idle RSS"
            f" {result.idle_rss_mb:.1f} MiB",
            flush=True,
        )

        def check() -> None:
            if not core.alive():
                raise BenchError("the core exited during the run:\n" + core.tail())
            if setup.uas is None or setup.uas.poll() is not None:
                raise BenchError(
                    "the callee sipp exited during the run:\n"
                    + (work / "uas.out").read_text(errors="replace")[-2000:]
                )

        if concurrency:
            print(
                f"\nconcurrent calls held {hold:g} s (CPU window {max(1.0, (hold - 3) / 2):g} s,"
                " then RTP capture window as long):"
            )
            print(
                "(CPU-s/call-s over the CPU window, (step) over the whole step; wait: the core"
                " runnable but waiting for its CPU, in the CPU window and in the capture window;"
                " tools: sipp and tcpdump CPU; transit: RTP packet in → relayed packet out;"
                " jitter p99: of |transit - median|; PDD: authenticated INVITE in → INVITE out,"
                " calls started with N up; CDR lost: what the box itself counted)"
            )
            print(CONC_HEADER, flush=True)
        for n in concurrency:
            check()
            step = run_concurrency(setup, n, hold)
            result.concurrency.append(step)
            wait = max(step.core_wait_pct, step.relay.core_wait_pct)
            notes = _notes(step.sipp, step.relay.capture_dropped, wait, step.calls_left)
            print(conc_row(step) + notes, flush=True)
        if rates:
            print(
                f"\nsetup rates, {rate_duration:g} s of arrivals each, calls held"
                f" {rate_hold:g} s with RTP:"
            )
            print(RATE_HEADER, flush=True)
        failing_run = 0
        for rate in rates:
            check()
            rstep = run_rate(setup, rate, rate_duration, rate_hold)
            result.rates.append(rstep)
            notes = _notes(rstep.sipp, None, rstep.core_wait_pct, rstep.calls_left)
            print(rate_row(rstep) + notes, flush=True)
            failing_run = 0 if rstep.passed else failing_run + 1
            if failing_run > args.confirm:
                break
        check()
    finally:
        procs.stop_all()
        if core is not None:
            rc = core.stop()
            if rc not in (0, -signal.SIGTERM):
                print(f"warning: core exited with status {rc}:\n{core.tail()}", flush=True)
        if args.keep:
            print(f"kept {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return result


def _notes(sipp: SippFigures, dropped: int | None, wait_pct: float, calls_left: int) -> str:
    notes = []
    if calls_left:
        notes.append(f"{calls_left} calls still in the box 60 s after the step")
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
    f"{'calls':>5} {'in box':>6} {'CPU-s/call-s':>12} {'(step)':>8} {'core CPU':>8} {'sys':>4}"
    f" {'wait':>4} {'tools':>5} {'RTP in':>7} {'lost':>6} {'transit p50/p99/max ms':>22}"
    f" {'jitter p99':>10} {'wait':>4} {'PDD p50/p99/max ms (n)':>24} {'failed':>7}"
    f" {'CDR lost':>8}"
)


def conc_row(s: ConcurrencyStep) -> str:
    r, u = s.relay, s.setup
    transit = f"{r.transit_p50_ms:.2f}/{r.transit_p99_ms:.2f}/{r.transit_max_ms:.1f}"
    pdd = f"{u.pdd_p50_ms:.1f}/{u.pdd_p99_ms:.1f}/{u.pdd_max_ms:.1f} ({u.pdd_n})"
    return (
        f"{s.calls:>5} {s.calls_in_box:>6.1f} {s.cpu_s_per_call_s:>12.5f}"
        f" {s.step_cpu_s_per_call_s:>8.5f} {s.core_cpu_pct:>7.0f}% {s.core_sys_pct:>3.0f}%"
        f" {s.core_wait_pct:>3.0f}% {s.tools_cpu_pct:>4.0f}% {r.packets_in:>7}"
        f" {r.loss_pct:>5.2f}% {transit:>22} {r.added_jitter_p99_ms:>8.2f}ms"
        f" {r.core_wait_pct:>3.0f}% {pdd:>24} {s.sipp.failures_pct:>6.2f}% {s.cdr.loss_pct:>7.3f}%"
    )


RATE_HEADER = (
    f"{'offered/s':>9} {'achieved/s':>10} {'calls':>6} {'failed':>7} {'peak in box':>11}"
    f" {'core CPU':>8} {'sys':>4} {'wait':>4} {'tools':>5} {'PDD p50/p99/max ms (n)':>24}"
    f" {'retrans':>7} {'CDR lost':>8}"
)


def rate_row(s: RateStep) -> str:
    u = s.setup
    pdd = f"{u.pdd_p50_ms:.1f}/{u.pdd_p99_ms:.1f}/{u.pdd_max_ms:.1f} ({u.pdd_n})"
    return (
        f"{s.offered_rate:>9} {s.achieved_rate:>10.1f} {s.sipp.count:>6}"
        f" {s.sipp.failures_pct:>6.2f}% {s.peak_calls_in_box:>11} {s.core_cpu_pct:>7.0f}%"
        f" {s.core_sys_pct:>3.0f}% {s.core_wait_pct:>3.0f}% {s.tools_cpu_pct:>4.0f}% {pdd:>24}"
        f" {s.sipp.retransmissions:>7} {s.cdr.loss_pct:>7.3f}%"
    )


def report(result: Result) -> None:
    m = result.machine
    print()
    for s in result.concurrency:
        print(
            f"{s.calls} concurrent calls: {s.cpu_s_per_call_s:.5f} CPU-s per call-second"
            f" (bar <= 0.002), RTP loss {s.relay.loss_pct:.3f}% of {s.relay.packets_in}"
            f" (bar < 0.1%), added jitter p99 {s.relay.added_jitter_p99_ms:.2f} ms (bar < 2),"
            f" post-dial delay p99 {s.setup.pdd_p99_ms:.1f} ms over {s.setup.pdd_n} calls"
            f" (bar <= 5 at 50), {s.sipp.failures_pct:.2f}% calls failed"
        )
    if result.rates:
        best = result.best_rate()
        if best is None:
            print("highest setup rate with < 1% failures: none (no step passed and kept up)")
        else:
            print(
                f"highest setup rate with < 1% failures: {best.offered_rate}/s offered,"
                f" {best.achieved_rate:.1f}/s achieved (bar >= 60), core CPU"
                f" {best.core_cpu_pct:.0f}%, {best.peak_calls_in_box} calls up at the peak,"
                f" post-dial delay p99 {best.setup.pdd_p99_ms:.0f} ms"
            )
        clean = result.best_clean_rate()
        if clean is not None and clean is not best:
            print(
                f"highest setup rate also without SIP retransmissions (every answer within"
                f" 500 ms): {clean.offered_rate}/s, post-dial delay p99"
                f" {clean.setup.pdd_p99_ms:.0f} ms"
            )
    print(f"idle RSS of the core: {result.idle_rss_mb:.1f} MiB")
    print(
        f"machine: {m['cpu_model']}; nproc {m['nproc']}; kernel {m['kernel']};"
        f" Python {m['python']}; {m['sipp']}; {m['date']};"
        f" busy before the run {m['background_busy_pct']}%; code {m['code']}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        result = run(args)
    except BenchError as exc:
        print(f"bench/calls: {exc}", file=sys.stderr)
        return 2
    report(result)
    if args.json is not None:
        args.json.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    return 0
