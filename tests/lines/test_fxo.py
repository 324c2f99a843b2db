"""The FXO port's own parts: how a number is dialled on the office's city line (E.164 to the
country's national or international format), the DTMF it dials (decoded here by an
independent Goertzel decoder, each digit and pause at least Q.24's 40 ms), and, with the
gateway in this process over the simulated board and a real core process, a ring without
caller ID that the core refuses: the line is seized, the INVITE goes to the trunk's DID as
"anonymous", the refusal releases the line, and the core's CDR shows the trunk and the DID.

(The calls with a phone, the caller ID standards, dial tone and disconnect supervision are in
`tests/interop/test_fxo_calls.py`.)
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from appliance.lines import protocol as p
from appliance.lines.boards import load_profile, shipped_profiles
from appliance.lines.fxo import (
    DIGIT_OFF_MS,
    DIGIT_ON_MS,
    FxoError,
    State,
    dial_signal,
    line_digits,
    offers_pcmu,
    uri_user,
)
from appliance.lines.gateway import Gateway
from appliance.lines.link import LinkState
from appliance.lines.sim import SimAudioPort, SimBoard, write_asoundrc
from appliance.store import dids, ports, settings, trunks
from appliance.store.db import open_db
from tests.conftest import CoreProcess
from tests.interop.call_records import wait_cdrs

RATE = 8000
DTMF_LOW, DTMF_HIGH = (697, 770, 852, 941), (1209, 1336, 1477, 1633)
KEYS = ("123A", "456B", "789C", "*0#D")


def decode_dtmf(pcm: npt.NDArray[np.int16], block: int = 80) -> list[tuple[str, int]]:
    """The DTMF digits in `pcm` with the length of each in ms: Goertzel power at the eight
    DTMF frequencies over 10 ms blocks; a digit is two or more blocks whose strongest row
    and column tone carry most of the block's power."""
    n = np.arange(block)
    freqs = np.array(DTMF_LOW + DTMF_HIGH, dtype=np.float64)
    basis = np.exp(-2j * np.pi * np.outer(n, freqs) / RATE)
    keys = []
    for start in range(0, len(pcm) - block + 1, block):
        x = pcm[start : start + block].astype(np.float64)
        power = np.abs(x @ basis) ** 2
        total = float(x @ x) * block / 2
        low, high = int(np.argmax(power[:4])), int(np.argmax(power[4:]))
        loud = total > 1e8 and power[low] + power[4 + high] > 0.6 * total
        keys.append(KEYS[low][high] if loud else "")
    found: list[tuple[str, int]] = []
    run = 0
    for i, key in enumerate([*keys, ""]):
        if i and key == keys[i - 1]:
            run += 1
            continue
        if i and keys[i - 1] and run >= 2:
            found.append((keys[i - 1], run * block * 1000 // RATE))
        run = 1
    return found


def digits_of(pcm: npt.NDArray[np.int16]) -> str:
    return "".join(key for key, _ in decode_dtmf(pcm))


@pytest.mark.parametrize(
    ("number", "country", "dialled"),
    [
        ("+74951112233", "RU", "84951112233"),  # national: trunk prefix 8
        ("+12125550100", "RU", "81012125550100"),  # abroad: RU's international prefix
        ("+12125550100", "US", "12125550100"),  # NANP: trunk prefix 1
        ("+493012345678", "DE", "03012345678"),
        ("84951112233", "RU", "84951112233"),  # already as dialled
        ("8 (495) 111-22-33", "RU", "84951112233"),
        ("*21#", "RU", "*21#"),
    ],
)
def test_numbers_are_dialled_as_a_person_dials_them_in_the_country(
    number: str, country: str, dialled: str
) -> None:
    assert line_digits(number, country) == dialled


@pytest.mark.parametrize("number", ["", "anonymous", "+", "12x4"])
def test_a_number_that_cannot_be_dialled_is_refused_naming_it(number: str) -> None:
    with pytest.raises(FxoError) as error:
        line_digits(number, "RU")
    assert str(error.value) == f"the number {number!r} cannot be dialled on an analog line"


def test_the_dialled_dtmf_decodes_independently_with_q24_timing() -> None:
    number = "84951112233*#"
    pcm = dial_signal(number)
    found = decode_dtmf(pcm)
    assert "".join(key for key, _ in found) == number
    assert all(ms >= 40 for _, ms in found), found  # Q.24: at least 40 ms of each digit
    assert DIGIT_ON_MS >= 40 and DIGIT_OFF_MS >= 40
    assert len(pcm) == len(number) * (DIGIT_ON_MS + DIGIT_OFF_MS) * RATE // 1000


def test_what_an_offer_and_a_uri_say() -> None:
    assert offers_pcmu(b"")  # a late offer: the port makes one
    offer = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    assert offers_pcmu(offer + b"m=audio 4000 RTP/AVP 8 0\r\n")
    assert not offers_pcmu(offer + b"m=audio 4000 RTP/AVP 8 9\r\n")
    assert not offers_pcmu(b"not sdp")
    assert uri_user("sip:+74951112233@127.0.0.1:5070;user=phone") == "+74951112233"
    assert uri_user("sip:127.0.0.1") == ""


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def bench(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, core_factory: type[CoreProcess]
) -> Iterator[tuple[Path, SimBoard, CoreProcess, tuple[int, int]]]:
    profile = load_profile(shipped_profiles()["sim"])
    audio = []
    for port in profile.ports:
        infile = tmp_path / f"{port.pcm}.in.raw"
        infile.write_bytes(bytes(RATE * 2 * 60))  # a silent line for a minute
        audio.append(SimAudioPort(port.pcm, infile, tmp_path / f"{port.pcm}.out.raw"))
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(write_asoundrc(tmp_path / "asoundrc", audio)))
    sip_port, fxo_port = free_udp_port(), free_udp_port()
    data = tmp_path / "data"
    db = open_db(data)
    try:
        settings.set_value(db, "office.country", "RU")
        settings.set_value(db, "office.area_code", "495")
        trunks.add(db, "city-line", kind="ip", server=f"127.0.0.1:{fxo_port}", codecs="PCMU")
        dids.add(db, "+74951234567", "hangup:busy", "City line", "city-line")
        ports.set_port(db, 3, "fxo", trunk="city-line", caller_id="none")
    finally:
        db.conn.close()
    core = core_factory(data=data)
    core.start()
    board = SimBoard(tmp_path / "ttySIM", [p.FXS, p.FXS, p.FXO])
    board.start()
    yield tmp_path, board, core, (sip_port, fxo_port)
    board.stop()


async def _until(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.02)
    return False


def test_a_ring_the_core_refuses_seizes_then_releases_the_line(
    bench: tuple[Path, SimBoard, CoreProcess, tuple[int, int]],
) -> None:
    tmp, board, core, (sip_port, fxo_port) = bench
    profile = load_profile(shipped_profiles()["sim"])

    async def scenario() -> None:
        gateway = Gateway(
            tmp / "data", profile, (core.host, core.port), sip=("127.0.0.1", sip_port),
            fxo_sip=("127.0.0.1", fxo_port),
            device=str(tmp / "ttySIM"),
        )  # fmt: skip
        await gateway.start()
        try:
            assert await gateway.link.wait_state(LinkState.UP, 10)
            port = gateway.fxo[3]
            assert port.line_number == "+74951234567"  # the trunk's DID
            assert port.status()["state"] == "on-hook"
            board.line_ring(3, True)

            def sent() -> list[type[p.Message]]:
                with board.changed:
                    return [type(c) for c in board.commands if getattr(c, "port", 0) == 3]

            assert await _until(lambda: sent() == [p.Seize, p.Release]), sent()
            assert port.state is State.IDLE and not port.seized
            assert port.last_event == "core refused: 486"
            board.line_ring(3, False)
        finally:
            await gateway.stop()

    asyncio.run(scenario())
    rows = wait_cdrs(core.data, lambda rows: len(rows) >= 1, what="the refused call's CDR")
    assert rows[0]["caller"] == "anonymous", rows[0]
    assert (rows[0]["trunk"], rows[0]["did"]) == ("city-line", "+74951234567"), rows[0]
