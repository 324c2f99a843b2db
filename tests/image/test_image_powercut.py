"""Power cuts on the appliance image (issue 14, second acceptance test): the box, booted under
QEMU from a disk of its own (a copy of the image, 512 MiB larger, so that the first boot grows
the data partition), is written to from the LAN (extensions created through the API, calls
that leave call records), and QEMU is killed with SIGKILL in the middle of it, at a random
moment. After each cut, on the build machine:

- the data partition mounts (ext4 replays its journal) and `e2fsck` then finds it clean;
- the database passes `PRAGMA integrity_check`, and holds every extension whose creation the
  API acknowledged before the cut, and at least as many call records as calls that ended 2 s
  before it (and no more than were made);

and the box boots again from the same disk, its services answer, and the API lists every
acknowledged extension. `PBX_POWERCUTS` sets the number of cuts (default 1 in the test run;
the acceptance run is `PBX_POWERCUTS=20 .venv/bin/python -m pytest
tests/image/test_image_powercut.py`, about 25 minutes under TCG here).
"""

from __future__ import annotations

import functools
import http.client
import json
import os
import random
import sqlite3
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.image.vm import (
    BOOT_TIMEOUT,
    BOX,
    BUILD_TIMEOUT,
    LAN_HOST,
    Lan,
    Page,
    Vm,
    built_image,
    first_boot,
    wait_until_up,
)
from tests.interop.sipp import credentials, free_port, run_sipp

CUTS = int(os.environ.get("PBX_POWERCUTS", "1"))
PER_CUT = 30
"""Extension numbers each boot's writer may create (300-329 the first, 330-359 the next...)."""
GROWN = 512 << 20
"""Bytes the test's disk has beyond the image: the first boot grows the data partition."""
SETTLED = 2.0
"""A call that ended this long before the cut has its record on disk (the CDR writer commits
within milliseconds of the hang-up, docs/RELIABILITY.md)."""


def data_partition(disk: Path) -> tuple[int, int]:
    """Offset and size in bytes of the partition `pbx-data` (read from the GPT)."""
    table = json.loads(subprocess.run(["sfdisk", "--json", str(disk)], check=True,
                                      capture_output=True, text=True).stdout)  # fmt: skip
    for part in table["partitiontable"]["partitions"]:
        if part.get("name") == "pbx-data":
            return part["start"] * 512, part["size"] * 512
    raise AssertionError(f"no pbx-data partition on {disk}: {table}")


@dataclass(frozen=True)
class Found:
    """The data partition as a cut left it."""

    integrity: list[tuple[str]]
    extensions: set[str]
    cdrs: int
    """Records of the writer's calls (101 to 102)."""
    size: int
    fsck: tuple[int, str]


def inspect(disk: Path, workdir: Path) -> Found:
    """What the box left on its data partition: a copy of the partition is mounted (the ext4
    journal replayed there, never on the box's disk), checked with e2fsck, and its database
    read."""
    offset, size = data_partition(disk)
    part = workdir / "data.img"
    with disk.open("rb") as src, part.open("wb") as out:
        src.seek(offset)
        remaining = size
        while remaining:
            chunk = src.read(min(remaining, 16 << 20))
            assert chunk, "the disk ended inside the data partition"
            out.write(chunk)
            remaining -= len(chunk)
    mount = workdir / "mnt"
    mount.mkdir(exist_ok=True)
    subprocess.run(["mount", "-o", "loop", str(part), str(mount)], check=True)
    try:
        db = sqlite3.connect(mount / "lib" / "pbx" / "pbx.sqlite3")
        try:
            check = db.execute("PRAGMA integrity_check").fetchall()
            numbers = {row[0] for row in db.execute("SELECT number FROM extensions")}
            (calls,) = db.execute(
                "SELECT count(*) FROM cdrs WHERE caller = '101' AND dialled = '102'"
            ).fetchone()
        finally:
            db.close()
    finally:
        subprocess.run(["umount", str(mount)], check=True)
    fsck = subprocess.run(["e2fsck", "-fn", str(part)], capture_output=True, text=True,
                          check=False)  # fmt: skip
    part.unlink()
    return Found(check, numbers, calls, size, (fsck.returncode, fsck.stdout + fsck.stderr))


class Writer:
    """From inside the LAN, until stopped: extensions created through the API (each number
    kept once the API answered 201), and calls from 101 to 102 (not registered: refused at
    once, each leaving a record; the Call-ID kept with the time it ended)."""

    def __init__(self, token: str, password: str, first: int, workdir: Path) -> None:
        self.token, self.password, self.next, self.workdir = token, password, first, workdir
        self.last = first + PER_CUT - 1
        self.acknowledged: list[str] = []
        self.calls: list[tuple[str, float]] = []
        self.stop = threading.Event()

    def extensions(self) -> None:
        page = Page()
        while not self.stop.is_set() and self.next <= self.last:
            number = str(self.next)
            self.next += 1
            try:
                made = page.api(self.token, "POST", "/extensions", {"number": number})
            except (OSError, ValueError, http.client.HTTPException):
                return  # the power went
            if page.status == 201 and made["number"] == number:
                self.acknowledged.append(number)

    def dial(self) -> None:
        port = free_port(LAN_HOST)
        while not self.stop.is_set():
            run = run_sipp("call_uac_rejected.xml", (BOX, 5060),
                           [["101", credentials("101", self.password), 0, "102", "Cut", "", 0]],
                           workdir=self.workdir, port=port, host=LAN_HOST, timeout=10)  # fmt: skip
            if run.returncode == 0 and run.sent:
                self.calls.append((run.sent[0].one("Call-ID"), time.monotonic()))


@pytest.mark.timeout(BUILD_TIMEOUT + CUTS * (BOOT_TIMEOUT + 120) + 600)
def test_power_cuts_lose_nothing_acknowledged(tmp_path: Path) -> None:
    disk = tmp_path / "disk.img"
    subprocess.run(["cp", "--sparse=always", str(built_image()), str(disk)], check=True)
    with disk.open("r+b") as grow:
        grow.truncate(disk.stat().st_size + GROWN)
    lan = Lan(tmp_path)
    lan.start()
    rng = random.Random(int(os.environ.get("PBX_POWERCUT_SEED", str(time.time_ns()))))
    acknowledged: list[str] = []
    settled = made = 0
    token = password = ""
    try:
        for cut in range(CUTS + 1):
            workdir = tmp_path / f"boot-{cut}"
            workdir.mkdir()
            vm = Vm(disk, lan, workdir, snapshot=False)
            vm.start()
            try:
                up = functools.partial(wait_until_up, vm, BOOT_TIMEOUT)
                lan.run(up, timeout=BOOT_TIMEOUT + 60)
                if cut == 0:

                    def setup() -> tuple[str, str]:
                        page, token = first_boot()
                        made = page.api(token, "POST", "/extensions", {"number": "101"})
                        page.api(token, "POST", "/extensions", {"number": "102"})
                        return token, made["password"]

                    token, password = lan.run(setup, timeout=300)
                    acknowledged += ["101", "102"]

                def listed(token: str = token) -> set[str]:
                    found = Page().api(token, "GET", "/extensions")
                    return {ext["number"] for ext in found["extensions"]}

                missing = set(acknowledged) - lan.run(listed, timeout=120)
                assert not missing, f"boot {cut}: acknowledged extensions lost: {missing}"
                if cut == CUTS:
                    break
                writer = Writer(token, password, 300 + PER_CUT * cut, tmp_path / f"sipp-{cut}")
                threads = [threading.Thread(target=lan.run, args=(job,), daemon=True)
                           for job in (writer.extensions, writer.dial)]  # fmt: skip
                for thread in threads:
                    thread.start()
                time.sleep(rng.uniform(3.0, 10.0))  # the moment of the cut: random on purpose
                cut_at = time.monotonic()
            finally:
                vm.stop()  # SIGKILL: the power cut (or the end of the last boot)
            writer.stop.set()
            for thread in threads:
                thread.join(timeout=60)
            acknowledged += writer.acknowledged
            settled += sum(1 for _call, at in writer.calls if at < cut_at - SETTLED)
            made += len(writer.calls) + 1  # (one more may have been on its way at the cut)
            found = inspect(disk, workdir)
            assert found.integrity == [("ok",)], f"cut {cut}: {found.integrity}"
            assert found.fsck[0] == 0, f"cut {cut}: e2fsck: {found.fsck}"
            lost = set(acknowledged) - found.extensions
            assert not lost, f"cut {cut}: acknowledged extensions not on disk: {sorted(lost)}"
            assert settled <= found.cdrs <= made, (
                f"cut {cut}: {found.cdrs} call records; {settled} calls had ended, {made} made"
            )
            assert writer.acknowledged, f"cut {cut}: no write was acknowledged before it"
            if cut == 0:
                assert found.size > GROWN, "the first boot did not grow the data partition"
    finally:
        lan.stop()
    assert settled, "no call ended before a cut: the records were never put to the test"
