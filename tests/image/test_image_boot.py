"""The appliance image (issue 14, first acceptance test): built by `image/build.py` from Debian
13 packages and this checkout's wheel, booted under QEMU (TCG, UEFI firmware, systemd-boot)
on a LAN of the test's own (`tests.image.vm`), it names itself pbx-XXXX, takes an address by
DHCP, shows it on the console, its three services start, and from the LAN:

- SIP answers on 5060 (the boot-to-SIP-ready time is printed and kept in the work directory);
- the setup page answers on 443 with its first-boot flow: the admin account is made there,
  then an API token, then two extensions whose passwords the box generates;
- two sipp phones register with those passwords, and a call between them carries RTP both
  ways (the box's call record, read through the API, counts the packets of each leg);
- a factory reset from the System page restarts the box, which comes back as new: the page
  asks for the first account again, the old API token is refused, the extensions are gone.

The image is built once per checkout into `build/image` (packages cached in
`build/apt-cache`) and reused while nothing that goes into it changed (`image/build.py
--stamp`); `PBX_IMAGE=FILE` boots a given image instead.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
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
    sip_options,
    wait_until_up,
)
from tests.interop.sipp import BackgroundSipp, credentials, free_media_port, free_port, run_sipp

ADMIN = ("admin", "Adm1n-Secret!")


@pytest.fixture(scope="module")
def booted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lan, Vm, float]]:
    image = built_image()
    workdir = tmp_path_factory.mktemp("vm")
    lan = Lan(workdir)
    lan.start()
    vm = Vm(image, lan, workdir)
    try:
        vm.start()

        sip, page = lan.run(lambda: wait_until_up(vm, BOOT_TIMEOUT), timeout=BOOT_TIMEOUT + 60)
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
    # Its own name, made on the first boot, sent with its DHCP request; its address on the
    # console's login screen.
    lease = (lan.workdir / "leases").read_text().split()
    assert BOX in lease and re.fullmatch(r"pbx-[0-9a-f]{4}", lease[lease.index(BOX) + 1]), lease
    assert f"Setup page: https://{BOX}/" in vm.console

    def accounts() -> tuple[str, dict[str, str]]:
        page, token = first_boot()
        passwords = {}
        for number in ("101", "102"):
            made = page.api(token, "POST", "/extensions", {"number": number, "name": number})
            assert page.status == 201, made
            passwords[number] = made["password"]  # generated on the box
        return token, passwords

    token, passwords = lan.run(accounts, timeout=300)

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


def test_a_factory_reset_from_the_page_makes_the_box_new(booted: tuple[Lan, Vm, float]) -> None:
    lan, vm, _ready = booted

    def reset() -> str:
        page = Page()
        page.submit("/login", {"username": ADMIN[0], "password": ADMIN[1]})
        assert page.status == 302, "the admin could not log in"
        # (The wizard is not done: every page but its own sends the admin there, so the forms'
        # token comes from its first page.)
        shown = page.submit("/setup/office", {"reset-confirm": "reset"}, "/system/factory-reset")
        assert page.status == 400 and "RESET" in shown  # the word in capitals, or nothing
        shown = page.submit("/setup/office", {"token-name": "before", "token-role": "viewer"},
                            "/system/tokens")  # fmt: skip
        found = re.search(r"pbx_[A-Za-z0-9_\-]{16,}", shown)
        assert found, "no API token shown"
        token = found[0]
        page.submit("/setup/office", {"reset-confirm": "RESET"}, "/system/factory-reset")
        assert page.status == 302
        return token

    token = lan.run(reset, timeout=300)
    restarted = time.monotonic()

    def back() -> tuple[int, int]:
        deadline = restarted + BOOT_TIMEOUT
        while sip_options(2.0) is not None:  # the box goes down first...
            assert time.monotonic() < deadline, "the box did not restart"
            time.sleep(0.5)
        vm.started_at = time.monotonic()
        wait_until_up(vm, BOOT_TIMEOUT)  # ... then comes back
        page = Page()
        page.request("GET", "/")
        first = page.status
        page.api(token, "GET", "/extensions")
        return first, page.status

    first, api = lan.run(back, timeout=2 * BOOT_TIMEOUT + 60)
    assert first == 302 and api == 401, (first, api)

    def after() -> list[str]:
        page, token = first_boot()  # the first-boot form again: no account survived
        return [ext["number"] for ext in page.api(token, "GET", "/extensions")["extensions"]]

    assert lan.run(after, timeout=300) == []
    vm.alive()
