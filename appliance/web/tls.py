"""Optional HTTPS for the setup page: a self-signed certificate made on first start, and a TLS
front that hands each decrypted connection to waitress (which speaks only plain HTTP).

The front runs an asyncio loop in a thread of its own: it accepts TLS on the public address and
pipes each connection to waitress on a loopback port. Waitress then sees every client as
127.0.0.1, so the front records which loopback port carries which client (`peers`) and
`RealPeer` puts the client's address back into the WSGI environment: login lock-out stays per
source."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import ssl
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from appliance import certs
from appliance.certs import CertificateError

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

logger = logging.getLogger(__name__)

CHUNK = 65_536
MAX_CLIENTS = 32
"""TLS connections held at once (a browser opens about six). Each costs a 256 KiB buffer."""
MAX_WAITING = 512
"""Accepted connections that have sent nothing yet (a socket each, no buffer)."""
HANDSHAKE_TIMEOUT = 10.0
TLS_HANDSHAKE = b"\x16"
"""The first byte of a TLS record carrying a handshake (a ClientHello)."""
HOST_RE = re.compile(
    r"[A-Za-z0-9.\-]{1,253}(:[0-9]{1,5})?\Z|\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?\Z"
)

Peer = tuple[str, int]


TlsError = CertificateError
"""The certificate cannot be made or loaded (the box's one certificate, `appliance.certs`)."""


def certificate(data_dir: Path, names: Iterable[str] = ()) -> tuple[Path, Path]:
    """The box's certificate and key (DATA/tls), made the first time: see `appliance.certs`."""
    return certs.certificate(data_dir, names)


class TlsFront:
    """Accept TLS on (host, port); pipe each connection to the plain-HTTP `backend` port.

    A connection costs only its socket until its first byte arrives (within HANDSHAKE_TIMEOUT):
    a TLS record starts the handshake, anything else is taken for plain HTTP and redirected to
    https. TLS state (a 256 KiB buffer each) exists for at most MAX_CLIENTS connections at once,
    so idle or slow connections cannot exhaust the service's memory."""

    def __init__(self, cert: Path, key: Path, backend: Peer) -> None:
        self.context = certs.server_context(cert, key)
        self.backend = backend
        self.peers: dict[Peer, Peer] = {}
        """(address, port) of a connection to waitress -> the client it carries."""
        self.loop = asyncio.new_event_loop()
        self.bound: Peer = ("", 0)
        self.waiting = 0
        self.clients = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def listen(self, host: str, port: int) -> None:
        """Bind now (errors are raised here), serve from a daemon thread."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(64)
        listener.setblocking(False)
        self.bound = listener.getsockname()[:2]
        self.loop.create_task(self._accept(listener))
        threading.Thread(target=self.loop.run_forever, name="tls-front", daemon=True).start()

    async def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, address = await self.loop.sock_accept(listener)
            except OSError as exc:  # out of descriptors, say: wait, do not spin
                logger.warning("accept failed: %s", exc)
                await asyncio.sleep(0.5)
                continue
            if self.waiting >= MAX_WAITING:
                conn.close()
                continue
            task = self.loop.create_task(self._client(conn, (address[0], address[1])))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _first_byte(self, conn: socket.socket) -> bytes:
        """The connection's first byte, peeked (left for TLS to read); b"" when none came."""
        ready: asyncio.Future[None] = self.loop.create_future()

        def readable() -> None:
            if not ready.done():
                ready.set_result(None)

        self.loop.add_reader(conn.fileno(), readable)
        self.waiting += 1
        try:
            await asyncio.wait_for(ready, HANDSHAKE_TIMEOUT)
            return conn.recv(1, socket.MSG_PEEK)
        except (TimeoutError, OSError):
            return b""
        finally:
            self.loop.remove_reader(conn.fileno())
            self.waiting -= 1

    async def _client(self, conn: socket.socket, client: Peer) -> None:
        conn.setblocking(False)
        first = await self._first_byte(conn)
        if first != TLS_HANDSHAKE:
            if first:
                await self._redirect(conn)
            conn.close()
            return
        if self.clients >= MAX_CLIENTS:
            conn.close()
            return
        self.clients += 1
        try:
            await self._relay(conn, client)
        finally:
            self.clients -= 1

    async def _relay(self, conn: socket.socket, client: Peer) -> None:
        reader = asyncio.StreamReader(limit=2 * CHUNK)
        protocol = asyncio.StreamReaderProtocol(reader)
        try:
            transport, _ = await self.loop.connect_accepted_socket(
                lambda: protocol, conn, ssl=self.context,
                ssl_handshake_timeout=HANDSHAKE_TIMEOUT,
            )  # fmt: skip
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            logger.debug("TLS handshake with %s failed: %s", client, exc)
            conn.close()
            return
        writer = asyncio.StreamWriter(transport, protocol, reader, self.loop)
        try:
            back_reader, back_writer = await asyncio.open_connection(*self.backend)
        except OSError as exc:
            logger.warning("web backend unreachable: %s", exc)
            writer.close()
            return
        local = back_writer.get_extra_info("sockname")[:2]
        self.peers[local] = client
        try:
            await asyncio.gather(self._pipe(reader, back_writer), self._pipe(back_reader, writer))
        finally:
            self.peers.pop(local, None)
            back_writer.close()
            writer.close()

    async def _redirect(self, conn: socket.socket) -> None:
        """Plain HTTP on the HTTPS port (a typed http://): point the browser at https."""
        try:
            head = await asyncio.wait_for(self.loop.sock_recv(conn, 8192), HANDSHAKE_TIMEOUT)
        except (TimeoutError, OSError):
            return
        lines = head.decode("latin-1").split("\r\n")
        path = lines[0].split(" ")[1] if lines[0].count(" ") == 2 else "/"
        host = next((line[5:].strip() for line in lines if line.lower().startswith("host:")), "")
        if not HOST_RE.match(host) or not path.startswith("/") or not path.isprintable():
            host, path = f"{self.bound[0]}:{self.bound[1]}", "/"
        answer = (
            f"HTTP/1.1 301 Moved Permanently\r\nLocation: https://{host}{path}\r\n"
            "Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(self.loop.sock_sendall(conn, answer.encode()), 5)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy until end of stream, then pass the end on: a half-close toward waitress (so
        the answer to a request sent just before it still comes back), a close toward TLS."""
        try:
            while data := await reader.read(CHUNK):
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
                return
        except (OSError, ssl.SSLError):
            pass  # the other side went away: close ours
        writer.close()


class RealPeer:
    """WSGI middleware: REMOTE_ADDR/REMOTE_PORT of the TLS client, not of the TLS front."""

    def __init__(self, app: WSGIApplication, peers: dict[Peer, Peer]) -> None:
        self.app, self.peers = app, peers

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        local = (str(environ.get("REMOTE_ADDR")), int(environ.get("REMOTE_PORT") or 0))
        peer = self.peers.get(local)
        if peer is None:  # not through the front: refuse, the plain port is internal
            start_response("403 Forbidden", [("Content-Type", "text/plain")])
            return [b"use HTTPS\n"]
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = peer[0], str(peer[1])
        return self.app(environ, start_response)


def backend_socket() -> socket.socket:
    """The plain-HTTP socket waitress serves behind the front: loopback, a free port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock
