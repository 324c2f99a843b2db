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


TRUNK_SECRET = "Pr0vider-Secret-42"


def office(tmp_path: Path) -> None:
    pbx_cli(tmp_path, "config", "set", "office.country", "RU")
    pbx_cli(tmp_path, "config", "set", "office.area_code", "495")
    pbx_cli(tmp_path, "ext", "add", "101", "--name", "Reception")


def test_trunk_life_cycle_keeps_the_password_out_of_argv_and_listings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PBX_TRUNK_PASSWORD", TRUNK_SECRET)
    out = pbx_cli(tmp_path, "trunk", "add", "sipnet", "--server", "sip.example.net:5060",
                  "--username", "123456", "--password", "-", "--codecs", "pcma,g722",
                  "--late-offer").stdout  # fmt: skip
    assert out == "trunk sipnet added (register, sip.example.net:5060)\n"
    monkeypatch.delenv("PBX_TRUNK_PASSWORD")
    pbx_cli(tmp_path, "trunk", "add", "hq", "--kind", "ip", "--server", "10.1.0.2",
            "--match", "10.1.0.0/24", "--transport", "tcp", "--disable")  # fmt: skip
    listing = pbx_cli(tmp_path, "trunk", "list").stdout
    assert TRUNK_SECRET not in listing
    lines = listing.splitlines()
    assert lines[0] == "hq  ip  tcp 10.1.0.2  (disabled)"
    assert lines[2] == "sipnet  register  udp sip.example.net:5060"
    assert ", password ********, " in lines[3] and ", codecs PCMA,G722, " in lines[3]
    assert ", late-offer yes, " in lines[3] and ", match 10.1.0.0/24, " in lines[1]
    with sqlite3.connect(tmp_path / "pbx.sqlite3") as conn:
        assert conn.execute("SELECT password FROM trunks WHERE name = 'sipnet'").fetchone() == (
            TRUNK_SECRET,
        )
    out = pbx_cli(tmp_path, "trunk", "set", "sipnet", "--no-late-offer", "--max-calls", "4").stdout
    assert out == "trunk sipnet changed\n"
    assert ", max-calls 4, " in pbx_cli(tmp_path, "trunk", "list").stdout.splitlines()[3]
    assert pbx_cli(tmp_path, "trunk", "remove", "hq").stdout == "trunk hq removed\n"
    assert pbx_cli(tmp_path, "trunk", "list").stdout.splitlines()[0].startswith("sipnet  ")
    pbx_cli(tmp_path, "trunk", "remove", "sipnet")
    assert pbx_cli(tmp_path, "trunk", "list").stdout == "no trunks\n"


def test_a_trunk_password_can_be_typed_when_asked(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PBX_TRUNK_PASSWORD"}
    result = subprocess.run(
        [sys.executable, "-m", "appliance", "--data", str(tmp_path), "trunk", "add", "sipnet",
         "--server", "sip.example.net", "--username", "u1", "--password", "-"],
        input=f"{TRUNK_SECRET}\n", capture_output=True, text=True, env=env, timeout=60, check=False,
        start_new_session=True,  # no controlling terminal: getpass reads the piped input
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert TRUNK_SECRET not in result.stdout + result.stderr
    with sqlite3.connect(tmp_path / "pbx.sqlite3") as conn:
        assert conn.execute("SELECT password FROM trunks").fetchone() == (TRUNK_SECRET,)


def test_dids_routes_and_extension_settings(tmp_path: Path) -> None:
    office(tmp_path)
    pbx_cli(tmp_path, "trunk", "add", "sipnet", "--kind", "ip", "--server", "192.0.2.1")
    pbx_cli(tmp_path, "trunk", "add", "backup", "--kind", "ip", "--server", "192.0.2.2")
    out = pbx_cli(tmp_path, "did", "add", "8 (495) 123-45-67", "--to", "extension:101",
                  "--label", "Main", "--trunk", "sipnet").stdout  # fmt: skip
    assert out == "DID +74951234567 added: calls go to extension 101 (Reception)\n"
    pbx_cli(tmp_path, "did", "add", "100", "--to", "hangup:busy")
    assert pbx_cli(tmp_path, "did", "list").stdout.splitlines() == [
        "+74951234567      Main                  trunk sipnet  -> extension 101 (Reception)",
        "100               -                     any trunk  -> hang up (busy)",
    ]
    out = pbx_cli(
        tmp_path, "did", "set", "100", "--to", "hangup:congestion", "--label", "Old"
    ).stdout
    assert out == "DID 100 changed: calls go to hang up (congestion)\n"

    assert pbx_cli(tmp_path, "route", "add", "city", "--pattern", "8XXXXXXXXXX", "--pattern",
                   "9|8XXXXXXXXXX", "--trunk", "sipnet", "--trunk", "backup", "--caller-id",
                   "+74951234567").stdout == "route city added at position 1\n"  # fmt: skip
    assert pbx_cli(tmp_path, "route", "add", "intl", "--pattern", "810X.", "--trunk", "sipnet",
                   "--prepend", "9", "--position", "1").stdout == (
        "route intl added at position 1\n"
    )  # fmt: skip
    assert pbx_cli(tmp_path, "route", "list").stdout.splitlines() == [
        " 1. intl  810X.  via sipnet  prepend 9",
        " 2. city  8XXXXXXXXXX,9|8XXXXXXXXXX  via sipnet > backup  caller ID +74951234567",
    ]
    assert pbx_cli(tmp_path, "route", "move", "city", "1").stdout == (
        "route city is now at position 1\n"
    )
    pbx_cli(tmp_path, "route", "set", "intl", "--trunk", "backup")
    assert pbx_cli(tmp_path, "route", "list").stdout.splitlines()[1] == (
        " 2. intl  810X.  via backup  prepend 9"
    )

    out = pbx_cli(tmp_path, "ext", "set", "101", "--permissions", "local,international",
                  "--caller-id", "84951234567").stdout  # fmt: skip
    assert out == (
        "extension 101 changed: may call internal,local,international; caller ID +74951234567;"
        " media encryption optional; outbound calls at once the default"
        " (tollfraud.max_outbound_calls)\n"
    )
    assert pbx_cli(tmp_path, "ext", "list").stdout == (
        "   101  Reception  (may call internal,local,international; caller ID +74951234567)\n"
    )

    result = pbx_cli(tmp_path, "did", "remove", "+74951234567", check=False)
    assert (result.returncode, result.stderr) == (2, "pbx: error: DID +74951234567 is the caller"
                                                  " ID of extension 101, route city; change"
                                                  " that first\n")  # fmt: skip
    result = pbx_cli(tmp_path, "trunk", "remove", "sipnet", check=False)
    assert result.stderr == (
        "pbx: error: trunk sipnet is used by route city, DID +74951234567; change that first\n"
    )
    pbx_cli(tmp_path, "ext", "set", "101", "--caller-id", "")
    pbx_cli(tmp_path, "route", "remove", "city")
    assert pbx_cli(tmp_path, "did", "remove", "8 495 123 45 67").stdout == (
        "DID +74951234567 removed\n"
    )
    assert pbx_cli(tmp_path, "route", "remove", "intl").stdout == "route intl removed\n"
    pbx_cli(tmp_path, "did", "remove", "100")
    assert pbx_cli(tmp_path, "did", "list").stdout == "no DIDs\n"
    assert pbx_cli(tmp_path, "route", "list").stdout == "no routes\n"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["trunk", "add", "Bad Name", "--server", "x.example"],
         "trunk name must be 1 to 32 lower-case letters, digits, '-' or '_', starting with a"
         " letter or digit, not 'Bad Name'"),
        (["trunk", "add", "t", "--server", "x.example:70000", "--kind", "ip"],
         "server x.example:70000: the port must be 1 to 65535"),
        (["trunk", "add", "t", "--server", "x.example"],
         "a register trunk needs a username (the account at the provider)"),
        (["trunk", "add", "t", "--server", "x.example", "--kind", "ip", "--codecs", "opus"],
         "codecs must list some of PCMA, PCMU, G722, each once, most preferred first, not"
         " 'opus'"),
        (["trunk", "add", "t", "--server", "x.example", "--kind", "ip", "--did-from", "from"],
         "DID source must be auto, request-uri, to or header:NAME, not 'from'"),
        (["trunk", "set", "nope", "--max-calls", "3"], "no trunk nope"),
        (["trunk", "set", "nope"], "nothing to change: give the options to set (see --help)"),
        (["trunk", "remove", "nope"], "no trunk nope"),
        (["did", "add", "100", "--to", "extension:101"],
         "100 is already the DID 100"),
        (["did", "add", "101", "--to", "hangup:busy"], "101 is already extension 101 (Reception)"),
        (["did", "add", "+74951234568", "--to", "route:city"],
         "calls from outside cannot go to an outbound route (route:city)"),
        (["did", "add", "+74951234568", "--to", "extension:555"], "there is no extension 555"),
        (["did", "add", "84951234", "--to", "hangup:busy"],
         "84951234 is not a complete number in RU: give it in international form (+7...) or as"
         " a short number of up to 6 digits"),
        (["did", "set", "+74959999999", "--label", "x"], "no DID +74959999999"),
        (["did", "remove", "+74959999999"], "no DID +74959999999"),
        (["route", "add", "r", "--pattern", "8[XX", "--trunk", "sipnet"],
         "pattern '8[XX': unclosed '[' at 1"),
        (["route", "add", "r", "--pattern", "8X.", "--trunk", "gone"], "there is no trunk 'gone'"),
        (["route", "add", "r", "--pattern", "8X.", "--trunk", "sipnet", "--caller-id",
          "+74950000000"],
         "caller ID +74950000000 is not one of the office's numbers (DIDs)"),
        (["route", "add", "r", "--pattern", "8X.", "--trunk", "sipnet", "--prepend", "9#"],
         "prepend may hold only digits, after an optional leading +, not '9#'"),
        (["route", "move", "nope", "1"], "no route nope"),
        (["ext", "set", "101", "--permissions", "local,satellite"],
         "unknown permission class 'satellite'; known: internal, local, mobile, long-distance,"
         " international, premium"),
        (["ext", "set", "101", "--caller-id", "+74950000000"],
         "caller ID +74950000000 is not one of the office's numbers (DIDs)"),
        (["ext", "set", "999", "--permissions", "local"], "no extension 999"),
        (["ext", "set", "101"], "nothing to change: give --name, --permissions, --caller-id,"
         " --media-encryption or --max-calls"),
        (["ext", "add", "100"], "100 is already the DID 100"),
        (["ext", "remove", "101"],
         "extension 101 is the destination of DID +74951234567; change that first"),
        (["config", "set", "dialplan.unknown_did", "extension:555"],
         "dialplan.unknown_did: there is no extension 555"),
        (["config", "set", "office.area_code", "49a"],
         "office.area_code must be at most 5 digits, not '49a'"),
    ],
)  # fmt: skip
def test_bad_trunk_did_and_route_input_gets_a_clear_error_and_changes_nothing(
    tmp_path: Path, args: list[str], error: str
) -> None:
    office(tmp_path)
    pbx_cli(tmp_path, "trunk", "add", "sipnet", "--kind", "ip", "--server", "192.0.2.1")
    pbx_cli(tmp_path, "did", "add", "100", "--to", "hangup:busy")
    pbx_cli(tmp_path, "did", "add", "+74951234567", "--to", "extension:101")
    before = dump(tmp_path)
    result = pbx_cli(tmp_path, *args, check=False)
    assert (result.returncode, result.stderr) == (2, f"pbx: error: {error}\n")
    assert dump(tmp_path) == before


def dump(data: Path) -> list[str]:
    conn = sqlite3.connect(data / "pbx.sqlite3")
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def test_changes_ask_a_running_core_to_reload(tmp_path: Path) -> None:
    import json
    import socketserver
    import threading

    asked: list[str] = []

    class Core(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            asked.append(json.loads(self.rfile.readline())["cmd"])
            self.wfile.write(b'{"ok": true}\n')

    (tmp_path / "run").mkdir()
    with socketserver.UnixStreamServer(str(tmp_path / "run" / "core.sock"), Core) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            office(tmp_path)
            asked.clear()
            for args in (
                ["trunk", "add", "t1", "--kind", "ip", "--server", "192.0.2.1"],
                ["trunk", "set", "t1", "--max-calls", "2"],
                ["did", "add", "+74951234567", "--to", "extension:101"],
                ["did", "set", "+74951234567", "--label", "Main"],
                ["route", "add", "r1", "--pattern", "8X.", "--trunk", "t1"],
                ["route", "add", "r2", "--pattern", "9X.", "--trunk", "t1"],
                ["route", "set", "r1", "--prepend", "0"],
                ["route", "move", "r2", "1"],
                ["ext", "set", "101", "--permissions", "local"],
                ["route", "remove", "r1"],
                ["route", "remove", "r2"],
                ["did", "remove", "+74951234567"],
                ["trunk", "remove", "t1"],
            ):
                pbx_cli(tmp_path, *args)
                assert asked == ["reload"], args
                asked.clear()
            pbx_cli(tmp_path, "trunk", "list")
            pbx_cli(tmp_path, "did", "list")
            pbx_cli(tmp_path, "route", "list")
            assert asked == []  # listing changes nothing
        finally:
            server.shutdown()
