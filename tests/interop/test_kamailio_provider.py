"""The Kamailio provider of :mod:`tests.interop.kamailio`, driven by sipp customers.

These prove the helper itself before trunk tests lean on it: a subscriber registers with
digest (and a wrong password does not), a "PSTN" call to a DID reaches the subscriber's
registered Contact (with the DID in To, or in the Request-URI too with ``did_in_ruri``), a
subscriber's authenticated outbound call reaches the "city" sipp with the dialled number (or
is refused with ``fail_outbound``), and a killed provider restarts on the same port. Every
sipp runs on its own port on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.interop.kamailio import Provider, options_ping, provider_factory
from tests.interop.sipp import (
    SipMessage,
    SippPeers,
    SippRun,
    Transport,
    credentials,
    free_media_port,
    free_port,
    run_sipp,
)

SUBSCRIBER, PASSWORD = "box1", "s3cret-Pw"
DID = "74951234567"
CALLER_ID = "74997654321"
NUMBER = "84991112233"
TIMEOUT = 20.0
"""sipp's own -timeout for every run here, seconds."""


@pytest.fixture
def providers(tmp_path: Path) -> Iterator[Callable[..., Provider]]:
    """`providers(subscribers=..., ...)` starts a :class:`Provider`; all are closed after."""
    yield from provider_factory(tmp_path)


@pytest.fixture
def sipp(tmp_path: Path) -> Iterator[Callable[[tuple[str, int]], SippPeers]]:
    """`sipp(target)` gives background sipp peers aimed at `target`; all killed after."""
    made: list[SippPeers] = []

    def make(target: tuple[str, int]) -> SippPeers:
        peers = SippPeers(target, tmp_path)
        made.append(peers)
        return peers

    yield make
    for peers in made:
        peers.close()


def register(
    provider: Provider, workdir: Path, port: int, *, password: str = PASSWORD,
    scenario: str = "provider_register.xml", transport: Transport = "u1",
) -> SippRun:  # fmt: skip
    """Register SUBSCRIBER from 127.0.0.1:`port` (that address is the Contact)."""
    return run_sipp(
        scenario, provider.address, [[SUBSCRIBER, credentials(SUBSCRIBER, password), 300]],
        workdir=workdir, port=port, transport=transport, timeout=TIMEOUT,
    )  # fmt: skip


def ruri(message: SipMessage) -> str:
    _method, uri, version = message.start_line.split(" ")
    assert version == "SIP/2.0", message
    return uri


def user_of(uri: str) -> str:
    return uri.split(":", 1)[1].split("@", 1)[0]


# -- registration ----------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_subscriber_registers_with_digest(
    providers: Callable[..., Provider], tmp_path: Path, transport: Transport
) -> None:
    provider = providers(subscribers={SUBSCRIBER: PASSWORD})
    assert provider.registered(SUBSCRIBER) == []
    port = free_port()

    run = register(provider, tmp_path, port, transport=transport)

    run.assert_passed()
    assert run.statuses == [401, 200], run.describe()
    challenge = run.responses[0].one("WWW-Authenticate")
    assert challenge.startswith("Digest ") and f'realm="{provider.realm}"' in challenge
    contacts = provider.wait_registered(SUBSCRIBER)
    assert len(contacts) == 1 and f"@127.0.0.1:{port}" in contacts[0], contacts
    outcomes = [(r.outcome, r.user, r.proto) for r in provider.registers()]
    proto = "udp" if transport == "u1" else "tcp"
    assert outcomes == [("challenged", SUBSCRIBER, proto), ("saved", SUBSCRIBER, proto)]


def test_wrong_password_is_challenged_again_and_not_registered(
    providers: Callable[..., Provider], tmp_path: Path
) -> None:
    provider = providers(subscribers={SUBSCRIBER: PASSWORD})

    run = register(
        provider, tmp_path, free_port(), password="wrong", scenario="provider_register_rejected.xml"
    )

    run.assert_passed()
    assert run.statuses == [401, 401], run.describe()
    assert provider.registered(SUBSCRIBER) == []
    records = provider.registers()
    assert [r.outcome for r in records] == ["challenged", "challenged"]
    assert records[1].auth_user == SUBSCRIBER  # it did answer the challenge, wrongly


# -- a DID delivered to the registered subscriber --------------------------------------------


@pytest.mark.parametrize("did_in_ruri", [False, True], ids=["contact-ruri", "did-in-ruri"])
def test_did_call_reaches_registered_subscriber(
    providers: Callable[..., Provider],
    sipp: Callable[[tuple[str, int]], SippPeers],
    tmp_path: Path,
    did_in_ruri: bool,
) -> None:
    provider = providers(
        subscribers={SUBSCRIBER: PASSWORD, "other": "pw2"}, dids={DID: SUBSCRIBER},
        did_in_ruri=did_in_ruri,
    )  # fmt: skip
    callee_port = free_port()
    register(provider, tmp_path, callee_port).assert_passed()
    provider.wait_registered(SUBSCRIBER)
    peers = sipp(provider.address)
    # The subscriber's UAS takes over the registered address. Should the INVITE come before
    # it has bound the port, Kamailio's tm retransmits it (UDP, from 500 ms on).
    callee = peers.start(
        "provider_uas.xml", [["-"]], port=callee_port, media_port=free_media_port(),
        timeout=TIMEOUT,
    )  # fmt: skip
    caller = peers.start(
        "provider_pstn_call.xml", [[CALLER_ID, DID, 300]], port=free_port(),
        media_port=free_media_port(), timeout=TIMEOUT,
    )  # fmt: skip

    caller_run = caller.wait()
    callee_run = callee.wait()

    caller_run.assert_passed()
    callee_run.assert_passed()
    assert 200 in caller_run.statuses
    [invite] = callee_run.requests("INVITE")
    assert user_of(invite.one("To").strip("<>")) == DID, invite
    assert user_of(ruri(invite)) == (DID if did_in_ruri else SUBSCRIBER), invite
    assert f"@127.0.0.1:{callee_port}" in ruri(invite), invite
    assert CALLER_ID in invite.one("From"), invite
    assert f"{provider.host}:{provider.port}" in invite.one("Record-Route"), invite
    # The BYE came along the Record-Route: the provider's Via on top of the caller's.
    [bye] = callee_run.requests("BYE")
    assert len(bye.all("Via")) == 2 and f"{provider.host}:{provider.port}" in bye.all("Via")[0]

    [record] = provider.invites_to(DID)
    assert (record.outcome, record.kind, record.status) == ("relayed", "inbound", None)
    assert record.from_user == CALLER_ID and record.to_user == DID
    assert f"127.0.0.1:{callee_port}" in record.dest
    assert record.source[0] == "127.0.0.1"


def test_did_without_registration_is_480(
    providers: Callable[..., Provider], sipp: Callable[[tuple[str, int]], SippPeers]
) -> None:
    provider = providers(subscribers={SUBSCRIBER: PASSWORD}, dids={DID: SUBSCRIBER})
    caller = sipp(provider.address).start(
        "provider_pstn_call.xml", [[CALLER_ID, DID, 0]], port=free_port(),
        media_port=free_media_port(), timeout=5,
    )  # fmt: skip

    run = caller.wait()

    assert run.returncode != 0 and 480 in run.statuses, run.describe()
    [record] = provider.invites_to(DID)
    assert (record.outcome, record.status, record.kind) == ("rejected", 480, "inbound")


def test_subscriber_calling_a_did_is_authenticated_and_stays_on_net(
    providers: Callable[..., Provider],
    sipp: Callable[[tuple[str, int]], SippPeers],
    tmp_path: Path,
) -> None:
    city_port = free_port()  # nobody listens there: the call must not go to the city
    provider = providers(
        subscribers={SUBSCRIBER: PASSWORD}, dids={DID: SUBSCRIBER}, city=("127.0.0.1", city_port)
    )
    callee_port = free_port()
    register(provider, tmp_path, callee_port).assert_passed()
    provider.wait_registered(SUBSCRIBER)
    peers = sipp(provider.address)
    callee = peers.start(
        "provider_uas.xml", [["-"]], port=callee_port, media_port=free_media_port(),
        timeout=TIMEOUT,
    )  # fmt: skip
    caller = peers.start(
        "provider_uac.xml", [[SUBSCRIBER, credentials(SUBSCRIBER, PASSWORD), DID, 0, "Me"]],
        port=free_port(), media_port=free_media_port(), timeout=TIMEOUT,
    )  # fmt: skip

    caller.wait().assert_passed()
    callee_run = callee.wait()

    callee_run.assert_passed()
    [invite] = callee_run.requests("INVITE")
    assert user_of(ruri(invite)) == SUBSCRIBER and DID in invite.one("To"), invite
    records = provider.invites_to(DID)
    assert [(r.outcome, r.kind) for r in records] == [
        ("challenged", "on-net"),
        ("relayed", "on-net"),
    ]


# -- a subscriber's outbound call ------------------------------------------------------------


def test_outbound_call_reaches_city_with_dialled_number(
    providers: Callable[..., Provider], sipp: Callable[[tuple[str, int]], SippPeers]
) -> None:
    city_port = free_port()
    provider = providers(subscribers={SUBSCRIBER: PASSWORD}, city=("127.0.0.1", city_port))
    peers = sipp(provider.address)
    city = peers.start(
        "provider_uas.xml", [["-"]], port=city_port, media_port=free_media_port(),
        timeout=TIMEOUT,
    )  # fmt: skip
    caller = peers.start(
        "provider_uac.xml", [[SUBSCRIBER, credentials(SUBSCRIBER, PASSWORD), NUMBER, 300, "Box"]],
        port=free_port(), media_port=free_media_port(), timeout=TIMEOUT,
    )  # fmt: skip

    caller_run = caller.wait()
    city_run = city.wait()

    caller_run.assert_passed()
    city_run.assert_passed()
    assert caller_run.statuses[caller_run.statuses.index(407) + 1 :][-1] == 200
    [invite] = city_run.requests("INVITE")
    assert user_of(ruri(invite)) == NUMBER, invite
    assert SUBSCRIBER in invite.one("From") and NUMBER in invite.one("To"), invite
    assert not invite.all("Proxy-Authorization"), "the provider must consume the credentials"
    assert f"{provider.host}:{provider.port}" in invite.one("Record-Route"), invite
    [bye] = city_run.requests("BYE")
    assert len(bye.all("Via")) == 2, bye

    records = provider.invites_to(NUMBER)
    assert [(r.outcome, r.status) for r in records] == [("challenged", 407), ("relayed", None)]
    assert records[1].kind == "outbound" and records[1].auth_user == SUBSCRIBER
    assert records[1].from_name == "Box" and records[1].from_user == SUBSCRIBER, records[1]
    assert records[1].dest == f"sip:127.0.0.1:{city_port}"


def test_fail_outbound_set_by_restart_answers_503_and_city_sees_nothing(
    providers: Callable[..., Provider], sipp: Callable[[tuple[str, int]], SippPeers]
) -> None:
    city_port = free_port()
    provider = providers(subscribers={SUBSCRIBER: PASSWORD}, city=("127.0.0.1", city_port))
    provider.fail_outbound = 503  # options take effect at the next start
    provider.restart()
    peers = sipp(provider.address)
    city = peers.start(
        "provider_uas.xml", [["-"]], port=city_port, media_port=free_media_port(),
        timeout=TIMEOUT,
    )  # fmt: skip
    caller = peers.start(
        "provider_uac_rejected.xml",
        [[SUBSCRIBER, credentials(SUBSCRIBER, PASSWORD), NUMBER, 0, "Box"]],
        port=free_port(), media_port=free_media_port(), timeout=TIMEOUT,
    )  # fmt: skip

    caller_run = caller.wait()
    # The caller is done and the provider logged its decision: nothing more can reach the city.
    provider.wait_invite(lambda r: r.ruri_user == NUMBER and r.outcome == "rejected")
    city_run = city.stop()

    caller_run.assert_passed()
    assert caller_run.final.status == 503, caller_run.describe()
    assert city_run.messages == (), city_run.describe()
    records = provider.invites_to(NUMBER)
    assert [(r.outcome, r.status) for r in records] == [("challenged", 407), ("rejected", 503)]
    assert not any(r.relayed for r in provider.invites())


# -- a provider that dies ----------------------------------------------------------------------


def test_kill_then_restart_on_the_same_port(
    providers: Callable[..., Provider], tmp_path: Path
) -> None:
    provider = providers(subscribers={SUBSCRIBER: PASSWORD})
    address = provider.address
    register(provider, tmp_path, free_port()).assert_passed()
    provider.wait_registered(SUBSCRIBER)

    provider.kill()

    assert not provider.running
    assert options_ping(address, 0.5) is None

    provider.restart()

    assert provider.address == address and provider.running
    assert options_ping(address) == 200
    assert provider.registered(SUBSCRIBER) == []  # usrloc lived in memory
    register(provider, tmp_path, free_port()).assert_passed()
    provider.wait_registered(SUBSCRIBER)
    assert [(r.run, r.outcome) for r in provider.registers()] == [
        (1, "challenged"), (1, "saved"), (2, "challenged"), (2, "saved"),
    ]  # fmt: skip
    assert provider.stop() == 0
