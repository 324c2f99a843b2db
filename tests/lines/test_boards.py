"""Tests of `appliance.lines.boards`: the shipped profiles load into the model they describe,
and every kind of mistake is reported with the key path it concerns."""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from appliance.lines.boards import (
    BoardProfileError,
    Driver,
    GpioLine,
    PortKind,
    SerialPort,
    load_profile,
    parse_profile,
    shipped_profiles,
)


def test_shipped_profiles_load() -> None:
    profiles = {name: load_profile(path) for name, path in shipped_profiles().items()}
    assert set(profiles) >= {"mcu-2fxs-1fxo", "gpio-ag1171", "sim"}

    mcu = profiles["mcu-2fxs-1fxo"]
    assert mcu.driver == Driver.SERIAL
    assert [(p.number, p.kind) for p in mcu.ports] == [
        (1, PortKind.FXS),
        (2, PortKind.FXS),
        (3, PortKind.FXO),
    ]
    assert mcu.serial is not None and mcu.serial.speed == 115200
    assert mcu.reset_button == GpioLine("pinctrl-bcm2711", "GPIO27", active_low=True)
    assert mcu.status_led == GpioLine("pinctrl-bcm2711", "GPIO17")
    assert all(p.pcm for p in mcu.ports)

    gpio = profiles["gpio-ag1171"]
    assert gpio.driver == Driver.GPIO and gpio.serial is None
    assert all(p.kind == PortKind.FXS and p.slic is not None for p in gpio.ports)
    assert all(p.led is not None for p in gpio.ports)
    assert gpio.ports[0].slic is not None
    assert gpio.ports[0].slic.shk == GpioLine("pinctrl-bcm2711", "GPIO24")

    sim = profiles["sim"]
    assert sim.driver == Driver.SIM
    assert sim.serial == SerialPort("/run/pbx/lines/ttySIM", 115200)
    assert [p.pcm for p in sim.ports] == ["sim_port1", "sim_port2", "sim_port3"]


def _base(name: str) -> dict[str, Any]:
    return tomllib.loads(shipped_profiles()[name].read_text())


def _errors(data: dict[str, Any]) -> list[str]:
    with pytest.raises(BoardProfileError) as raised:
        parse_profile(data, "test.toml")
    assert str(raised.value) == "test.toml: " + "; ".join(raised.value.errors)
    return raised.value.errors


def _edited(name: str, path: str, value: Any) -> dict[str, Any]:
    """A copy of a shipped profile with `path` ("ports[1].pcm") set, or deleted if None."""
    data = copy.deepcopy(_base(name))
    keys = [int(k) if k.isdigit() else k for k in re.split(r"\.|\[|\]\.?", path) if k != ""]
    target: Any = data
    for key in keys[:-1]:
        target = target[key]
    if value is None:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value
    return data


@pytest.mark.parametrize(
    ("name", "path", "value", "error"),
    [
        ("mcu-2fxs-1fxo", "ports[1].pcm", None, "ports[1].pcm: missing"),
        ("mcu-2fxs-1fxo", "ports[1].pcm", "", "ports[1].pcm: must be a non-empty string"),
        ("mcu-2fxs-1fxo", "ports[2].kind", "fxx", "ports[2].kind: 'fxx' is not fxs or fxo"),
        ("mcu-2fxs-1fxo", "ports[0].number", 2,
         "ports[0].number: is 2, expected 1 (ports count 1, 2, …)"),
        ("mcu-2fxs-1fxo", "ports[0].number", "1", "ports[0].number: must be an integer"),
        ("mcu-2fxs-1fxo", "ports[0].colour", "red", "ports[0].colour: unknown key"),
        ("mcu-2fxs-1fxo", "serial.speed", 115201, "serial.speed: 115201 is not a standard speed"),
        ("mcu-2fxs-1fxo", "serial.device", None, "serial.device: missing"),
        ("mcu-2fxs-1fxo", "serial", None, "serial: missing"),
        ("mcu-2fxs-1fxo", "board.driver", "usb",
         "board.driver: 'usb' is not one of serial, gpio, sim"),
        ("mcu-2fxs-1fxo", "board.model", None, "board.model: missing"),
        ("mcu-2fxs-1fxo", "board", None, "board: missing"),
        ("mcu-2fxs-1fxo", "ports", None, "ports: missing"),
        ("mcu-2fxs-1fxo", "ports", [], "ports: a board has at least one port"),
        ("mcu-2fxs-1fxo", "ports", "1,2,3", "ports: must be an array of tables ([[ports]])"),
        ("mcu-2fxs-1fxo", "leds", {}, "leds: unknown key"),
        ("mcu-2fxs-1fxo", "status_led.chip", None, "status_led.chip: missing"),
        ("mcu-2fxs-1fxo", "status_led", "GPIO17", "status_led: must be a table"),
        ("mcu-2fxs-1fxo", "reset_button.active_low", "yes",
         "reset_button.active_low: must be true or false"),
        ("mcu-2fxs-1fxo", "reset_button.line", "GPIO17",
         "reset_button: GPIO17 on pinctrl-bcm2711 is already used by status_led"),
        ("mcu-2fxs-1fxo", "ports[0].slic", {}, "ports[0].slic: only a gpio board has SLIC lines"),
        ("gpio-ag1171", "ports[1].slic.shk", None, "ports[1].slic.shk: missing"),
        ("gpio-ag1171", "ports[0].slic", None, "ports[0].slic: missing"),
        ("gpio-ag1171", "ports[0].kind", "fxo", "ports[0].slic: a SLIC drives an fxs port"),
        ("gpio-ag1171", "serial", {"device": "/dev/ttyS0", "speed": 9600},
         "serial: a gpio board has no serial port"),
        ("gpio-ag1171", "ports[1].slic.rm.line", "GPIO23",
         "ports[1].slic.rm: GPIO23 on pinctrl-bcm2711 is already used by ports[0].slic.fr"),
        ("sim", "serial.speed", None, "serial.speed: missing"),
    ],
)  # fmt: skip
def test_errors_name_their_key(name: str, path: str, value: Any, error: str) -> None:
    assert _errors(_edited(name, path, value)) == [error]


def test_all_problems_are_reported_at_once() -> None:
    data = _edited("mcu-2fxs-1fxo", "ports[1].pcm", None)
    data["ports"][2]["kind"] = "pots"
    data["serial"]["speed"] = 1
    assert _errors(data) == [
        "serial.speed: 1 is not a standard speed",
        "ports[1].pcm: missing",
        "ports[2].kind: 'pots' is not fxs or fxo",
    ]


def test_file_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[board\nmodel = 1\n")
    with pytest.raises(BoardProfileError, match=r"\A.*broken\.toml: not TOML: ") as raised:
        load_profile(broken)
    assert len(raised.value.errors) == 1
    with pytest.raises(BoardProfileError, match=r"absent\.toml: cannot read: "):
        load_profile(tmp_path / "absent.toml")
