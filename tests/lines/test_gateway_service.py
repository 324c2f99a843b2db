"""`pbx lines run` under systemd (`systemd/pbx-lines.service`: Type=notify, WatchdogSec): the
gateway says READY=1 once its ports are up, pings the watchdog from its event loop, reports a
restart for a changed configuration as RELOADING=1 followed by READY=1 (after STOPPING=1
systemd would wait for the exit and kill the restarted process), and STOPPING=1 when told to
stop. With the simulated board the gateway is a child of `pbx lines run` (the unit says
NotifyAccess=all: tests/test_units.py). systemd's notification socket is played by a socket of
the test's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from appliance.store import ports
from appliance.store.db import open_db
from tests.conftest import pbx_cli
from tests.lines.test_demo_run import free_udp_pair
from tests.notify import NotifySocket


def test_the_gateway_tells_systemd_its_state(tmp_path: Path) -> None:
    data = tmp_path / "var"
    db = open_db(data)
    try:
        ports.demo_ports(db)
    finally:
        db.conn.close()
    with NotifySocket(tmp_path / "notify.sock") as notify:
        proc = subprocess.Popen(
            [sys.executable, "-m", "appliance", "--data", str(data), "lines", "run", "--board",
             "sim", "--core", "127.0.0.1:9", "--sip-port", str(free_udp_pair())],
            env={**os.environ, **notify.env}, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            assert [notify.recv() for _ in range(3)] == ["READY=1", "WATCHDOG=1", "WATCHDOG=1"]
            pbx_cli(data, "config", "set", "office.country", "DE")  # no handset in use
            assert notify.next_state().startswith("RELOADING=1\nMONOTONIC_USEC=")
            assert notify.next_state() == "READY=1"
            proc.terminate()
            assert notify.next_state() == "STOPPING=1"
            assert proc.wait(timeout=20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
