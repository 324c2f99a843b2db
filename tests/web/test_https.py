"""`pbx web --https`: a self-signed certificate made on first start (and kept), valid for the
loopback names, cookies marked Secure, HSTS, and the login lock-out still counted per client
address behind the TLS front."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import WebProcess
from tests.web.conftest import ADMIN, prepare
from tests.web.session import HttpSession


def test_https_serves_with_its_own_certificate_and_secure_cookies(
    web_factory: type[WebProcess], tmp_path: Path
) -> None:
    data = tmp_path / "var"
    prepare(data)
    web = web_factory(data=data, https=True)
    web.start()
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


def test_the_lock_out_behind_tls_counts_each_client_address(
    web_factory: type[WebProcess], tmp_path: Path
) -> None:
    data = tmp_path / "var"
    prepare(data)
    web = web_factory(data=data, https=True)
    web.start()
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
