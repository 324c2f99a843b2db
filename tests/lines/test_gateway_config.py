"""The gateway applies a changed configuration by itself (the office country chosen in the
wizard, a port edited on the Ports page): it notices within its poll, waits until no port is in
use (a call is never cut for it), then asks for its restart. Over the simulated board (a pty)
and ALSA file-backed PCMs, no core."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from appliance.lines.boards import load_profile, shipped_profiles
from appliance.lines.fxs import State
from appliance.lines.gateway import Gateway
from appliance.lines.link import LinkState
from appliance.lines.sim import SimBoard
from appliance.store import ports, settings
from appliance.store.db import open_db
from tests.lines.test_fxs import bench

__all__ = ["bench"]


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def quick_gateway(tmp: Path) -> Gateway:
    """The simulated board's gateway (no core) looking at its configuration every 50 ms."""
    gateway = Gateway(
        tmp / "data", load_profile(shipped_profiles()["sim"]), ("127.0.0.1", 9),
        sip=("127.0.0.1", 0), fxo_sip=("127.0.0.1", 0), device=str(tmp / "ttySIM"),
    )  # fmt: skip
    gateway.config_poll_s = 0.05
    return gateway


def test_a_changed_country_restarts_the_gateway_once_its_ports_are_idle(
    bench: tuple[Path, SimBoard],
) -> None:
    tmp, board = bench
    data = tmp / "data"

    async def scenario() -> None:
        gateway = quick_gateway(tmp)
        await gateway.start()
        try:
            assert await gateway.link.wait_state(LinkState.UP, 10)
            assert gateway.plan.country == "RU"
            port = gateway.fxs[1]
            board.offhook(1)
            await until(lambda: port.state is State.DIALTONE)
            db = open_db(data)
            try:
                settings.set_value(db, "office.country", "DE")
            finally:
                db.conn.close()
            # Ten polls see the change, but the handset is off hook: nothing happens to it.
            await asyncio.sleep(0.5)
            assert not gateway.config_changed.is_set() and port.state is State.DIALTONE
            board.onhook(1)
            await asyncio.wait_for(gateway.config_changed.wait(), 5)
            assert gateway.fxs[1].state is State.IDLE  # (read again: hung up meanwhile)
        finally:
            await gateway.stop()

    asyncio.run(scenario())


def test_an_unchanged_configuration_never_restarts_it(bench: tuple[Path, SimBoard]) -> None:
    tmp, _board = bench
    data = tmp / "data"

    async def scenario() -> None:
        gateway = quick_gateway(tmp)
        await gateway.start()
        try:
            db = open_db(data)
            try:  # a write that changes nothing the gateway is built from
                settings.set_value(db, "office.country", "RU")
                row = ports.list_all(db)[0]
                ports.set_port(db, 1, "fxs", extension=row.extension, password=row.password,
                               caller_id=row.caller_id)  # fmt: skip
            finally:
                db.conn.close()
            await asyncio.sleep(0.5)  # ten polls
            assert not gateway.config_changed.is_set()
        finally:
            await gateway.stop()

    asyncio.run(scenario())
