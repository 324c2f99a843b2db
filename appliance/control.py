"""The control socket: a small JSON API on a Unix socket (`DATA/run/core.sock`).

One request per connection: a JSON object with `cmd`, answered by one JSON object. The core
serves it; the CLI and the web service are its clients.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # asyncio is the core's; the CLI and pbx-web only call (2 MiB saved)
    import asyncio

logger = logging.getLogger(__name__)

MAX_REQUEST = 65_536

Command = Callable[[dict[str, Any]], Awaitable[dict[str, Any]] | dict[str, Any]]


class ControlError(Exception):
    """The core is not running, or it refused the command. `str()` says which."""


def socket_path(data_dir: Path) -> Path:
    return data_dir / "run" / "core.sock"


async def serve(path: Path, commands: dict[str, Command]) -> asyncio.AbstractServer:
    import asyncio

    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            try:
                request = json.loads(line[:MAX_REQUEST])
                if not isinstance(request, dict):
                    raise ValueError("request must be a JSON object")
                command = commands.get(str(request.get("cmd")))
                if command is None:
                    reply: dict[str, Any] = {
                        "ok": False, "error": f"unknown command; known: {sorted(commands)}",
                    }  # fmt: skip
                else:
                    result = command(request)
                    if not isinstance(result, dict):
                        result = await result
                    reply = {"ok": True, **result}
            except ValueError as exc:
                reply = {"ok": False, "error": str(exc)}
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except ConnectionError:
            # The client gave up before its answer (a CLI's or a bench's timeout while the
            # loop was busy): nothing to tell it, nothing wrong in the core.
            logger.info("control client went away before its answer")
        finally:
            writer.close()

    server = await asyncio.start_unix_server(handle, path=str(path))
    path.chmod(0o660)
    return server


def lines_socket_path(data_dir: Path) -> Path:
    """The analog gateway's (`pbx-lines`) control socket: the same protocol, another process."""
    return data_dir / "run" / "lines.sock"


def call(data_dir: Path, cmd: str, timeout: float = 5.0, **args: Any) -> dict[str, Any]:
    """Send one command to the running core (blocking); raises ControlError."""
    return call_at(socket_path(data_dir), cmd, timeout, "the core", **args)


def call_at(
    path: Path, cmd: str, timeout: float = 5.0, service: str = "the service", **args: Any
) -> dict[str, Any]:
    """Send one command to the service listening on `path` (blocking); raises ControlError,
    naming `service` when nothing listens there."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            raise ControlError(f"{service} is not running (no {path})") from None
        sock.sendall(json.dumps({"cmd": cmd, **args}).encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    reply = json.loads(b"".join(chunks))
    if not reply.get("ok"):
        raise ControlError(reply.get("error", "command failed"))
    return dict(reply)
