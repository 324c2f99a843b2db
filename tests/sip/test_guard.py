"""Intrusion protection (`appliance.sip.guard`): its counting rules on a clock the test turns,
then the registrar reporting to it over real UDP (a challenge is no failure; two mistyped
passwords ban nobody; the fifth wrong one does, and the box goes silent to that address)."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from appliance.sip.digest import DigestServer
from appliance.sip.endpoint import SipEndpoint
from appliance.sip.guard import MAX_BAN, MAX_SOURCES, TRUST_TIME, Guard, GuardConfig
from appliance.sip.registrar import Registrar
from appliance.store import extensions
from appliance.store.bans import REPEAT_MEMORY, Ban
from appliance.store.db import open_db
from tests.sip.peer import RawPeer, authorization, request_bytes

PASSWORD = "Secret123456"
HOUR = 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def guard(clock: Clock, **config: object) -> tuple[Guard, list[Ban], list[str]]:
    """A guard on `clock` with `config`, and the bans and lifts it reported."""
    made: list[Ban] = []
    lifted: list[str] = []
    g = Guard(GuardConfig(**config), clock)  # type: ignore[arg-type]
    g.on_ban = made.append
    g.on_lift = lifted.append
    return g, made, lifted


def fail(g: Guard, host: str, times: int = 1) -> None:
    for _ in range(times):
        g.refused(host, "REGISTER 101: wrong credentials", "wrong_password")


def test_the_fifth_failure_in_the_window_bans_and_drops_everything_after() -> None:
    clock = Clock()
    g, made, _ = guard(clock)
    fail(g, "192.0.2.7", 4)
    assert g.admit("192.0.2.7") and made == []
    fail(g, "192.0.2.7")
    assert [(b.address, b.until - b.banned_at, b.count) for b in made] == [("192.0.2.7", HOUR, 1)]
    assert made[0].reason == "REGISTER 101: wrong credentials"
    assert not g.admit("192.0.2.7") and not g.admit("192.0.2.7")
    assert g.banned("192.0.2.7")
    assert g.admit("192.0.2.8")  # others are untouched
    status = g.status()
    assert (status["bans_active"], status["dropped"], status["refused.wrong_password"]) == (1, 2, 5)
    assert [b.address for b in g.active()] == ["192.0.2.7"]


def test_failures_outside_the_window_do_not_add_up() -> None:
    clock = Clock()
    g, made, _ = guard(clock, window=600.0)
    for _ in range(20):  # one every 2.5 minutes: never 5 within 10 minutes
        fail(g, "192.0.2.7")
        clock.now += 150.0
    assert made == [] and g.admit("192.0.2.7")


def test_a_ban_ends_and_each_repeat_lasts_twice_as_long() -> None:
    clock = Clock()
    g, made, _ = guard(clock, ban_time=HOUR)
    for expected in (HOUR, 2 * HOUR, 4 * HOUR):
        fail(g, "192.0.2.7", 5)
        ban = made[-1]
        assert ban.until - ban.banned_at == expected
        clock.now = ban.until - 1
        assert not g.admit("192.0.2.7")
        clock.now = ban.until + 1  # over: served again
        assert g.admit("192.0.2.7") and g.active() == []
    assert [b.count for b in made] == [1, 2, 3]
    # Long after the last ban ended it is forgotten: the next is a first ban again.
    clock.now += REPEAT_MEMORY + 1
    g.sweep()
    fail(g, "192.0.2.7", 5)
    assert (made[-1].count, made[-1].until - made[-1].banned_at) == (1, HOUR)


def test_the_longest_ban_is_capped() -> None:
    clock = Clock()
    g, made, _ = guard(clock, ban_time=10 * 86400.0)
    for _ in range(4):
        fail(g, "192.0.2.7", 5)
        clock.now = made[-1].until + 1
    assert made[-1].until - made[-1].banned_at == MAX_BAN


def test_allowed_sources_are_never_banned() -> None:
    clock = Clock()
    lan = ipaddress.ip_network("192.168.1.0/24")
    g, made, _ = guard(clock, allow=(lan,))
    g.use_trunks({"203.0.113.5"}, [ipaddress.ip_network("198.51.100.0/28")])
    for host in ("192.168.1.20", "203.0.113.5", "198.51.100.3"):
        fail(g, host, 50)
        assert g.admit(host)
    assert made == []
    # Counted all the same: the refusals are no secret.
    assert g.status()["refused.wrong_password"] == 150
    fail(g, "198.51.100.99", 5)  # outside the IP trunk's network
    assert [b.address for b in made] == ["198.51.100.99"]


def test_an_address_that_authenticated_is_not_banned_for_an_hour() -> None:
    clock = Clock()
    g, made, _ = guard(clock)
    g.authenticated("192.0.2.7")
    fail(g, "192.0.2.7", 20)  # a phone with a stale password beside one that works
    assert made == []
    clock.now += TRUST_TIME + 1
    fail(g, "192.0.2.7", 5)
    assert [b.address for b in made] == ["192.0.2.7"]


def test_lifting_a_ban_and_allowing_an_address_end_it() -> None:
    clock = Clock()
    g, made, lifted = guard(clock)
    fail(g, "192.0.2.7", 5)
    fail(g, "192.0.2.9", 5)
    assert g.lift("192.0.2.7") is True and g.lift("192.0.2.7") is False
    assert g.admit("192.0.2.7") and lifted == ["192.0.2.7"]
    # Its history went too: the next ban is a first one.
    fail(g, "192.0.2.7", 5)
    assert made[-1].count == 1
    g.config = GuardConfig(allow=(ipaddress.ip_network("192.0.2.0/29"),))
    assert g.admit("192.0.2.7") and sorted(lifted) == ["192.0.2.7", "192.0.2.7"]
    assert [b.address for b in g.active()] == ["192.0.2.9"]


def test_stored_bans_are_enforced_and_ended_ones_only_remembered() -> None:
    clock = Clock()
    g, made, _ = guard(clock)
    now = clock.now
    g.restore([
        Ban("192.0.2.7", "x", now - 60, now + 600, 1),
        Ban("192.0.2.8", "y", now - 2 * HOUR, now - HOUR, 2),
    ])  # fmt: skip
    assert not g.admit("192.0.2.7") and g.admit("192.0.2.8")
    assert [b.address for b in g.active()] == ["192.0.2.7"]
    fail(g, "192.0.2.8", 5)  # its third ban: four times as long
    assert (made[-1].count, made[-1].until - made[-1].banned_at) == (3, 4 * HOUR)


def test_the_rate_limit_drops_silently_and_bans_nobody() -> None:
    g, made, _ = guard(Clock(), rate=10.0, allow=(ipaddress.ip_network("10.0.0.0/8"),))
    admitted = sum(g.admit("192.0.2.7") for _ in range(100))
    # A burst of twice the rate passes (plus what refilled while the loop ran).
    assert 20 <= admitted < 25, admitted
    assert g.status()["rate_limited"] == 100 - admitted
    assert made == [] and not g.banned("192.0.2.7")
    assert all(g.admit("10.1.2.3") for _ in range(100))  # allowed: not limited
    time.sleep(0.3)  # the bucket refills in real time: 3 more at 10 a second
    assert g.admit("192.0.2.7")
    unlimited, _, _ = guard(Clock(), rate=0.0)
    assert all(unlimited.admit("192.0.2.7") for _ in range(10_000))


def test_memory_is_bounded_under_a_scan_from_many_addresses() -> None:
    g, _, _ = guard(Clock())
    for n in range(3 * MAX_SOURCES):
        host = f"2001:db8::{n:x}"
        g.admit(host)
        fail(g, host)
        g.authenticated(f"2001:db8:1::{n:x}")
    assert len(g._buckets) <= MAX_SOURCES
    assert len(g._failures) <= MAX_SOURCES
    assert len(g._trusted) <= MAX_SOURCES


# -- the registrar reporting to the guard, over real UDP -----------------------------------


async def _registrar(
    tmp_path: Path, test: Callable[[SipEndpoint, RawPeer, Guard], Awaitable[None]]
) -> None:
    db = open_db(tmp_path)
    extensions.add(db, "101", "Alice", PASSWORD)
    g = Guard(GuardConfig())  # nothing allowed: loopback is a stranger here
    ep = SipEndpoint(guard=g)
    await ep.listen("127.0.0.1", 0, tcp=False)
    ep.handlers["REGISTER"] = Registrar(ep, db, DigestServer("pbx", os.urandom(32)))
    peer = await RawPeer.open()
    try:
        await test(ep, peer, g)
    finally:
        peer.close()
        ep.close()
        db.conn.close()


_branch = iter(range(1, 1_000_000))


def _send(ep: SipEndpoint, peer: RawPeer, extra: str = "", user: str = "101") -> None:
    data = request_bytes(
        "REGISTER", peer.port, branch=f"z9hG4bK-g{next(_branch)}", cseq=next(_branch),
        call_id="guard-1", user=user, extra=extra,
    )  # fmt: skip
    peer.send(data, ep.local)


async def _attempt(ep: SipEndpoint, peer: RawPeer, password: str, user: str = "101") -> int:
    """REGISTER, answer the 401 with `password`; the final status."""
    _send(ep, peer, user=user)
    challenge = await peer.recv_response()
    assert challenge.status == 401
    auth = authorization(challenge.get_all("WWW-Authenticate")[0], user, password)
    _send(ep, peer, f"Authorization: {auth}\r\n", user=user)
    return (await peer.recv_response()).status


def test_challenges_are_no_failures_and_two_typos_ban_nobody(tmp_path: Path) -> None:
    async def body(ep: SipEndpoint, peer: RawPeer, g: Guard) -> None:
        for _ in range(30):  # a phone's every REGISTER starts with a 401
            _send(ep, peer)
            assert (await peer.recv_response()).status == 401
        assert await _attempt(ep, peer, "Mistyped0001") == 403
        assert await _attempt(ep, peer, "Mistyped0002") == 403
        assert await _attempt(ep, peer, PASSWORD) == 200
        assert g.status()["refused.wrong_password"] == 2 and g.active() == []

    asyncio.run(_registrar(tmp_path, body))


def test_the_fifth_wrong_password_bans_and_the_box_goes_silent(tmp_path: Path) -> None:
    async def body(ep: SipEndpoint, peer: RawPeer, g: Guard) -> None:
        statuses = [await _attempt(ep, peer, f"Guess{n:07d}") for n in range(4)]
        statuses.append(await _attempt(ep, peer, "NoSuchPass1", user="999"))  # unknown user
        assert statuses == [403] * 5
        assert [b.address for b in g.active()] == ["127.0.0.1"]
        counts = g.status()
        assert (counts["refused.wrong_password"], counts["refused.unauthenticated"]) == (4, 1)
        _send(ep, peer)  # even a request without credentials goes unanswered
        with pytest.raises(TimeoutError):
            await peer.recv(timeout=1.0)
        assert g.status()["dropped"] == 1

    asyncio.run(_registrar(tmp_path, body))


def test_the_settings_default_to_the_issues_figures(tmp_path: Path) -> None:
    from appliance.pbx.security import guard_config

    db = open_db(tmp_path)
    try:
        config = guard_config(db)
    finally:
        db.conn.close()
    assert (config.failures, config.window, config.ban_time, config.rate) == (5, 600, 3600, 100)
    assert [str(net) for net in config.allow] == ["127.0.0.1/32", "::1/128"]
    assert TRUST_TIME == HOUR
