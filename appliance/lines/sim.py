"""The simulated line board: firmware behaviour over a pty, and ALSA file-backed PCMs as its
ports' audio, so the production serial, link and audio drivers run unchanged in tests and in
the demo.

`SimBoard` runs in a thread of its own, the way the board's microcontroller runs beside the
host: it answers `Hello`, sends heartbeats, acknowledges and carries out commands, reports
line events (retransmitted until acknowledged) and can be cut off and reconnected like a USB
board that is unplugged and plugged in again (the device path disappears and comes back).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import selectors
import signal
import socket
import socketserver
import threading
import time
import tty
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from appliance.lines import protocol as p

__all__ = [
    "SimAudioPort",
    "SimBoard",
    "SimControl",
    "SimMicrophone",
    "sim_command",
    "write_asoundrc",
]

logger = logging.getLogger(__name__)


@dataclass
class _Pending:
    frame: bytes
    sent_at: float
    tries: int


class SimBoard:
    """A board with `ports` (kinds `p.FXS`/`p.FXO`, ports numbered from 1) whose serial port
    appears at `link_path` (a symlink to the pty, as udev links `/dev/ttyACM0`)."""

    def __init__(
        self,
        link_path: Path,
        ports: Sequence[int] = (p.FXS, p.FXS, p.FXO),
        *,
        model: str = "sim-2fxs-1fxo",
        firmware: str = "sim-1",
        heartbeat_s: float = 1.0,
        retransmit_s: float = 0.2,
        retries: int = 5,
        host_timeout_s: float = 3.0,
    ) -> None:
        self.link_path = Path(link_path)
        self.kinds = tuple(ports)
        self.model = model
        self.firmware = firmware
        self.heartbeat_s = heartbeat_s
        self.retransmit_s = retransmit_s
        self.retries = retries
        self.host_timeout_s = host_timeout_s
        self._host_heard = time.monotonic()
        # Line state, as the firmware tracks it (read under `self.changed`).
        self.off_hook: set[int] = set()
        self.ringing: dict[int, tuple[tuple[int, int], ...]] = {}
        self.fxo_ringing: set[int] = set()
        self.seized: set[int] = set()
        self.leds: dict[int, p.Led] = {}
        self.polarity: dict[int, bool] = {}
        self.commands: list[p.Message] = []
        """Every command carried out, in order (retransmitted duplicates only once)."""
        self.hellos = 0
        self.acked_events = 0
        self.corrupt_received = 0
        self.changed = threading.Condition(threading.RLock())
        self._master: int | None = None
        self._slave: int | None = None
        self._muted = False
        self._garble_in = 0
        self._garble_out = 0
        self._seq = 0
        self._last_command: tuple[int, int, bytes] | None = None
        self._pending: dict[int, _Pending] = {}
        self._outbox: list[p.Message] = []
        self._reader = p.FrameReader()
        self._wake_r, self._wake_w = os.pipe()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._last_heartbeat = 0.0

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        self.restore()
        self._thread = threading.Thread(target=self._run, name="sim-board", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop = True
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.cut()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def cut(self) -> None:
        """Unplug: the pty goes away (the host reads EIO) and so does the device path."""
        with self.changed:
            for fd in (self._master, self._slave):
                if fd is not None:
                    os.close(fd)
            self._master = self._slave = None
            self._pending.clear()
            self._outbox.clear()
            self.link_path.unlink(missing_ok=True)
            self.changed.notify_all()
        self._wake()

    def restore(self) -> None:
        """Plug in again: a new pty behind the same path; line state is kept, as it would be
        on a board powered on its own."""
        with self.changed:
            if self._master is not None:
                return
            master, slave = os.openpty()
            tty.setraw(slave)  # no echo nor line editing before the host configures it
            os.set_blocking(master, False)
            self._master, self._slave = master, slave
            self._reader = p.FrameReader()
            self._host_heard = time.monotonic()
            temporary = self.link_path.with_name(self.link_path.name + ".new")
            temporary.unlink(missing_ok=True)
            temporary.symlink_to(os.ttyname(slave))
            temporary.replace(self.link_path)
        self._wake()

    def mute(self) -> None:
        """The firmware hangs: nothing is sent and nothing received, the port stays open."""
        self._muted = True

    def unmute(self) -> None:
        self._muted = False
        self._wake()

    def noise(self, received: int = 0, sent: int = 0) -> None:
        """Line noise: flip a bit in each of the next `received` reads from the host and the
        next `sent` frames to it, so their checksums fail and retransmission must recover."""
        with self.changed:
            self._garble_in += received
            self._garble_out += sent

    # -- a person at the lines --------------------------------------------------------------

    def offhook(self, port: int) -> None:
        self._fxs(port)
        with self.changed:
            self.off_hook.add(port)
            self.ringing.pop(port, None)  # answering trips the ringing, as on a real SLIC
        self._send_event(p.OffHook(port))

    def onhook(self, port: int) -> None:
        self._fxs(port)
        with self.changed:
            self.off_hook.discard(port)
        self._send_event(p.OnHook(port))

    def flash(self, port: int, duration_ms: int = 100) -> None:
        self._fxs(port)
        self._send_event(p.Flash(port, duration_ms))

    def pulse(self, port: int, digits: str) -> None:
        """Dial `digits` with the rotary dial; the board counts breaks and reports digits."""
        self._fxs(port)
        for digit in digits:
            self._send_event(p.PulseDigit(port, int(digit)))

    def line_ring(self, port: int, ringing: bool = True) -> None:
        """The exchange rings (or stops ringing) the FXO line."""
        self._fxo(port)
        with self.changed:
            (self.fxo_ringing.add if ringing else self.fxo_ringing.discard)(port)
        self._send_event(p.RingStart(port) if ringing else p.RingStop(port))

    def polarity_reversal(self, port: int) -> None:
        self._fxo(port)
        self._send_event(p.PolarityReversal(port))

    def loop_drop(self, port: int, duration_ms: int = 600) -> None:
        self._fxo(port)
        self._send_event(p.LoopDrop(port, duration_ms))

    def fault(self, port: int, code: int, text: str = "") -> None:
        self._send_event(p.BoardFault(port, code, text))

    def snapshot(self) -> dict[str, object]:
        """The lines' state as plain data (for the control socket and the demo)."""
        with self.changed:
            return {
                "connected": self._master is not None,
                "muted": self._muted,
                "off_hook": sorted(self.off_hook),
                "ringing": {str(k): [list(x) for x in v] for k, v in self.ringing.items()},
                "fxo_ringing": sorted(self.fxo_ringing),
                "seized": sorted(self.seized),
                "leds": {
                    str(k): [v.mode.name.lower(), v.on_ms, v.off_ms] for k, v in self.leds.items()
                },
                "polarity_reversed": sorted(k for k, v in self.polarity.items() if v),
                "hellos": self.hellos,
            }

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Wait until `predicate()` (called under the state lock) holds; False at the deadline."""
        with self.changed:
            return self.changed.wait_for(predicate, timeout)

    # -- the firmware -----------------------------------------------------------------------

    def _fxs(self, port: int) -> None:
        if not 1 <= port <= len(self.kinds) or self.kinds[port - 1] != p.FXS:
            raise ValueError(f"port {port} is not an FXS port of this board")

    def _fxo(self, port: int) -> None:
        if not 1 <= port <= len(self.kinds) or self.kinds[port - 1] != p.FXO:
            raise ValueError(f"port {port} is not an FXO port of this board")

    def _send_event(self, event: p.Message) -> None:
        with self.changed:
            self._outbox.append(event)
        self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._wake_r, selectors.EVENT_READ)
        registered: int | None = None
        while not self._stop:
            master = self._master
            if master != registered:
                if registered is not None:
                    selector.unregister(registered)
                if master is not None:
                    selector.register(master, selectors.EVENT_READ)
                registered = master
            for key, _ in selector.select(timeout=0.02):
                if key.fd == self._wake_r:
                    os.read(self._wake_r, 4096)
                    continue
                with self.changed:
                    if master is not None and master == self._master:
                        self._receive(master)
            with self.changed:
                if master is not None and master == self._master and not self._muted:
                    self._tick(master)
        selector.close()

    def _receive(self, master: int) -> None:
        try:
            data = os.read(master, 4096)
        except (BlockingIOError, OSError):
            return  # the slave side closed, or a cut raced us: nothing to read
        if self._muted or not data:
            return
        if self._garble_in:
            self._garble_in -= 1
            data = _flip(data)
        before = self._reader.corrupt
        for frame in self._reader.feed(data):
            self._host_heard = time.monotonic()
            self._handle(master, frame)
        self.corrupt_received += self._reader.corrupt - before

    def _tick(self, master: int) -> None:
        now = time.monotonic()
        with self.changed:
            outbox, self._outbox = self._outbox, []
        for event in outbox:
            seq = self._next_seq()
            frame = p.encode(event, seq)
            self._pending[seq] = _Pending(frame, now, 1)
            self._write(master, frame)
        for seq, pending in list(self._pending.items()):
            if now - pending.sent_at >= self.retransmit_s:
                if pending.tries > self.retries:
                    logger.warning("sim board: event %d never acknowledged", seq)
                    del self._pending[seq]
                    continue
                pending.tries += 1
                pending.sent_at = now
                self._write(master, pending.frame)
        if self.ringing and now - self._host_heard > self.host_timeout_s:
            # No host: a phone must not ring for a call nobody can answer.
            logger.warning(
                "sim board: host silent for %.1f s, ringing stopped", self.host_timeout_s
            )
            self.ringing.clear()
            self.changed.notify_all()
        if now - self._last_heartbeat >= self.heartbeat_s:
            self._last_heartbeat = now
            self._write(master, p.encode(p.Heartbeat(), self._next_seq()))

    def _handle(self, master: int, frame: p.Frame) -> None:
        try:
            msg = frame.message()
        except p.ProtocolError:
            known = frame.type in p.MESSAGES
            reason = p.NakReason.BAD_PAYLOAD if known else p.NakReason.UNKNOWN_TYPE
            self._write(master, p.encode(p.Nak(frame.seq, reason), self._next_seq()))
            return
        if isinstance(msg, p.Hello):
            self._hello(master)
        elif isinstance(msg, p.Ack | p.Nak):
            if self._pending.pop(msg.seq, None) is not None and isinstance(msg, p.Ack):
                with self.changed:
                    self.acked_events += 1
                    self.changed.notify_all()
        elif isinstance(msg, p.Command):
            key = (frame.seq, frame.type, frame.payload)
            if key == self._last_command:
                self._write(master, p.encode(p.Ack(frame.seq), self._next_seq()))
                return
            refusal = self._refusal(msg)
            if refusal is not None:
                self._write(master, p.encode(p.Nak(frame.seq, refusal), self._next_seq()))
                return
            self._last_command = key
            self._execute(msg)
            self._write(master, p.encode(p.Ack(frame.seq), self._next_seq()))

    def _hello(self, master: int) -> None:
        with self.changed:
            self.hellos += 1
            self.changed.notify_all()
            state: list[p.Message] = [p.OffHook(port) for port in sorted(self.off_hook)]
            state += [p.RingStart(port) for port in sorted(self.fxo_ringing)]
        caps = p.Capabilities(p.PROTOCOL_VERSION, self.model, self.firmware, self.kinds)
        self._pending.clear()
        self._last_command = None
        self._write(master, p.encode(caps, self._next_seq()))
        # The board reports every port that is not idle, so a host that lost the link knows
        # the lines' state again (`hw/PROTOCOL.md`, "Handshake").
        with self.changed:
            self._outbox[:0] = state

    def _refusal(self, msg: p.Message) -> p.NakReason | None:
        port = getattr(msg, "port", None)
        if port is None:
            led = getattr(msg, "led", None)
            if led is not None and led > len(self.kinds):
                return p.NakReason.BAD_PORT
            return None
        if not 1 <= port <= len(self.kinds):
            return p.NakReason.BAD_PORT
        kind = self.kinds[port - 1]
        fxs_only = p.Ring | p.StopRing | p.Polarity
        fxo_only = p.Seize | p.Release | p.HookFlash
        if (isinstance(msg, fxs_only) and kind != p.FXS) or (
            isinstance(msg, fxo_only) and kind != p.FXO
        ):
            return p.NakReason.WRONG_KIND
        return None

    def _execute(self, msg: p.Message) -> None:
        with self.changed:
            self.commands.append(msg)
            match msg:
                case p.Ring(port=port, cadence=cadence):
                    if port not in self.off_hook:
                        self.ringing[port] = cadence
                case p.StopRing(port=port):
                    self.ringing.pop(port, None)
                case p.Seize(port=port):
                    self.seized.add(port)
                case p.Release(port=port):
                    self.seized.discard(port)
                case p.Led(led=led):
                    self.leds[led] = msg
                case p.Polarity(port=port, reversed=reversed_):
                    self.polarity[port] = reversed_
                case p.Reset():
                    self.ringing.clear()
                    self.seized.clear()
                    self.leds.clear()
                    self.polarity.clear()
            self.changed.notify_all()

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) % 256
        return self._seq

    def _write(self, master: int, frame: bytes) -> None:
        if self._garble_out:
            self._garble_out -= 1
            frame = _flip(frame)
        try:
            os.write(master, frame)
        except (BlockingIOError, OSError):
            pass  # a full or closed pty loses the frame, as a serial line would


class SimControl:
    """A Unix socket on which a person (through the CLI) or a test drives the board by text
    lines, one command each, answered by one line: `ok`, `error: ...`, or the state as JSON.

    Commands: `offhook N`, `onhook N`, `flash N [MS]`, `dial N DIGITS` (pulse), `ring N`,
    `ringstop N` (the exchange ringing the FXO port), `reversal N`, `loopdrop N [MS]`,
    `fault N CODE [TEXT]`, `cut`, `restore`, `mute`, `unmute`, `state`."""

    def __init__(self, board: SimBoard, path: Path) -> None:
        self.board = board
        self.path = Path(path)
        self.path.unlink(missing_ok=True)
        control = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                for raw in self.rfile:
                    reply = control.execute(raw.decode("utf-8", "replace").strip())
                    self.wfile.write(reply.encode() + b"\n")

        self._server = socketserver.ThreadingUnixStreamServer(str(self.path), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="sim-control", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.path.unlink(missing_ok=True)

    def execute(self, line: str) -> str:
        words = line.split()
        if not words:
            return "error: empty command"
        verb, args = words[0], words[1:]
        board = self.board
        simple: dict[str, Callable[[], None]] = {
            "cut": board.cut,
            "restore": board.restore,
            "mute": board.mute,
            "unmute": board.unmute,
        }
        try:
            if verb == "state":
                return json.dumps(board.snapshot(), sort_keys=True)
            if verb in simple and not args:
                simple[verb]()
                return "ok"
            if not args:
                return f"error: {verb}: which port?" if verb in _PORT_VERBS else _unknown(verb)
            port = int(args[0])
            rest = args[1:]
            match verb:
                case "offhook":
                    board.offhook(port)
                case "onhook":
                    board.onhook(port)
                case "flash":
                    board.flash(port, int(rest[0]) if rest else 100)
                case "dial":
                    if not rest or not rest[0].isdigit():
                        return "error: dial: digits 0-9 expected"
                    board.pulse(port, rest[0])
                case "ring":
                    board.line_ring(port, True)
                case "ringstop":
                    board.line_ring(port, False)
                case "reversal":
                    board.polarity_reversal(port)
                case "loopdrop":
                    board.loop_drop(port, int(rest[0]) if rest else 600)
                case "fault":
                    board.fault(port, int(rest[0]) if rest else 1, " ".join(rest[1:]))
                case _:
                    return _unknown(verb)
        except ValueError as exc:
            return f"error: {exc}"
        return "ok"


_PORT_VERBS = frozenset(
    {"offhook", "onhook", "flash", "dial", "ring", "ringstop", "reversal", "loopdrop", "fault"}
)


def _unknown(verb: str) -> str:
    return f"error: unknown command {verb!r}"


def sim_command(path: Path, line: str, timeout: float = 5.0) -> str:
    """Send one command to a `SimControl` socket and return its answer line."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(line.encode() + b"\n")
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.decode().strip()


def _flip(data: bytes) -> bytes:
    """`data` with one bit flipped in the first byte from its middle on that is not a
    delimiter, so exactly one frame is damaged."""
    at = next((i for i in range(len(data) // 2, len(data)) if data[i]), None)
    if at is None:
        return data
    return data[:at] + bytes([data[at] ^ 0x10]) + data[at + 1 :]


@dataclass(frozen=True)
class SimAudioPort:
    """One port's audio: `pcm` is the ALSA name the profile gives the port; the handset's
    microphone is `infile` (raw S16_LE mono 8 kHz), its earpiece is written to `outfile`."""

    pcm: str
    infile: Path
    outfile: Path


class SimMicrophone:
    """A handset's microphone for a port whose capture `infile` is a FIFO (`fifo`, made
    here): a thread writes 20 ms frames into it at the wall clock's pace, silence unless
    something was queued with `say`, `lead` frames ahead of real time so that the gateway's
    reads (paced by its own clock) never wait. Audio said is heard by the gateway about
    `lead` x 20 ms later, as through a real line's buffers.

    Start it before the gateway opens the PCM or right after: opening a FIFO waits for both
    ends."""

    FRAME = 320

    def __init__(self, fifo: Path, *, lead: int = 5) -> None:
        self.fifo = Path(fifo)
        self.lead = lead
        self.frames_written = 0
        self._queue: list[bytes] = []
        self._marks: list[tuple[int, threading.Event]] = []
        self._queued = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.fifo.unlink(missing_ok=True)
        os.mkfifo(self.fifo)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sim-mic", daemon=True)
        self._thread.start()

    def say(self, pcm: bytes) -> threading.Event:
        """Queue `pcm` (S16_LE mono 8 kHz, padded with silence to whole frames) after what is
        queued; the event is set once its last frame went into the FIFO."""
        if len(pcm) % self.FRAME:
            pcm += bytes(self.FRAME - len(pcm) % self.FRAME)
        done = threading.Event()
        with self._lock:
            for at in range(0, len(pcm), self.FRAME):
                self._queue.append(pcm[at : at + self.FRAME])
            self._queued += len(pcm) // self.FRAME
            self._marks.append((self._queued, done))
        return done

    def silence(self) -> None:
        """Drop what is queued and not yet written: the handset goes quiet."""
        with self._lock:
            self._queue.clear()
            for _, done in self._marks:
                done.set()
            self._marks.clear()

    def stop(self) -> None:
        self._stop.set()
        # A writer still waiting in open() for the gateway is released by a reader of ours.
        try:
            fd = os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            fd = -1
        if self._thread is not None:
            self._thread.join(timeout=5)
        if fd >= 0:
            os.close(fd)
        self.fifo.unlink(missing_ok=True)

    def _run(self) -> None:
        # A handset's microphone outlives the gateway: when the gateway closes its end (it
        # stopped, or restarted to apply a new configuration) the FIFO is opened again, which
        # waits for the next reader.
        while not self._stop.is_set():
            try:
                out = open(self.fifo, "wb", buffering=0)  # noqa: SIM115 - closed below
            except OSError:
                return
            try:
                self._feed(out)
            finally:
                out.close()

    def _feed(self, out: BinaryIO) -> None:
        """Frames into `out` at the wall clock's pace until stopped or the reader goes."""
        written = 0
        started = time.monotonic()
        while not self._stop.is_set():
            with self._lock:
                frame = self._queue.pop(0) if self._queue else bytes(self.FRAME)
                said = self._queued - len(self._queue)
                done = [event for mark, event in self._marks if mark <= said]
                self._marks = [(m, e) for m, e in self._marks if m > said]
            try:
                out.write(frame)
            except OSError:  # BrokenPipeError: the gateway closed its end
                return
            written += 1
            self.frames_written += 1
            for event in done:
                event.set()
            due = started + (written - self.lead) * 0.02
            delay = due - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)


def write_asoundrc(path: Path, ports: Sequence[SimAudioPort]) -> Path:
    """Write an ALSA configuration defining each port's PCM as a file-backed device (`type
    file` over `type null`; capture and playback joined by `type asym`). Point
    `ALSA_CONFIG_PATH` at it before the first PCM is opened. The null slave is inline, so
    the file needs nothing from the system's alsa.conf.

    Capture reads `infile` as fast as it is asked (nothing paces it) and, past its end,
    returns undefined bytes: give it as much audio as the test will read."""
    blocks = []
    for port in ports:
        name = port.pcm
        fmt = "format S16_LE rate 8000 channels 1"
        blocks.append(
            f'pcm.{name}_cap {{ type file slave.pcm {{ type null }} file "/dev/null" '
            f'infile "{port.infile}" format "raw" }}\n'
            f"pcm.{name}_play {{ type file slave.pcm {{ type null }} "
            f'file "{port.outfile}" format "raw" }}\n'
            f"pcm.{name} {{ type asym\n"
            f'  capture.pcm {{ type plug slave {{ pcm "{name}_cap" {fmt} }} }}\n'
            f'  playback.pcm {{ type plug slave {{ pcm "{name}_play" {fmt} }} }} }}\n'
        )
    path.write_text("".join(blocks))
    return path


READY = "pbx-lines-sim: board on "
"""How the line `main` prints once the pty, the control socket and the asoundrc exist starts;
it ends with `ALSA_CONFIG_PATH=` and the asoundrc's path."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulated board of a profile as a process of its own (for the demo and for
    tests of `pbx lines`): the pty at the profile's device (or `--device`), the control
    socket, and an asoundrc with each port's PCM over files in `--audio-dir`: what a port
    plays goes to PCM.out.raw; its capture is a FIFO fed with silence at the wall clock's
    pace for as long as the board runs (a handset nobody speaks into)."""
    from appliance.lines.boards import PortKind, load_profile, shipped_profiles

    parser = argparse.ArgumentParser(prog="python -m appliance.lines.sim", description=main.__doc__)
    parser.add_argument("--profile", type=Path, default=shipped_profiles().get("sim"))
    parser.add_argument("--device", type=Path, help="where the pty appears (default: profile's)")
    parser.add_argument("--control", type=Path, required=True, help="the control socket's path")
    parser.add_argument("--audio-dir", type=Path, required=True, help="asoundrc and port files")
    args = parser.parse_args(argv)
    profile = load_profile(args.profile)
    if profile.serial is None:
        parser.error(f"{args.profile}: the simulated board needs [serial]")
    device = args.device or Path(profile.serial.device)
    kinds = [p.FXS if port.kind == PortKind.FXS else p.FXO for port in profile.ports]
    args.audio_dir.mkdir(parents=True, exist_ok=True)
    device.parent.mkdir(parents=True, exist_ok=True)
    audio, mics = [], []
    for port in profile.ports:
        mic = SimMicrophone(args.audio_dir / f"{port.pcm}.mic")
        mic.start()  # waits in open() until the gateway opens the port's capture
        mics.append(mic)
        audio.append(SimAudioPort(port.pcm, mic.fifo, args.audio_dir / f"{port.pcm}.out.raw"))
    asoundrc = write_asoundrc(args.audio_dir / "asoundrc", audio)
    board = SimBoard(device, kinds, model=profile.model)
    board.start()
    control = SimControl(board, args.control)
    control.start()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(f"{READY}{device}, control on {args.control}, ALSA_CONFIG_PATH={asoundrc}", flush=True)
    stop.wait()
    control.stop()
    board.stop()
    for mic in mics:
        mic.stop()
    print("pbx-lines-sim: stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
