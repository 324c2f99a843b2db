"""A stand-in for the analog gateway's control socket (`DATA/run/lines.sock`) for the tests of
its clients (the Ports page, `pbx lines`): a real Unix socket speaking the control protocol
(one JSON request per connection, one JSON answer), answering `status` with a canned state
and `sim` with what a simulated board answers, and recording every request it got."""

from __future__ import annotations

import json
import socketserver
import threading
from pathlib import Path
from typing import Any

from appliance import control

CANNED: dict[str, Any] = {
    "board": "up",
    "ports": [
        {"port": 1, "kind": "fxs", "state": "off-hook", "registered": True,
         "last_event": "off-hook", "at": 1_700_000_000.0},
        {"port": 2, "kind": "fxs", "state": "ringing", "registered": False,
         "last_event": "ring cadence RU", "at": 1_700_000_001.0},
        {"port": 3, "kind": "fxo", "state": "fault", "registered": False,
         "last_event": "loop current lost", "at": 1_700_000_002.0},
    ],
}  # fmt: skip


class LinesPeer:
    """Serve `status` (the canned state) and `sim` on DATA/run/lines.sock in a thread."""

    def __init__(self, data: Path, status: dict[str, Any] | None = None) -> None:
        self.path = control.lines_socket_path(data)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.status = CANNED if status is None else status
        self.requests: list[dict[str, Any]] = []
        peer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                request = json.loads(self.rfile.readline())
                peer.requests.append(request)
                self.wfile.write(json.dumps(peer.answer(request)).encode() + b"\n")

        self._server = socketserver.ThreadingUnixStreamServer(str(self.path), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        match request.get("cmd"):
            case "status":
                return {"ok": True, **self.status}
            case "sim":
                words = str(request.get("command", "")).split()
                if words and words[0] in {"offhook", "onhook", "dial", "ring", "flash"}:
                    return {"ok": True, "reply": "ok"}
                return {"ok": True, "reply": f"error: unknown command {words[:1]}"}
            case _:
                return {"ok": False, "error": "unknown command; known: ['sim', 'status']"}

    def __enter__(self) -> LinesPeer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.path.unlink(missing_ok=True)
