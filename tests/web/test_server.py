"""The `pbx web` process itself: it restarts in place from the System page, and it refuses to
start on an address that is taken, saying so."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.conftest import WebProcess
from tests.web.conftest import ADMIN, prepare
from tests.web.session import HttpSession


def test_the_web_service_restarts_in_place_from_the_system_page(
    web_factory: type[WebProcess], tmp_path: Path
) -> None:
    data = tmp_path / "var"
    prepare(data)
    with socket.socket() as probe:  # a fixed port: the restart runs the same command line
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    web = web_factory(data=data, listen=f"127.0.0.1:{port}")
    web.start()
    assert web.proc is not None
    browser = HttpSession(web.url)
    browser.login(*ADMIN)
    assert browser.status == 302
    mark = web.lines.mark()
    browser.submit("/system", {"restart-service": "web"}, action="/system/restart")
    assert browser.status == 302
    line, _, _ = web.lines.wait(lambda text: text.startswith("pbx-web: http"), 30, since=mark)
    assert line.rstrip("/").endswith(f":{port}")
    assert web.proc.poll() is None  # the same process, executed again
    browser.request("GET", "/system")
    assert browser.status == 200, "the session must survive the restart"


def test_a_taken_address_is_refused_with_a_clear_message(
    web_factory: type[WebProcess], tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        web = web_factory(data=tmp_path / "var", listen=f"127.0.0.1:{port}")
        web.spawn("web", "--listen", web.listen)
        assert web.proc is not None
        assert web.proc.wait(timeout=30) == 1
        web.lines.wait(lambda text: "cannot listen on" in text, 10)
