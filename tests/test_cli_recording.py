"""`pbx recording ...` on a real SQLite file, as a technician types it: rules added, listed and
removed, refusals with the store's message and exit code 2, settings shown and changed, and
the recordings listed with why a deleted one went."""

from __future__ import annotations

from pathlib import Path

from appliance.store import recordings
from appliance.store.db import open_db
from tests.conftest import pbx_cli


def test_rules_settings_and_list(tmp_path: Path) -> None:
    data = tmp_path / "var"
    out = pbx_cli(data, "recording", "rules").stdout
    assert out == "no recording rules: calls are recorded only by the feature code\n"
    out = pbx_cli(data, "recording", "add-rule", "direction", "inbound", "--retention-days",
                  "30").stdout  # fmt: skip
    assert out.startswith("recording rule 1 added: direction inbound")
    pbx_cli(data, "recording", "add-rule", "extension", "105", "--no-record", "--consent")
    lines = pbx_cli(data, "recording", "rules").stdout.splitlines()
    assert lines[0].split() == ["2", "extension", "105", "do", "not", "record", "keep", "default",
                                "consent", "announcement"]  # fmt: skip
    assert lines[1].split() == ["1", "direction", "inbound", "record", "keep", "30", "days"]
    refused = pbx_cli(data, "recording", "add-rule", "direction", "up", check=False)
    assert refused.returncode == 2
    assert refused.stderr == ("pbx: error: the direction must be one of inbound, outbound,"
                              " internal\n")  # fmt: skip
    assert pbx_cli(data, "recording", "remove-rule", "1").stdout == "recording rule 1 removed\n"
    gone = pbx_cli(data, "recording", "remove-rule", "1", check=False)
    assert (gone.returncode, gone.stderr) == (2, "pbx: error: there is no recording rule 1\n")

    out = pbx_cli(data, "recording", "settings", "recording.quota_mib", "512").stdout
    assert "recording.quota_mib = 512  # most space all recordings may take" in out
    bad = pbx_cli(data, "recording", "settings", "recording.feature_code", "99", check=False)
    assert bad.returncode == 2 and "the feature code must be * or #" in bad.stderr

    db = open_db(data)
    try:
        rec = recordings.add(db, "c1", "recordings/2026/01/01/c1-1.ogg", 1_767_225_600, 61.5, 99)
        recordings.mark_deleted(db, rec.id, "quota")
    finally:
        db.conn.close()
    assert pbx_cli(data, "recording", "list").stdout == "no recordings\n"
    (line,) = pbx_cli(data, "recording", "list", "--deleted").stdout.splitlines()
    assert " c1 " in line and "61.5 s" in line and line.endswith("c1-1.ogg  deleted (quota)")
