"""`pbx web --https`: a self-signed certificate made on first start (and kept), valid for the
loopback names, cookies marked Secure, HSTS, and the login lock-out still counted per client
address behind the TLS front."""

from __future__ import annotations

import http.client
import ssl
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import WebProcess
from tests.web.conftest import ADMIN, csrf_token, prepare


@dataclass
class TlsClient:
    """HTTPS from a chosen loopback source address, keeping the session cookie."""

    port: int
    cafile: Path
    source: str = "127.0.0.1"
    cookie: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> str:
        context = ssl.create_default_context(cafile=str(self.cafile))  # verifies the name too
        conn = http.client.HTTPSConnection(
            "localhost", self.port, context=context, source_address=(self.source, 0), timeout=10
        )
        body = urllib.parse.urlencode(form) if form is not None else None
        headers = {"Cookie": self.cookie} if self.cookie else {}
        if body is not None:  # as a browser posts a form: with the page it came from
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = f"https://localhost:{self.port}{path}"
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read().decode()
        finally:
            conn.close()
        self.headers = {k.lower(): v for k, v in response.getheaders()}
        if "set-cookie" in self.headers:
            self.cookie = self.headers["set-cookie"].split(";", 1)[0]
        self.status = response.status
        return text

    def login(self, username: str, password: str) -> str:
        token = csrf_token(self.request("GET", "/login"))
        return self.request(
            "POST", "/login", {"csrf_token": token, "username": username, "password": password}
        )


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

    client = TlsClient(int(web.url.rsplit(":", 1)[1]), cert)
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
    port, cafile = int(web.url.rsplit(":", 1)[1]), data / "tls" / "cert.pem"

    guesser = TlsClient(port, cafile, source="127.0.0.5")
    for attempt in range(5):
        page = guesser.login("admin", f"guess-{attempt}")
    assert guesser.status == 429 and "Too many failed logins from 127.0.0.5" in page
    guesser.login(*ADMIN)
    assert guesser.status == 429, "the right password must wait out the lock-out too"

    office = TlsClient(port, cafile, source="127.0.0.6")  # another computer: not locked
    office.login(*ADMIN)
    assert office.status == 302
