"""The control socket's server: a client that goes away before its answer costs the core
nothing (the soak's sampling client timed out while the machine was starved, and the core
logged a traceback for each)."""

from __future__ import annotations

import asyncio
import socket
import struct
from pathlib import Path
from typing import Any

from appliance import control


def test_a_client_gone_before_its_answer_leaves_no_error(tmp_path: Path) -> None:
    errors: list[dict[str, Any]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: errors.append(context))
        asked, answer = asyncio.Event(), asyncio.Event()

        async def slow(_request: dict[str, Any]) -> dict[str, Any]:
            asked.set()
            await answer.wait()
            return {"late": True}

        path = control.socket_path(tmp_path)
        server = await control.serve(path, {"slow": slow, "status": lambda _r: {"up": True}})
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(str(path))
        client.sendall(b'{"cmd": "slow"}\n')
        await asyncio.wait_for(asked.wait(), 5)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()  # gone before the answer
        answer.set()
        # The server goes on answering, and what it did for the one that left raised nothing.
        reply = await asyncio.to_thread(control.call, tmp_path, "status")
        assert reply == {"ok": True, "up": True}
        server.close()
        await server.wait_closed()

    asyncio.run(main())
    assert errors == []
