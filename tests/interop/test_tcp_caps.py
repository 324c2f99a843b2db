"""Issue 13's acceptance for TCP: a flood of idle connections against a real `pbx run` with
its default caps (`sip.tcp_max_per_source` 100, `sip.tcp_max_total` 500) while sipp phones
register over TCP.

500 idle connections from 127.0.0.2, then 1,500 more from 127.0.0.3–127.0.0.9 (2,000 in all):
beyond the cap per address a connection is reset as it is accepted, and at the total cap the
oldest connection that has sent no SIP message is closed to make room; those within the caps
are closed when the first-message timeout (10 s) runs out. One sipp phone registers every half
second on one connection throughout; another connects while the flood holds every place, and
registers. The flood comes from this process (2,000 sockets), which raises its RLIMIT_NOFILE
for it (as root when the hard limit is lower); the core needs no more than its default.
"""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from appliance import control
from appliance.sip.transport import TCP_FIRST_MESSAGE_TIMEOUT, TCP_MAX_PER_SOURCE, TCP_MAX_TOTAL
from tests.conftest import CoreProcess
from tests.interop.sipp import BackgroundSipp, credentials, free_media_port, free_port, run_sipp

ONE_SOURCE = "127.0.0.2"
OTHER_SOURCES = [f"127.0.0.{n}" for n in range(3, 10)]
FROM_ONE, IN_ALL = 500, 2_000
WAIT = 5.0
"""The longest any one step of the flood may take (opening 2,000 connections takes well under
a second here)."""
TICK = 0.01
PHONE_REGISTERS, PHONE_RATE = 30, 2
"""The phone registering throughout: 30 REGISTERs, 2 a second (15 s, longer than the flood)."""
FILES_NEEDED = IN_ALL + 200
SETTLE = 10.0
"""Bound on waiting for the core to have seen a phone's REGISTER or a socket's end."""


@dataclass
class Idle:
    """One connection of the flood: it sends nothing; `ended` gives when the box closed it."""

    source: str
    sock: socket.socket
    opened: float
    ended: asyncio.Task[float]


async def open_idle(target: tuple[str, int], source: str) -> Idle:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.bind((source, 0))
    opened = time.monotonic()
    try:
        await asyncio.wait_for(loop.sock_connect(sock, target), WAIT)
    except ConnectionResetError:
        pass  # reset before the handshake was reported: refused at once
    return Idle(source, sock, opened, loop.create_task(_until_closed(sock)))


async def _until_closed(sock: socket.socket) -> float:
    loop = asyncio.get_running_loop()
    try:
        while await loop.sock_recv(sock, 1024):
            pass
    except ConnectionError:
        pass  # a reset: refused
    return time.monotonic()


async def ended(conns: list[Idle], n: int, timeout: float = WAIT) -> None:
    """Wait until the box has closed at least `n` of `conns`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pending = {c.ended for c in conns if not c.ended.done()}
    while len(conns) - len(pending) < n:
        left = deadline - loop.time()
        if left <= 0:
            raise AssertionError(f"{len(conns) - len(pending)} closed, not {n}, in {timeout} s")
        _, pending = await asyncio.wait(pending, timeout=left, return_when=asyncio.FIRST_COMPLETED)


def still_open(conns: list[Idle]) -> list[Idle]:
    return [c for c in conns if not c.ended.done()]


@dataclass(frozen=True, slots=True)
class Reading:
    """The core's counters, and its CPU time and RSS from /proc."""

    counters: dict[str, Any]
    cpu: float
    rss_kib: int


def reading(core: CoreProcess) -> Reading:
    assert core.proc is not None
    counters = control.call(core.data, "counters")
    stat = Path(f"/proc/{core.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    status = Path(f"/proc/{core.proc.pid}/status").read_text()
    rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    return Reading(counters, cpu, rss)


@pytest.fixture
def descriptors() -> Iterator[None]:
    """Room in this process for the flood's sockets: the limit raised to what they need (the
    hard one too when it is lower, which needs root), and put back afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard == resource.RLIM_INFINITY else max(hard, FILES_NEEDED)
    try:  # (raising the hard limit needs root, which CI is; the soft one never does)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, FILES_NEEDED), wanted))
    except (ValueError, OSError) as exc:
        raise AssertionError(
            f"this test needs {FILES_NEEDED} open files; RLIMIT_NOFILE is {soft}/{hard} and"
            f" cannot be raised ({exc}): run it as root or raise the limit"
        ) from None
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_idle_tcp_flood_is_capped_while_phones_keep_registering_over_tcp(
    core: CoreProcess, tmp_path: Path, descriptors: None
) -> None:
    password = core.add_extension("101")
    rows: list[list[str | int]] = [["101", credentials("101", password), 300]]
    target = (core.host, core.port)
    workdir = tmp_path / "sipp"
    phone = BackgroundSipp(
        "register.xml", target, rows, workdir=workdir, port=free_port(),
        media_port=free_media_port(), calls=PHONE_REGISTERS, timeout=60, transport="t1",
        extra=("-r", str(PHONE_RATE)),
    )  # fmt: skip
    per_source, total = TCP_MAX_PER_SOURCE, TCP_MAX_TOTAL
    figures: dict[str, float] = {}

    async def flood() -> tuple[float, float]:
        loop = asyncio.get_running_loop()

        async def read() -> Reading:
            return await asyncio.to_thread(reading, core)

        # The phone is registered on its connection, the only one from outside.
        deadline = loop.time() + SETTLE
        while not (await asyncio.to_thread(control.call, core.data, "status"))["registrations"]:
            assert loop.time() < deadline, "the phone did not register"
            await asyncio.sleep(0.05)  # the core has no event to await; polled, bounded
        before = await read()
        assert before.counters["tcp_inbound"] == 1, before.counters
        started = time.time()

        # 500 from one address: 100 stay, 400 are reset as they are accepted.
        t0 = time.monotonic()
        one = [await open_idle(target, ONE_SOURCE) for _ in range(FROM_ONE)]
        figures["open_500_s"] = time.monotonic() - t0
        await ended(one, FROM_ONE - per_source)
        after_one = await read()
        assert after_one.counters["tcp_inbound"] == 1 + per_source, after_one.counters
        assert after_one.counters["tcp_refused"] == FROM_ONE - per_source, after_one.counters
        assert len(still_open(one)) == per_source
        refused = [c for c in one if c.ended.done()]
        assert max(c.ended.result() - c.opened for c in refused) < 1.0  # at once

        # 1,500 more from seven others, one address after the other: 2,000 in all.
        t0 = time.monotonic()
        rest = IN_ALL - FROM_ONE
        others = []
        for i, source in enumerate(OTHER_SOURCES):
            n = rest // len(OTHER_SOURCES) + (i < rest % len(OTHER_SOURCES))
            others += [await open_idle(target, source) for _ in range(n)]
        figures["open_1500_s"] = time.monotonic() - t0
        flood = one + others
        await ended(flood, IN_ALL - (total - 1))
        full = await read()
        figures["cpu_ms_per_connection"] = 1000 * (full.cpu - before.cpu) / IN_ALL
        assert full.counters["tcp_inbound"] == total, full.counters  # the phone + 499
        assert full.counters["tcp_refused"] == IN_ALL - (total - 1), full.counters
        assert full.counters["tcp_expired"] == 0, full.counters  # all that by the caps
        held = still_open(flood)
        assert len(held) == total - 1
        assert max(Counter(c.source for c in held).values()) <= per_source

        # A phone that connects now takes the place of the oldest silent connection.
        joined = await asyncio.to_thread(
            run_sipp, "register.xml", target, rows, workdir=workdir, port=free_port(),
            transport="t1", calls=2, timeout=10,
        )  # fmt: skip
        joined.assert_passed()
        assert joined.statuses == [401, 200, 401, 200], joined.describe()
        await ended(flood, IN_ALL - (total - 2))
        assert (await read()).counters["tcp_refused"] == IN_ALL - (total - 2)

        # The rest never sent a SIP message: closed when the first-message timeout runs out.
        held = still_open(flood)
        await ended(flood, IN_ALL, TCP_FIRST_MESSAGE_TIMEOUT + WAIT)
        for conn in held:
            lived = conn.ended.result() - conn.opened
            assert TCP_FIRST_MESSAGE_TIMEOUT - TICK <= lived < TCP_FIRST_MESSAGE_TIMEOUT + WAIT
        finished = time.time()
        deadline = loop.time() + SETTLE
        while (after := await read()).counters["tcp_inbound"] != 1:  # the second phone's end
            assert loop.time() < deadline, after.counters
            await asyncio.sleep(0.05)  # polled, bounded: no event to await in another process
        assert after.counters["tcp_expired"] == len(held), after.counters
        figures.update(
            fds_before=before.counters["open_fds"], fds_full=full.counters["open_fds"],
            fds_after=after.counters["open_fds"], rss_kib_before=before.rss_kib,
            rss_kib_full=full.rss_kib, rss_kib_after=after.rss_kib,
        )  # fmt: skip
        for conn in flood:
            conn.sock.close()
        return started, finished

    with phone:
        started, finished = asyncio.run(flood())
        registered = phone.wait()
    registered.assert_passed()
    oks = [m for m in registered.responses if m.status == 200]
    assert len(oks) == PHONE_REGISTERS, registered.describe()[-3000:]
    during = [m for m in oks if started <= registered.time_of(m) <= finished]
    assert len(during) >= 5, f"{len(during)} REGISTERs answered 200 during the flood"
    figures["registers_during_flood"] = len(during)

    # The caps cost a few log lines, not one per connection; nothing went wrong in the core.
    log = core.output
    per_address = Counter(
        line.split(" from ", 1)[1].split()[0] for line in log if "refused: the address" in line
    )
    assert set(per_address) == {ONE_SOURCE, *OTHER_SOURCES}, per_address
    assert max(per_address.values()) == 1, per_address
    in_all = [line for line in log if "are open from outside, the most allowed" in line]
    assert len(in_all) == 1, in_all
    assert not [line for line in log if "Traceback" in line or " ERROR " in line], log[-50:]
    assert abs(figures["fds_after"] - figures["fds_before"]) <= 2, figures
    print(f"\nTCP flood figures: {figures}")
