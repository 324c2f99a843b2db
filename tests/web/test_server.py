"""The `pbx web` process itself: it restarts in place from the System page, telling systemd
(READY=1, the watchdog pinged while the page answers, RELOADING=1 for the restart, STOPPING=1),
and it refuses to start on an address that is taken, saying so. systemd's notification socket
is played by a socket of the test's."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.conftest import WebProcess
from tests.notify import NotifySocket
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
    notify = NotifySocket(tmp_path / "notify.sock")
    web = web_factory(data=data, listen=f"127.0.0.1:{port}", env=notify.env)
    web.start()
    assert web.proc is not None
    assert [notify.recv() for _ in range(3)] == ["READY=1", "WATCHDOG=1", "WATCHDOG=1"]
    browser = HttpSession(web.url)
    browser.login(*ADMIN)
    assert browser.status == 302
    mark = web.lines.mark()
    browser.submit("/system", {"restart-service": "web"}, action="/system/restart")
    assert browser.status == 302
    line, _, _ = web.lines.wait(lambda text: text.startswith("pbx-web: http"), 30, since=mark)
    assert line.rstrip("/").endswith(f":{port}")
    assert web.proc.poll() is None  # the same process, executed again
    assert notify.next_state().startswith("RELOADING=1\nMONOTONIC_USEC=")
    assert notify.next_state() == "READY=1"
    assert notify.recv() == "WATCHDOG=1"  # the restarted page is watched too
    browser.request("GET", "/system")
    assert browser.status == 200, "the session must survive the restart"
    web.stop()
    assert notify.next_state() == "STOPPING=1"
    notify.close()


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
