"""SIP transports (RFC 3261 §18): UDP datagrams and TCP streams framed by Content-Length.

Transports only move bytes. Whatever arrives is handed to a `Receiver` with the transport's
name and the peer's address; the endpoint decides what it means.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Protocol, cast

from appliance.sip.message import MAX_MESSAGE_SIZE

logger = logging.getLogger(__name__)

MAX_HEADER_SIZE = 16_384
"""Largest header section accepted on a stream before the connection is dropped."""

TCP_IDLE_TIMEOUT = 3_900.0
"""A TCP connection silent for longer than the longest registration is closed."""

TCP_CONNECT_TIMEOUT = 10.0

UDP_RECEIVE_BUFFER = 4 * 1024 * 1024

Address = tuple[str, int]


class Receiver(Protocol):
    def __call__(
        self, transport: str, data: bytes, addr: Address, error: tuple[int, str] | None = None
    ) -> None:
        """Take one message; `error` is set when the stream could not frame it (data is the
        header section then), so that the receiver answers it with that status and reason."""


class UdpTransport(asyncio.DatagramProtocol):
    name = "UDP"

    def __init__(self, receive: Receiver) -> None:
        self._receive = receive
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)  # uvloop's is no subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Room for a burst of requests while the loop is busy (capped by net.core.rmem_max).
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
            except OSError as exc:
                logger.info("could not enlarge the UDP receive buffer: %s", exc)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._receive("UDP", data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        logger.debug("UDP error: %s", exc)

    def send(self, data: bytes, addr: Address) -> None:
        if self._transport is not None:
            self._transport.sendto(data, addr)

    @property
    def local(self) -> Address:
        assert self._transport is not None
        host, port = self._transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class TcpConnection(asyncio.Protocol):
    """One TCP connection: frames messages by their Content-Length (§18.3)."""

    def __init__(self, owner: TcpTransport) -> None:
        self._owner = owner
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self.peer: Address = ("", 0)
        self._idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        host, port = transport.get_extra_info("peername")[:2]
        self.peer = (str(host), int(port))
        self._owner.connections[self.peer] = self
        self._touch()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._owner.connections.get(self.peer) is self:
            del self._owner.connections[self.peer]
        if self._idle is not None:
            self._idle.cancel()

    def _touch(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        loop = asyncio.get_running_loop()
        self._idle = loop.call_later(self._owner.idle_timeout, self.close)

    def data_received(self, data: bytes) -> None:
        self._touch()
        buf = self._buffer
        buf += data
        while buf:
            # RFC 5626 §3.5.1 keep-alive: a double CRLF ping gets a single CRLF pong.
            if buf.startswith(b"\r\n\r\n"):
                del buf[:4]
                self.write(b"\r\n")
                continue
            if buf.startswith(b"\r\n"):
                if len(buf) < 4 and b"\r\n\r\n".startswith(bytes(buf)):
                    return
                del buf[:2]
                continue
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEADER_SIZE:
                    logger.info("TCP %s: header section too large; closing", self.peer)
                    self.close()
                return
            length = _content_length(bytes(buf[:end]))
            if length is None or end + 4 + length > MAX_MESSAGE_SIZE:
                # Unframeable: hand the head over to be answered, then drop the connection.
                error = (
                    (400, "Bad Request (missing Content-Length on a stream)")
                    if length is None
                    else (513, "Message Too Large")
                )
                self._owner.receive("TCP", bytes(buf[: end + 4]), self.peer, error)
                self.close()
                return
            total = end + 4 + length
            if len(buf) < total:
                return
            message = bytes(buf[:total])
            del buf[:total]
            self._owner.receive("TCP", message, self.peer)

    def write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def _content_length(head: bytes) -> int | None:
    """Content-Length from a header section; None if absent or unreadable (§18.3: mandatory)."""
    for line in head.split(b"\r\n")[1:]:
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() in (b"content-length", b"l"):
            value = value.strip()
            return int(value) if value.isdigit() and len(value) <= 10 else None
    return None


class TcpTransport:
    name = "TCP"

    def __init__(self, receive: Receiver, idle_timeout: float = TCP_IDLE_TIMEOUT) -> None:
        self.receive = receive
        self.idle_timeout = idle_timeout
        self.connections: dict[Address, TcpConnection] = {}
        self._server: asyncio.Server | None = None
        self._connecting: dict[Address, list[bytes]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def listen(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        factory: Callable[[], TcpConnection] = lambda: TcpConnection(self)  # noqa: E731
        self._server = await loop.create_server(factory, host, port, reuse_address=True)

    @property
    def local(self) -> Address:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    def send(self, data: bytes, addr: Address) -> None:
        """Send on the connection to `addr`, opening one if there is none (§18.1.1).

        Responses find the connection their request came on (§18.2.2). A message for an address
        that cannot be reached is dropped (and logged): its client transaction times out.
        """
        conn = self.connections.get(addr)
        if conn is not None:
            conn.write(data)
            return
        queued = self._connecting.get(addr)
        if queued is None:
            queued = self._connecting[addr] = []
            task = asyncio.get_running_loop().create_task(self._connect(addr))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        queued.append(data)

    async def _connect(self, addr: Address) -> None:
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: TcpConnection(self), addr[0], addr[1]),
                TCP_CONNECT_TIMEOUT,
            )
        except (OSError, TimeoutError) as exc:
            dropped = self._connecting.pop(addr, [])
            logger.info("TCP to %s:%s failed (%s); %d messages dropped", *addr, exc, len(dropped))
            return
        queued = self._connecting.pop(addr, [])
        conn = self.connections.get(addr)
        if conn is None:  # closed at once by the peer
            logger.info("TCP to %s:%s closed; %d messages dropped", *addr, len(queued))
            return
        for data in queued:
            conn.write(data)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for conn in list(self.connections.values()):
            conn.close()
