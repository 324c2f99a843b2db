"""The registration client (RFC 3261 §10.2) against our own Registrar, over real sockets."""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import socket
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from appliance.sip.digest import DigestServer, Verdict
from appliance.sip.endpoint import SipEndpoint
from appliance.sip.message import Request
from appliance.sip.registrar import Registrar, RegistrarConfig
from appliance.sip.transaction import Destination, ServerTransaction, Timers
from appliance.sip.ua import uac
from appliance.sip.ua.auth import Credentials
from appliance.sip.ua.registration import (
    RegistrationClient,
    RegistrationConfig,
    RegistrationState,
    retry_delay,
)
from appliance.store import extensions, registrations
from appliance.store.database import Database
from appliance.store.db import open_db
from appliance.store.extensions import digest_ha1

PASSWORD = "Secret123456"
TIMERS = Timers(t1=0.02, t2=0.08, t4=0.1)  # a transaction times out after 64·T1 = 1.28 s
CONFIG = RegistrarConfig(min_expires=1, max_expires=600, default_expires=300, max_contacts=3)
LOCAL = "127.0.0.1"

State = RegistrationState


class Provider:
    """The REGISTER handler of the far end: our Registrar, optionally behind a digest proxy,
    or out of service, recording what reaches it and when."""

    def __init__(self, ep: SipEndpoint, registrar: Registrar) -> None:
        self.ep, self.registrar = ep, registrar
        self.requests: list[Request] = []
        self.times: list[float] = []
        self.arrivals: asyncio.Queue[Request] = asyncio.Queue()
        self.out_of_service: tuple[int, list[tuple[str, str]]] | None = None
        self.proxy: DigestServer | None = None
        self.challenge_always: DigestServer | None = None

    def __call__(self, req: Request, txn: ServerTransaction) -> None:
        self.requests.append(req)
        self.times.append(asyncio.get_running_loop().time())
        self.arrivals.put_nowait(req)
        if self.out_of_service is not None:
            status, headers = self.out_of_service
            txn.respond(self.ep.response(req, status, headers=headers))
            return
        if self.challenge_always is not None:  # as Kamailio answers a wrong password
            headers = [("WWW-Authenticate", c) for c in self.challenge_always.challenges()]
            txn.respond(self.ep.response(req, 401, headers=headers))
            return
        if self.proxy is not None:
            value = req.get("Proxy-Authorization")
            verdict = Verdict.CHALLENGE
            if value is not None:
                verdict = self.proxy.verify(value, "REGISTER", proxy_ha1).verdict
            if verdict is not Verdict.OK:
                stale = verdict is Verdict.STALE
                headers = [("Proxy-Authenticate", c) for c in self.proxy.challenges(stale=stale)]
                txn.respond(self.ep.response(req, 407, headers=headers))
                return
        self.registrar(req, txn)


def proxy_ha1(user: str, algorithm: str) -> str | None:
    return digest_ha1(algorithm, "101", "proxy", PASSWORD) if user == "101" else None


@dataclass
class Net:
    tmp_path: Path
    db: Database
    client: SipEndpoint
    transport: str
    box: SipEndpoint | None = None
    provider: Provider | None = None
    changes: asyncio.Queue[tuple[State, str, float | None]] = field(default_factory=asyncio.Queue)
    seen: list[tuple[State, str]] = field(default_factory=list)

    async def open_box(
        self, port: int = 0, algorithms: tuple[str, ...] = ("SHA-256", "MD5")
    ) -> Provider:
        box = SipEndpoint()
        await box.listen(LOCAL, port, tcp=self.transport == "TCP")
        digest = DigestServer("pbx", os.urandom(32), algorithms=algorithms)
        self.box, self.provider = box, Provider(box, Registrar(box, self.db, digest, CONFIG))
        box.handlers["REGISTER"] = self.provider
        return self.provider

    def config(self, port: int | None = None, **changes: object) -> RegistrationConfig:
        if port is None:
            assert self.box is not None
            port = self.box.local[1]
        mine = self.client.local[1]
        tail = ";transport=tcp" if self.transport == "TCP" else ""
        config = RegistrationConfig(
            registrar=f"sip:{LOCAL}:{port}", dest=Destination(self.transport, LOCAL, port),
            aor=f"101@{LOCAL}", credentials=Credentials("101", PASSWORD),
            contact=f"sip:101@{LOCAL}:{mine};line=abc123{tail}",
            via=f"{self.transport} {LOCAL}:{mine}", retry_min=0.05, retry_max=1.0,
            stop_timeout=2.0,
        )  # fmt: skip
        return replace(config, **changes)  # type: ignore[arg-type]

    def on_change(self, client: RegistrationClient) -> None:
        self.seen.append((client.state, client.last_response))
        self.changes.put_nowait((client.state, client.last_response, client.expires_at))

    async def expect(self, state: State, timeout: float = 5.0) -> tuple[str, float | None]:
        """Wait for the client to report `state`; its last_response and expires_at then."""
        while True:
            got, text, expires_at = await asyncio.wait_for(self.changes.get(), timeout)
            if got is state:
                return text, expires_at

    async def barrier(self) -> None:
        """An OPTIONS round trip from the client's socket to the box's: whatever the client
        sent there before has arrived by the time it is answered (loopback keeps order)."""
        assert self.box is not None
        via = f"{self.transport} {LOCAL}:{self.client.local[1]}"
        request = uac.request(
            "OPTIONS", f"sip:{LOCAL}", via=via, from_="<sip:t@x>;tag=b", to="<sip:t@x>",
            call_id=uac.new_call_id(via), cseq=1,
        )  # fmt: skip
        dest = Destination(self.transport, LOCAL, self.box.local[1])
        txn = self.client.request(request, dest)
        assert (await asyncio.wait_for(txn.final, 5)).status == 200


def run(
    tmp_path: Path, test: Callable[[Net], Awaitable[None]], *, transport: str = "UDP",
    box: bool = True, algorithms: tuple[str, ...] = ("SHA-256", "MD5"),
) -> None:  # fmt: skip
    db = open_db(tmp_path)
    extensions.add(db, "101", "Alice", PASSWORD)

    async def main() -> None:
        client = SipEndpoint(timers=TIMERS)
        await client.listen(LOCAL, 0, tcp=transport == "TCP")
        net = Net(tmp_path, db, client, transport)
        try:
            if box:
                await net.open_box(algorithms=algorithms)
            await asyncio.wait_for(test(net), 30)
        finally:
            client.close()
            if net.box is not None:
                net.box.close()

    asyncio.run(main())


def authorized(req: Request) -> bool:
    return req.get("Authorization") is not None


# -- the rules ---------------------------------------------------------------------------


def test_back_off_doubles_to_its_cap_with_jitter_below_it() -> None:
    ceilings = [retry_delay(n, 5.0, 300.0, 1.0) for n in range(1, 10)]
    assert ceilings == [5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0, 300.0]
    assert retry_delay(1, 5.0, 300.0, 0.0) == 2.5
    assert retry_delay(3, 5.0, 300.0, 0.5) == 15.0


def test_config_is_checked_when_made() -> None:
    good = RegistrationConfig(
        registrar="sip:sip.example.net", dest=Destination("UDP", "192.0.2.1", 5060),
        aor="alice@example.net", credentials=Credentials("alice", "pw"),
        contact="sip:alice@198.51.100.7:5060;line=abc123", via="UDP 198.51.100.7:5060",
    )  # fmt: skip
    with pytest.raises(ValueError, match="address of record must read user@domain"):
        replace(good, aor="alice")
    with pytest.raises(ValueError, match="registrar must be a sip: URI"):
        replace(good, registrar="tel:+15551234")
    with pytest.raises(ValueError, match="Via sent-by must read"):
        replace(good, via="198.51.100.7:5060")
    with pytest.raises(ValueError, match="expires must be at least 1"):
        replace(good, expires=0)
    assert "pw" not in repr(good)


# -- against our registrar -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("transport", "algorithms"),
    [("UDP", ("SHA-256", "MD5")), ("UDP", ("MD5",)), ("TCP", ("SHA-256", "MD5"))],
)
def test_registers_with_digest_and_unregisters_on_stop(
    tmp_path: Path, transport: str, algorithms: tuple[str, ...]
) -> None:
    async def body(net: Net) -> None:
        client = RegistrationClient(net.client, net.config(), net.on_change)
        assert client.state is State.IDLE
        before = time.time()
        client.start()
        text, expires_at = await net.expect(State.REGISTERED)
        assert text == "200 OK"
        assert net.seen == [(State.REGISTERING, ""), (State.REGISTERED, "200 OK")]
        assert expires_at is not None and before + 299 <= expires_at <= time.time() + 300
        assert client.registered_at is not None and before <= client.registered_at
        assert net.provider is not None
        (binding,) = net.provider.registrar.bindings("101")
        tail = ";transport=tcp" if transport == "TCP" else ""
        assert binding.contact == f"<sip:101@{LOCAL}:{net.client.local[1]};line=abc123{tail}>"
        assert binding.source.startswith(f"{transport} ")
        first, second = net.provider.requests
        assert not authorized(first) and authorized(second)
        assert f"algorithm={algorithms[0]}," in (second.get("Authorization") or "")

        await client.stop()
        assert client.state is State.IDLE
        assert client.registered_at is None
        assert client.expires_at is None
        assert net.provider.registrar.bindings("101") == []
        assert registrations.current(net.db, "101", 0) == []
        requests = net.provider.requests
        assert len(requests) == 3
        unregister = requests[2]
        assert (unregister.get("Expires"), authorized(unregister)) == ("0", True)
        assert {r.call_id for r in requests} == {client.call_id}
        assert [r.cseq.number for r in requests] == [1, 2, 3]
        assert len({r.via.branch for r in requests}) == 3
        assert {r.from_.tag for r in requests} == {requests[0].from_.tag}

    run(tmp_path, body, transport=transport, algorithms=algorithms)


def test_refreshes_before_the_binding_runs_out(tmp_path: Path) -> None:
    async def body(net: Net) -> None:
        client = RegistrationClient(net.client, net.config(expires=2), net.on_change)
        client.start()
        expiries: list[float] = []
        for _ in range(3):  # the registration, then two refreshes (each after 1 s)
            text, expires_at = await net.expect(State.REGISTERED)
            assert text == "200 OK" and expires_at is not None
            expiries.append(expires_at)
        assert expiries == sorted(expiries) and len(set(expiries)) == 3
        # Each refresh is reported (expires_at moved); the state never leaves REGISTERED.
        assert [state for state, _ in net.seen] == [State.REGISTERING, *[State.REGISTERED] * 3]
        assert net.provider is not None
        requests = net.provider.requests
        # A refresh carries the credentials at once, with the next nonce count: no new 401.
        assert [authorized(r) for r in requests] == [False, True, True, True]
        assert [r.cseq.number for r in requests] == [1, 2, 3, 4]
        (binding,) = net.provider.registrar.bindings("101")
        assert binding.cseq == 4
        await client.stop()

    run(tmp_path, body)


def test_a_wrong_password_fails_and_says_so(tmp_path: Path) -> None:
    async def body(net: Net) -> None:
        config = net.config(credentials=Credentials("101", "Wrong1234567"), retry_min=60.0,
                            retry_max=60.0)  # fmt: skip
        client = RegistrationClient(net.client, config, net.on_change)
        client.start()
        text, _ = await net.expect(State.FAILED)
        assert text == "403 Forbidden"
        assert (client.last_response, client.failures) == ("403 Forbidden", 1)
        assert (client.registered_at, client.expires_at) == (None, None)
        assert net.provider is not None and net.provider.registrar.bindings("101") == []
        await client.stop()  # nothing bound: no un-REGISTER
        await net.barrier()
        assert len(net.provider.requests) == 2
        assert client.state is State.IDLE

    run(tmp_path, body)


def test_a_rechallenged_answer_is_given_up_as_401(tmp_path: Path) -> None:
    async def body(net: Net) -> None:
        assert net.provider is not None
        net.provider.challenge_always = DigestServer("pbx", os.urandom(32))
        config = net.config(retry_min=60.0, retry_max=60.0)
        client = RegistrationClient(net.client, config, net.on_change)
        client.start()
        text, _ = await net.expect(State.FAILED)
        assert text == "401 Unauthorized"
        assert [authorized(r) for r in net.provider.requests] == [False, True]
        await client.stop()

    run(tmp_path, body)


def test_a_proxy_407_and_the_registrar_401_are_both_answered(tmp_path: Path) -> None:
    async def body(net: Net) -> None:
        assert net.provider is not None
        net.provider.proxy = DigestServer("proxy", os.urandom(32))
        client = RegistrationClient(net.client, net.config(), net.on_change)
        client.start()
        assert (await net.expect(State.REGISTERED))[0] == "200 OK"
        requests = net.provider.requests
        kinds = [(r.get("Proxy-Authorization") is not None, authorized(r)) for r in requests]
        assert kinds == [(False, False), (True, False), (True, True)]
        await client.stop()
        assert net.provider.registrar.bindings("101") == []

    run(tmp_path, body)


def test_interval_too_brief_is_retried_with_min_expires(tmp_path: Path) -> None:
    async def body(net: Net) -> None:
        assert net.box is not None and net.provider is not None
        net.provider.registrar.config = replace(CONFIG, min_expires=60)
        client = RegistrationClient(net.client, net.config(expires=30), net.on_change)
        before = time.time()
        client.start()
        _, expires_at = await net.expect(State.REGISTERED)
        assert expires_at is not None and before + 59 <= expires_at <= time.time() + 60
        assert [r.get("Expires") for r in net.provider.requests] == ["30", "30", "60"]
        await client.stop()

    run(tmp_path, body)


def test_backs_off_and_registers_when_the_registrar_comes_back(tmp_path: Path) -> None:
    async def body(net: Net) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((LOCAL, 0))
            port = probe.getsockname()[1]  # free again once closed: nobody answers there
        client = RegistrationClient(net.client, net.config(port, retry_min=0.3), net.on_change)
        client.start()
        text, _ = await net.expect(State.UNREACHABLE)
        assert (text, client.failures) == ("timeout", 1)
        await net.open_box(port)
        text, _ = await net.expect(State.REGISTERED)
        assert (text, client.failures) == ("200 OK", 0)
        assert net.seen[0] == (State.REGISTERING, "")
        assert net.seen[-1] == (State.REGISTERED, "200 OK")
        assert net.provider is not None and len(net.provider.registrar.bindings("101")) == 1
        await client.stop()

    run(tmp_path, body, box=False)


def test_failures_back_off_exponentially(tmp_path: Path) -> None:
    async def body(net: Net) -> None:
        assert net.provider is not None
        net.provider.out_of_service = (480, [])
        client = RegistrationClient(net.client, net.config(retry_min=0.1), net.on_change)
        client.start()
        assert (await net.expect(State.FAILED))[0] == "480 Temporarily Unavailable"
        for _ in range(4):
            await asyncio.wait_for(net.provider.arrivals.get(), 5)
        t = net.provider.times
        gaps = [b - a for a, b in itertools.pairwise(t)]
        # Jittered to [1/2, 1] of 0.1, 0.2, 0.4 s: each range lies above the one before.
        assert 0.04 <= gaps[0] <= 0.2
        assert gaps[2] >= 0.19 > gaps[0]
        assert client.failures >= 3
        await client.stop()

    run(tmp_path, body)


def test_retry_after_is_honoured(tmp_path: Path) -> None:
    async def body(net: Net) -> None:
        assert net.provider is not None
        net.provider.out_of_service = (503, [("Retry-After", "1")])
        client = RegistrationClient(net.client, net.config(retry_min=0.05), net.on_change)
        client.start()
        assert (await net.expect(State.FAILED))[0] == "503 Service Unavailable"
        net.provider.out_of_service = None
        assert (await net.expect(State.REGISTERED))[0] == "200 OK"
        refused, retried = net.provider.times[0], net.provider.times[1]
        assert retried - refused >= 0.95
        await client.stop()

    run(tmp_path, body)


def test_stop_waits_a_bounded_time_for_an_unanswered_unregister(tmp_path: Path) -> None:
    async def body(net: Net) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((LOCAL, 0))
            port = probe.getsockname()[1]
        config = net.config(port, stop_timeout=0.2)
        client = RegistrationClient(net.client, config, net.on_change)
        client.start()  # a REGISTER in flight: it may yet bind, so stop() un-registers
        loop = asyncio.get_running_loop()
        started = loop.time()
        await client.stop()
        assert 0.19 <= loop.time() - started < 1.0
        assert client.state is State.IDLE

    run(tmp_path, body, box=False)


def test_stop_leaves_nothing_that_holds_the_client(tmp_path: Path) -> None:
    async def body(net: Net) -> None:
        client = RegistrationClient(net.client, net.config(), net.on_change)
        client.start()
        await net.expect(State.REGISTERED)
        await client.stop()
        ref = weakref.ref(client)
        gc.disable()  # freed by reference counting alone, or a cycle holds it
        try:
            del client
            assert ref() is None
        finally:
            gc.enable()

    run(tmp_path, body)
