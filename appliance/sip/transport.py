"""SIP transports (RFC 3261 §18): UDP datagrams, and TCP and TLS streams framed by
Content-Length (TLS is the TCP code with a TLS layer: RFC 3261 §26.2, RFC 5630).

Transports only move bytes. Whatever arrives is handed to a `Receiver` with the transport's
name and the peer's address; the endpoint decides what it means. TCP connections from outside
are capped per source address and in all, and one that carries no SIP message soon is closed
(`TcpLimits`).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import math
import socket
import ssl
import struct
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast

from appliance.sip.message import MAX_MESSAGE_SIZE

if TYPE_CHECKING:
    from appliance.sip.guard import Guard

logger = logging.getLogger(__name__)

MAX_HEADER_SIZE = 16_384
"""Largest header section accepted on a stream before the connection is dropped."""

TCP_IDLE_TIMEOUT = 3_900.0
"""A TCP connection silent for longer than the longest registration is closed: a phone keeps
its registration's connection (its RFC 5626 flow) and may send nothing but keep-alives on it."""

TCP_FIRST_MESSAGE_TIMEOUT = 10.0
"""A connection from outside that has not carried a whole SIP message this long after it was
accepted is closed, whatever else it sent (bytes, keep-alives). Phones and providers send
their first request at once (the setup page's TLS front waits as long for a first byte)."""

TCP_MAX_PER_SOURCE = 100
"""Connections from outside that one source address may hold at once (a phone holds one or two, a
provider a few, a branch office behind one NAT address one or two per phone)."""

TCP_MAX_TOTAL = 500
"""Connections from outside that may be open at once (about 250 phones on TCP, more than a
small office has; each may buffer up to 32 KiB, 16 MiB in all)."""

TCP_CONNECT_TIMEOUT = 10.0

LISTEN_BACKLOG = 1024
"""Connections the kernel may hold for accept() (capped by net.core.somaxconn)."""
ACCEPT_BATCH = 64
"""Connections accepted per readiness event before the loop serves anything else."""
ACCEPT_RETRY_DELAY = 1.0
"""Pause before accepting again when the process is out of descriptors or memory."""
CAP_LOG_INTERVAL = 60.0
"""Refusals are logged at most this often per source address ..."""
CAP_LOG_SOURCES = 256
"""... for this many addresses at most; refusals from others share one line per interval."""

_RESET = struct.pack("ii", 1, 0)
"""SO_LINGER on, 0 s: close() sends a reset and leaves no TIME_WAIT behind."""

UDP_RECEIVE_BUFFER = 4 * 1024 * 1024

Address = tuple[str, int]


class Receiver(Protocol):
    def __call__(
        self, transport: str, data: bytes, addr: Address, error: tuple[int, str] | None = None
    ) -> bool:
        """Take one message; `error` is set when the stream could not frame it (data is the
        header section then), so that the receiver answers it with that status and reason.
        Return whether it was a SIP message the receiver could read: on a TCP connection from
        outside, the first one earns the connection the long idle timeout."""


@dataclass(frozen=True, slots=True)
class TcpLimits:
    """What TCP connections from outside may hold. Connections the box opens itself (to a
    trunk's provider) count toward no cap and are closed only when idle."""

    max_per_source: int = TCP_MAX_PER_SOURCE
    max_total: int = TCP_MAX_TOTAL
    first_message_timeout: float = TCP_FIRST_MESSAGE_TIMEOUT
    idle_timeout: float = TCP_IDLE_TIMEOUT


class UdpTransport(asyncio.DatagramProtocol):
    name = "UDP"
    guard: Guard | None = None
    """Drops a banned or rate-limited source's datagrams before anything reads them."""

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
        guard = self.guard
        if guard is not None and not guard.admit(addr[0]):
            return  # banned or over its rate: unanswered, unparsed
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
    """One TCP connection: frames messages by their Content-Length (§18.3).

    A connection from outside (`inbound`) is *proven* once it has carried a SIP message the
    receiver could read; until then the transport closes it `first_message_timeout` after it
    was accepted. A proven one, and one the box opened, is closed after `idle_timeout` of
    silence."""

    def __init__(
        self, owner: TcpTransport, peer: Address | None = None, sock: socket.socket | None = None
    ) -> None:
        self._owner = owner
        self._loop = asyncio.get_running_loop()
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._sock = sock
        """An accepted socket not yet handed to the loop (see `TcpTransport._attach`)."""
        self.inbound = peer is not None
        self.peer: Address = peer if peer is not None else ("", 0)
        self.proven = not self.inbound
        self.accepted = self._loop.time()
        self.counted = self.inbound
        """Whether the connection counts toward the caps (until it closes)."""
        self._closed = False
        self._last = self.accepted
        self._idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        if self._closed:  # expired or pushed out before the loop took it over
            self._transport.close()
            return
        if not self.inbound:
            host, port = transport.get_extra_info("peername")[:2]
            self.peer = (str(host), int(port))
        self._owner.connections[self.peer] = self
        if self.proven:
            self.watch_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._owner.connections.get(self.peer) is self:
            del self._owner.connections[self.peer]
        self._owner.release(self)
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def watch_idle(self) -> None:
        """Close the connection after `idle_timeout` without a byte from the peer. One timer
        per connection, moved on only when it fires (not at every message)."""
        self._last = self._loop.time()
        if self._idle is None:
            self._idle = self._loop.call_at(
                self._last + self._owner.limits.idle_timeout, self._check_idle
            )

    def _check_idle(self) -> None:
        due = self._last + self._owner.limits.idle_timeout
        if self._loop.time() < due:
            self._idle = self._loop.call_at(due, self._check_idle)
            return
        self._idle = None
        logger.debug("TCP %s:%s idle; closing", *self.peer)
        self.close()

    def data_received(self, data: bytes) -> None:
        self._last = self._loop.time()
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
                self._owner.receive(self._owner.name, bytes(buf[: end + 4]), self.peer, error)
                self.close()
                return
            total = end + 4 + length
            if len(buf) < total:
                return
            message = bytes(buf[:total])
            del buf[:total]
            guard = self._owner.guard
            if guard is not None and self.inbound and not guard.admit(self.peer[0]):
                if guard.banned(self.peer[0]):
                    self.close()  # banned since it connected
                    return
                continue  # over its rate: dropped
            if self._owner.receive(self._owner.name, message, self.peer) and not self.proven:
                self._owner.prove(self)

    def write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self._closed = True
        if self._transport is not None:
            self._transport.close()
        elif self._sock is not None:  # accepted, not yet handed to the loop: never will be
            self._sock.close()
            self._sock = None
            self._owner.release(self)

    def take_socket(self) -> socket.socket | None:
        """The accepted socket, for the loop to take over; None once the connection closed."""
        sock, self._sock = self._sock, None
        return sock


def _content_length(head: bytes) -> int | None:
    """Content-Length from a header section; None if absent or unreadable (§18.3: mandatory)."""
    for line in head.split(b"\r\n")[1:]:
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() in (b"content-length", b"l"):
            value = value.strip()
            return int(value) if value.isdigit() and len(value) <= 10 else None
    return None


class TcpTransport:
    """TCP for SIP: a listening socket accepted from by hand, and connections opened on demand.

    The accept loop applies `limits` before anything is made for a new connection: one from a
    source address that has `max_per_source` open, or beyond `max_total` in all when every open
    one is proven, is refused with a reset (no transport, no protocol, no TIME_WAIT). At
    `max_total` with unproven connections open, the oldest of them is closed instead, so that
    idle connections never lock a phone out. Unproven connections wait in accept order, so one
    loop timer closes them as their first-message time runs out (as Timer J's FIFO does).
    `limits` may be replaced at any time; open connections are not closed for a lower cap.
    """

    name = "TCP"
    guard: Guard | None = None
    """Refuses a banned source's connections at accept, and drops its messages."""
    server_ssl: ssl.SSLContext | None = None
    """TLS for accepted connections (`TlsTransport`); None: plain TCP."""
    client_ssl: ssl.SSLContext | None = None
    """TLS for connections the box opens."""

    def __init__(self, receive: Receiver, limits: TcpLimits | None = None) -> None:
        self.receive = receive
        self.limits = limits if limits is not None else TcpLimits()
        self.connections: dict[Address, TcpConnection] = {}
        self.refused = 0
        """Connections refused, or closed to make room, for a cap."""
        self.expired = 0
        """Connections from outside closed for carrying no SIP message in time."""
        self.inbound = 0
        """Connections from outside counted toward the caps now."""
        self._per_source: dict[str, int] = {}
        self._unproven: dict[TcpConnection, None] = {}
        """Unproven connections from outside, oldest first."""
        self._sweep: asyncio.TimerHandle | None = None
        self._listeners: list[socket.socket] = []
        self._paused: asyncio.TimerHandle | None = None
        self._accept_failed = -math.inf
        self._log = _CapLog()
        self._connecting: dict[Address, list[bytes]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def listen(self, host: str, port: int) -> None:
        """Listen on every address `host` names (all interfaces for ""), as asyncio's servers
        do: SO_REUSEADDR, IPv6 sockets IPv6-only."""
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        try:
            for family, kind, proto, _, address in dict.fromkeys(infos):
                sock = socket.socket(family, kind, proto)
                self._listeners.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
                sock.listen(LISTEN_BACKLOG)
                sock.setblocking(False)
        except OSError:
            self._close_listeners()
            raise
        for sock in self._listeners:
            loop.add_reader(sock.fileno(), self._accept, sock)

    @property
    def local(self) -> Address:
        assert self._listeners
        host, port = self._listeners[0].getsockname()[:2]
        return str(host), int(port)

    # -- accepting -----------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                sock, addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # the peer gave up while it waited
            except OSError as exc:
                if exc.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    # Linux reports a new connection's pending network error here: skip it.
                    logger.info("TCP accept failed: %s", exc)
                    continue
                # Out of descriptors or memory: wait a moment, as asyncio's servers do.
                loop = asyncio.get_running_loop()
                if loop.time() - self._accept_failed >= CAP_LOG_INTERVAL:
                    self._accept_failed = loop.time()
                    logger.error(
                        "cannot accept TCP connections: %s; pausing %.0f s (logged once a"
                        " minute)", exc.strerror, ACCEPT_RETRY_DELAY,
                    )  # fmt: skip
                loop.remove_reader(listener.fileno())
                self._paused = loop.call_later(ACCEPT_RETRY_DELAY, self._resume, listener)
                return
            self._admit(sock, (str(addr[0]), int(addr[1])))

    def _resume(self, listener: socket.socket) -> None:
        self._paused = None
        if listener.fileno() >= 0:
            asyncio.get_running_loop().add_reader(listener.fileno(), self._accept, listener)

    def _admit(self, sock: socket.socket, peer: Address) -> None:
        host = peer[0]
        if self.guard is not None and self.guard.banned(host):
            self.guard.counters.dropped += 1
            self._reset(sock)  # not counted as refused for a cap
            return
        limits = self.limits
        held = self._per_source.get(host, 0)
        if held >= limits.max_per_source:
            self._refuse(sock)
            self._log.note(
                host, f"TCP connection from {host} refused: the address has {held} open, the most"
                " allowed"
            )  # fmt: skip
            return
        if self.inbound >= limits.max_total:
            oldest = next(iter(self._unproven), None)
            if oldest is None:
                self._refuse(sock)
                self._log.note_total(
                    f"TCP connection from {host} refused: {self.inbound} are open from outside,"
                    " the most allowed, and every one has carried SIP"
                )  # fmt: skip
                return
            self.refused += 1
            self._log.note_total(
                f"TCP connection from {oldest.peer[0]} closed to make room for one from {host}:"
                f" {self.inbound} are open from outside, the most allowed, and it had sent no"
                " SIP message"
            )  # fmt: skip
            oldest.close()
            self.release(oldest)
        conn = TcpConnection(self, peer, sock)
        self._per_source[host] = self._per_source.get(host, 0) + 1
        self.inbound += 1
        self._unproven[conn] = None
        if self._sweep is None:
            self._schedule_sweep(conn.accepted)
        task = asyncio.get_running_loop().create_task(self._attach(conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _refuse(self, sock: socket.socket) -> None:
        self.refused += 1
        self._reset(sock)

    @staticmethod
    def _reset(sock: socket.socket) -> None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
        except OSError:
            pass  # reset by the peer already
        sock.close()

    async def _attach(self, conn: TcpConnection) -> None:
        """Hand an accepted socket to the loop as a transport for `conn` (a coroutine in the
        loop's API, hence a task; admitted connections only, so as many as the caps allow)."""
        sock = conn.take_socket()
        if sock is None:
            return  # closed before its turn came
        loop = asyncio.get_running_loop()
        try:
            if self.server_ssl is None:
                await loop.connect_accepted_socket(lambda: conn, sock)
            else:  # the handshake is bounded by the time a connection has for its first message
                await loop.connect_accepted_socket(
                    lambda: conn, sock, ssl=self.server_ssl,
                    ssl_handshake_timeout=self.limits.first_message_timeout,
                )  # fmt: skip
        except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
            logger.debug("%s %s:%s lost before it was served: %s", self.name, *conn.peer, exc)
            sock.close()
            self.release(conn)

    def prove(self, conn: TcpConnection) -> None:
        """`conn` has carried a SIP message: from now on only its idleness closes it."""
        conn.proven = True
        self._unproven.pop(conn, None)
        conn.watch_idle()

    def release(self, conn: TcpConnection) -> None:
        """`conn` counts toward the caps no more (it closed, or is closing). Idempotent."""
        if not conn.counted:
            return
        conn.counted = False
        host = conn.peer[0]
        left = self._per_source[host] - 1
        if left:
            self._per_source[host] = left
        else:
            del self._per_source[host]
        self.inbound -= 1
        self._unproven.pop(conn, None)

    def _schedule_sweep(self, accepted: float) -> None:
        loop = asyncio.get_running_loop()
        self._sweep = loop.call_at(accepted + self.limits.first_message_timeout, self._expire)

    def _expire(self) -> None:
        """Close the unproven connections whose first-message time ran out (the oldest first:
        all wait the same time, so those due are at the front)."""
        self._sweep = None
        now = asyncio.get_running_loop().time()
        timeout = self.limits.first_message_timeout
        while self._unproven:
            conn = next(iter(self._unproven))
            if conn.accepted + timeout > now:
                self._schedule_sweep(conn.accepted)
                return
            self.expired += 1
            logger.debug("TCP %s:%s sent no SIP message in %.0f s; closing", *conn.peer, timeout)
            self.release(conn)
            conn.close()

    # -- sending -------------------------------------------------------------------------

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
                loop.create_connection(
                    lambda: TcpConnection(self), addr[0], addr[1], ssl=self.client_ssl
                ),
                TCP_CONNECT_TIMEOUT,
            )
        except (OSError, TimeoutError) as exc:
            dropped = self._connecting.pop(addr, [])
            logger.info(
                "%s to %s:%s failed (%s); %d messages dropped",
                self.name, *addr, exc, len(dropped),
            )  # fmt: skip
            return
        queued = self._connecting.pop(addr, [])
        conn = self.connections.get(addr)
        if conn is None:  # closed at once by the peer
            logger.info("TCP to %s:%s closed; %d messages dropped", *addr, len(queued))
            return
        for data in queued:
            conn.write(data)

    def _close_listeners(self) -> None:
        for sock in self._listeners:
            if sock.fileno() >= 0:
                try:
                    asyncio.get_running_loop().remove_reader(sock.fileno())
                except RuntimeError:
                    pass  # no loop running: nothing is watching it
                sock.close()
        self._listeners = []

    def close(self) -> None:
        self._close_listeners()
        for handle in (self._sweep, self._paused):
            if handle is not None:
                handle.cancel()
        self._sweep = self._paused = None
        for task in list(self._tasks):
            task.cancel()
        for conn in [*self.connections.values(), *self._unproven]:
            conn.close()


class TlsTransport(TcpTransport):
    """SIP over TLS (RFC 3261 §26.2): the TCP transport, its framing, caps and timeouts, with
    a TLS layer. The caps are checked at accept, before any handshake, and the handshake must
    end within the first-message time. A connection's caps are counted per transport (TCP and
    TLS each have `max_per_source` and `max_total`)."""

    name = "TLS"

    def __init__(
        self,
        receive: Receiver,
        server_ssl: ssl.SSLContext,
        client_ssl: ssl.SSLContext | None = None,
        limits: TcpLimits | None = None,
    ) -> None:
        super().__init__(receive, limits)
        self.server_ssl = server_ssl
        self.client_ssl = client_ssl


class _CapLog:
    """Says why TCP connections are refused or closed for a cap: at most once per
    `CAP_LOG_INTERVAL` for each source address held to its cap, keeping at most
    `CAP_LOG_SOURCES` of them (refusals from further addresses share one line per interval),
    and at most once per interval for the total cap. So a flood costs a few lines and bounded
    memory; each line says how many went unlogged since the one before."""

    def __init__(self, interval: float = CAP_LOG_INTERVAL, sources: int = CAP_LOG_SOURCES) -> None:
        self._interval = interval
        self._sources = sources
        self._seen: dict[str, list[float]] = {}
        """source -> [when last logged, refusals not logged since]; oldest logged first."""
        self._others = [-math.inf, 0.0]
        self._total = [-math.inf, 0.0]

    def note(self, source: str, message: str) -> None:
        """A connection from `source` refused for the cap per address."""
        now = time.monotonic()
        entry = self._seen.get(source)
        if entry is None:
            self._forget(now)
            if len(self._seen) >= self._sources:
                self._emit(
                    self._others, now, message,
                    "and from other addresses: logged once a minute for all of them",
                )  # fmt: skip
                return
            entry = self._seen[source] = [-math.inf, 0.0]
        if self._emit(entry, now, message, "logged once a minute per address"):
            self._seen[source] = self._seen.pop(source)  # logged now: to the back of the order

    def note_total(self, message: str) -> None:
        """A connection refused, or closed to make room, for the total cap."""
        self._emit(self._total, time.monotonic(), message, "logged once a minute")

    def _emit(self, entry: list[float], now: float, message: str, note: str) -> bool:
        if now - entry[0] < self._interval:
            entry[1] += 1
            return False
        more = int(entry[1])
        entry[0], entry[1] = now, 0.0
        since = f"{more} more since the last line; " if more else ""
        logger.warning("%s (%s%s)", message, since, note)
        return True

    def _forget(self, now: float) -> None:
        """Drop addresses last logged an interval ago or more (their next refusal logs)."""
        while self._seen:
            source, entry = next(iter(self._seen.items()))
            if now - entry[0] < self._interval:
                return
            del self._seen[source]
