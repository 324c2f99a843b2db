"""SIP over TLS (RFC 3261 §26.2): the TLS transport's protocol policy (TLS 1.2+, ECDHE with
AEAD ciphers only), requests and answers over it, and `SIP/2.0/TLS`, `transport=tls` and
`sips:` in headers and URIs.

Clients are Python's `ssl` over blocking sockets in a thread, with the versions and ciphers
each test asks for; the server is a real `SipEndpoint` with the box's certificate policy
(`appliance.certs`). A permissive server of the test is the control that shows an old-version
client really offers that version (so a refusal by the box is the box's doing)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from appliance import certs
from appliance.sip.endpoint import SipEndpoint
from appliance.sip.headers import Via
from appliance.sip.message import Request, Response, parse
from appliance.sip.transaction import Destination, Timers
from appliance.sip.uri import SipUri

TIMERS = Timers(t1=0.05, t2=0.2, t4=0.25)


def options(port: int, transport: str = "TLS", branch: str = "z9hG4bK-tls-1") -> bytes:
    return (
        f"OPTIONS sips:127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} 127.0.0.1:5999;branch={branch}\r\n"
        "From: <sips:probe@127.0.0.1>;tag=p1\r\nTo: <sips:127.0.0.1>\r\n"
        f"Call-ID: {branch}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def client_context(version: ssl.TLSVersion | None = None, ciphers: str | None = None
                   ) -> ssl.SSLContext:  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSv1 and TLSv1_1 are
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if version is not None:
            context.minimum_version = context.maximum_version = version
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if ciphers is not None:
        context.set_ciphers(ciphers)
    return context


def exchange(port: int, context: ssl.SSLContext, data: bytes | None = None) -> tuple[str, bytes]:
    """Handshake with 127.0.0.1:`port`, send `data`, read one answer: (version, answer)."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
        context.wrap_socket(sock) as tls,
    ):
        version = str(tls.version())
        if data is None:
            return version, b""
        tls.sendall(data)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = tls.recv(4096)
            if not chunk:
                break
            answer += chunk
        return version, answer


def with_tls_endpoint(tmp_path: Path, body: Callable[[SipEndpoint, int], Awaitable[None]]) -> None:
    cert, key = certs.certificate(tmp_path)

    async def main() -> None:
        server = SipEndpoint(timers=TIMERS)
        await server.listen("127.0.0.1", 0)
        await server.listen_tls("127.0.0.1", 0, certs.server_context(cert, key))
        try:
            assert server.tls is not None
            await body(server, server.tls.local[1])
        finally:
            server.close()

    asyncio.run(main())


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_tls_12_and_13_clients_get_answers(tmp_path: Path, version: ssl.TLSVersion) -> None:
    seen: list[str] = []

    async def body(server: SipEndpoint, port: int) -> None:
        original = server.receive

        def receive(transport: str, data: bytes, addr: tuple[str, int],
                    error: tuple[int, str] | None = None) -> bool:  # fmt: skip
            seen.append(transport)
            return original(transport, data, addr, error)

        assert server.tls is not None
        server.tls.receive = receive
        got, answer = await asyncio.to_thread(exchange, port, client_context(version),
                                              options(port))  # fmt: skip
        assert got == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[
            version]  # fmt: skip
        response = parse(answer)
        assert isinstance(response, Response) and response.status == 200, answer
        assert response.via.transport == "TLS"

    with_tls_endpoint(tmp_path, body)
    assert seen == ["TLS"]


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_tls_10_and_11_clients_are_refused(tmp_path: Path, version: ssl.TLSVersion) -> None:
    cert, key = certs.certificate(tmp_path)
    # The control: a permissive server completes this client's handshake.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        permissive = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        permissive.minimum_version = ssl.TLSVersion.TLSv1
    permissive.set_ciphers("ALL:@SECLEVEL=0")
    permissive.load_cert_chain(cert, key)
    old = client_context(version, "ALL:@SECLEVEL=0")

    async def control() -> str:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=permissive)
        try:
            port = server.sockets[0].getsockname()[1]
            return (await asyncio.to_thread(exchange, port, old))[0]
        finally:
            server.close()

    assert asyncio.run(control()) in ("TLSv1", "TLSv1.1")

    async def body(server: SipEndpoint, port: int) -> None:
        with pytest.raises(ssl.SSLError):
            await asyncio.to_thread(exchange, port, old, options(port))
        assert server.tls is not None
        await asyncio.sleep(0)  # let the refused connection's task end
        assert server.tls.inbound == 0
        # and the port still serves a good client
        _, answer = await asyncio.to_thread(exchange, port, client_context(), options(port))
        assert answer.startswith(b"SIP/2.0 200 ")

    with_tls_endpoint(tmp_path, body)


@pytest.mark.parametrize("cipher", ["AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-SHA"])
def test_only_ecdhe_aead_ciphers_are_accepted(tmp_path: Path, cipher: str) -> None:
    """RSA key exchange (no forward secrecy) and CBC suites are refused in TLS 1.2."""
    weak = client_context(ssl.TLSVersion.TLSv1_2, cipher)

    async def body(_server: SipEndpoint, port: int) -> None:
        with pytest.raises(ssl.SSLError):
            await asyncio.to_thread(exchange, port, weak, options(port))
        version, _ = await asyncio.to_thread(
            exchange, port, client_context(ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-GCM-SHA256")
        )
        assert version == "TLSv1.2"

    with_tls_endpoint(tmp_path, body)


def test_request_over_tls_opens_a_connection_and_gets_the_answer(tmp_path: Path) -> None:
    """The client role: a request to a TLS destination opens a TLS connection (with the
    client context given) and its answer comes back on it."""

    async def body(_server: SipEndpoint, port: int) -> None:
        client = SipEndpoint(timers=TIMERS)
        await client.listen("127.0.0.1", 0)
        cert, key = certs.certificate(tmp_path)
        await client.listen_tls("127.0.0.1", 0, certs.server_context(cert, key),
                                client_context())  # fmt: skip
        try:
            req = parse(options(port, branch="z9hG4bK-tls-client"))
            assert isinstance(req, Request)
            txn = client.request(req, Destination("TLS", "127.0.0.1", port))
            answer = await asyncio.wait_for(txn.final, 5)
            assert answer.status == 200
            assert client.tls is not None and ("127.0.0.1", port) in client.tls.connections
            assert client.tcp is not None and not client.tcp.connections
        finally:
            client.close()

    with_tls_endpoint(tmp_path, body)


def test_a_plain_tcp_client_on_the_tls_port_gets_nothing(tmp_path: Path) -> None:
    async def body(server: SipEndpoint, port: int) -> None:
        def plain() -> bytes:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(options(port, "TCP"))
                try:
                    return sock.recv(4096)
                except (ConnectionResetError, TimeoutError):
                    return b""

        assert not (await asyncio.to_thread(plain)).startswith(b"SIP/2.0")

    with_tls_endpoint(tmp_path, body)


def test_via_tls_parses_and_prints() -> None:
    via = Via.parse("SIP/2.0/TLS 10.0.0.5:5061;branch=z9hG4bK-1;rport")
    assert (via.transport, via.host, via.port) == ("TLS", "10.0.0.5", 5061)
    assert str(via) == "SIP/2.0/TLS 10.0.0.5:5061;branch=z9hG4bK-1;rport"
    assert Via.parse("SIP/2.0/tls phone.example.com").transport == "TLS"


@pytest.mark.parametrize(
    ("text", "transport", "secure"),
    [
        ("sips:101@pbx.example.com", "tls", True),
        ("sips:101@pbx.example.com;transport=tcp", "tls", True),  # RFC 5630 §3.1.2
        ("sip:101@10.0.0.5:5061;transport=tls", "tls", True),
        ("sip:101@10.0.0.5;transport=TCP", "tcp", False),
        ("sip:101@10.0.0.5", "udp", False),
    ],
)
def test_uri_transport_and_security(text: str, transport: str, secure: bool) -> None:
    uri = SipUri.parse(text)
    assert (uri.transport, uri.secure) == (transport, secure)
    assert str(uri) == text


def test_sips_default_port_is_5061() -> None:
    assert SipUri.parse("sips:pbx.example.com").default_port == 5061
    assert SipUri.parse("sip:pbx.example.com").default_port == 5060
    assert SipUri.parse("sip:pbx.example.com;transport=tls").default_port == 5061
