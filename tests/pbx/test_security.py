"""Bans kept across restarts of a real `pbx run`, listed and lifted with `pbx bans`, with the
core running (through the control socket) and stopped (in the store, read at the next start).

A source is banned by five REGISTERs with a wrong password (sipp's `register_forbidden.xml`
from 127.0.0.40, not on the allow-list); a raw OPTIONS from it shows whether the box answers.
"""

from __future__ import annotations

import time
from pathlib import Path

from appliance.store import bans
from appliance.store.db import open_db
from tests.conftest import CoreProcess
from tests.interop.sipp import credentials, free_port, run_sipp
from tests.interop.test_sipvicious import probe

SOURCE = "127.0.0.40"
PASSWORD = "Kq7vT9pLm2"
BAN_TIME = 3600


def ban(core: CoreProcess, workdir: Path) -> None:
    port = free_port(SOURCE)
    for _ in range(5):
        run = run_sipp(
            "register_forbidden.xml", (core.host, core.port),
            [["101", credentials("101", "Wrong0000000"), 3600]], workdir=workdir, port=port,
            host=SOURCE,
        )  # fmt: skip
        run.assert_passed()


def listed(core: CoreProcess) -> list[str]:
    """The addresses `pbx bans` lists."""
    out = core.cli("bans").stdout.splitlines()
    return [line.split()[0] for line in out if line.startswith("  ")]


def stored(data: Path, count: int, repeats: int = 1) -> list[bans.Ban]:
    """The stored bans, once there are `count` (the last of them its `repeats`-th ban): the
    core writes them from its writer thread (polled, at most 5 s)."""
    deadline = time.monotonic() + 5.0
    while True:
        db = open_db(data, migrate_schema=False)
        try:
            rows = bans.load(db, time.time())
        finally:
            db.conn.close()
        done = len(rows) == count and (not rows or rows[-1].count == repeats)
        if done or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)  # polling the writer thread's commit, bounded


def test_bans_survive_a_restart_and_are_lifted_online_and_offline(
    core_factory: type[CoreProcess], tmp_path: Path
) -> None:
    core = core_factory(data=tmp_path / "var")
    core.add_extension("101", PASSWORD)
    core.start()
    target = (core.host, core.port)
    assert probe(SOURCE, target) is not None
    ban(core, tmp_path)
    assert listed(core) == [SOURCE]
    assert probe(SOURCE, target) is None
    (first,) = stored(core.data, 1)
    assert (first.address, first.count, first.until - first.banned_at) == (SOURCE, 1, BAN_TIME)

    core.restart()
    assert listed(core) == [SOURCE]
    assert probe(SOURCE, target) is None  # still banned, from the store

    # Lifted through the running core: answered at once, and gone from the store.
    assert core.cli("bans", "remove", SOURCE).stdout.strip() == f"ban of {SOURCE} lifted"
    assert probe(SOURCE, target) is not None
    assert listed(core) == [] and stored(core.data, 0) == []
    missing = core.cli("bans", "remove", SOURCE, check=False)
    assert (missing.returncode, missing.stderr.strip()) == (
        1,
        f"pbx: error: {SOURCE} is not banned",
    )

    # Banned again, then lifted while the core is stopped: it starts without the ban.
    ban(core, tmp_path)
    core.stop()
    offline = core.cli("bans")
    assert "core: not running" in offline.stdout and SOURCE in offline.stdout
    assert core.cli("bans", "remove", SOURCE).returncode == 0
    core.start()
    assert listed(core) == [] and probe(SOURCE, target) is not None
    bad = core.cli("bans", "remove", "not-an-address", check=False)
    assert bad.returncode == 2 and "not an IP address" in bad.stderr


def test_an_ended_ban_is_not_loaded_but_doubles_the_next(
    core_factory: type[CoreProcess], tmp_path: Path
) -> None:
    data = tmp_path / "var"
    db = open_db(data)
    now = time.time()
    bans.save(db, bans.Ban(SOURCE, "REGISTER 101: wrong credentials", now - 7200, now - 3600))
    db.conn.close()
    core = core_factory(data=data)
    core.add_extension("101", PASSWORD)
    core.start()
    assert listed(core) == [] and probe(SOURCE, (core.host, core.port)) is not None
    ban(core, tmp_path)
    (second,) = stored(data, 1, repeats=2)
    assert (second.count, second.until - second.banned_at) == (2, 2 * BAN_TIME)
