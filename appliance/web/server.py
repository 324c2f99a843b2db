"""Run the setup page under waitress (a production WSGI server), as the `pbx-web` service."""

from __future__ import annotations

import ctypes
import http.client
import logging
import mimetypes
import os
import signal
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from waitress.server import BaseWSGIServer, create_server

from appliance.service import sd_notify
from appliance.web import create_app

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

logger = logging.getLogger(__name__)

THREADS = 4
"""Requests served at once: a technician or two, the dashboard's refresh and a script."""


M_ARENA_MAX = -8  # glibc mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 128 << 10
TRIM_INTERVAL = 5.0


class MallocTrimmer:
    """Keeps an idle pbx-web small (its RSS budget is 35 MiB) with glibc's allocator:

    - one malloc arena for all threads, not one per waitress thread, each holding freed memory;
    - blocks of 128 KiB and more (TLS buffers, big pages) always mapped on their own, so their
      memory goes back when they are freed (glibc would otherwise raise this threshold after
      the first such free and keep later ones in the heap);
    - `malloc_trim(0)` once requests have stopped for TRIM_INTERVAL, giving freed pages back
      (a page render or a password hash leaves a few MiB free in the heap otherwise).
    A no-op where the C library is not glibc."""

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(None)
        self._busy = threading.Event()
        self.available = hasattr(self._libc, "malloc_trim")
        if self.available:
            self._libc.mallopt(M_ARENA_MAX, 1)
            self._libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)

    def wrap(self, app: WSGIApplication) -> WSGIApplication:
        def wsgi(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            self._busy.set()
            return app(environ, start_response)

        return wsgi

    def start(self) -> None:
        if self.available:
            self._libc.malloc_trim(0)  # what start-up freed (migrations, imports)
            threading.Thread(target=self._run, name="malloc-trim", daemon=True).start()

    def _run(self) -> None:
        while True:
            self._busy.wait()
            self._busy.clear()
            while self._busy.wait(TRIM_INTERVAL):  # wait for a quiet spell
                self._busy.clear()
            self._libc.malloc_trim(0)


WATCHDOG_PATH = "/static/style.css"
"""What the watchdog asks the page for: served by a waitress worker through Flask."""


def start_watchdog(address: tuple[str, int]) -> bool:
    """Ping systemd's watchdog (WATCHDOG_USEC) while the page answers: twice per period a
    request through waitress and Flask at `address` (waitress' own socket); a stuck server or
    worker pool stops the pings and systemd restarts the service. False when no watchdog is
    asked for."""
    usec = int(os.environ.get("WATCHDOG_USEC", "0") or 0)
    if usec <= 0:
        return False
    interval = usec / 2e6
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(address[0], address[0])

    def run() -> None:
        while True:
            try:
                conn = http.client.HTTPConnection(host, address[1], timeout=max(interval, 1.0))
                try:
                    conn.request("HEAD", WATCHDOG_PATH)
                    # Any answer but a server error: before the first account exists every
                    # page, this one included, redirects to the first-boot form.
                    answered = conn.getresponse().status < 500
                finally:
                    conn.close()
            except OSError as exc:
                logger.warning("the page did not answer its watchdog: %s", exc)
                answered = False
            if answered:
                sd_notify("WATCHDOG=1")
            time.sleep(interval)

    threading.Thread(target=run, name="watchdog", daemon=True).start()
    return True


class ServeError(Exception):
    """The page cannot be served (address in use, no certificate). `str()` says why."""


def serve(data_dir: Path, host: str, port: int, https: bool = False) -> None:
    """Serve until SIGTERM/SIGINT. Prints `pbx-web: http(s)://HOST:PORT/` once listening.

    With `https`, a TLS front (appliance.web.tls) listens on HOST:PORT with the box's
    self-signed certificate (made now if there is none) and waitress serves behind it."""
    trimmer = MallocTrimmer()
    mimetypes.init([])  # the built-in types cover every static file; /etc/mime.types: 0.4 MiB
    app: WSGIApplication = create_app({"DATA_DIR": data_dir, "HTTPS": https})
    options: dict[str, Any] = {
        "threads": THREADS,
        "ident": "pbx",
        "channel_timeout": 60,
        "connection_limit": 64,
    }
    try:
        if https:
            from appliance.web import tls

            try:
                cert, key = tls.certificate(data_dir, [host])
                backend = tls.backend_socket()
                front = tls.TlsFront(cert, key, backend.getsockname()[:2])
                front.listen(host, port)
            except tls.TlsError as exc:
                raise ServeError(str(exc)) from None
            app = tls.RealPeer(app, front.peers)
            server = create_server(
                trimmer.wrap(app), sockets=[backend], url_scheme="https", **options
            )
            bound_host, bound_port = front.bound
            served = backend.getsockname()[:2]
        else:
            server = create_server(trimmer.wrap(app), host=host, port=port, **options)
            assert isinstance(server, BaseWSGIServer) and server.socket is not None
            bound_host, bound_port = served = server.socket.getsockname()[:2]
    except OSError as exc:
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None

    def stop(_signum: int, _frame: FrameType | None) -> None:
        sd_notify("STOPPING=1")
        server.close()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    print(f"pbx-web: {'https' if https else 'http'}://{shown}:{bound_port}/", flush=True)
    trimmer.start()
    sd_notify("READY=1")
    start_watchdog(served)
    try:
        server.run()
    finally:
        print("pbx-web: stopped", flush=True)
