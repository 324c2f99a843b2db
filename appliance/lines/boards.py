"""Board profiles (`hw/boards/*.toml`): what a line board has and how it is wired, loaded with
tomllib and validated strictly, so a technician's typo is reported by its key path
("ports[1].pcm: missing") when the gateway starts rather than found as a dead port later.

Errors are in English only: they are read by the technician who edits the file, in the
journal, next to the file's English key names.
"""

from __future__ import annotations

import enum
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "BOARDS_DIR",
    "BoardProfile",
    "BoardProfileError",
    "Driver",
    "GpioLine",
    "Port",
    "PortKind",
    "SerialPort",
    "Slic",
    "load_profile",
    "parse_profile",
    "shipped_profiles",
]


def _boards_dir() -> Path:
    """`hw/boards` of a source checkout, or where the wheel installs them (the image's venv)."""
    checkout = Path(__file__).resolve().parents[2] / "hw" / "boards"
    return checkout if checkout.is_dir() else Path(sys.prefix) / "share" / "pbx" / "boards"


BOARDS_DIR = _boards_dir()
SPEEDS = frozenset({9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 1000000})


class BoardProfileError(Exception):
    """A profile that cannot be used; `errors` lists every problem, each naming its key."""

    def __init__(self, source: str, errors: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(errors))
        self.source = source
        self.errors = errors


class Driver(enum.StrEnum):
    SERIAL = "serial"
    """A microcontroller board speaking `hw/PROTOCOL.md`."""
    GPIO = "gpio"
    """SLIC modules wired straight to the host's GPIO, one USB audio adapter per port."""
    SIM = "sim"
    """The simulated board (`appliance/lines/sim.py`): the serial protocol over a pty."""


class PortKind(enum.StrEnum):
    FXS = "fxs"
    FXO = "fxo"


@dataclass(frozen=True)
class GpioLine:
    """One GPIO line, by its chip's label and its own name: numbers change between kernels
    and boards, labels and names do not."""

    chip: str
    line: str
    active_low: bool = False


@dataclass(frozen=True)
class Slic:
    """An Ag1171-style SLIC's control lines: ring mode, forward/reverse (toggled at the ring
    frequency while ringing) and switch-hook detect."""

    rm: GpioLine
    fr: GpioLine
    shk: GpioLine


@dataclass(frozen=True)
class Port:
    number: int
    kind: PortKind
    pcm: str
    """The ALSA PCM name the port's audio opens (capture and playback)."""
    led: GpioLine | None = None
    """A port LED on the host's GPIO; None when the board drives it (`Led` command)."""
    slic: Slic | None = None


@dataclass(frozen=True)
class SerialPort:
    device: str
    speed: int


@dataclass(frozen=True)
class BoardProfile:
    model: str
    description: str
    driver: Driver
    ports: tuple[Port, ...]
    serial: SerialPort | None = None
    status_led: GpioLine | None = None
    reset_button: GpioLine | None = None


def shipped_profiles() -> dict[str, Path]:
    """The profiles that come with the box, by file stem."""
    return {path.stem: path for path in sorted(BOARDS_DIR.glob("*.toml"))}


def load_profile(path: Path) -> BoardProfile:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise BoardProfileError(str(path), [f"cannot read: {exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise BoardProfileError(str(path), [f"not TOML: {exc}"]) from None
    return parse_profile(data, str(path))


def parse_profile(data: Mapping[str, Any], source: str = "profile") -> BoardProfile:
    """Validate a parsed profile; raises `BoardProfileError` with every problem found."""
    check = _Checker()
    check.keys(data, "", {"board", "serial", "status_led", "reset_button", "ports"})
    board = check.table(data, "board", required=True)
    model = driver_name = None
    description = ""
    if board is not None:
        check.keys(board, "board", {"model", "description", "driver"})
        model = check.string(board, "board", "model")
        description = check.string(board, "board", "description", required=False) or ""
        driver_name = check.string(board, "board", "driver")
    driver: Driver | None = None
    if driver_name is not None:
        try:
            driver = Driver(driver_name)
        except ValueError:
            check.error("board.driver", f"{driver_name!r} is not one of serial, gpio, sim")

    serial: SerialPort | None = None
    serial_table = check.table(data, "serial", required=driver in (Driver.SERIAL, Driver.SIM))
    if serial_table is not None:
        if driver == Driver.GPIO:
            check.error("serial", "a gpio board has no serial port")
        check.keys(serial_table, "serial", {"device", "speed"})
        device = check.string(serial_table, "serial", "device")
        speed = check.integer(serial_table, "serial", "speed")
        if speed is not None and speed not in SPEEDS:
            check.error("serial.speed", f"{speed} is not a standard speed")
        if device is not None and speed is not None:
            serial = SerialPort(device, speed)

    status_led = check.gpio(data, "", "status_led", required=False)
    reset_button = check.gpio(data, "", "reset_button", required=False)

    ports: list[Port] = []
    raw_ports = data.get("ports")
    if raw_ports is None:
        check.error("ports", "missing")
    elif not isinstance(raw_ports, list) or not all(isinstance(x, dict) for x in raw_ports):
        check.error("ports", "must be an array of tables ([[ports]])")
    elif not raw_ports:
        check.error("ports", "a board has at least one port")
    else:
        for index, raw in enumerate(raw_ports):
            port = check.port(raw, f"ports[{index}]", driver, index + 1)
            if port is not None:
                ports.append(port)

    check.unique_lines()
    if check.errors:
        raise BoardProfileError(source, check.errors)
    assert model is not None and driver is not None
    return BoardProfile(model, description, driver, tuple(ports), serial, status_led, reset_button)


class _Checker:
    """Collects the problems of one profile, each prefixed by its key path."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self._lines: list[tuple[str, GpioLine]] = []

    def error(self, path: str, what: str) -> None:
        self.errors.append(f"{path}: {what}")

    def keys(self, table: Mapping[str, Any] | None, path: str, allowed: set[str]) -> None:
        for key in table or {}:
            if key not in allowed:
                self.error(_join(path, key), "unknown key")

    def table(
        self, parent: Mapping[str, Any], key: str, *, required: bool, path: str = ""
    ) -> Mapping[str, Any] | None:
        value = parent.get(key)
        if value is None:
            if required:
                self.error(_join(path, key), "missing")
            return None
        if not isinstance(value, dict):
            self.error(_join(path, key), "must be a table")
            return None
        return value

    def string(
        self, table: Mapping[str, Any], path: str, key: str, *, required: bool = True
    ) -> str | None:
        value = table.get(key)
        if value is None:
            if required:
                self.error(_join(path, key), "missing")
            return None
        if not isinstance(value, str) or not value.strip():
            self.error(_join(path, key), "must be a non-empty string")
            return None
        return value

    def integer(self, table: Mapping[str, Any], path: str, key: str) -> int | None:
        value = table.get(key)
        if value is None:
            self.error(_join(path, key), "missing")
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            self.error(_join(path, key), "must be an integer")
            return None
        return value

    def gpio(
        self, parent: Mapping[str, Any], path: str, key: str, *, required: bool
    ) -> GpioLine | None:
        table = self.table(parent, key, required=required, path=path)
        if table is None:
            return None
        here = _join(path, key)
        self.keys(table, here, {"chip", "line", "active_low"})
        chip = self.string(table, here, "chip")
        line = self.string(table, here, "line")
        active_low = table.get("active_low", False)
        if not isinstance(active_low, bool):
            self.error(_join(here, "active_low"), "must be true or false")
            active_low = False
        if chip is None or line is None:
            return None
        found = GpioLine(chip, line, active_low)
        self._lines.append((here, found))
        return found

    def port(
        self, raw: Mapping[str, Any], path: str, driver: Driver | None, expected: int
    ) -> Port | None:
        self.keys(raw, path, {"number", "kind", "pcm", "led", "slic"})
        number = self.integer(raw, path, "number")
        if number is not None and number != expected:
            self.error(
                _join(path, "number"), f"is {number}, expected {expected} (ports count 1, 2, …)"
            )
        kind_name = self.string(raw, path, "kind")
        kind: PortKind | None = None
        if kind_name is not None:
            try:
                kind = PortKind(kind_name)
            except ValueError:
                self.error(_join(path, "kind"), f"{kind_name!r} is not fxs or fxo")
        pcm = self.string(raw, path, "pcm")
        led = self.gpio(raw, path, "led", required=False)
        slic: Slic | None = None
        slic_table = self.table(raw, "slic", required=driver == Driver.GPIO, path=path)
        if slic_table is not None:
            here = _join(path, "slic")
            if driver != Driver.GPIO:
                self.error(here, "only a gpio board has SLIC lines")
                return None
            if kind == PortKind.FXO:
                self.error(here, "a SLIC drives an fxs port")
            self.keys(slic_table, here, {"rm", "fr", "shk"})
            rm = self.gpio(slic_table, here, "rm", required=True)
            fr = self.gpio(slic_table, here, "fr", required=True)
            shk = self.gpio(slic_table, here, "shk", required=True)
            if rm and fr and shk:
                slic = Slic(rm, fr, shk)
        if number is None or kind is None or pcm is None:
            return None
        return Port(number, kind, pcm, led, slic)

    def unique_lines(self) -> None:
        used: dict[tuple[str, str], str] = {}
        for path, line in self._lines:
            first = used.setdefault((line.chip, line.line), path)
            if first != path:
                self.error(path, f"{line.line} on {line.chip} is already used by {first}")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
