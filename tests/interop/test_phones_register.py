"""Two independent SIP stacks, baresip and PJSIP, register with the demo credentials and stay
registered across a restart of `pbx run` (bindings persisted in SQLite)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CoreProcess
from tests.interop.baresip import Baresip, BaresipAccount
from tests.interop.netns import NetNamespace
from tests.interop.pjsip import Event, PjsipPhone

REGINT = 20


@pytest.fixture
def netns() -> Iterator[NetNamespace]:
    with NetNamespace() as ns:
        yield ns


def stored_expiry(data: Path, aor: str) -> float:
    with sqlite3.connect(data / "pbx.sqlite3") as conn:
        row = conn.execute(
            "SELECT MAX(expires_at) FROM registrations WHERE aor = ?", (aor,)
        ).fetchone()
    return float(row[0] or 0)


def wait_until(condition: object, timeout: float, what: str) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def is_registered(event: Event) -> bool:
    return event.get("event") == "reg" and event.get("code") == 200 and event["expires"] > 0


def test_baresip_and_pjsip_stay_registered_across_a_restart(
    core_factory: type[CoreProcess], netns: NetNamespace, tmp_path: Path
) -> None:
    core = core_factory(
        data=tmp_path / "var", sip=f"{netns.host}:5060", netns_pid=netns.pid, run_args=("--demo",)
    )
    core.cli("config", "set", "sip.min_expires", str(REGINT))
    core.start()
    passwords = core.demo_passwords
    assert sorted(passwords) == ["101", "102", "103", "104"]

    account = BaresipAccount("101", netns.host, 5060, passwords["101"], regint=REGINT)
    with (
        Baresip(netns, tmp_path / "baresip", account, listen=f"{netns.host}:5070") as baresip,
        PjsipPhone(
            f"{netns.host}:5060", "102", passwords["102"], local_host=netns.host,
            local_port=5080, regint=REGINT, netns=netns, stderr_path=tmp_path / "pjsua.log",
        ) as pjsua,
    ):  # fmt: skip
        baresip.wait_registered(timeout=15)
        pjsua.wait_event(is_registered, timeout=15)

        status = core.cli("status").stdout
        assert "registrations: 2" in status
        assert f"@{netns.host}:5070>  via UDP {netns.host}:5070" in status  # baresip
        assert f"<sip:102@{netns.host}:5080;ob>  via UDP {netns.host}:5080" in status  # PJSIP
        assert "baresip v1.0.0" in status

        core.restart()
        restarted = time.time()
        # Nothing re-registered yet: the bindings came back from the database.
        status = core.cli("status").stdout
        assert "registrations: 2" in status, status

        # Their next refreshes reach the new process and are accepted (the old nonce is stale).
        mark = pjsua.mark()
        pjsua.send("refresh")
        pjsua.wait_event(is_registered, timeout=15, since=mark)
        wait_until(
            lambda: stored_expiry(core.data, "101") > restarted + REGINT / 2,
            timeout=REGINT * 2, what="baresip's refresh after the restart",
        )  # fmt: skip
        assert "registrations: 2" in core.cli("status").stdout


def test_pjsip_registers_with_sha256_digest(
    core_factory: type[CoreProcess], tmp_path: Path
) -> None:
    core = core_factory(data=tmp_path / "var")
    core.cli("config", "set", "sip.digest_algorithms", "SHA-256")
    core.start()
    password = core.add_extension("101")
    with PjsipPhone(f"{core.host}:{core.port}", "101", password, local_port=5091,
                    stderr_path=tmp_path / "pjsua.log") as pjsua:  # fmt: skip
        # The core offers and accepts SHA-256 alone (an MD5 answer would be challenged again).
        pjsua.wait_event(is_registered, timeout=15)
        assert "registrations: 1" in core.cli("status").stdout
    assert "registrations: 0" in core.cli("status").stdout  # it un-registered on quit
