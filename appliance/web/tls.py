"""Optional HTTPS for the setup page: a self-signed certificate made on first start, and a TLS
front that hands each decrypted connection to waitress (which speaks only plain HTTP).

The front runs an asyncio loop in a thread of its own: it accepts TLS on the public address and
pipes each connection to waitress on a loopback port. Waitress then sees every client as
127.0.0.1, so the front records which loopback port carries which client (`peers`) and
`RealPeer` puts the client's address back into the WSGI environment: login lock-out stays per
source."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

logger = logging.getLogger(__name__)

CHUNK = 65_536


class TlsError(Exception):
    """The certificate cannot be made or loaded. `str()` says why."""


def certificate(data_dir: Path, names: Iterable[str] = ()) -> tuple[Path, Path]:
    """DATA/tls/cert.pem and key.pem, made by `openssl` the first time (self-signed, EC P-256,
    ten years, for `pbx.local`, `localhost`, the loopback addresses and `names`)."""
    folder = data_dir / "tls"
    cert, key = folder / "cert.pem", folder / "key.pem"
    if cert.exists() and key.exists():
        return cert, key
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    alt = ["DNS:pbx.local", "DNS:localhost", "IP:127.0.0.1", "IP:::1"]
    for name in names:
        entry = f"IP:{name}" if name.replace(".", "").isdigit() or ":" in name else f"DNS:{name}"
        if name not in ("0.0.0.0", "::") and entry not in alt:
            alt.append(entry)
    tmp_key, tmp_cert = folder / "key.pem.tmp", folder / "cert.pem.tmp"
    command = [
        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", "3650", "-subj", "/CN=pbx.local/O=PBX appliance",
        "-addext", f"subjectAltName={','.join(alt)}",
        "-keyout", str(tmp_key), "-out", str(tmp_cert),
    ]  # fmt: skip
    try:
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise TlsError("openssl is not installed: it makes the HTTPS certificate") from None
    except subprocess.CalledProcessError as exc:
        raise TlsError(f"openssl could not make a certificate: {exc.stderr.strip()}") from None
    tmp_key.chmod(0o600)
    tmp_key.rename(key)
    tmp_cert.rename(cert)
    logger.info("made a self-signed HTTPS certificate: %s", cert)
    return cert, key


class TlsFront:
    """Accept TLS on (host, port); pipe each connection to the plain-HTTP `backend` port."""

    def __init__(self, cert: Path, key: Path, backend: tuple[str, int]) -> None:
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            self.context.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as exc:
            raise TlsError(f"cannot load {cert}: {exc}") from None
        self.backend = backend
        self.peers: dict[int, tuple[str, int]] = {}
        """Local port of a connection to waitress -> the client it carries."""
        self.loop = asyncio.new_event_loop()
        self.bound: tuple[str, int] = ("", 0)

    def listen(self, host: str, port: int) -> None:
        """Bind now (errors are raised here), serve from a daemon thread."""
        server = self.loop.run_until_complete(
            asyncio.start_server(self._client, host, port, ssl=self.context, backlog=64)
        )
        self.bound = server.sockets[0].getsockname()[:2]
        threading.Thread(target=self.loop.run_forever, name="tls-front", daemon=True).start()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = writer.get_extra_info("peername")
        try:
            back_reader, back_writer = await asyncio.open_connection(*self.backend)
        except OSError as exc:
            logger.warning("web backend unreachable: %s", exc)
            writer.close()
            return
        local_port = back_writer.get_extra_info("sockname")[1]
        self.peers[local_port] = (client[0], client[1])
        try:
            await asyncio.gather(self._pipe(reader, back_writer), self._pipe(back_reader, writer))
        finally:
            self.peers.pop(local_port, None)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(CHUNK):
                writer.write(data)
                await writer.drain()
        except (OSError, ssl.SSLError):
            pass  # the other side went away: close ours
        finally:
            writer.close()


class RealPeer:
    """WSGI middleware: REMOTE_ADDR/REMOTE_PORT of the TLS client, not of the TLS front."""

    def __init__(self, app: WSGIApplication, peers: dict[int, tuple[str, int]]) -> None:
        self.app, self.peers = app, peers

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        peer = self.peers.get(int(environ.get("REMOTE_PORT") or 0))
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
