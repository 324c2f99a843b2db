"""The direct-GPIO board (`driver = "gpio"`, e.g. `hw/boards/gpio-ag1171.toml`): SLICs wired to
the host's GPIO, behind the same interface as `BoardLink`, so the gateway drives either kind
of board alike: protocol commands in (`send`), protocol events out (`on_event`), a state.

What a board's firmware would do is done here: hook edges (kernel-timestamped, from
`GpioLines.edges`) become off-hook, on-hook, flash and pulse digits through
`appliance.lines.pulse.HookDecoder` with the office country's flash window; ringing is the
SLIC's RM/F-R lines toggled by `SlicRinger`; answering trips the ringing. It is FXS only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

from appliance.lines import protocol as p
from appliance.lines import pulse
from appliance.lines.boards import BoardProfile, Driver, GpioLine, PortKind
from appliance.lines.gpio import (
    BLINK_FAST,
    GPIOD,
    OFF,
    ON,
    GpiodApi,
    GpioError,
    GpioLines,
    LedPattern,
    Leds,
    SlicRinger,
)
from appliance.lines.link import CommandRejected, LinkDown, LinkState
from appliance.lines.tones import FlashWindow, PulseTiming

__all__ = ["GpioBoard", "HostResetButton", "HostStatusLed"]

logger = logging.getLogger(__name__)

TICK_S = 0.02


class GpioBoard:
    """The ports of a gpio profile. `start()` takes the lines (UP) or reports DOWN and tries
    again every `retry_s` (a line held by another process, a chip missing)."""

    def __init__(
        self,
        profile: BoardProfile,
        *,
        flash: FlashWindow,
        on_event: Callable[[p.Message], None],
        on_state: Callable[[LinkState], None] | None = None,
        pulse_timing: PulseTiming | None = None,
        api: GpiodApi = GPIOD,
        dev: Path = Path("/dev"),
        clock: Callable[[], float] = time.monotonic,
        retry_s: float = 5.0,
    ) -> None:
        if profile.driver != Driver.GPIO:
            raise ValueError(f"{profile.model} is not a gpio board")
        self.profile = profile
        self.state = LinkState.DOWN
        self.capabilities: p.Capabilities | None = None
        self._flash = flash
        self._pulse_timing = pulse_timing
        self._on_event = on_event
        self._on_state = on_state
        self._api = api
        self._dev = dev
        self._clock = clock
        self._retry_s = retry_s
        self._lines: GpioLines | None = None
        self._ringers: dict[int, SlicRinger] = {}
        self._decoders: dict[int, pulse.HookDecoder] = {}
        self._leds: Leds | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._close()

    async def wait_state(self, state: LinkState, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.state != state and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return self.state == state

    async def send(self, command: p.Message) -> None:
        """Carry out a command at once; the same refusals as a serial board's `Nak`."""
        if not isinstance(command, p.Command):
            raise TypeError(f"{type(command).__name__} is not a command")
        if self.state != LinkState.UP or self._leds is None:
            raise LinkDown(f"{self.profile.model}: GPIO lines not held")
        port = getattr(command, "port", None)
        if port is not None and port not in self._ringers:
            raise CommandRejected(command, p.NakReason.BAD_PORT)
        match command:
            case p.Ring(port=port, cadence=cadence):
                if self._decoders[port].on_hook:
                    self._ringers[port].ring(cadence)
            case p.StopRing(port=port):
                self._ringers[port].stop()
            case p.Polarity(port=port, reversed=reversed_):
                self._ringers[port].polarity(reversed_)
            case p.Led(led=led, mode=mode, on_ms=on_ms, off_ms=off_ms):
                key = "status" if led == p.STATUS_LED else f"led{led}"
                if key not in self._led_keys():
                    raise CommandRejected(command, p.NakReason.BAD_PORT)
                self._leds.set(key, _pattern(mode, on_ms, off_ms))
            case p.Reset():
                for ringer in self._ringers.values():
                    ringer.stop()
                    ringer.polarity(False)
                for key in self._led_keys():
                    self._leds.set(key, OFF)
            case _:  # Seize, Release, HookFlash: FXO commands
                raise CommandRejected(command, p.NakReason.WRONG_KIND)

    # -- inside ------------------------------------------------------------------------------

    def _led_keys(self) -> list[str]:
        keys = [f"led{port.number}" for port in self.profile.ports if port.led]
        return keys + (["status"] if self.profile.status_led else [])

    def _open(self) -> None:
        outputs: dict[str, GpioLine] = {}
        inputs: dict[str, GpioLine] = {}
        for port in self.profile.ports:
            assert port.slic is not None and port.kind == PortKind.FXS  # validated profile
            outputs[f"rm{port.number}"] = port.slic.rm
            outputs[f"fr{port.number}"] = port.slic.fr
            inputs[f"hook{port.number}"] = port.slic.shk
            if port.led:
                outputs[f"led{port.number}"] = port.led
        if self.profile.status_led:
            outputs["status"] = self.profile.status_led
        lines = GpioLines(self._api, outputs, inputs, edges=list(inputs), dev=self._dev)
        self._lines = lines
        for port in self.profile.ports:
            n = port.number
            self._ringers[n] = SlicRinger(lines, f"rm{n}", f"fr{n}", clock=self._clock)
            decoder = pulse.HookDecoder(self._flash, self._pulse_timing)
            self._decoders[n] = decoder
            if lines.get(f"hook{n}"):  # off hook already when we start
                self._deliver(n, decoder.hook(False, self._clock() * 1000))
        self._leds = Leds(lines, self._led_keys(), self._clock)
        loop = asyncio.get_running_loop()
        for fd in lines.fds():
            loop.add_reader(fd, self._edges)

    def _close(self) -> None:
        if self._lines is not None:
            for fd in self._lines.fds():
                with contextlib.suppress(Exception):
                    asyncio.get_running_loop().remove_reader(fd)
            self._lines.close()
        self._lines = None
        self._leds = None
        self._ringers.clear()
        self._decoders.clear()
        self.capabilities = None
        if self.state != LinkState.DOWN:
            self._set_state(LinkState.DOWN)

    async def _run(self) -> None:
        while True:
            try:
                self._open()
            except GpioError as exc:
                logger.error("%s: %s", self.profile.model, exc)
                self._close()
                await asyncio.sleep(self._retry_s)
                continue
            kinds = tuple(p.FXS for _ in self.profile.ports)
            self.capabilities = p.Capabilities(
                p.PROTOCOL_VERSION, self.profile.model, "gpio", kinds
            )
            self._set_state(LinkState.UP)
            # Like a serial board after its handshake: report the ports that are not idle.
            for number, decoder in self._decoders.items():
                if not decoder.on_hook:
                    self._on_event(p.OffHook(number))
            while True:
                await asyncio.sleep(TICK_S)
                self._tick()

    def _tick(self) -> None:
        now_ms = self._clock() * 1000
        for number, decoder in self._decoders.items():
            self._deliver(number, decoder.poll(now_ms))
        for ringer in self._ringers.values():
            ringer.tick()
        if self._leds is not None:
            self._leds.update()

    def _edges(self) -> None:
        if self._lines is None:
            return
        for edge in self._lines.edges():
            number = int(edge.key.removeprefix("hook"))
            decoder = self._decoders[number]
            self._deliver(number, decoder.hook(not edge.active, edge.at_ms))

    def _deliver(self, number: int, signals: list[pulse.HookSignal]) -> None:
        for signal in signals:
            match signal:
                case pulse.OffHook():
                    self._ringers[number].stop()  # ring trip
                    event: p.Message = p.OffHook(number)
                case pulse.OnHook():
                    event = p.OnHook(number)
                case pulse.Flash(duration_ms=duration):
                    event = p.Flash(number, min(round(duration), 0xFFFF))
                case pulse.Digit(digit=digit):
                    event = p.PulseDigit(number, int(digit))
            if self.state == LinkState.UP:
                self._on_event(event)

    def _set_state(self, state: LinkState) -> None:
        self.state = state
        if self._on_state is not None:
            self._on_state(state)


def _pattern(mode: p.LedMode, on_ms: int, off_ms: int) -> LedPattern:
    if mode == p.LedMode.ON:
        return ON
    if mode == p.LedMode.BLINK:
        return LedPattern(True, on_ms, off_ms) if on_ms and off_ms else BLINK_FAST
    return OFF


class HostStatusLed:
    """The status LED on the host's GPIO when the ports are on a serial (or simulated) board:
    the gateway drives it itself, so it shows even while the board is down. `show` takes the
    protocol's LED modes, like a board's `Led` command; `tick` (the gateway's 20 ms clock)
    makes it blink. A line that cannot be taken (no such chip, held by another process) is
    logged and tried again at the next change, at most every `retry_s`."""

    def __init__(
        self,
        line: GpioLine,
        *,
        api: GpiodApi = GPIOD,
        dev: Path = Path("/dev"),
        clock: Callable[[], float] = time.monotonic,
        retry_s: float = 5.0,
    ) -> None:
        self._line, self._api, self._dev, self._clock = line, api, dev, clock
        self._retry_s = retry_s
        self._lines: GpioLines | None = None
        self._leds: Leds | None = None
        self._tried = float("-inf")
        self._pattern = OFF

    def show(self, mode: p.LedMode, on_ms: int = 0, off_ms: int = 0) -> None:
        self._pattern = _pattern(mode, on_ms, off_ms)
        if self._leds is None and self._clock() - self._tried >= self._retry_s:
            self._tried = self._clock()
            try:
                self._lines = GpioLines(
                    self._api, {"status": self._line}, {}, dev=self._dev
                )  # fmt: skip
            except GpioError as exc:
                logger.error("status LED: %s", exc)
                return
            self._leds = Leds(self._lines, ["status"], self._clock)
        if self._leds is not None:
            self._leds.set("status", self._pattern)

    def tick(self, now: float) -> None:
        if self._leds is not None:
            self._leds.update()

    def close(self) -> None:
        if self._lines is not None:
            self._lines.close()
        self._lines = self._leds = None


RESET_HOLD_S = 10.0
"""How long the reset button is held for a factory reset (a brush against it does nothing)."""


class HostResetButton:
    """The board's reset button on the host's GPIO (the profile's `reset_button`): held for
    `hold_s`, it calls `on_held` once, and again only after it was let go. Read on the
    gateway's 20 ms clock (`tick`), so a press shorter than a tick may be missed: a person
    holds it for seconds. A line that cannot be taken is logged and tried again every
    `retry_s`."""

    def __init__(
        self,
        line: GpioLine,
        on_held: Callable[[], None],
        *,
        hold_s: float = RESET_HOLD_S,
        api: GpiodApi = GPIOD,
        dev: Path = Path("/dev"),
        retry_s: float = 5.0,
    ) -> None:
        self._line, self._on_held, self.hold_s = line, on_held, hold_s
        self._api, self._dev, self._retry_s = api, dev, retry_s
        self._lines: GpioLines | None = None
        self._tried = float("-inf")
        self._since: float | None = None
        self._fired = False

    def tick(self, now: float) -> None:
        if self._lines is None:
            if now - self._tried < self._retry_s:
                return
            self._tried = now
            try:
                self._lines = GpioLines(self._api, {}, {"reset": self._line}, dev=self._dev)
            except GpioError as exc:
                logger.error("reset button: %s", exc)
                return
        if not self._lines.get("reset"):
            self._since, self._fired = None, False
            return
        if self._since is None:
            self._since = now
            logger.info("reset button pressed: hold it %.0f s for a factory reset", self.hold_s)
        elif not self._fired and now - self._since >= self.hold_s:
            self._fired = True
            self._on_held()

    def close(self) -> None:
        if self._lines is not None:
            self._lines.close()
        self._lines = None
