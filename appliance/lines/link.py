"""The serial link to a line-interface board (`hw/PROTOCOL.md`): opens the device with
pyserial, says hello, exchanges heartbeats, sends commands with sequence numbers until they
are acknowledged, and hands the board's events to a callback on the asyncio loop.

A board can vanish at any moment (USB unplugged, firmware hung): the link notices (EIO or
end of file on the port, or no frame for the heartbeat timeout), reports `LinkState.DOWN`,
reopens the device with back-off and handshakes again, without anybody restarting it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import errno
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import serial

from appliance.lines import protocol as p

__all__ = [
    "BoardLink",
    "CommandRejected",
    "CommandTimeout",
    "LinkDown",
    "LinkState",
    "LinkStats",
    "LinkTiming",
]

logger = logging.getLogger(__name__)


class LinkState(enum.StrEnum):
    UP = "up"
    DOWN = "down"


class LinkDown(Exception):
    """The board is not connected (or went away while the command was outstanding)."""


class CommandRejected(Exception):
    """The board answered `Nak`: it understood the command and refused it."""

    def __init__(self, command: p.Message, reason: p.NakReason) -> None:
        super().__init__(f"{type(command).__name__} refused: {reason.name}")
        self.command = command
        self.reason = reason


class CommandTimeout(LinkDown):
    """No acknowledgement after every retransmission: the link is taken down and reopened."""


@dataclass(frozen=True)
class LinkTiming:
    """The protocol's timers (`hw/PROTOCOL.md`, "Timing"); tests shorten them."""

    heartbeat_s: float = 1.0
    timeout_s: float = 3.0
    ack_s: float = 0.2
    retries: int = 3
    hello_s: float = 0.5
    hello_tries: int = 3
    backoff_min_s: float = 0.1
    backoff_max_s: float = 5.0


@dataclass
class LinkStats:
    corrupt: int = 0
    """Frames the reader dropped (checksum, stuffing or length wrong)."""
    retransmits: int = 0
    handshakes: int = 0
    duplicates: int = 0
    """Events the board sent again because our ACK was lost; acknowledged, not delivered."""
    refused: int = 0
    """Frames with a good checksum but content we do not know, answered with `Nak`."""
    downs: list[str] = field(default_factory=list)
    """Why the link went down, each time."""


EventCallback = Callable[[p.Message], None]
StateCallback = Callable[[LinkState], None]


class BoardLink:
    """One board on one serial device. `on_event` gets each event (`p.Event` messages) once,
    in order, on the loop; `on_state` gets every change of `state`. After `LinkState.UP` the
    board reports every port that is not idle, so a consumer resets its view of the ports on
    UP and then follows the events."""

    def __init__(
        self,
        device: str,
        speed: int = 115200,
        *,
        on_event: EventCallback,
        on_state: StateCallback | None = None,
        timing: LinkTiming | None = None,
    ) -> None:
        self.device = device
        self.speed = speed
        self.timing = timing or LinkTiming()
        self.state = LinkState.DOWN
        self.capabilities: p.Capabilities | None = None
        self.stats = LinkStats()
        self._on_event = on_event
        self._on_state = on_state
        self._serial: serial.Serial | None = None
        self._fd: int | None = None
        self._reader = p.FrameReader()
        self._seq = 0
        self._pending: dict[int, tuple[asyncio.Future[None], p.Message]] = {}
        self._seen: deque[tuple[int, int, bytes]] = deque(maxlen=32)
        self._lost = asyncio.Event()
        self._caps: asyncio.Future[p.Capabilities] | None = None
        self._state_changed = asyncio.Event()
        self._last_rx = 0.0
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Start connecting in the background; `wait_state(UP)` to know when it is."""
        self._task = asyncio.get_running_loop().create_task(self._supervise())

    async def stop(self) -> None:
        self._stopping = True
        self._lost.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._close("stopped")

    async def wait_state(self, state: LinkState, timeout: float) -> bool:
        """Whether `state` is reached within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while self.state != state:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._state_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._state_changed.wait(), left)
        return True

    # -- commands ---------------------------------------------------------------------------

    async def send(self, command: p.Message) -> None:
        """Send a command and return once the board acknowledged it. Raises `LinkDown` when
        there is no board, `CommandRejected` on `Nak`, `CommandTimeout` when every
        retransmission went unanswered (and the link is then reopened)."""
        if not isinstance(command, p.Command):
            raise TypeError(f"{type(command).__name__} is not a command")
        if self.state != LinkState.UP:
            raise LinkDown(f"board on {self.device} is not connected")
        seq = self._next_seq()
        frame = p.encode(command, seq)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending[seq] = (done, command)
        try:
            for attempt in range(1 + self.timing.retries):
                if attempt:
                    self.stats.retransmits += 1
                self._write(frame)
                lost = asyncio.ensure_future(self._lost.wait())
                waiting: set[asyncio.Future[Any]] = {done, lost}
                finished, _ = await asyncio.wait(
                    waiting, timeout=self.timing.ack_s, return_when=asyncio.FIRST_COMPLETED
                )
                lost.cancel()
                if done in finished:
                    done.result()
                    return
                if self._lost.is_set():
                    raise LinkDown(f"board on {self.device} went away")
        finally:
            self._pending.pop(seq, None)
        self._lose(f"no ACK for {type(command).__name__} after {self.timing.retries} retries")
        raise CommandTimeout(f"board on {self.device} did not acknowledge")

    # -- the connection ---------------------------------------------------------------------

    async def _supervise(self) -> None:
        backoff = self.timing.backoff_min_s
        while not self._stopping:
            try:
                self._open()
            except (serial.SerialException, OSError) as exc:
                logger.debug("board %s: cannot open: %s", self.device, exc)
            else:
                try:
                    if await self._handshake():
                        backoff = self.timing.backoff_min_s
                        await self._keep_alive()
                finally:
                    lost = self._lost.is_set() and self.stats.downs
                    self._close(self.stats.downs[-1] if lost else "stopped")
            if self._stopping:
                break
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.timing.backoff_max_s)

    def _open(self) -> None:
        port = serial.Serial(self.device, self.speed, timeout=0, exclusive=True)
        self._serial = port
        self._fd = port.fileno()
        os.set_blocking(self._fd, False)
        self._reader = p.FrameReader()
        self._lost = asyncio.Event()
        self._seen.clear()
        self._last_rx = time.monotonic()
        asyncio.get_running_loop().add_reader(self._fd, self._readable)

    async def _handshake(self) -> bool:
        loop = asyncio.get_running_loop()
        for _ in range(self.timing.hello_tries):
            self._caps = loop.create_future()
            self._write(p.encode(p.Hello(), self._next_seq()))
            lost = asyncio.ensure_future(self._lost.wait())
            waiting: set[asyncio.Future[Any]] = {self._caps, lost}
            finished, _ = await asyncio.wait(
                waiting, timeout=self.timing.hello_s, return_when=asyncio.FIRST_COMPLETED
            )
            lost.cancel()
            if self._caps in finished:
                return True
            if self._lost.is_set():
                return False
        self._lose("no answer to Hello")
        return False

    async def _keep_alive(self) -> None:
        while not self._lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), self.timing.heartbeat_s)
            if self._lost.is_set():
                break
            if time.monotonic() - self._last_rx > self.timing.timeout_s:
                self._lose(f"no frame for {self.timing.timeout_s} s")
                break
            self._write(p.encode(p.Heartbeat(), self._next_seq()))

    def _close(self, reason: str) -> None:
        if self._fd is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._fd)
        if self._serial is not None:
            with contextlib.suppress(OSError, serial.SerialException):
                self._serial.close()
        self._serial = None
        self._fd = None
        self.capabilities = None
        for done, _ in self._pending.values():
            if not done.done():
                done.set_exception(LinkDown(reason))
        if self.state != LinkState.DOWN:
            logger.warning("board %s: link down: %s", self.device, reason)
            self._set_state(LinkState.DOWN)

    def _lose(self, reason: str) -> None:
        if not self._lost.is_set():
            self.stats.downs.append(reason)
            self._lost.set()
            if self._fd is not None:
                with contextlib.suppress(Exception):
                    asyncio.get_running_loop().remove_reader(self._fd)

    def _set_state(self, state: LinkState) -> None:
        self.state = state
        self._state_changed.set()
        if self._on_state is not None:
            self._on_state(state)

    # -- frames in and out ------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) % 256
        return self._seq

    def _write(self, frame: bytes) -> None:
        if self._fd is None:
            return
        try:
            os.write(self._fd, frame)
        except BlockingIOError:
            pass  # the port's buffer is full: the frame is lost, retransmission covers it
        except OSError as exc:
            self._lose(f"write: {os.strerror(exc.errno or errno.EIO)}")

    def _readable(self) -> None:
        if self._fd is None:
            return
        try:
            data = os.read(self._fd, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            self._lose(f"read: {os.strerror(exc.errno or errno.EIO)}")
            return
        if not data:
            self._lose("end of file on the port")
            return
        before = self._reader.corrupt
        frames = self._reader.feed(data)
        self.stats.corrupt += self._reader.corrupt - before
        for frame in frames:
            self._last_rx = time.monotonic()
            self._frame(frame)

    def _frame(self, frame: p.Frame) -> None:
        try:
            msg = frame.message()
        except p.ProtocolError as exc:
            self.stats.refused += 1
            logger.warning("board %s: %s", self.device, exc)
            if frame.type not in (p.Ack.TYPE, p.Nak.TYPE):
                known = frame.type in p.MESSAGES
                reason = p.NakReason.BAD_PAYLOAD if known else p.NakReason.UNKNOWN_TYPE
                self._write(p.encode(p.Nak(frame.seq, reason), self._next_seq()))
            return
        if isinstance(msg, p.Capabilities):
            self._capabilities(msg)
        elif isinstance(msg, p.Ack):
            pending = self._pending.get(msg.seq)
            if pending is not None and not pending[0].done():
                pending[0].set_result(None)
        elif isinstance(msg, p.Nak):
            pending = self._pending.get(msg.seq)
            if pending is not None and not pending[0].done():
                pending[0].set_exception(CommandRejected(pending[1], msg.reason))
        elif isinstance(msg, p.Event):
            self._write(p.encode(p.Ack(frame.seq), self._next_seq()))
            key = (frame.seq, frame.type, frame.payload)
            if key in self._seen:
                self.stats.duplicates += 1
                return
            self._seen.append(key)
            if self.state == LinkState.UP:
                self._on_event(msg)

    def _capabilities(self, caps: p.Capabilities) -> None:
        if self._caps is None or self._caps.done():
            return
        if caps.version != p.PROTOCOL_VERSION:
            logger.error(
                "board %s speaks protocol version %d, this host %d",
                self.device,
                caps.version,
                p.PROTOCOL_VERSION,
            )
            self._lose(f"protocol version {caps.version}")
            return
        self.capabilities = caps
        self.stats.handshakes += 1
        self._caps.set_result(caps)
        # Up at once, in this callback: the events that follow in the same read (the ports'
        # state after a reconnect) must reach the consumer after it saw the link come up.
        logger.info("board %s: up (%s, firmware %s)", self.device, caps.model, caps.firmware)
        self._set_state(LinkState.UP)
