"""The appliance image (issue 14, first acceptance test): built by `image/build.py` from Debian
13 packages and this checkout's wheel, booted under QEMU (TCG, UEFI firmware, systemd-boot)
on a LAN of the test's own (`tests.image.vm`), it takes an address by DHCP, its three services
start, and from the LAN:

- SIP answers on 5060 (the boot-to-SIP-ready time is printed and kept in the work directory);
- the setup page answers on 443 with its first-boot flow: the admin account is made there,
  then an API token, then two extensions whose passwords the box generates;
- two sipp phones register with those passwords, and a call between them carries RTP both
  ways (the box's call record, read through the API, counts the packets of each leg).

The image is built once per checkout into `build/image` (packages cached in
`build/apt-cache`) and reused while nothing that goes into it changed (`image/build.py
--stamp`); `PBX_IMAGE=FILE` boots a given image instead.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.image.vm import BOX, LAN_HOST, Lan, Page, Vm, sip_options
from tests.interop.sipp import BackgroundSipp, credentials, free_media_port, free_port, run_sipp

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build" / "image"
BUILD_TIMEOUT = 1800.0
"""A build with nothing cached: about 3 minutes here (90 s with the packages cached)."""
BOOT_TIMEOUT = 420.0
"""Seconds from power-on to SIP answering: about 60-90 s under TCG here, firmware included."""


def built_image() -> Path:
    given = os.environ.get("PBX_IMAGE")
    if given:
        return Path(given)
    build = [sys.executable, str(ROOT / "image" / "build.py"), "--out", str(BUILD),
             "--cache", str(ROOT / "build" / "apt-cache")]  # fmt: skip
    image = BUILD / "pbx-amd64.img"
    current = subprocess.run([*build, "--stamp"], check=True, capture_output=True, text=True)
    report = BUILD / "pbx-amd64.json"
    stamp = current.stdout.strip()
    if image.exists() and report.exists() and json.loads(report.read_text())["stamp"] == stamp:
        return image
    BUILD.mkdir(parents=True, exist_ok=True)
    log = BUILD / "build.log"
    with log.open("w") as out:
        done = subprocess.run(build, stdout=out, stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT,
                              check=False)  # fmt: skip
    assert done.returncode == 0, f"the image build failed:\n{log.read_text()[-4000:]}"
    return image


@pytest.fixture(scope="module")
def booted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lan, Vm, float]]:
    image = built_image()
    workdir = tmp_path_factory.mktemp("vm")
    lan = Lan(workdir)
    lan.start()
    vm = Vm(image, lan, workdir)
    try:
        vm.start()

        def wait_for(what: str, answered: Callable[[], bool]) -> float:
            """Seconds from power-on until `answered()` (polled: the box has no other signal)."""
            deadline = vm.started_at + BOOT_TIMEOUT
            while time.monotonic() < deadline:
                vm.alive()
                if answered():
                    return time.monotonic() - vm.started_at
                time.sleep(0.5)
            raise AssertionError(f"no {what} in {BOOT_TIMEOUT} s; console:\n"
                                 f"{vm.console[-4000:]}")  # fmt: skip

        sip = lan.run(lambda: wait_for("SIP answer", lambda: sip_options(2.0) is not None),
                      timeout=BOOT_TIMEOUT + 30)  # fmt: skip
        page = lan.run(lambda: wait_for("page", Page().answers), timeout=BOOT_TIMEOUT + 30)
        print(f"boot to SIP ready: {sip:.1f} s, to the page: {page:.1f} s")
        (workdir / "boot.json").write_text(json.dumps({"sip_s": round(sip, 1),
                                                       "page_s": round(page, 1)}))  # fmt: skip
        yield lan, vm, sip
    finally:
        vm.stop()
        lan.stop()


@pytest.mark.timeout(BUILD_TIMEOUT + BOOT_TIMEOUT + 600)
def test_the_image_boots_and_serves_phones_and_the_page(
    booted: tuple[Lan, Vm, float], tmp_path: Path
) -> None:
    lan, vm, ready = booted
    assert ready < BOOT_TIMEOUT

    def first_boot() -> tuple[str, dict[str, str]]:
        page = Page()
        page.request("GET", "/")
        assert page.status == 302  # no account yet: the first visitor makes the admin
        page.submit("/setup/account", {"username": "admin", "password": "Adm1n-Secret!",
                                       "confirm": "Adm1n-Secret!"})  # fmt: skip
        assert page.status == 302, "the first-boot account was not made"
        shown = page.submit("/setup/office", {"token-name": "image test", "token-role": "admin"},
                            "/system/tokens")  # fmt: skip
        found = re.search(r"pbx_[A-Za-z0-9_\-]{16,}", shown)
        assert page.status == 200 and found, f"no API token shown ({page.status})"
        token = found[0]
        passwords = {}
        for number in ("101", "102"):
            made = page.api(token, "POST", "/extensions", {"number": number, "name": number})
            assert page.status == 201, made
            passwords[number] = made["password"]  # generated on the box
        return token, passwords

    token, passwords = lan.run(first_boot, timeout=300)

    def call() -> None:
        caller_port, callee_port = free_port(LAN_HOST), free_port(LAN_HOST)
        for number, port in (("101", caller_port), ("102", callee_port)):
            run = run_sipp("register.xml", (BOX, 5060),
                           [[number, credentials(number, passwords[number]), 3600]],
                           workdir=tmp_path, port=port, host=LAN_HOST, timeout=60)  # fmt: skip
            run.assert_passed()
            assert run.statuses == [401, 200], run.describe()
        media = free_media_port(LAN_HOST)
        with BackgroundSipp("call_uas_answer.xml", (BOX, 5060), [[media, 300, 1, 0]],
                            workdir=tmp_path, port=callee_port, media_port=media, timeout=90,
                            host=LAN_HOST) as callee:  # fmt: skip
            rows: list[list[str | int]] = [
                ["101", credentials("101", passwords["101"]), 3000, "102", "Image", "", 1]
            ]
            with BackgroundSipp("call_uac.xml", (BOX, 5060), rows, workdir=tmp_path,
                                port=caller_port, media_port=free_media_port(LAN_HOST),
                                timeout=90, host=LAN_HOST) as caller:  # fmt: skip
                caller.wait().assert_passed()
            callee.wait().assert_passed()

    lan.run(call, timeout=300)

    def record() -> dict[str, object]:
        page = Page()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = page.api(token, "GET", "/cdrs?limit=5")
            if found["cdrs"]:
                return dict(found["cdrs"][0])
            time.sleep(1)  # the record is written when the call ends: polled with a deadline
        raise AssertionError("no call record on the box")

    row = lan.run(record, timeout=120)
    assert (row["caller"], row["dialled"], row["disposition"]) == ("101", "102", "answered"), row
    for leg in ("rtp_caller", "rtp_callee"):
        stats = row[leg]
        assert isinstance(stats, dict), row
        assert stats["packets"] > 50 and stats["sent"] > 50, (leg, stats)  # 3 s at 50 per s
    vm.alive()
