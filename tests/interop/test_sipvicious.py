"""Issue 13's acceptance for intrusion protection: SIPVicious against a real `pbx run`.

`svmap` finds the box; `svwar` finds no extension, though 101 and 102 exist (the box answers
a REGISTER, INVITE or OPTIONS for an unknown user exactly as for a known one); `svcrack`,
whose word list holds 101's password last, is banned after 5 wrong guesses and never reaches
it; from then on the box answers nothing from the scanner's address, on UDP or TCP, which the
counters show and a raw OPTIONS probe from that address confirms (the same probe from another
address is answered). Meanwhile a phone on an allow-listed address (127.0.0.30) registers and
calls 102 again and again, every time with success, and a phone that mistypes its password
twice (127.0.0.31) registers at the third try and is not banned.

The scanner sends from 127.0.0.1: sipvicious 0.3.8's `svwar` and `svcrack` ignore `-b` (see
`tests/interop/sipvicious.py`), so the phones take other loopback addresses and the box's
allow-list names only the first phone's (its default, 127.0.0.1 and ::1, is replaced).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from appliance import control
from tests.conftest import CoreProcess
from tests.interop.sipp import (
    BackgroundSipp,
    SippRun,
    credentials,
    free_media_port,
    free_port,
    run_sipp,
)
from tests.interop.sipvicious import svcrack, svmap, svwar

SCANNER = "127.0.0.1"
PHONE_HOST = "127.0.0.30"
"""The allow-listed phone's address (`security.allow`)."""
MISTYPER_HOST = "127.0.0.31"
BYSTANDER = "127.0.0.32"
"""An address that did nothing: the control for the raw probe."""
CALLER, CALLER_PASSWORD = "101", "Kq7vT9pLm2"
CALLEE, CALLEE_PASSWORD = "102", "Zr4wX8nQp3"
MISTYPER, MISTYPER_PASSWORD = "103", "Hy6bN3cVx8"
WRONG = [f"guess{n:02d}pass" for n in range(1, 9)]
"""svcrack's wrong guesses; its list ends with 101's real password."""
FAILURES = 5
"""security.ban_failures, the default."""
PROBE_WAIT = 2.0
"""How long the raw probe waits for an answer (the box answers an OPTIONS in milliseconds)."""
PHONE_ROUNDS = 200
"""Bound on the allow-listed phone's register-and-call rounds (it stops when the test ends)."""


@dataclass
class Phone:
    """Extension 101 on the allow-listed address: REGISTER, then a call to 102, in a loop on a
    thread of its own until `stop` (or `PHONE_ROUNDS`); every run is kept."""

    core: CoreProcess
    workdir: Path
    registers: list[SippRun] = field(default_factory=list)
    calls: list[SippRun] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="phone", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        target = (self.core.host, self.core.port)
        port = free_port(PHONE_HOST)
        for _ in range(PHONE_ROUNDS):
            if self._stop.is_set():
                return
            self.registers.append(run_sipp(
                "register.xml", target, [[CALLER, credentials(CALLER, CALLER_PASSWORD), 3600]],
                workdir=self.workdir, port=port, host=PHONE_HOST,
            ))  # fmt: skip
            caller = BackgroundSipp(
                "call_uac.xml", target,
                [[CALLER, credentials(CALLER, CALLER_PASSWORD), 200, CALLEE, "", "", 0]],
                workdir=self.workdir, port=port, media_port=free_media_port(PHONE_HOST),
                host=PHONE_HOST, timeout=20,
            )  # fmt: skip
            with caller:
                self.calls.append(caller.wait())

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            assert not self._thread.is_alive(), "the phone's loop did not end"

    def done(self) -> int:
        """Rounds completed so far (a REGISTER and a call each)."""
        return len(self.calls)


def counters(core: CoreProcess) -> dict[str, Any]:
    return control.call(core.data, "counters")


def banned(core: CoreProcess) -> list[str]:
    return [row["address"] for row in control.call(core.data, "bans")["bans"]]


def probe(source: str, target: tuple[str, int]) -> bytes | None:
    """One OPTIONS datagram from `source`; the box's answer, or None after `PROBE_WAIT`."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        port = sock.getsockname()[1]
        request = (
            f"OPTIONS sip:{target[0]}:{target[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {source}:{port};branch=z9hG4bK-probe{time.monotonic_ns()};rport\r\n"
            f"From: <sip:probe@{source}>;tag=probe\r\nTo: <sip:{target[0]}>\r\n"
            f"Call-ID: probe-{time.monotonic_ns()}@{source}\r\nCSeq: 1 OPTIONS\r\n"
            "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        sock.sendto(request.encode(), target)
        sock.settimeout(PROBE_WAIT)
        try:
            return sock.recv(65536)
        except TimeoutError:
            return None


def tcp_answer(source: str, target: tuple[str, int]) -> bytes | None:
    """What the box sends back on a TCP connection from `source` carrying an OPTIONS: its
    answer; b"" or None when it closed or reset the connection unanswered."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(PROBE_WAIT)
        try:
            sock.connect(target)
            sock.sendall(
                f"OPTIONS sip:{target[0]} SIP/2.0\r\nVia: SIP/2.0/TCP {source};branch=z9hG4bK-t"
                f"\r\nFrom: <sip:probe@{source}>;tag=t\r\nTo: <sip:{target[0]}>\r\n"
                f"Call-ID: tcp-probe@{source}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
                .encode()
            )  # fmt: skip
            return sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return None


@pytest.fixture
def office(core_factory: type[CoreProcess], tmp_path: Path) -> Iterator[CoreProcess]:
    core = core_factory(data=tmp_path / "var")
    for number, password in ((CALLER, CALLER_PASSWORD), (CALLEE, CALLEE_PASSWORD),
                             (MISTYPER, MISTYPER_PASSWORD)):  # fmt: skip
        core.add_extension(number, password)
    core.cli("config", "set", "security.allow", PHONE_HOST)
    core.start()
    yield core


def test_sipvicious_finds_nothing_and_is_banned_while_phones_work(
    office: CoreProcess, tmp_path: Path
) -> None:
    target = (office.host, office.port)
    started = time.monotonic()
    # 102 answers calls on the allow-listed address, registered from the port it answers on.
    callee_port = free_port(PHONE_HOST)
    run_sipp(
        "register.xml", target, [[CALLEE, credentials(CALLEE, CALLEE_PASSWORD), 3600]],
        workdir=tmp_path, port=callee_port, host=PHONE_HOST,
    ).assert_passed()  # fmt: skip
    media_port = free_media_port(PHONE_HOST)
    callee = BackgroundSipp(
        "call_uas_answer.xml", target, [[media_port, 0, 0, 0]], workdir=tmp_path,
        port=callee_port, media_port=media_port, host=PHONE_HOST, calls=PHONE_ROUNDS,
        timeout=120,
    )  # fmt: skip
    phone = Phone(office, tmp_path)
    with callee:
        phone.start()
        try:
            _scan_and_crack(office, target, tmp_path, phone)
            _mistype_twice(office, target, tmp_path)
        finally:
            phone.stop()

    assert phone.done() >= 3, "the phone had too few rounds to show anything"
    for run in phone.registers:
        run.assert_passed()
        assert run.statuses == [401, 200], run.describe()
    for run in phone.calls:
        run.assert_passed()
    assert time.monotonic() - started < 240


def _scan_and_crack(
    core: CoreProcess, target: tuple[str, int], tmp_path: Path, phone: Phone
) -> None:
    found = svmap(target)
    assert f"{target[0]}:{target[1]}" in found.output, found.describe()

    # svwar: the same answer for every user, known or not, by each method it knows.
    for method in ("REGISTER", "INVITE", "OPTIONS"):
        scan = svwar(target, "95-110", method=method)
        assert "found nothing" in scan.output, scan.describe()
        assert "exists" not in scan.output, scan.describe()
    # Challenges are no failures, and the scan was within the rate limit.
    assert banned(core) == []
    before = counters(core)
    assert before["rate_limited"] == 0, before
    assert before["refused.wrong_password"] == before["refused.unauthenticated"] == 0, before

    # svcrack: banned after 5 wrong guesses; the real password, last in its list, never tried.
    words = tmp_path / "words.txt"
    words.write_text("\n".join([*WRONG, CALLER_PASSWORD]) + "\n")
    rounds_before = phone.done()
    crack = svcrack(target, CALLER, words)
    # (unbanned, it prints a table with the password found: seen with ban_failures 1000)
    assert CALLER_PASSWORD not in crack.output and "found nothing" in crack.output, crack.describe()
    after = counters(core)
    assert after["refused.wrong_password"] == FAILURES, after
    assert banned(core) == [SCANNER]
    assert after["bans_active"] == 1 and after["dropped"] > 0, after

    # Unanswered from the banned address, over UDP and TCP; answered from another one.
    dropped = after["dropped"]
    assert probe(SCANNER, target) is None
    assert not tcp_answer(SCANNER, target)
    assert counters(core)["dropped"] >= dropped + 2
    answer = probe(BYSTANDER, target)
    assert answer is not None and answer.startswith(b"SIP/2.0 200 "), answer
    status = core.cli("status").stdout
    assert "bans in force: 1;" in status, status

    # The phone kept working while svcrack ran: wait for one more round after it.
    deadline = time.monotonic() + 30
    while phone.done() <= max(rounds_before, 1) and time.monotonic() < deadline:
        time.sleep(0.1)  # polling the phone's thread, bounded
    assert phone.done() > rounds_before


def _mistype_twice(core: CoreProcess, target: tuple[str, int], tmp_path: Path) -> None:
    refused = counters(core)["refused.wrong_password"]
    port = free_port(MISTYPER_HOST)
    for _ in range(2):
        wrong = run_sipp(
            "register_forbidden.xml", target,
            [[MISTYPER, credentials(MISTYPER, "Mistyped1234"), 3600]], workdir=tmp_path,
            port=port, host=MISTYPER_HOST,
        )  # fmt: skip
        wrong.assert_passed()
        assert wrong.statuses == [401, 403], wrong.describe()
    right = run_sipp(
        "register.xml", target, [[MISTYPER, credentials(MISTYPER, MISTYPER_PASSWORD), 3600]],
        workdir=tmp_path, port=port, host=MISTYPER_HOST,
    )  # fmt: skip
    right.assert_passed()
    assert right.statuses == [401, 200], right.describe()
    assert counters(core)["refused.wrong_password"] == refused + 2
    assert MISTYPER_HOST not in banned(core)
