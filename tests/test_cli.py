"""The `pbx` command: every command documented and helped; behaviour on a real SQLite file."""

from __future__ import annotations

import argparse
import re
import sqlite3
from pathlib import Path

import pytest

from appliance.cli import build_parser
from tests.conftest import pbx_cli

README = (Path(__file__).parent.parent / "README.md").read_text()


def command_paths(parser: argparse.ArgumentParser, prefix: str = "pbx") -> list[tuple[str, str]]:
    """(path, help) for every leaf command, e.g. ("pbx ext add", "add an extension; ...")."""
    found: list[tuple[str, str]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                path = f"{prefix} {name}"
                children = command_paths(sub, path)
                found.extend(children or [(path, helps.get(name, ""))])
    return found


COMMANDS = command_paths(build_parser())


def test_the_command_tree_is_what_the_readme_promises() -> None:
    paths = {path for path, _ in COMMANDS}
    assert {"pbx run", "pbx db migrate", "pbx ext add", "pbx ext list", "pbx ext remove",
            "pbx ext passwd", "pbx status"} <= paths  # fmt: skip


@pytest.mark.parametrize(("path", "text"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_every_command_has_help_and_is_in_the_readme(path: str, text: str) -> None:
    assert text.strip(), f"{path} has no help text"
    assert f"`{path}" in README, f"{path} is missing from README.md"
    words = path.split()[1:]
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*words, "--help"])
    assert exit_.value.code == 0


@pytest.mark.parametrize(("path", "_text"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_every_option_has_help(path: str, _text: str) -> None:
    parser = build_parser()
    for word in path.split()[1:]:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[word]
    for action in parser._actions:
        if not isinstance(action, argparse._HelpAction):
            assert action.help, f"{path}: {action.dest} has no help"


def test_extension_life_cycle(tmp_path: Path) -> None:
    out = pbx_cli(tmp_path, "ext", "add", "201", "--name", "Reception").stdout
    password = re.fullmatch(r"extension 201 password (\S+)\n", out)
    assert password is not None and len(password[1]) >= 10
    assert "201  Reception" in pbx_cli(tmp_path, "ext", "list").stdout
    new = pbx_cli(tmp_path, "ext", "passwd", "201").stdout.split()[-1]
    assert new != password[1]
    db_bytes = b"".join(p.read_bytes() for p in tmp_path.glob("pbx.sqlite3*"))
    assert password[1].encode() not in db_bytes and new.encode() not in db_bytes
    assert pbx_cli(tmp_path, "ext", "remove", "201").stdout == "extension 201 removed\n"
    assert pbx_cli(tmp_path, "ext", "list").stdout == "no extensions\n"


def test_removing_an_extension_removes_its_registrations(tmp_path: Path) -> None:
    pbx_cli(tmp_path, "ext", "add", "201")
    with sqlite3.connect(tmp_path / "pbx.sqlite3") as conn:
        conn.execute(
            "INSERT INTO registrations VALUES ('201', 'k', '<sip:201@h>', 9e9, 'c', 1, NULL,"
            " 'UDP', 'UDP h:1', '', 0)"
        )
    pbx_cli(tmp_path, "ext", "remove", "201")
    with sqlite3.connect(tmp_path / "pbx.sqlite3") as conn:
        assert conn.execute("SELECT COUNT(*) FROM registrations").fetchone() == (0,)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["ext", "add", "1"], "extension number must be 2 to 6 digits, not '1'"),
        (["ext", "add", "12a"], "extension number must be 2 to 6 digits, not '12a'"),
        (["ext", "add", "201", "--password", "short1"],
         "SIP password must be at least 10 characters"),
        (["ext", "add", "201", "--password", "abcdefghijkl"],
         "SIP password is too weak: mix letters and digits, and do not include the number"),
        (["ext", "add", "201", "--password", "x201y201z201"],
         "SIP password is too weak: mix letters and digits, and do not include the number"),
        (["ext", "remove", "999"], "no extension 999"),
        (["ext", "passwd", "999"], "no extension 999"),
        (["config", "set", "sip.min_expires", "0"], "sip.min_expires must be between 1 and 3600"),
        (["config", "set", "sip.min_expires", "ten"],
         "sip.min_expires must be a whole number, not 'ten'"),
        (["config", "set", "sip.digest_algorithms", "MD5,SHA-1"],
         "sip.digest_algorithms must list some of SHA-256, MD5 once each, in order"),
        (["config", "set", "sip.realm", "x"], "unknown setting 'sip.realm'; known: "),
    ],
)  # fmt: skip
def test_bad_input_gets_a_clear_error_and_changes_nothing(
    tmp_path: Path, args: list[str], error: str
) -> None:
    before = pbx_cli(tmp_path, "config", "get").stdout
    result = pbx_cli(tmp_path, *args, check=False)
    assert result.returncode == 2
    assert result.stderr.startswith(f"pbx: error: {error}")
    assert "Traceback" not in result.stderr
    assert pbx_cli(tmp_path, "ext", "list").stdout == "no extensions\n"
    assert pbx_cli(tmp_path, "config", "get").stdout == before


def test_duplicate_extension_is_refused(tmp_path: Path) -> None:
    pbx_cli(tmp_path, "ext", "add", "201", "--name", "First")
    result = pbx_cli(tmp_path, "ext", "add", "201", "--name", "Second", check=False)
    assert (result.returncode, result.stderr) == (2, "pbx: error: extension 201 already exists\n")
    assert "201  First" in pbx_cli(tmp_path, "ext", "list").stdout


def test_config_set_and_get(tmp_path: Path) -> None:
    assert pbx_cli(tmp_path, "config", "set", "sip.digest_algorithms", "sha-256, md5").stdout == (
        "sip.digest_algorithms = SHA-256,MD5\n"
    )
    assert pbx_cli(tmp_path, "config", "get", "sip.digest_algorithms").stdout.startswith(
        "sip.digest_algorithms = SHA-256,MD5    # "
    )


def test_status_without_a_running_core_reads_the_database(tmp_path: Path) -> None:
    out = pbx_cli(tmp_path, "status").stdout
    assert out.startswith("core: not running")
    assert "registrations: 0" in out


def test_data_directory_comes_from_the_environment(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "PBX_DATA": str(tmp_path / "elsewhere")}
    subprocess.run([sys.executable, "-m", "appliance", "ext", "add", "301"], env=env,
                   check=True, capture_output=True)  # fmt: skip
    assert (tmp_path / "elsewhere" / "pbx.sqlite3").exists()


def test_run_on_a_busy_port_says_so(tmp_path: Path) -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        result = pbx_cli(tmp_path, "run", "--sip", f"127.0.0.1:{port}", check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith(
        f"pbx: error: cannot listen for SIP on 127.0.0.1:{port}: "
    )
    assert "Traceback" not in result.stderr + result.stdout


def test_unusable_data_directory_says_so(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    result = pbx_cli(not_a_dir, "ext", "list", check=False)
    assert (result.returncode, "Traceback" in result.stderr) == (1, False)
    assert result.stderr.startswith(f"pbx: error: {not_a_dir}: ")


def test_a_given_password_is_confirmed_never_echoed(tmp_path: Path) -> None:
    out = pbx_cli(tmp_path, "ext", "add", "201", "--password", "Given-pass-123").stdout
    assert out == "extension 201 added\n"
    out = pbx_cli(tmp_path, "ext", "passwd", "201", "--password", "Other-pass-456").stdout
    assert out == "extension 201 password changed\n"
