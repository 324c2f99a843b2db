"""A browser's part in a form exchange, for tests against a real `pbx web` without Chromium:
HTTP or HTTPS from a chosen loopback address, the session cookie kept, forms posted with the
page they came from as Referer (Flask-WTF checks it over HTTPS, as browsers send it)."""

from __future__ import annotations

import http.client
import ssl
import urllib.parse
from pathlib import Path

from tests.web.conftest import csrf_token


class HttpSession:
    def __init__(self, url: str, cafile: Path | None = None, source: str = "127.0.0.1") -> None:
        scheme, _, hostport = url.partition("://")
        host, port = hostport.rstrip("/").rsplit(":", 1)
        self.scheme, self.host, self.port = scheme, host, int(port)
        self.cafile, self.source = cafile, source
        self.cookie = ""
        self.status = 0
        self.headers: dict[str, str] = {}

    def _connection(self) -> http.client.HTTPConnection:
        if self.scheme == "https":
            context = ssl.create_default_context(cafile=str(self.cafile))  # checks the name
            return http.client.HTTPSConnection(
                "localhost", self.port, context=context, source_address=(self.source, 0),
                timeout=10,
            )  # fmt: skip
        return http.client.HTTPConnection(
            self.host, self.port, source_address=(self.source, 0), timeout=10
        )

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> str:
        headers = {"Cookie": self.cookie} if self.cookie else {}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = f"{self.scheme}://localhost:{self.port}{path}"
        conn = self._connection()
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read().decode()
        finally:
            conn.close()
        self.status = response.status
        self.headers = {k.lower(): v for k, v in response.getheaders()}
        if "set-cookie" in self.headers:
            self.cookie = self.headers["set-cookie"].split(";", 1)[0]
        return text

    def submit(self, page: str, form: dict[str, str], action: str | None = None) -> str:
        """Post `form` to `action` (default: `page`) with the CSRF token of `page`."""
        token = csrf_token(self.request("GET", page))
        return self.request("POST", action or page, {"csrf_token": token, **form})

    def login(self, username: str, password: str) -> str:
        return self.submit("/login", {"username": username, "password": password})
