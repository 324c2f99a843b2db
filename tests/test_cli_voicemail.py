"""`pbx voicemail ...` on a real SQLite file, as a technician types it: a mailbox made and
changed (the PIN stored hashed, given on the command line or on the standard input, never
printed), refusals with the store's message and exit code 2, messages listed, saved and deleted
with their file, and a mailbox removed with its folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from appliance.store import voicemail
from appliance.store.db import open_db
from tests.conftest import pbx_cli


def left_message(data: Path, number: str, caller: str) -> voicemail.Message:
    """A message row with a file of some bytes (the CLI never decodes it)."""
    db = open_db(data)
    try:
        rel = voicemail.message_path(number, 1_767_225_600, caller)
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_bytes(b"OggS" + bytes(60))
        return voicemail.add_message(db, number, path=rel, started_at=1_767_225_600,
                                     seconds=12.5, caller=caller, caller_name="Anna")  # fmt: skip
    finally:
        db.conn.close()


def mailbox(data: Path, number: str) -> voicemail.Mailbox | None:
    db = open_db(data)
    try:
        return voicemail.mailbox(db, number)
    finally:
        db.conn.close()


def pin_opens(data: Path, number: str, pin: str) -> bool:
    db = open_db(data)
    try:
        return voicemail.verify_pin(db, number, pin)
    finally:
        db.conn.close()


def test_a_mailbox_is_made_changed_listed_and_refused(tmp_path: Path) -> None:
    data = tmp_path / "var"
    pbx_cli(data, "ext", "add", "101", "--name", "Anna")
    assert pbx_cli(data, "voicemail", "list").stdout == "no mailboxes\n"
    out = pbx_cli(data, "voicemail", "set", "101", "--pin", "2468", "--email", "anna@example.com",
                  "--no-on-busy", "--max-seconds", "90").stdout  # fmt: skip
    assert out == "mailbox 101 added (PIN set)\n"
    assert pin_opens(data, "101", "2468")
    db_bytes = b"".join(p.read_bytes() for p in data.glob("pbx.sqlite3*"))
    assert b"2468" not in db_bytes
    (line,) = pbx_cli(data, "voicemail", "list").stdout.splitlines()
    assert line.split() == ["101", "on", "0", "new,", "0", "saved", "PIN", "set", "greeting",
                            "default", "max", "90", "s", "on", "no", "answer", "e-mail",
                            "anna@example.com"]  # fmt: skip
    (row,) = json.loads(pbx_cli(data, "voicemail", "list", "--json").stdout)
    assert row["on_busy"] is False and row["has_pin"] is True and "pin" not in row

    # the PIN on the standard input, so no process list shows it
    run = subprocess.run(
        [sys.executable, "-m", "appliance", "--data", str(data), "voicemail", "set", "101",
         "--pin", "-"], input="97531\n", capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert run.stdout == "mailbox 101 changed (PIN set)\n" and "97531" not in run.stdout
    assert pin_opens(data, "101", "97531") and not pin_opens(data, "101", "2468")
    box = mailbox(data, "101")
    assert box is not None and box.email == "anna@example.com" and not box.on_busy  # kept

    for argv, message in (
        (["--pin", "12"], "the PIN must be 4 to 10 digits"),
        (["--email", "nobody"], "this is not an e-mail address: nobody"),
        (["--max-seconds", "5"], "a message may last 10 to 600 seconds"),
        (["--greeting", "custom"], "a custom greeting needs a recorded file"),
        (["--greeting-prompt", "nope"], "there is no custom prompt nope"),
    ):
        refused = pbx_cli(data, "voicemail", "set", "101", *argv, check=False)
        assert (refused.returncode, refused.stderr) == (2, f"pbx: error: {message}\n"), argv
    refused = pbx_cli(data, "voicemail", "set", "555", check=False)
    assert (refused.returncode, refused.stderr) == (2, "pbx: error: there is no extension 555\n")
    assert pbx_cli(data, "voicemail", "set", "101", "--no-pin").stdout == (
        "mailbox 101 changed (no PIN)\n"
    )
    assert not pin_opens(data, "101", "97531")


def test_messages_are_listed_saved_deleted_and_the_mailbox_removed(tmp_path: Path) -> None:
    data = tmp_path / "var"
    pbx_cli(data, "ext", "add", "101")
    pbx_cli(data, "voicemail", "set", "101")
    first, second = left_message(data, "101", "102"), left_message(data, "101", "103")
    lines = pbx_cli(data, "voicemail", "messages", "101").stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [[str(first.id), "new"], [str(second.id), "new"]]
    assert "12.5 s  102 Anna" in lines[0] and lines[0].endswith(first.path)
    out = pbx_cli(data, "voicemail", "save-message", str(first.id)).stdout
    assert out == f"message {first.id} moved to saved\n"
    saved = pbx_cli(data, "voicemail", "messages", "101", "--folder", "saved").stdout
    assert saved.split()[:2] == [str(first.id), "saved"] and saved.count("\n") == 1
    assert "1 new, 1 saved" in pbx_cli(data, "voicemail", "list").stdout

    out = pbx_cli(data, "voicemail", "delete-message", str(second.id)).stdout
    assert out == f"message {second.id} of mailbox 101 deleted\n"
    assert not (data / second.path).exists() and (data / first.path).exists()
    again = pbx_cli(data, "voicemail", "delete-message", str(second.id), check=False)
    assert (again.returncode, again.stderr) == (2, f"pbx: error: there is no message {second.id}\n")
    gone = pbx_cli(data, "voicemail", "messages", "999", check=False)
    assert (gone.returncode, gone.stderr) == (2, "pbx: error: there is no mailbox 999\n")

    out = pbx_cli(data, "voicemail", "remove", "101").stdout
    assert out == "mailbox 101 removed with its messages\n"
    assert not (data / voicemail.FOLDER / "101").exists() and mailbox(data, "101") is None
    assert pbx_cli(data, "voicemail", "list").stdout == "no mailboxes\n"
