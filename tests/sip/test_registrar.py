"""Registrar rules (RFC 3261 §10.3) in-process, over real UDP and a real SQLite file."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from appliance.sip.digest import DigestServer
from appliance.sip.endpoint import SipEndpoint
from appliance.sip.message import Response
from appliance.sip.registrar import Registrar, RegistrarConfig
from appliance.store import extensions, registrations
from appliance.store.db import Writer, open_db
from tests.sip.peer import RawPeer, authorization, request_bytes

PASSWORD = "Secret123456"
CONFIG = RegistrarConfig(min_expires=60, max_expires=600, default_expires=300, max_contacts=3)


class Box:
    """A registrar on a real socket and database, and a raw UA talking to it."""

    def __init__(self, ep: SipEndpoint, peer: RawPeer, registrar: Registrar) -> None:
        self.ep, self.peer, self.registrar = ep, peer, registrar
        self.cseq = 0
        self.branch = 0

    async def send(self, extra: str, *, call_id: str = "reg-1", user: str = "101",
                   cseq: int | None = None) -> Response:  # fmt: skip
        self.branch += 1
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        data = request_bytes(
            "REGISTER", self.peer.port, branch=f"z9hG4bK-r{self.branch}", cseq=cseq,
            call_id=call_id, user=user, extra=extra,
        )  # fmt: skip
        self.peer.send(data, self.ep.local)
        return await self.peer.recv_response()

    async def register(self, extra: str, *, user: str = "101", password: str = PASSWORD,
                       call_id: str = "reg-1", nc: str = "00000001") -> Response:  # fmt: skip
        challenge = await self.send(extra, call_id=call_id, user=user)
        assert challenge.status == 401
        auth = authorization(challenge.get_all("WWW-Authenticate")[0], user, password, nc=nc)
        return await self.send(f"Authorization: {auth}\r\n{extra}", call_id=call_id, user=user)


def run(tmp_path: Path, test: Callable[[Box], Awaitable[None]],
        algorithms: tuple[str, ...] = ("MD5", "SHA-256"), writer: bool = True) -> None:  # fmt: skip
    """`test` against a registrar that commits from the store's writer thread, as the core's
    does (or, `writer=False`, on the loop's own connection)."""
    db = open_db(tmp_path)
    extensions.add(db, "101", "Alice", PASSWORD)
    extensions.add(db, "102", "Bob", PASSWORD)

    async def main() -> None:
        ep = SipEndpoint()
        await ep.listen("127.0.0.1", 0, tcp=False)
        store_writer = Writer(tmp_path) if writer else None
        digest = DigestServer("pbx", os.urandom(32), algorithms=algorithms)
        registrar = Registrar(ep, db, digest, CONFIG, writer=store_writer)
        ep.handlers["REGISTER"] = registrar
        peer = await RawPeer.open()
        try:
            await test(Box(ep, peer, registrar))
        finally:
            peer.close()
            ep.close()
            if store_writer is not None:
                store_writer.stop()

    asyncio.run(main())


def contact(port: int, expires: int | None = None, user: str = "101") -> str:
    tail = f";expires={expires}" if expires is not None else ""
    return f"Contact: <sip:{user}@127.0.0.1:{port}>{tail}\r\n"


def expires_of(response: Response) -> dict[str, int]:
    out = {}
    for value in response.get_all("Contact"):
        uri, _, params = value.partition(">;")
        out[uri.lstrip("<")] = int(params.split("expires=")[1].split(";")[0])
    return out


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_register_binds_and_lists_the_contact(tmp_path: Path, algorithm: str) -> None:
    async def body(box: Box) -> None:
        ok = await box.register(contact(5070) + "Expires: 120\r\n")
        assert ok.status == 200
        assert expires_of(ok) == {"sip:101@127.0.0.1:5070": 120}
        stored = registrations.current(box.registrar.db, "101", 0)
        assert [r.contact_key for r in stored] == ["sip:101@127.0.0.1:5070"]
        assert stored[0].source == f"UDP 127.0.0.1:{box.peer.port}"

    run(tmp_path, body, algorithms=(algorithm,))


def test_contact_expires_overrides_header_and_is_clamped(tmp_path: Path) -> None:
    async def body(box: Box) -> None:
        ok = await box.register(contact(5070, 9999) + contact(5071) + "Expires: 90\r\n")
        assert expires_of(ok) == {"sip:101@127.0.0.1:5070": 600, "sip:101@127.0.0.1:5071": 90}

    run(tmp_path, body)


def test_default_expires_when_none_is_given(tmp_path: Path) -> None:
    async def body(box: Box) -> None:
        ok = await box.register(contact(5070))
        assert expires_of(ok) == {"sip:101@127.0.0.1:5070": 300}

    run(tmp_path, body)


def test_interval_too_brief_gets_423_with_min_expires(tmp_path: Path) -> None:
    async def body(box: Box) -> None:
        too_short = await box.register(contact(5070, 30))
        assert too_short.status == 423
        assert too_short.get("Min-Expires") == "60"
        assert registrations.current(box.registrar.db, "101", 0) == []

    run(tmp_path, body)


def test_cseq_must_increase_within_a_call_id(tmp_path: Path) -> None:
    async def body(box: Box) -> None:
        assert (await box.register(contact(5070, 120))).status == 200
        challenge = await box.send(contact(5070, 0), cseq=1)
        auth = authorization(challenge.get_all("WWW-Authenticate")[0], "101", PASSWORD)
        old = await box.send(f"Authorization: {auth}\r\n" + contact(5070, 0), cseq=1)
        assert (old.status, old.reason) == (400, "Bad Request (CSeq not above the last one)")
        assert len(registrations.current(box.registrar.db, "101", 0)) == 1
        # Another Call-ID may do what it likes (§10.3 step 7).
        gone = await box.register(contact(5070, 0), call_id="reg-2")
        assert gone.status == 200
        assert gone.get("Contact") is None

    run(tmp_path, body)


def test_too_many_contacts_is_refused_whole(tmp_path: Path) -> None:
    async def body(box: Box) -> None:
        three = contact(5070) + contact(5071) + contact(5072)
        assert (await box.register(three)).status == 200
        four = await box.register(contact(5073), call_id="reg-2")
        assert (four.status, four.reason) == (403, "Forbidden (at most 3 contacts)")
        assert len(registrations.current(box.registrar.db, "101", 0)) == 3

    run(tmp_path, body)


def test_wildcard_removes_every_binding(tmp_path: Path) -> None:
    async def body(box: Box) -> None:
        await box.register(contact(5070) + contact(5071))
        bad = await box.register("Contact: *\r\nExpires: 30\r\n")
        assert bad.status == 400
        ok = await box.register("Contact: *\r\nExpires: 0\r\n")
        assert ok.status == 200
        assert registrations.current(box.registrar.db, "101", 0) == []

    run(tmp_path, body)


def test_query_without_contact_lists_bindings(tmp_path: Path) -> None:
    async def body(box: Box) -> None:
        await box.register(contact(5070, 120))
        listed = await box.register("")
        assert set(expires_of(listed)) == {"sip:101@127.0.0.1:5070"}

    run(tmp_path, body)


def test_registering_another_users_aor_is_forbidden(tmp_path: Path) -> None:
    async def body(box: Box) -> None:
        challenge = await box.send(contact(5070, user="102"), user="102")
        auth = authorization(challenge.get_all("WWW-Authenticate")[0], "101", PASSWORD)
        stolen = await box.send(f"Authorization: {auth}\r\n" + contact(5070, user="102"),
                                user="102")  # fmt: skip
        assert stolen.status == 403
        assert registrations.current(box.registrar.db, "102", 0) == []

    run(tmp_path, body)


def test_replayed_credentials_are_challenged_again(tmp_path: Path) -> None:
    async def body(box: Box) -> None:
        challenge = await box.send(contact(5070))
        auth = authorization(challenge.get_all("WWW-Authenticate")[0], "101", PASSWORD)
        header = f"Authorization: {auth}\r\n" + contact(5070)
        assert (await box.send(header)).status == 200
        replay = await box.send(header)  # new branch, higher CSeq, same nonce and nc
        assert replay.status == 401
        assert "stale=true" in replay.get_all("WWW-Authenticate")[0]
        auth2 = authorization(challenge.get_all("WWW-Authenticate")[0], "101", PASSWORD,
                              nc="00000002")  # fmt: skip
        assert (await box.send(f"Authorization: {auth2}\r\n" + contact(5070))).status == 200

    run(tmp_path, body)


def test_rport_gets_the_source_port(tmp_path: Path) -> None:
    async def body(box: Box) -> None:
        ok = await box.register(contact(5070))
        assert ok.via.params["rport"] == str(box.peer.port)

    run(tmp_path, body)


@pytest.mark.parametrize("writer", [True, False], ids=["writer-thread", "on-the-loop"])
def test_a_failed_store_write_answers_500_and_binds_nothing(tmp_path: Path, writer: bool) -> None:
    async def body(box: Box) -> None:
        db = box.registrar.db
        db.execute("CREATE TRIGGER refuse BEFORE INSERT ON registrations"
                   " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")  # fmt: skip
        failed = await box.register(contact(5070))
        assert (failed.status, failed.reason) == (
            500,
            "Server Internal Error (bindings not stored)",
        )
        assert failed.get("Retry-After") == "5"
        assert box.registrar.bindings("101") == []
        db.execute("DROP TRIGGER refuse")
        assert (await box.register(contact(5070), call_id="reg-2")).status == 200
        assert len(registrations.current(db, "101", 0)) == 1

    run(tmp_path, body, writer=writer)


def test_bindings_are_committed_from_the_writer_thread_before_the_200(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop's thread never runs the commit; the 200 OK still waits for it."""
    writes: list[int] = []
    write = registrations.write

    def recorded(*args: Any, **kwargs: Any) -> None:
        writes.append(threading.get_ident())
        write(*args, **kwargs)

    monkeypatch.setattr(registrations, "write", recorded)

    async def body(box: Box) -> None:
        ok = await box.register(contact(5070) + contact(5071))
        assert ok.status == 200
        assert len(registrations.current(box.registrar.db, "101", 0)) == 2  # before the answer
        assert writes and threading.get_ident() not in writes

    run(tmp_path, body)
