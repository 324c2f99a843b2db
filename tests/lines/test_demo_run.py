"""The demo as a new user meets it (issue 12, item 9): `pbx run --demo` makes the simulated
board's ports, `pbx lines run --board sim` starts the simulator and the gateway as processes,
both analog extensions register, and a person "picks up" handset 1 with `pbx lines sim` and
dials 202 by pulses: handset 2 rings, is picked up, and both are in a call. A changed
office country then restarts the gateway by itself (the simulator stays), and the ports are
back.

The demo also has the FXO trunk `city-line` on 127.0.0.1: the call from port 1 (sent from
127.0.0.1 as well) must reach the core as extension 201's, not as the city line's."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from appliance.store import cdrs, ports
from appliance.store.db import open_db
from tests.conftest import CoreProcess, ServiceProcess, pbx_cli, stopped_after

GATEWAY_READY = "pbx-lines: ready on "


@dataclass
class LinesProcess(ServiceProcess):
    """`pbx lines run --board sim` (the simulator and the gateway, its children)."""

    core: str = ""
    sip_port: int = 0

    def start(self, timeout: float = 30.0) -> None:
        self.spawn("lines", "run", "--board", "sim", "--core", self.core,
                   "--sip-port", str(self.sip_port))  # fmt: skip
        self.wait_output(GATEWAY_READY, timeout)


@pytest.fixture
def lines_factory() -> Iterator[type[LinesProcess]]:
    yield from stopped_after(LinesProcess)


def free_udp_pair() -> int:
    """A UDP port on 127.0.0.1 free together with the next one (the FXO lines')."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a:
            a.bind(("127.0.0.1", 0))
            port = int(a.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
                return port
    raise AssertionError("no two free UDP ports in a row on 127.0.0.1")


def status(data: Path) -> dict[int, str]:
    """`pbx lines status`: each port's state, `+` appended when it is registered."""
    out = pbx_cli(data, "lines", "status").stdout
    found = {}
    for match in re.finditer(r"^port (\d+)\s+\S+\s+(\S+)\s+(registered|not registered)", out,
                             re.MULTILINE):  # fmt: skip
        found[int(match[1])] = match[2] + ("+" if match[3] == "registered" else "")
    return found


def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def sim(data: Path, *words: str) -> None:
    assert pbx_cli(data, "lines", "sim", *words).stdout.strip() == "ok"


def test_the_demo_handsets_call_each_other(
    core_factory: type[CoreProcess], lines_factory: type[LinesProcess], tmp_path: Path
) -> None:
    data = tmp_path / "var"
    core = core_factory(data=data, run_args=("--demo",))
    core.start()
    assert "Analog demo ports" in "\n".join(core.output)
    db = open_db(data)
    try:
        made = {row.port: (row.kind, row.extension or row.trunk) for row in ports.list_all(db)}
    finally:
        db.conn.close()
    assert made == {1: ("fxs", "201"), 2: ("fxs", "202"), 3: ("fxo", "city-line")}

    lines = lines_factory(data=data, core=f"{core.host}:{core.port}", sip_port=free_udp_pair())
    lines.start()
    until(lambda: status(data).get(1) == "idle+" and status(data).get(2) == "idle+", 20,
          "both analog extensions to register")  # fmt: skip
    assert status(data)[3].startswith("on-hook")  # the city line, idle

    sim(data, "offhook", "1")
    until(lambda: status(data)[1] == "dialtone+", 5, "dial tone on port 1")
    sim(data, "dial", "1", "202")  # pulses, as a rotary phone dials
    until(lambda: status(data)[2] == "ringing+", 15, "port 2 to ring")
    assert status(data)[1] == "ringback+"
    sim(data, "offhook", "2")
    until(lambda: status(data)[1] == status(data)[2] == "in-call+", 10, "the call")
    sim(data, "onhook", "1")
    until(lambda: status(data)[1] == "idle+", 10, "port 1 to hang up")
    sim(data, "onhook", "2")
    until(lambda: status(data)[2] == "idle+", 10, "port 2 to hang up")

    def records() -> list[tuple[str, str, str, str]]:
        db = open_db(data)
        try:
            return [(r["caller"], r["dialled"], r["disposition"], r["direction"])
                    for r in cdrs.recent(db, 10)]  # fmt: skip
        finally:
            db.conn.close()

    until(lambda: bool(records()), 10, "the call's record")
    assert records() == [("201", "202", "answered", "internal")]  # not the city line's

    # The office's country changed (the wizard, the System page): the idle gateway restarts
    # itself in its own process, the simulator stays, and the ports come back with the new
    # country's tones.
    pbx_cli(data, "config", "set", "office.country", "DE")
    until(lambda: sum(GATEWAY_READY in line for line in lines.log) >= 2, 20,
          "the gateway to restart with the new configuration")  # fmt: skip
    until(lambda: status(data).get(1) == "idle+" and status(data).get(2) == "idle+", 20,
          "both analog extensions to register again")  # fmt: skip
    sim(data, "offhook", "1")
    until(lambda: status(data)[1] == "dialtone+", 5, "dial tone on port 1 after the restart")
    sim(data, "onhook", "1")
    assert lines.stop() == 0
    assert "pbx-lines-sim: stopped" in "\n".join(lines.log)
