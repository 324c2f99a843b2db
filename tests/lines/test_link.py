"""Tests of `appliance.lines.link` against the simulated board over a real pty: the
handshake, commands acknowledged and carried out (and refused), events delivered once and in
order, line noise recovered by retransmission, a cut link detected and restored with a new
handshake, and a silent board declared down by the heartbeat timeout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.lines import protocol as p
from appliance.lines.link import (
    BoardLink,
    CommandRejected,
    CommandTimeout,
    LinkDown,
    LinkState,
    LinkTiming,
)
from appliance.lines.sim import SimBoard

# Short enough for quick tests, long enough that a busy machine (2 cores shared by many
# test runs) does not stall the loop or the board thread past the timeout by accident.
TIMING = LinkTiming(heartbeat_s=0.2, timeout_s=1.0, ack_s=0.5, hello_s=0.3, backoff_max_s=0.4)


@pytest.fixture
def board(tmp_path: Path) -> Iterator[SimBoard]:
    sim = SimBoard(tmp_path / "ttyBOARD", heartbeat_s=0.1, retransmit_s=0.1)
    sim.start()
    yield sim
    sim.stop()


class Host:
    """The link with what it delivered."""

    def __init__(self, board: SimBoard, timing: LinkTiming) -> None:
        self.events: list[p.Message] = []
        self.states: list[LinkState] = []
        self.link = BoardLink(
            str(board.link_path),
            115200,
            on_event=self.events.append,
            on_state=self.states.append,
            timing=timing,
        )

    async def until(self, predicate: Callable[[], bool], timeout: float = 3.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, "timed out"
            await asyncio.sleep(0.01)


def run(
    board: SimBoard,
    body: Callable[[Host], Coroutine[Any, Any, None]],
    timing: LinkTiming = TIMING,
) -> None:
    async def main() -> None:
        host = Host(board, timing)
        await host.link.start()
        try:
            assert await host.link.wait_state(LinkState.UP, 3)
            await body(host)
        finally:
            await host.link.stop()

    asyncio.run(main())


def test_hello_and_capabilities(board: SimBoard) -> None:
    async def body(host: Host) -> None:
        assert host.link.capabilities == p.Capabilities(
            1, "sim-2fxs-1fxo", "sim-1", (p.FXS, p.FXS, p.FXO)
        )
        assert host.states == [LinkState.UP]
        assert board.hellos == 1
        # Heartbeats keep it up well past the timeout.
        await asyncio.sleep(TIMING.timeout_s * 3)
        assert host.link.state == LinkState.UP and host.states == [LinkState.UP]

    run(board, body)


def test_commands_are_acknowledged_and_carried_out(board: SimBoard) -> None:
    async def body(host: Host) -> None:
        link = host.link
        await link.send(p.Ring(1, ((400, 200), (400, 2000))))
        assert board.ringing == {1: ((400, 200), (400, 2000))}
        await link.send(p.StopRing(1))
        assert board.ringing == {}
        await link.send(p.Seize(3))
        assert board.seized == {3}
        await link.send(p.HookFlash(3, 100))
        await link.send(p.Release(3))
        assert board.seized == set()
        await link.send(p.Led(2, p.LedMode.BLINK, 500, 500))
        await link.send(p.Led(p.STATUS_LED, p.LedMode.ON))
        assert board.leds == {
            2: p.Led(2, p.LedMode.BLINK, 500, 500),
            0: p.Led(0, p.LedMode.ON),
        }
        await link.send(p.Polarity(2, True))
        assert board.polarity == {2: True}
        await link.send(p.Ring(2, ((1000, 4000),)))
        await link.send(p.Reset())
        assert board.ringing == {} and board.leds == {} and board.polarity == {}
        assert [type(c) for c in board.commands] == [
            p.Ring, p.StopRing, p.Seize, p.HookFlash, p.Release, p.Led, p.Led, p.Polarity,
            p.Ring, p.Reset,
        ]  # fmt: skip
        assert link.stats.retransmits == 0

    run(board, body)


def test_refused_commands(board: SimBoard) -> None:
    async def body(host: Host) -> None:
        with pytest.raises(CommandRejected, match="Seize refused: WRONG_KIND") as refused:
            await host.link.send(p.Seize(1))
        assert refused.value.reason == p.NakReason.WRONG_KIND
        with pytest.raises(CommandRejected, match="Ring refused: WRONG_KIND"):
            await host.link.send(p.Ring(3, ((1000, 4000),)))
        with pytest.raises(CommandRejected, match="StopRing refused: BAD_PORT"):
            await host.link.send(p.StopRing(9))
        with pytest.raises(TypeError):
            await host.link.send(p.OffHook(1))
        assert board.commands == []
        assert host.link.state == LinkState.UP

    run(board, body)


def test_events_arrive_once_in_order(board: SimBoard) -> None:
    async def body(host: Host) -> None:
        board.offhook(1)
        board.pulse(1, "102")
        board.flash(1, 350)
        board.onhook(1)
        board.line_ring(3)
        board.line_ring(3, False)
        board.polarity_reversal(3)
        board.loop_drop(3, 600)
        board.fault(0, 7, "ring generator overcurrent")
        expected = [
            p.OffHook(1),
            p.PulseDigit(1, 1),
            p.PulseDigit(1, 0),
            p.PulseDigit(1, 2),
            p.Flash(1, 350),
            p.OnHook(1),
            p.RingStart(3),
            p.RingStop(3),
            p.PolarityReversal(3),
            p.LoopDrop(3, 600),
            p.BoardFault(0, 7, "ring generator overcurrent"),
        ]
        await host.until(lambda: len(host.events) >= len(expected))
        await host.until(lambda: board.acked_events == len(expected))
        await asyncio.sleep(0.3)  # time for retransmissions, had any ACK gone missing
        assert host.events == expected

    run(board, body)


def test_line_noise_is_recovered(board: SimBoard) -> None:
    async def body(host: Host) -> None:
        # The board's ACK is garbled: the command is sent again, and done only once.
        board.noise(sent=1)
        await host.link.send(p.Seize(3))
        assert host.link.stats.retransmits == 1
        assert host.link.stats.corrupt >= 1
        assert board.commands == [p.Seize(3)]
        # The host's command is garbled on the way: the board never saw it; sent again.
        board.noise(received=1)
        await host.link.send(p.Release(3))
        assert host.link.stats.retransmits == 2
        assert board.corrupt_received >= 1
        assert board.commands == [p.Seize(3), p.Release(3)]
        # The host's ACK of an event is garbled: the board sends it again, the host
        # acknowledges the duplicate and delivers the event once.
        board.noise(received=1)
        board.offhook(2)
        await host.until(lambda: host.link.stats.duplicates == 1)
        await host.until(lambda: board.acked_events == 1)
        assert host.events == [p.OffHook(2)]

    # No heartbeats either way here, so the frame the noise hits is the one meant.
    board.heartbeat_s = 30
    run(board, body, LinkTiming(heartbeat_s=30, timeout_s=60, ack_s=0.3))


def test_cut_link_is_detected_and_restored(board: SimBoard) -> None:
    async def body(host: Host) -> None:
        link = host.link
        board.offhook(2)
        await host.until(lambda: host.events == [p.OffHook(2)])
        board.cut()
        assert await link.wait_state(LinkState.DOWN, 2)
        assert link.stats.downs == ["end of file on the port"]
        with pytest.raises(LinkDown):
            await link.send(p.Ring(1, ((1000, 4000),)))
        await asyncio.sleep(TIMING.backoff_max_s * 2)  # a few reopen attempts fail meanwhile
        assert link.state == LinkState.DOWN
        board.restore()
        assert await link.wait_state(LinkState.UP, 3)
        assert board.hellos == 2 and link.stats.handshakes == 2
        # The board reports what is not idle after the new handshake.
        await host.until(lambda: host.events == [p.OffHook(2), p.OffHook(2)])
        await link.send(p.Ring(1, ((1000, 4000),)))
        assert board.ringing == {1: ((1000, 4000),)}
        assert host.states == [LinkState.UP, LinkState.DOWN, LinkState.UP]

    run(board, body)


def test_heartbeat_timeout(board: SimBoard) -> None:
    async def body(host: Host) -> None:
        link = host.link
        board.mute()
        muted = time.monotonic()
        assert await link.wait_state(LinkState.DOWN, 3)
        took = time.monotonic() - muted
        assert TIMING.timeout_s - 0.05 <= took <= TIMING.timeout_s + TIMING.heartbeat_s + 1.0
        assert link.stats.downs == [f"no frame for {TIMING.timeout_s} s"]
        # Still silent: hellos go unanswered, the link stays down and keeps trying.
        await host.until(lambda: "no answer to Hello" in link.stats.downs)
        assert link.state == LinkState.DOWN
        board.unmute()
        assert await link.wait_state(LinkState.UP, 3)
        await link.send(p.Led(1, p.LedMode.ON))
        assert board.leds == {1: p.Led(1, p.LedMode.ON)}

    run(board, body)


def test_no_board_at_all(tmp_path: Path) -> None:
    async def main() -> None:
        link = BoardLink(str(tmp_path / "absent"), on_event=lambda m: None, timing=TIMING)
        await link.start()
        assert not await link.wait_state(LinkState.UP, 0.5)
        with pytest.raises(LinkDown, match="is not connected"):
            await link.send(p.Reset())
        await link.stop()

    asyncio.run(main())


def test_board_stops_ringing_when_the_host_falls_silent(board: SimBoard) -> None:
    board.host_timeout_s = 1.0

    async def main() -> None:
        host = Host(board, TIMING)
        await host.link.start()
        assert await host.link.wait_state(LinkState.UP, 3)
        await host.link.send(p.Ring(1, ((1000, 4000),)))
        await asyncio.sleep(1.5)  # heartbeats keep it ringing past the board's timeout
        assert board.ringing == {1: ((1000, 4000),)}
        await host.link.stop()
        stopped = time.monotonic()
        assert await asyncio.to_thread(board.wait_for, lambda: not board.ringing, 3.0)
        assert 0.9 <= time.monotonic() - stopped <= 2.5

    asyncio.run(main())


def test_unacknowledged_command_takes_the_link_down(board: SimBoard) -> None:
    async def body(host: Host) -> None:
        link = host.link
        board.mute()
        with pytest.raises(CommandTimeout, match="did not acknowledge"):
            await link.send(p.Ring(1, ((1000, 4000),)))
        assert link.stats.retransmits == 2
        assert link.stats.downs == ["no ACK for Ring after 2 retries"]
        assert await link.wait_state(LinkState.DOWN, 2)
        board.unmute()
        assert await link.wait_state(LinkState.UP, 3)
        assert board.commands == []  # the muted board never carried it out

    # Heartbeats too slow to notice first: the unanswered command is what shows the fault.
    board.heartbeat_s = 30
    run(board, body, LinkTiming(heartbeat_s=30, timeout_s=60, ack_s=0.1, retries=2))
