"""`pbx lines`: the analog gateway (`pbx-lines`) from the command line. It runs the gateway in
the foreground, shows the ports' live state from its control socket (`DATA/run/lines.sock`),
lets a person at the demo "pick up" a simulated handset, and edits the ports' configuration
in the store. Wired into `appliance.cli` by `add_commands`."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance import control
from appliance.i18n import T
from appliance.lines.boards import BoardProfileError, Driver, load_profile, shipped_profiles
from appliance.lines.sim import READY as SIM_READY
from appliance.store import ports
from appliance.store.db import open_db, transaction

Command = Callable[..., argparse.ArgumentParser]

GATEWAY_MODULE = "appliance.lines.gateway"
"""The gateway process's entry point (`python -m appliance.lines.gateway`)."""
SIM_MODULE = "appliance.lines.sim"


class LinesError(Exception):
    """`pbx lines` cannot do what was asked: the gateway is down or refused the command, or
    the port's change is invalid. `str()` says which, for a technician."""


ERRORS = (LinesError,)
"""What `pbx lines` reports as a refusal (exit status 2) rather than a crash."""


def _ask(data: Path, cmd: str, **args: Any) -> dict[str, Any]:
    """One command to the running gateway; a refusal names the problem."""
    try:
        return control.call_at(
            control.lines_socket_path(data), cmd, 5.0, "the analog gateway (pbx lines run)", **args
        )
    except control.ControlError as exc:
        raise LinesError(str(exc)) from None
    except (OSError, ValueError) as exc:  # it closed or answered garbage: say so, no traceback
        raise LinesError(T("the analog gateway did not answer: {error}", error=exc)) from None


def gateway_argv(
    data: Path, board: str, sip_port: int | None, core: str = "127.0.0.1:5060"
) -> list[str]:
    """The command line that runs the gateway process (what `pbx lines run` becomes)."""
    argv = [sys.executable, "-m", GATEWAY_MODULE, "--data", str(data), "--board", board,
            "--core", core]  # fmt: skip
    if sip_port is not None:
        argv += ["--sip", f"{ports.GATEWAY_HOST}:{sip_port}"]
    return argv


def _profile_path(board: str) -> Path:
    if Path(board).is_file():
        return Path(board)
    shipped = shipped_profiles()
    if board not in shipped:
        raise LinesError(T("there is no board profile {name}; shipped: {names}", name=board,
                           names=", ".join(sorted(shipped))))  # fmt: skip
    return shipped[board]


def cmd_lines_run(args: argparse.Namespace) -> int:
    """Replace this process by the gateway's: the same PID, so systemd (Type=notify, the
    gateway's READY=1) and `./setup.sh run` (which stops it by PID) keep tracking it. With a
    simulated board, run the simulator and the gateway as this process's children instead,
    and stop both when this process is told to stop."""
    board = args.board
    if board is None:
        db = open_db(args.data)
        try:
            board = ports.board(db)
        finally:
            db.conn.close()
    path = _profile_path(board)
    try:
        profile = load_profile(path)
    except BoardProfileError as exc:
        raise LinesError(str(exc)) from None
    argv = gateway_argv(args.data, str(path), args.sip_port, args.core)
    if profile.driver is Driver.SIM:
        return _run_with_sim(args.data, path, argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)
    return 1  # not reached


def _run_with_sim(data: Path, profile: Path, gateway: list[str]) -> int:
    """The demo's board: `python -m appliance.lines.sim` (its pty, control socket and ALSA
    files under DATA/run/lines-sim), then the gateway on them, until SIGTERM or SIGINT."""
    where = data / "run" / "lines-sim"
    device, control_path = where / "ttySIM", where / "board.sock"
    sim = subprocess.Popen(
        [sys.executable, "-m", SIM_MODULE, "--profile", str(profile), "--device", str(device),
         "--control", str(control_path), "--audio-dir", str(where)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert sim.stdout is not None
    ready = sim.stdout.readline()
    if not ready.startswith(SIM_READY):
        sim.wait(timeout=10)
        raise LinesError(T("the simulated board did not start (exit status {status})",
                           status=sim.returncode))  # fmt: skip
    print(ready, end="", flush=True)
    copier = threading.Thread(target=_copy_lines, args=(sim.stdout,), daemon=True)
    copier.start()  # the simulator's later lines, in this process's output
    asoundrc = ready.rpartition("ALSA_CONFIG_PATH=")[2].strip()
    env = {**os.environ, "ALSA_CONFIG_PATH": asoundrc}
    gw = subprocess.Popen([*gateway, "--device", str(device), "--sim-control", str(control_path)],
                          env=env)  # fmt: skip

    def stop(*_: object) -> None:
        if gw.poll() is None:
            gw.terminate()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    try:
        status = gw.wait()
    finally:
        stop()
        gw.wait()
        sim.terminate()
        try:
            sim.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sim.kill()
            sim.wait()
    copier.join(timeout=5)
    return status


def _copy_lines(source: Any) -> None:
    for line in source:
        print(line, end="", flush=True)


def _when(at: object) -> str:
    if not isinstance(at, int | float):
        return "-"
    return time.strftime("%H:%M:%S", time.localtime(at))


def cmd_lines_status(args: argparse.Namespace) -> int:
    status = _ask(args.data, "status")
    print(f"board: {status.get('board', 'unknown')}")
    for p in status.get("ports", []):
        registered = "registered" if p.get("registered") else "not registered"
        last = p.get("last_event") or "-"
        print(
            f"port {p.get('port')}  {p.get('kind', '?'):<3}  {p.get('state', '?'):<9}  "
            f"{registered:<14}  last: {last} at {_when(p.get('at'))}"
        )
    if not status.get("ports"):
        print("no ports")
    return 0


def cmd_lines_sim(args: argparse.Namespace) -> int:
    """Hand one text command to the simulated board, through the gateway that owns it."""
    line = " ".join([args.verb, *args.args])
    reply = _ask(args.data, "sim", command=line)
    answer = reply.get("reply", "ok")
    text = answer if isinstance(answer, str) else str(answer)
    print(text)
    return 2 if text.startswith("error") else 0


def cmd_lines_ports(args: argparse.Namespace) -> int:
    rows = ports.list_all(open_db(args.data))
    for p in rows:
        target = f"extension {p.extension}" if p.kind == "fxs" else f"trunk {p.trunk}"
        print(f"port {p.port}  {p.kind}  {target:<20}  caller ID {p.caller_id}")
    if not rows:
        print("no ports configured (pbx run --demo makes the simulated board's)")
    return 0


def cmd_lines_set(args: argparse.Namespace) -> int:
    if args.extension is None and args.caller_id is None:
        raise LinesError(T("give --extension or --caller-id"))
    db = open_db(args.data)
    current = ports.get(db, args.port)
    if current is None:
        raise LinesError(T("there is no port {port}", port=args.port))
    if args.extension is not None and current.kind != "fxs":
        raise LinesError(T("port {port} is a city line (FXO): it has no extension",
                           port=args.port))  # fmt: skip
    extension = current.extension if args.extension is None else args.extension
    same = extension == current.extension  # another extension: the port gets a new password
    try:
        if any(p.extension == extension and p.port != args.port for p in ports.list_all(db)):
            raise ports.PortError(T("extension {number} is already another port's",
                                    number=extension), "extension")  # fmt: skip
        with transaction(db):  # a refused change leaves every password as it was
            ports.set_port(
                db, args.port, current.kind, extension=extension,
                password=current.password if same else "", trunk=current.trunk,
                caller_id=args.caller_id or current.caller_id,
            )  # fmt: skip
    except ports.PortError as exc:
        raise LinesError(str(exc)) from None
    print(
        f"port {args.port} saved; a running gateway applies it within seconds, once none of "
        "its ports is in use"
    )
    return 0


def add_commands(sub: Any, command: Command) -> None:
    """Add `lines` to the `pbx` parser's subcommands."""
    top = command(sub, "lines", "the analog gateway (pbx-lines): FXS/FXO ports", None)
    lsub = top.add_subparsers(dest="lines_command", required=True, metavar="COMMAND")
    p = command(lsub, "run", "run the analog gateway in the foreground", cmd_lines_run)
    p.add_argument("--board", metavar="NAME",
                   help="board profile from hw/boards (default: the setting lines.board, "
                        "sim for the simulated board)")  # fmt: skip
    p.add_argument("--sip-port", type=int, metavar="PORT",
                   help="the gateway's own SIP port on 127.0.0.1 for the FXS ports (default "
                        "5070); the FXO lines answer on the next one")  # fmt: skip
    p.add_argument("--core", metavar="HOST:PORT", default="127.0.0.1:5060",
                   help="where the core's SIP listens (default 127.0.0.1:5060)")  # fmt: skip
    command(lsub, "status", "show each port's live state and the board's", cmd_lines_status)
    p = command(lsub, "sim", "act on the simulated board as a person at a handset would",
                cmd_lines_sim)  # fmt: skip
    p.add_argument("verb", help="offhook N, onhook N, flash N [MS], dial N DIGITS (pulse), "
                                "ring N, ringstop N, reversal N, loopdrop N [MS], cut, "
                                "restore, state")  # fmt: skip
    p.add_argument("args", nargs="*", help="the port number, then the verb's values")
    command(lsub, "ports", "list the configured ports", cmd_lines_ports)
    p = command(lsub, "set", "change an FXS port's extension or caller-ID standard",
                cmd_lines_set)  # fmt: skip
    p.add_argument("port", type=int, help="port number, 1 first, in the board profile's order")
    p.add_argument("--extension", metavar="N", help="the extension the port registers as")
    p.add_argument("--caller-id", choices=ports.CALLER_ID,
                   help="how caller ID reaches the handset: etsi-fsk (V.23 before the first "
                        "ring), bell202 (after it), dtmf, none")  # fmt: skip
