"""Crash recovery of `pbx run` (issue 13, item 7): kill -9 during 20 live calls between sipp
phones, then start it again on the same address and data directory, as systemd would
(`Restart=on-failure` after `RestartSec`; CI has no systemd as PID 1, so the test restarts it).

What must hold: the core is READY within 3 s of the crash counting `RestartSec`; the 20 calls
are closed with CDRs `interrupted` and their durations up to the crash, at most one checkpoint
interval short; the phones are still registered though none sent a REGISTER again (a call to
each rings at the address it registered from before the crash); nothing holds the RTP ports;
a new call carries audio both ways (the tones checked by frequency).
"""

from __future__ import annotations

import configparser
import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from appliance import control
from appliance.media.codecs import make_decoder
from appliance.pbx.checkpoint import INTERVAL
from appliance.store import live_calls
from appliance.store.db import open_db
from tests.conftest import CoreProcess
from tests.interop.call_records import all_cdrs
from tests.interop.rtp_endpoint import RtpEndpoint, RtpPacket
from tests.interop.sipp import (
    BackgroundSipp,
    SippPeers,
    credentials,
    free_media_port,
    free_port,
    run_sipp,
    ulaw_tone,
)
from tests.interop.test_sipp_calls import RTP_PORTS, free_rtp_range
from tests.interop.tones import dominant_frequency

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "pbx-core.service"
CALLS = 20
CALLER, CALLER_PASSWORD = "101", "Kq7vT9pLm2"
CALLEES = {"102": "Zr4wX8nQp3", "103": "Hs5yB2mWq8"}
TALK = 3.0
"""Seconds the 20 calls talk after the last is answered, before the kill (a conversation)."""
WAIT = 20.0
CALLER_TONE, CALLEE_TONE = 440.0, 1000.0


def restart_sec() -> float:
    """`RestartSec` of the core's systemd unit: how long systemd waits before it restarts it."""
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(UNIT)
    return float(unit["Service"]["RestartSec"])


def wait_until(what: str, check: Any, timeout: float = WAIT) -> Any:
    """Poll `check()` (an external effect: the core's state, a table) until it is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s (last: {value!r})")
        time.sleep(0.05)


def answered_calls(core: CoreProcess) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = control.call(core.data, "status")["calls"]
    return [c for c in calls if c["state"] == "answered"]


def bindings(data: Path) -> set[tuple[Any, ...]]:
    """Every binding row as SQLite holds it (call-ID, CSeq, registration time and all)."""
    db = open_db(data, migrate_schema=False)
    try:
        return set(db.execute("SELECT * FROM registrations").fetchall())
    finally:
        db.conn.close()


def checkpointed(data: Path) -> int:
    """How many live calls the checkpoint holds as answered."""
    db = open_db(data, migrate_schema=False)
    try:
        rows = db.execute("SELECT record FROM live_calls").fetchall()
        return sum(json.loads(record)["answered_at"] is not None for (record,) in rows)
    finally:
        db.conn.close()


def ports_bound(low: int, high: int) -> list[int]:
    """The UDP ports in [low, high) that some socket on this machine holds (/proc/net/udp)."""
    held = []
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        port = int(line.split()[1].split(":")[1], 16)
        if low <= port < high:
            held.append(port)
    return held


def frequency(packets: list[RtpPacket]) -> float:
    pcm = make_decoder("PCMU").decode(b"".join(p.payload for p in packets))
    return dominant_frequency(np.frombuffer(pcm, dtype="<i2").astype(np.float64), 8000)


@pytest.fixture
def peers(tmp_path: Path) -> Iterator[SippPeers]:
    with SippPeers(("127.0.0.1", 0), tmp_path / "sipp") as started:
        yield started


def test_kill_9_during_20_calls_closes_them_interrupted_and_comes_back_registered(
    core_factory: type[CoreProcess], tmp_path: Path, peers: SippPeers
) -> None:
    core = core_factory(data=tmp_path / "var")
    low = free_rtp_range()
    core.cli("config", "set", "rtp.port_min", str(low))
    core.cli("config", "set", "rtp.port_max", str(low + RTP_PORTS - 1))
    core.start()
    all_free = control.call(core.data, "counters")["free_rtp_ports"]
    peers.target = (core.host, core.port)
    workdir = tmp_path / "sipp"
    core.add_extension(CALLER, CALLER_PASSWORD)
    phone_ports = {}
    for number, password in CALLEES.items():
        core.add_extension(number, password)
        phone_ports[number] = port = free_port()
        run = run_sipp("register.xml", peers.target, [[number, credentials(number, password),
                       3600]], workdir=workdir, port=port)  # fmt: skip
        assert run.statuses == [401, 200], run.describe()

    # 20 calls, 10 to each phone, with RTP both ways; the caller holds them for minutes.
    callees = [answering(peers, port, calls=CALLS // 2, timeout=120)
               for port in phone_ports.values()]  # fmt: skip
    rows: list[list[str | int]] = [
        [CALLER, credentials(CALLER, CALLER_PASSWORD), 120_000, number, "Alice", "", 1]
        for number in CALLEES
    ]
    caller = peers.start("call_uac.xml", rows, port=free_port(), media_port=free_media_port(),
                         calls=CALLS, timeout=120, extra=("-l", str(CALLS)))  # fmt: skip
    live = wait_until(f"{CALLS} answered calls",
                      lambda: len(calls := answered_calls(core)) == CALLS and calls)  # fmt: skip
    seen_at = time.time()
    started = {c["id"]: seen_at - c["duration"] for c in live}
    time.sleep(TALK)  # the calls talk (a conversation's length, not a synchronisation)
    wait_until("the checkpoint holding every call answered",
               lambda: checkpointed(core.data) == CALLS, timeout=3 * INTERVAL)  # fmt: skip
    registered = bindings(core.data)
    assert {row[0] for row in registered} == set(CALLEES), registered

    assert core.proc is not None
    core.proc.kill()  # SIGKILL, by PID: no clean-up of any kind
    killed_at = time.time()
    core.proc.wait(timeout=WAIT)
    assert ports_bound(low, low + RTP_PORTS) == [], "RTP ports still held after the crash"
    for sipp in (caller, *callees):
        sipp.kill()  # the old calls' phones; their ports are the phones' registered ones
    assert ports_bound(low, low + RTP_PORTS) == []

    # Started again as systemd would, after RestartSec: READY within what is left of 3 s.
    core.sip = f"{core.host}:{core.port}"
    began = time.monotonic()
    core.start()
    ready = time.monotonic() - began
    assert ready <= 3.0 - restart_sec(), f"READY {ready:.2f} s after the start"

    records = [r for r in all_cdrs(core.data) if r["disposition"] == "interrupted"]
    assert {r["id"] for r in records} == set(started), records
    for r in records:
        up = killed_at - started[r["id"]]
        assert up - INTERVAL - 0.5 <= r["duration"] <= up + 0.5, (r, up)
        assert r["ended_at"] <= killed_at and r["answered_by"] in CALLEES, r
        assert r["billsec"] > 0 and r["hangup_side"] == "system", r
    assert len({r["ended_at"] for r in records}) == 1, "not all at the last checkpoint"
    db = open_db(core.data, migrate_schema=False)
    assert live_calls.count(db) == 0
    db.conn.close()
    status = control.call(core.data, "status")
    assert {b["aor"] for b in status["registrations"]} >= set(CALLEES), status
    free = control.call(core.data, "counters")["free_rtp_ports"]
    assert free == all_free, f"{free} RTP port pairs free of {all_free}"

    # A new call to each phone rings where it registered before the crash; it sends no
    # REGISTER (its scenario has none) and its binding is the very row written before.
    with ExitStack() as stack:
        caller_rtp = stack.enter_context(RtpEndpoint())
        callee_rtp = stack.enter_context(RtpEndpoint())
        callee = peers.start("pj_uas_bye.xml", [["102", "", callee_rtp.port, "", 3000]],
                             port=phone_ports["102"], media_port=free_media_port(),
                             timeout=30)  # fmt: skip
        dialler = peers.start("pj_uac_answer.xml", [[CALLER, credentials(CALLER,
                              CALLER_PASSWORD), caller_rtp.port, "102", 0]], port=free_port(),
                              media_port=free_media_port(), timeout=30)  # fmt: skip
        caller_rtp.start((core.host, dialler.wait_media_port()), audio=ulaw_tone(CALLER_TONE))
        callee_rtp.start((core.host, callee.wait_media_port()), audio=ulaw_tone(CALLEE_TONE))
        heard_by_callee = callee_rtp.wait_packets(lambda p: p.payload_type == 0, 50)
        heard_by_caller = caller_rtp.wait_packets(lambda p: p.payload_type == 0, 50)
        assert abs(frequency(heard_by_callee[10:]) - CALLER_TONE) < 20
        assert abs(frequency(heard_by_caller[10:]) - CALLEE_TONE) < 20
        callee.wait().assert_passed()
        dialler.wait().assert_passed()
    other = answering(peers, phone_ports["103"], calls=1, timeout=30)
    run_call(peers, "103")
    other.wait().assert_passed()
    assert bindings(core.data) == registered
    dispositions = sorted(r["disposition"] for r in all_cdrs(core.data))
    assert dispositions == ["answered"] * 2 + ["interrupted"] * CALLS, dispositions
    assert not any("Traceback" in line for line in core.output), "\n".join(core.output)


def answering(peers: SippPeers, port: int, *, calls: int, timeout: float) -> BackgroundSipp:
    """A phone at 127.0.0.1:`port` answering `calls` calls (180, 200, RTP, BYE awaited)."""
    media = free_media_port()
    return peers.start("call_uas_answer.xml", [[media, 0, 1, 0]], port=port, media_port=media,
                       calls=calls, timeout=timeout)  # fmt: skip


def run_call(peers: SippPeers, dialled: str) -> None:
    """101 calls `dialled`, talks half a second and hangs up; the call must pass."""
    row: list[str | int] = [CALLER, credentials(CALLER, CALLER_PASSWORD), 500, dialled, "Alice",
                            "", 1]  # fmt: skip
    sipp: BackgroundSipp = peers.start("call_uac.xml", [row], port=free_port(),
                                       media_port=free_media_port(), timeout=30)  # fmt: skip
    sipp.wait().assert_passed()
