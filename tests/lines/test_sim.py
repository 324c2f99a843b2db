"""Tests of the simulated board's control socket (`SimControl`, `sim_command`): a person at
the CLI drives the handsets by text commands, and the host's link sees what they did."""

from __future__ import annotations

import asyncio
import json
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

from appliance.lines import protocol as p
from appliance.lines.link import BoardLink, LinkState, LinkTiming
from appliance.lines.sim import SimBoard, SimControl, sim_command

TIMING = LinkTiming(heartbeat_s=0.2, timeout_s=1.0, ack_s=0.5, hello_s=0.3, backoff_max_s=0.4)


def test_cli_commands_reach_the_host(tmp_path: Path) -> None:
    board = SimBoard(tmp_path / "ttySIM", heartbeat_s=0.2)
    board.start()
    control = SimControl(board, tmp_path / "sim.sock")
    control.start()
    sock = tmp_path / "sim.sock"
    events: list[p.Message] = []

    async def until(predicate: object, timeout: float = 3.0) -> None:
        assert callable(predicate)
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, events
            await asyncio.sleep(0.01)

    async def main() -> None:
        link = BoardLink(str(board.link_path), on_event=events.append, timing=TIMING)
        await link.start()
        try:
            assert await link.wait_state(LinkState.UP, 3)
            say = asyncio.to_thread
            assert await say(sim_command, sock, "offhook 1") == "ok"
            assert await say(sim_command, sock, "dial 1 102") == "ok"
            assert await say(sim_command, sock, "flash 1 250") == "ok"
            assert await say(sim_command, sock, "ring 3") == "ok"
            await until(lambda: len(events) == 6)
            assert events == [
                p.OffHook(1),
                p.PulseDigit(1, 1),
                p.PulseDigit(1, 0),
                p.PulseDigit(1, 2),
                p.Flash(1, 250),
                p.RingStart(3),
            ]
            await link.send(p.Led(1, p.LedMode.BLINK, 200, 200))
            state = json.loads(await say(sim_command, sock, "state"))
            assert state["off_hook"] == [1] and state["fxo_ringing"] == [3]
            assert state["leds"] == {"1": ["blink", 200, 200]}
            assert await say(sim_command, sock, "offhook 3") == (
                "error: port 3 is not an FXS port of this board"
            )
            assert await say(sim_command, sock, "dial 1 12a") == "error: dial: digits 0-9 expected"
            assert await say(sim_command, sock, "jump 1") == "error: unknown command 'jump'"
            assert await say(sim_command, sock, "onhook") == "error: onhook: which port?"
            assert await say(sim_command, sock, "cut") == "ok"
            assert await link.wait_state(LinkState.DOWN, 3)
            assert json.loads(await say(sim_command, sock, "state"))["connected"] is False
            assert await say(sim_command, sock, "restore") == "ok"
            assert await link.wait_state(LinkState.UP, 3)
            # After the new handshake the board reports what is not idle.
            await until(lambda: events[6:] == [p.OffHook(1), p.RingStart(3)])
        finally:
            await link.stop()

    try:
        asyncio.run(main())
    finally:
        control.stop()
        board.stop()
    assert not sock.exists()


def test_runs_as_a_process(tmp_path: Path) -> None:
    device, control = tmp_path / "run" / "ttySIM", tmp_path / "sim.sock"
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance.lines.sim", "--device", str(device),
         "--control", str(control), "--audio-dir", str(tmp_path / "audio")],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        assert ready.startswith(f"pbx-lines-sim: board on {device}, control on {control}")
        asoundrc = tmp_path / "audio" / "asoundrc"
        assert ready.strip().endswith(f"ALSA_CONFIG_PATH={asoundrc}")
        assert "pcm.sim_port3 " in asoundrc.read_text()
        assert stat.S_ISFIFO((tmp_path / "audio" / "sim_port1.mic").stat().st_mode)
        assert device.is_symlink()
        assert sim_command(control, "offhook 2") == "ok"
        assert json.loads(sim_command(control, "state"))["off_hook"] == [2]

        events: list[p.Message] = []

        async def main() -> None:
            link = BoardLink(str(device), on_event=events.append, timing=TIMING)
            await link.start()
            assert await link.wait_state(LinkState.UP, 3)
            assert link.capabilities is not None
            assert link.capabilities.model == "sim-2fxs-1fxo"
            deadline = time.monotonic() + 3
            while not events and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            await link.stop()

        asyncio.run(main())
        assert events == [p.OffHook(2)]  # reported after the handshake: not idle
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert out.strip().endswith("pbx-lines-sim: stopped")
    assert not control.exists() and not device.exists()
