"""`pbx web --https`: a self-signed certificate made on first start (and kept), valid for the
loopback names, cookies marked Secure, HSTS, and the login lock-out still counted per client
address behind the TLS front."""

from __future__ import annotations

import http.client
import socket
from pathlib import Path

import pytest

from tests.conftest import WebProcess
from tests.web.conftest import ADMIN, prepare
from tests.web.session import HttpSession


@pytest.fixture
def web(web_factory: type[WebProcess], data: Path) -> WebProcess:
    """`pbx web --https` over an installed box (admin and viewer), started."""
    prepare(data)
    web = web_factory(data=data, https=True)
    web.start()
    return web


def test_https_serves_with_its_own_certificate_and_secure_cookies(
    web: WebProcess, web_factory: type[WebProcess], data: Path
) -> None:
    assert web.url.startswith("https://127.0.0.1:")
    cert, key = data / "tls" / "cert.pem", data / "tls" / "key.pem"
    assert key.stat().st_mode & 0o077 == 0, "the private key must be readable by its owner only"

    client = HttpSession(web.url, cert)
    client.login(*ADMIN)
    assert client.status == 302
    set_cookie = client.headers["set-cookie"]
    assert "Secure" in set_cookie and "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie
    assert client.headers["strict-transport-security"].startswith("max-age=")
    client.request("GET", "/")
    assert client.status == 200

    first = cert.read_bytes()
    web.stop()
    again = web_factory(data=data, https=True)
    again.start()
    assert cert.read_bytes() == first, (
        "a restart must keep the certificate phones and browsers know"
    )


def test_the_lock_out_behind_tls_counts_each_client_address(web: WebProcess, data: Path) -> None:
    cafile = data / "tls" / "cert.pem"

    guesser = HttpSession(web.url, cafile, source="127.0.0.5")
    for attempt in range(5):
        page = guesser.login("admin", f"guess-{attempt}")
    assert guesser.status == 429 and "Too many failed logins from 127.0.0.5" in page
    guesser.login(*ADMIN)
    assert guesser.status == 429, "the right password must wait out the lock-out too"

    office = HttpSession(web.url, cafile, source="127.0.0.6")  # another computer: not locked
    office.login(*ADMIN)
    assert office.status == 302


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_idle_connections_cannot_exhaust_the_service(web: WebProcess, data: Path) -> None:
    """Connections that never send a byte cost a socket each, no TLS buffer; the page stays
    reachable while they are open."""
    assert web.proc is not None
    port = int(web.url.rsplit(":", 1)[1])
    office = HttpSession(web.url, data / "tls" / "cert.pem")
    office.request("GET", "/login")
    before = rss_mib(web.proc.pid)
    idle = []
    try:
        for _ in range(300):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        office.login(*ADMIN)  # served while 300 connections wait
        assert office.status == 302
        grown = rss_mib(web.proc.pid) - before
    finally:
        for sock in idle:
            sock.close()
    assert grown < 10, f"300 idle connections cost {grown:.1f} MiB"


def test_plain_http_on_the_https_port_is_sent_to_https(web: WebProcess) -> None:
    port = int(web.url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/calls?page=2", headers={"Host": f"pbx.local:{port}"})
        response = conn.getresponse()
    finally:
        conn.close()
    assert response.status == 301
    assert response.getheader("Location") == f"https://pbx.local:{port}/calls?page=2"
