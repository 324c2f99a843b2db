"""`pbx factory-reset` (appliance.cli_reset): in a checkout it empties the data directory once
the person typed RESET, never while the core runs, and not at all for another answer; on the
appliance (`PBX_FACTORY_RESET_UNIT` standing for the image's unit) it files the request the
box's units carry out, and erases nothing itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from appliance import factory_reset
from appliance.store import extensions
from appliance.store.db import open_db
from tests.conftest import CoreProcess


def reset(data: Path, answer: str | None, **env: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "appliance", "--data", str(data), "factory-reset"]
    if answer is None:
        argv.append("--yes")
    return subprocess.run(
        argv, input=f"{answer}\n" if answer else "", capture_output=True, text=True, timeout=60,
        env={**os.environ, **env}, check=False,
    )  # fmt: skip


def a_box(data: Path) -> None:
    db = open_db(data)
    try:
        extensions.add(db, "101", "Reception")
    finally:
        db.conn.close()
    (data / "recordings").mkdir()
    (data / "recordings" / "call.opus").write_bytes(b"OggS")


def test_typing_reset_empties_the_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "var"
    a_box(data)
    done = reset(data, "RESET")
    assert done.returncode == 0, done.stderr
    assert "Type RESET to confirm:" in done.stdout and "emptied" in done.stdout
    assert data.is_dir() and list(data.iterdir()) == []


def test_another_answer_erases_nothing(tmp_path: Path) -> None:
    data = tmp_path / "var"
    a_box(data)
    before = sorted(p.name for p in data.iterdir())
    done = reset(data, "yes")
    assert done.returncode == 2 and "not confirmed: nothing was erased" in done.stderr
    assert sorted(p.name for p in data.iterdir()) == before


def test_a_running_core_is_never_pulled_from_under(core: CoreProcess) -> None:
    done = reset(core.data, None)
    assert done.returncode == 2 and "stop pbx-core first" in done.stderr
    assert (core.data / "pbx.sqlite3").exists()


def test_on_the_appliance_it_files_the_request_and_erases_nothing(tmp_path: Path) -> None:
    data = tmp_path / "var"
    a_box(data)
    unit = tmp_path / "pbx-factory-reset.path"
    unit.write_text("[Path]\n")
    done = reset(data, "RESET", PBX_FACTORY_RESET_UNIT=str(unit))
    assert done.returncode == 0, done.stderr
    assert "restarts now" in done.stdout
    assert factory_reset.pending(data)
    assert (data / "recordings" / "call.opus").exists() and (data / "pbx.sqlite3").exists()
