"""GPIO for the box's LEDs and reset button through libgpiod's v2 Python API (`gpiod`):
chips found by label, never by number (numbers move between kernels and Pi models), LED
patterns worked out from a clock, and the reset button's hold time measured on one.

The driver takes the `gpiod` module as a seam (`GpiodApi`). `FakeGpiod` implements the same
subset only because no GPIO chip exists on a build machine: tests and the simulated board
use it; the box uses the real module.
"""

from __future__ import annotations

import enum
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import gpiod
from gpiod.chip import Chip as _Chip
from gpiod.edge_event import EdgeEvent
from gpiod.line import Bias, Direction, Edge, Value
from gpiod.line_settings import LineSettings as _LineSettings

from appliance.lines.boards import GpioLine

__all__ = [
    "BLINK_FAST",
    "BLINK_SLOW",
    "GPIOD",
    "OFF",
    "ON",
    "ButtonEvent",
    "FakeGpiod",
    "GpioError",
    "GpioLines",
    "GpiodApi",
    "LedPattern",
    "Leds",
    "LineEdge",
    "ResetButton",
    "SlicRinger",
    "find_chip",
]

logger = logging.getLogger(__name__)

Clock = Callable[[], float]


class GpioError(Exception):
    """A chip or line of the profile is not there, or cannot be had."""


# -- the seam: what the driver uses of `gpiod` -------------------------------------------------


class ChipInfoLike(Protocol):
    @property
    def label(self) -> str: ...


class EdgeEventLike(Protocol):
    @property
    def event_type(self) -> EdgeEvent.Type: ...
    @property
    def timestamp_ns(self) -> int: ...
    @property
    def line_offset(self) -> int: ...


class LineRequestLike(Protocol):
    def set_value(self, line: int | str, value: Value) -> None: ...
    def get_value(self, line: int | str) -> Value: ...
    def wait_edge_events(self, timeout: float | None = None) -> bool: ...
    def read_edge_events(self, max_events: int | None = None) -> Sequence[EdgeEventLike]: ...
    def fileno(self) -> int: ...
    def release(self) -> None: ...


class ChipLike(Protocol):
    def get_info(self) -> ChipInfoLike: ...
    def line_offset_from_id(self, id: str | int) -> int: ...
    def request_lines(self, config: Any, consumer: str | None = None) -> LineRequestLike: ...
    def close(self) -> None: ...


class GpiodApi(Protocol):
    """The part of the `gpiod` module the driver calls; pass `gpiod` itself on the box."""

    @property
    def Chip(self) -> Callable[[str], ChipLike]: ...
    @property
    def LineSettings(self) -> Callable[..., Any]: ...
    @property
    def is_gpiochip_device(self) -> Callable[[str], bool]: ...


class _RealGpiod:
    """libgpiod itself behind the seam (its package's dynamic `__all__` hides the names from
    a type checker, so they are taken from their submodules)."""

    Chip = _Chip
    LineSettings = _LineSettings
    is_gpiochip_device = staticmethod(gpiod.is_gpiochip_device)


GPIOD: GpiodApi = _RealGpiod()
"""The real backend, for the box."""


def find_chip(api: GpiodApi, label: str, dev: Path = Path("/dev")) -> str:
    """The path of the GPIO chip labelled `label` (`gpiodetect` shows labels)."""
    seen: list[str] = []
    for path in sorted(dev.glob("gpiochip*")):
        if not api.is_gpiochip_device(str(path)):
            continue
        chip = api.Chip(str(path))
        try:
            found = chip.get_info().label
        finally:
            chip.close()
        if found == label:
            return str(path)
        seen.append(found)
    raise GpioError(f"no GPIO chip labelled {label!r} (found: {', '.join(seen) or 'none'})")


class GpioLines:
    """Named lines requested from their chips: outputs set, inputs read, by key. Inputs in
    `edges` also report their changes with the kernel's timestamps (`edges()`), which is how
    a SLIC's hook line is timed for pulse dialling without sampling it."""

    def __init__(
        self,
        api: GpiodApi,
        outputs: Mapping[str, GpioLine],
        inputs: Mapping[str, GpioLine],
        *,
        edges: Iterable[str] = (),
        debounce_ms: int = 5,
        dev: Path = Path("/dev"),
        consumer: str = "pbx-lines",
    ) -> None:
        self._requests: dict[str, tuple[LineRequestLike, int]] = {}
        self._edge_keys = set(edges)
        self._debounce = timedelta(milliseconds=debounce_ms)
        unknown = self._edge_keys - set(inputs)
        if unknown:
            raise ValueError(f"edges on lines that are not inputs: {sorted(unknown)}")
        chips: dict[str, dict[str, tuple[GpioLine, bool]]] = {}
        for key, line in outputs.items():
            chips.setdefault(line.chip, {})[key] = (line, True)
        for key, line in inputs.items():
            chips.setdefault(line.chip, {})[key] = (line, False)
        try:
            for label, lines in chips.items():
                self._request(api, label, lines, dev, consumer)
        except Exception:
            self.close()
            raise

    def _request(
        self,
        api: GpiodApi,
        label: str,
        lines: Mapping[str, tuple[GpioLine, bool]],
        dev: Path,
        consumer: str,
    ) -> None:
        chip = api.Chip(find_chip(api, label, dev))
        try:
            config: dict[int, Any] = {}
            offsets: dict[str, int] = {}
            for key, (line, output) in lines.items():
                try:
                    offset = chip.line_offset_from_id(line.line)
                except (OSError, ValueError):
                    raise GpioError(f"no line {line.line!r} on chip {label!r}") from None
                offsets[key] = offset
                if output:
                    config[offset] = api.LineSettings(
                        direction=Direction.OUTPUT,
                        active_low=line.active_low,
                        output_value=Value.INACTIVE,
                    )
                elif key in self._edge_keys:
                    config[offset] = api.LineSettings(
                        direction=Direction.INPUT,
                        active_low=line.active_low,
                        bias=Bias.PULL_UP if line.active_low else Bias.PULL_DOWN,
                        edge_detection=Edge.BOTH,
                        debounce_period=self._debounce,
                    )
                else:
                    config[offset] = api.LineSettings(
                        direction=Direction.INPUT,
                        active_low=line.active_low,
                        bias=Bias.PULL_UP if line.active_low else Bias.PULL_DOWN,
                    )
            try:
                request = chip.request_lines(config, consumer=consumer)
            except OSError as exc:
                raise GpioError(f"lines of chip {label!r} are busy: {exc}") from None
        finally:
            chip.close()
        for key, offset in offsets.items():
            self._requests[key] = (request, offset)

    def set(self, key: str, active: bool) -> None:
        request, offset = self._requests[key]
        request.set_value(offset, Value.ACTIVE if active else Value.INACTIVE)

    def get(self, key: str) -> bool:
        request, offset = self._requests[key]
        return request.get_value(offset) == Value.ACTIVE

    def edges(self) -> list[LineEdge]:
        """The changes of the edge lines since the last call, oldest first (non-blocking;
        `fds()` can be watched with `loop.add_reader` to call it only when there are some)."""
        found: list[LineEdge] = []
        by_offset = {(id(r), o): k for k, (r, o) in self._requests.items() if k in self._edge_keys}
        for request in self._edge_requests():
            if request.wait_edge_events(0):
                for event in request.read_edge_events():
                    key = by_offset.get((id(request), event.line_offset))
                    if key is not None:
                        active = event.event_type == EdgeEvent.Type.RISING_EDGE
                        found.append(LineEdge(key, active, event.timestamp_ns / 1e6))
        found.sort(key=lambda edge: edge.at_ms)
        return found

    def fds(self) -> list[int]:
        """The descriptors that become readable when an edge line changes."""
        return [request.fileno() for request in self._edge_requests()]

    def _edge_requests(self) -> list[LineRequestLike]:
        unique = {id(r): r for k, (r, _) in self._requests.items() if k in self._edge_keys}
        return list(unique.values())

    def close(self) -> None:
        for request in {id(r): r for r, _ in self._requests.values()}.values():
            request.release()
        self._requests.clear()


@dataclass(frozen=True)
class LineEdge:
    """An input line became `active` (logically: after `active_low`) at `at_ms`, on the
    kernel's monotonic clock (the same as `time.monotonic()`)."""

    key: str
    active: bool
    at_ms: float


# -- LEDs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LedPattern:
    """Steady (`blink_on_ms` 0: `lit` says which) or blinking, starting lit."""

    lit: bool
    on_ms: int = 0
    off_ms: int = 0

    def level(self, elapsed_s: float) -> bool:
        if self.on_ms <= 0 or self.off_ms <= 0:
            return self.lit
        phase = round(elapsed_s * 1000) % (self.on_ms + self.off_ms)  # ms, float sums aside
        return phase < self.on_ms


OFF = LedPattern(False)
ON = LedPattern(True)
BLINK_SLOW = LedPattern(True, 500, 500)
BLINK_FAST = LedPattern(True, 100, 100)


class Leds:
    """LEDs on GPIO lines, each following a pattern. `update()` is called from the gateway's
    20 ms clock and writes a line only when its level changes."""

    def __init__(self, lines: GpioLines, keys: Iterable[str], clock: Clock = time.monotonic):
        self._lines = lines
        self._clock = clock
        now = clock()
        self._patterns: dict[str, tuple[LedPattern, float]] = {k: (OFF, now) for k in keys}
        self._levels: dict[str, bool] = {}
        self.update()

    def set(self, key: str, pattern: LedPattern) -> None:
        """Show `pattern` from now on (a blink restarts lit, so a change is seen at once);
        setting the pattern it already shows changes nothing."""
        if self._patterns[key][0] != pattern:
            self._patterns[key] = (pattern, self._clock())
            self.update()

    def update(self) -> None:
        now = self._clock()
        for key, (pattern, since) in self._patterns.items():
            level = pattern.level(now - since)
            if self._levels.get(key) != level:
                self._lines.set(key, level)
                self._levels[key] = level


# -- an Ag1171 SLIC's ringing ---------------------------------------------------------------


class SlicRinger:
    """Rings an Ag1171-style SLIC wired to GPIO: ring mode (RM) high through each burst of
    the cadence, forward/reverse (F/R) toggled at `ring_hz` within it, which the SLIC turns
    into the ringing voltage; between bursts and when idle F/R holds the line's polarity.
    `tick()` is called from the gateway's 20 ms clock: at 25 Hz F/R changes every 20 ms, at
    20 Hz every 25 ms, which a 20 ms tick renders as an average (the SLIC smooths it)."""

    def __init__(
        self,
        lines: GpioLines,
        rm: str,
        fr: str,
        *,
        ring_hz: float = 25.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self._lines = lines
        self._rm = rm
        self._fr = fr
        self.ring_hz = ring_hz
        self._clock = clock
        self.reversed = False
        self._cadence: tuple[tuple[int, int], ...] = ()
        self._since = 0.0
        self._levels: dict[str, bool] = {}
        self.tick()

    @property
    def ringing(self) -> bool:
        return bool(self._cadence)

    def ring(self, cadence: tuple[tuple[int, int], ...]) -> None:
        if not cadence or any(on <= 0 or off < 0 for on, off in cadence):
            raise ValueError(f"cadence {cadence}")
        self._cadence = cadence
        self._since = self._clock()
        self.tick()

    def stop(self) -> None:
        self._cadence = ()
        self.tick()

    def polarity(self, reversed_: bool) -> None:
        self.reversed = reversed_
        self.tick()

    def tick(self) -> None:
        rm, fr = False, self.reversed
        if self._cadence:
            elapsed_ms = round((self._clock() - self._since) * 1000)
            phase = elapsed_ms % sum(on + off for on, off in self._cadence)
            for on, off in self._cadence:
                if phase < on:
                    rm = True
                    half_periods = int(phase * 2 * self.ring_hz / 1000)
                    fr = self.reversed != bool(half_periods % 2)
                    break
                phase -= on + off
                if phase < 0:
                    break
        self._set(self._rm, rm)
        self._set(self._fr, fr)

    def _set(self, key: str, level: bool) -> None:
        if self._levels.get(key) != level:
            self._lines.set(key, level)
            self._levels[key] = level


# -- the reset button -------------------------------------------------------------------------


class ButtonEvent(enum.Enum):
    PRESSED = "pressed"
    """Released before the hold time: a short press."""
    HELD = "held"
    """Held down for the hold time (reported once, while still held)."""


class ResetButton:
    """The reset button, polled (from the gateway's clock); a hold of `hold_s` asks for a
    factory reset, a short press for less (the caller decides what)."""

    def __init__(
        self,
        lines: GpioLines,
        key: str,
        *,
        hold_s: float = 10.0,
        debounce_s: float = 0.05,
        clock: Clock = time.monotonic,
    ) -> None:
        self._lines = lines
        self._key = key
        self.hold_s = hold_s
        self.debounce_s = debounce_s
        self._clock = clock
        self._down_since: float | None = None
        self._held_reported = False

    def poll(self) -> ButtonEvent | None:
        now = self._clock()
        if self._lines.get(self._key):
            if self._down_since is None:
                self._down_since = now
                self._held_reported = False
            # The clock is sampled every 20 ms: a microsecond's float error is not early.
            if not self._held_reported and now - self._down_since >= self.hold_s - 1e-6:
                self._held_reported = True
                return ButtonEvent.HELD
            return None
        down_since, self._down_since = self._down_since, None
        if down_since is None or self._held_reported:
            return None
        return ButtonEvent.PRESSED if now - down_since >= self.debounce_s else None


# -- the fake backend -------------------------------------------------------------------------


@dataclass
class _FakeChip:
    label: str
    names: list[str]
    physical: dict[int, bool] = field(default_factory=dict)
    """The electrical level of each line (True = high), inputs set by the test."""
    requested: dict[int, tuple[Direction, bool]] = field(default_factory=dict)
    """Offset -> (direction, active_low) of the lines a driver holds."""
    writes: list[tuple[int, bool]] = field(default_factory=list)
    watched: dict[int, _FakeRequest] = field(default_factory=dict)
    """Offset -> the request that asked for its edges."""


@dataclass(frozen=True)
class _FakeEdge:
    event_type: EdgeEvent.Type
    timestamp_ns: int
    line_offset: int


@dataclass(frozen=True)
class _FakeInfo:
    name: str
    label: str
    num_lines: int


class _FakeRequest:
    def __init__(self, chip: _FakeChip, offsets: list[int]) -> None:
        self._chip = chip
        self._offsets = offsets
        self.released = False
        self.queue: list[_FakeEdge] = []
        self._r, self._w = os.pipe()

    def set_value(self, line: int | str, value: Value) -> None:
        offset = self._offset(line)
        direction, active_low = self._chip.requested[offset]
        if direction != Direction.OUTPUT:
            raise PermissionError(1, "line is an input")
        high = (value == Value.ACTIVE) != active_low
        self._chip.physical[offset] = high
        self._chip.writes.append((offset, high))

    def get_value(self, line: int | str) -> Value:
        offset = self._offset(line)
        _, active_low = self._chip.requested[offset]
        high = self._chip.physical.get(offset, False)
        return Value.ACTIVE if high != active_low else Value.INACTIVE

    def wait_edge_events(self, timeout: float | None = None) -> bool:
        return bool(self.queue)

    def read_edge_events(self, max_events: int | None = None) -> list[_FakeEdge]:
        events, self.queue = self.queue, []
        while True:
            try:
                os.read(self._r, 4096)
            except BlockingIOError:
                break
        return events

    def fileno(self) -> int:
        return self._r

    def post(self, edge: _FakeEdge) -> None:
        self.queue.append(edge)
        os.write(self._w, b"e")

    def release(self) -> None:
        for offset in self._offsets:
            self._chip.requested.pop(offset, None)
            if self._chip.watched.get(offset) is self:
                del self._chip.watched[offset]
        if not self.released:
            os.close(self._r)
            os.close(self._w)
        self.released = True

    def _offset(self, line: int | str) -> int:
        if self.released:
            raise RuntimeError("request released")
        offset = line if isinstance(line, int) else self._chip.names.index(line)
        if offset not in self._offsets:
            raise ValueError(f"line {line} not in this request")
        return offset


class _FakeChipHandle:
    def __init__(self, path: str, chip: _FakeChip) -> None:
        self._path = path
        self._chip = chip
        self._closed = False

    def get_info(self) -> _FakeInfo:
        return _FakeInfo(Path(self._path).name, self._chip.label, len(self._chip.names))

    def line_offset_from_id(self, id: str | int) -> int:
        if isinstance(id, int):
            if not 0 <= id < len(self._chip.names):
                raise ValueError("line offset of out range")
            return id
        try:
            return self._chip.names.index(id)
        except ValueError:
            raise OSError(2, "No such file or directory") from None

    def request_lines(self, config: Any, consumer: str | None = None) -> _FakeRequest:
        if self._closed:
            raise RuntimeError("chip closed")
        offsets = [int(k) for k in config]
        if any(offset in self._chip.requested for offset in offsets):
            raise OSError(16, "Device or resource busy")
        request = _FakeRequest(self._chip, offsets)
        os.set_blocking(request.fileno(), False)
        for offset, settings in config.items():
            self._chip.requested[offset] = (settings["direction"], settings["active_low"])
            if settings["direction"] == Direction.OUTPUT:
                high = (settings.get("output_value") == Value.ACTIVE) != settings["active_low"]
                self._chip.physical[offset] = high
            if settings.get("edge_detection") == Edge.BOTH:
                self._chip.watched[offset] = request
        return request

    def close(self) -> None:
        self._closed = True


class FakeGpiod:
    """Chips that exist only in memory, reached through the `gpiod` calls the driver makes.
    Chips live at paths under a directory of the test's (empty files stand for the device
    nodes, so the driver's scan of `/dev/gpiochip*` is the real one)."""

    def __init__(self, dev: Path) -> None:
        self.dev = dev
        self.chips: dict[str, _FakeChip] = {}

    def add_chip(self, name: str, label: str, lines: list[str]) -> _FakeChip:
        path = self.dev / name
        path.touch()
        chip = _FakeChip(label, list(lines))
        self.chips[str(path)] = chip
        return chip

    def Chip(self, path: str) -> _FakeChipHandle:
        chip = self.chips.get(path)
        if chip is None:
            raise FileNotFoundError(2, "No such file or directory", path)
        return _FakeChipHandle(path, chip)

    def LineSettings(self, **settings: Any) -> dict[str, Any]:
        settings.setdefault("active_low", False)
        settings.setdefault("direction", Direction.AS_IS)
        return settings

    def is_gpiochip_device(self, path: str) -> bool:
        return path in self.chips

    def level(self, label: str, line: str) -> bool:
        """The electrical level of a line (True = high)."""
        chip = next(c for c in self.chips.values() if c.label == label)
        return chip.physical.get(chip.names.index(line), False)

    def drive(self, label: str, line: str, high: bool, at_s: float | None = None) -> None:
        """Set an input line's electrical level, as a button or a SLIC would; a watched line
        reports the edge (logical, as the kernel does) stamped `at_s` (default: now)."""
        chip = next(c for c in self.chips.values() if c.label == label)
        offset = chip.names.index(line)
        before = chip.physical.get(offset, False)
        chip.physical[offset] = high
        request = chip.watched.get(offset)
        if request is None or before == high:
            return
        _, active_low = chip.requested[offset]
        kind = EdgeEvent.Type.RISING_EDGE if high != active_low else EdgeEvent.Type.FALLING_EDGE
        stamp = time.monotonic() if at_s is None else at_s
        request.post(_FakeEdge(kind, round(stamp * 1e9), offset))
