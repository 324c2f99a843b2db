"""The appliance image booted under QEMU (TCG) on a LAN of the test's own.

The LAN is a network namespace (`tests.interop.netns`) holding a tap device at 10.0.2.1/24 and
Debian's `dnsmasq` as its DHCP server, which hands the box 10.0.2.15: the image's own network
configuration (DHCP on the first Ethernet port) is what gives it its address. QEMU runs inside
the namespace with the tap as the box's network card, UEFI firmware (Debian's OVMF) and the
image as its virtio disk with `snapshot=on` (the file is never written). Nothing leaves the
namespace; everything is stopped by PID.

Inside the namespace a test runs its peers (sipp) and talks to the box (SIP, HTTPS) from a
thread that entered it: `Lan.run` (every socket and child process made there is inside).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tests.interop.netns import NetNamespace
from tests.web.conftest import csrf_token

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build" / "image"
BUILD_TIMEOUT = 1800.0
"""A build with nothing cached: about 3 minutes here (90 s with the packages cached)."""
BOOT_TIMEOUT = 420.0
"""Seconds from power-on to SIP answering: about 60-90 s under TCG here, firmware included."""


def built_image() -> Path:
    """The image to boot: `PBX_IMAGE`, or `build/image`'s, built now unless it is current."""
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


LAN_HOST = "10.0.2.1"
BOX = "10.0.2.15"
MAC = "52:54:00:12:34:56"
OVMF = Path("/usr/share/ovmf/OVMF.fd")


@dataclass
class Lan:
    """The namespace with its tap device and DHCP server."""

    workdir: Path
    ns: NetNamespace = field(default_factory=lambda: NetNamespace("10.0.3.1/24", veth=("w0", "w1")))
    dhcp: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.ns.start()
        for argv in (
            ["ip", "tuntap", "add", "dev", "tap0", "mode", "tap"],
            ["ip", "addr", "add", f"{LAN_HOST}/24", "dev", "tap0"],
            ["ip", "link", "set", "tap0", "up"],
        ):
            self.ns.run(argv)
        self.dhcp = self.ns.popen(
            ["dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--port=0", "--interface=tap0",
             "--bind-interfaces", f"--dhcp-range={BOX},{BOX},255.255.255.0,1h",
             f"--dhcp-host={MAC},{BOX}", f"--dhcp-leasefile={self.workdir / 'leases'}",
             "--log-dhcp", "--user=root", "--group=root"],
            stdout=subprocess.DEVNULL, stderr=(self.workdir / "dnsmasq.log").open("wb"),
        )  # fmt: skip

    def stop(self) -> None:
        if self.dhcp is not None and self.dhcp.poll() is None:
            self.dhcp.terminate()
            self.dhcp.wait(timeout=10)
        self.ns.stop()

    def run(self, work: Callable[[], T], timeout: float = 600) -> T:
        """`work()` inside the LAN (its sockets and child processes too); its result."""
        return self.ns.call(work, timeout)


@dataclass
class Vm:
    """QEMU booting `image` on the LAN; its serial console in `workdir/console.log`."""

    image: Path
    lan: Lan
    workdir: Path
    memory_mb: int = 1024
    snapshot: bool = True
    """Writes go to a temporary overlay (the image file is never written); False: to `image`,
    which then holds what the box wrote when it is stopped (a power cut, `stop`)."""
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0

    @property
    def console(self) -> str:
        path = self.workdir / "console.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> None:
        self.started_at = time.monotonic()
        drive = f"file={self.image},format=raw,if=virtio" + (
            ",snapshot=on" if self.snapshot else ""
        )
        self.proc = self.lan.ns.popen(
            ["qemu-system-x86_64", "-accel", "tcg", "-smp", "2", "-m", str(self.memory_mb),
             "-bios", str(OVMF), "-display", "none", "-monitor", "none",
             "-serial", f"file:{self.workdir / 'console.log'}", "-drive", drive,
             "-netdev", "tap,id=lan,ifname=tap0,script=no,downscript=no",
             "-device", f"virtio-net-pci,netdev=lan,mac={MAC}"],
            stdout=subprocess.DEVNULL, stderr=(self.workdir / "qemu.log").open("wb"),
        )  # fmt: skip

    def stop(self) -> None:
        """Cut the power: QEMU is killed (SIGKILL) whatever the box is doing."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def alive(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, (
            f"QEMU exited ({self.proc and self.proc.returncode}); console:\n{self.console[-3000:]}"
        )


def wait_until_up(vm: Vm, timeout: float) -> tuple[float, float]:
    """Seconds from power-on until SIP answers, then until the page answers (call from inside
    the LAN; polled: the box has no other signal)."""

    def wait_for(what: str, answered: Callable[[], bool]) -> float:
        deadline = vm.started_at + timeout
        while time.monotonic() < deadline:
            vm.alive()
            if answered():
                return time.monotonic() - vm.started_at
            time.sleep(0.5)
        raise AssertionError(f"no {what} in {timeout} s; console:\n{vm.console[-4000:]}")

    sip = wait_for("SIP answer", lambda: sip_options(2.0) is not None)
    return sip, wait_for("page", Page().answers)


def first_boot(admin_password: str = "Adm1n-Secret!") -> tuple[Page, str]:
    """The setup page's first-boot form (the admin account), then an API token (call from
    inside the LAN): the logged-in page and the token."""
    page = Page()
    page.request("GET", "/")
    assert page.status == 302  # no account yet: the first visitor makes the admin
    page.submit("/setup/account", {"username": "admin", "password": admin_password,
                                   "confirm": admin_password})  # fmt: skip
    assert page.status == 302, "the first-boot account was not made"
    shown = page.submit("/setup/office", {"token-name": "image test", "token-role": "admin"},
                        "/system/tokens")  # fmt: skip
    found = re.search(r"pbx_[A-Za-z0-9_\-]{16,}", shown)
    assert page.status == 200 and found, f"no API token shown ({page.status})"
    return page, found[0]


def sip_options(timeout: float = 1.0) -> str | None:
    """One OPTIONS to the box's SIP port (call from inside the LAN); its status line, or None
    when nothing answered within `timeout`."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LAN_HOST, 0))
        port = sock.getsockname()[1]
        tag = secrets.token_hex(6)
        sock.sendto(
            (f"OPTIONS sip:{BOX} SIP/2.0\r\n"
             f"Via: SIP/2.0/UDP {LAN_HOST}:{port};branch=z9hG4bK{tag};rport\r\n"
             f"From: <sip:probe@{LAN_HOST}>;tag={tag}\r\nTo: <sip:{BOX}>\r\n"
             f"Call-ID: {tag}@{LAN_HOST}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
             "Content-Length: 0\r\n\r\n").encode(),
            (BOX, 5060),
        )  # fmt: skip
        sock.settimeout(timeout)
        try:
            data = sock.recv(4096)
        except TimeoutError:
            return None
        return data.split(b"\r\n", 1)[0].decode()


class Page:
    """The setup page over HTTPS as a browser uses it (call from inside the LAN): the session
    cookie kept, forms posted with their CSRF token and a same-origin Referer. The box's
    certificate is its own self-signed one, made on its first start: not checked here (the
    HTTPS tests check it)."""

    def __init__(self, host: str = BOX, port: int = 443) -> None:
        self.host, self.port = host, port
        self.cookie = ""
        self.status = 0
        self._context = ssl.create_default_context()
        self._context.check_hostname = False
        self._context.verify_mode = ssl.CERT_NONE

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> str:  # fmt: skip
        conn = http.client.HTTPSConnection(self.host, self.port, context=self._context,
                                           timeout=60)  # fmt: skip
        sent = {"Cookie": self.cookie} if self.cookie else {}
        sent.update(headers or {})
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            text = response.read().decode()
        finally:
            conn.close()
        self.status = response.status
        cookie = response.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        return text

    def answers(self) -> bool:
        """Whether the page answers at all (any HTTP status) now."""
        try:
            self.request("GET", "/")
        except OSError:
            return False
        return True

    def submit(self, page: str, form: dict[str, str], action: str | None = None) -> str:
        token = csrf_token(self.request("GET", page))
        body = urllib.parse.urlencode({"csrf_token": token, **form}).encode()
        return self.request("POST", action or page, body, {
            "Content-Type": "application/x-www-form-urlencoded",
            "Referer": f"https://{self.host}{page}",
        })  # fmt: skip

    def api(self, token: str, method: str, path: str, payload: Any = None) -> Any:
        body = json.dumps(payload).encode() if payload is not None else None
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        return json.loads(self.request(method, f"/api/v1{path}", body, headers))
