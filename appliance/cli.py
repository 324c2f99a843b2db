"""The `pbx` command: runs the services and manages the box from a shell."""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from appliance import __version__, control
from appliance.service import reexec
from appliance.store import extensions, registrations, settings
from appliance.store.db import open_db
from appliance.store.extensions import ExtensionError
from appliance.store.migrations import current_version, migrate
from appliance.store.settings import SettingError

DEMO_EXTENSIONS = ("101", "102", "103", "104")


def _hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def cmd_run(args: argparse.Namespace) -> int:
    db = open_db(args.data)
    if args.demo and not extensions.list_all(db):
        print("Demo extensions (passwords are shown only now):")
        for number in DEMO_EXTENSIONS:
            password = extensions.add(db, number, f"Demo {number}")
            print(f"  {number}  password {password}")
    db.conn.close()
    # The core's stack (SIP, media, uvloop) is loaded here only, not by `pbx web` or the CLI.
    from appliance.pbx.core import CoreError, CoreOptions, run_core

    host, port = args.sip
    try:
        restart = run_core(CoreOptions(args.data, host, port))
    except CoreError as exc:
        print(f"pbx: error: {exc}", file=sys.stderr)
        return 1
    if restart:
        reexec()
    return 0


def cmd_web(args: argparse.Namespace) -> int:
    from appliance.web.server import ServeError, serve  # Flask: loaded by the web service only

    host, port = args.listen
    try:
        serve(args.data, host, port, https=args.https)
    except ServeError as exc:
        print(f"pbx: error: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_db_migrate(args: argparse.Namespace) -> int:
    db = open_db(args.data, migrate_schema=False)
    applied = migrate(db)
    print(f"schema version {current_version(db)}; applied {applied or 'nothing'}")
    return 0


def _notify_core(args: argparse.Namespace) -> None:
    """Ask a running core to re-read the store; a stopped one reads it when it starts."""
    try:
        control.call(args.data, "reload")
    except control.ControlError:
        pass  # not running: it reads the store when it starts


def _report_password(args: argparse.Namespace, password: str, done: str) -> None:
    """Show a generated password (its only showing); confirm a given one without echoing it."""
    if args.password is None:
        print(f"extension {args.number} password {password}")
    else:
        print(f"extension {args.number} {done}")


def cmd_ext_add(args: argparse.Namespace) -> int:
    password = extensions.add(open_db(args.data), args.number, args.name, args.password)
    _notify_core(args)
    _report_password(args, password, "added")
    return 0


def cmd_ext_list(args: argparse.Namespace) -> int:
    rows = extensions.list_all(open_db(args.data))
    for ext in rows:
        print(f"{ext.number:>6}  {ext.name}")
    if not rows:
        print("no extensions")
    return 0


def cmd_ext_remove(args: argparse.Namespace) -> int:
    extensions.remove(open_db(args.data), args.number)
    _notify_core(args)
    print(f"extension {args.number} removed")
    return 0


def cmd_ext_passwd(args: argparse.Namespace) -> int:
    password = extensions.set_password(open_db(args.data), args.number, args.password)
    _notify_core(args)
    _report_password(args, password, "password changed")
    return 0


def cmd_config_get(args: argparse.Namespace) -> int:
    db = open_db(args.data)
    keys = [args.key] if args.key else sorted(settings.SETTINGS)
    for key in keys:
        if key not in settings.SETTINGS:
            raise settings.SettingError(f"unknown setting {key!r}")
        spec = settings.SETTINGS[key]
        print(f"{key} = {settings.get(db, key)}    # {spec.help}")
    return 0


def cmd_config_set(args: argparse.Namespace) -> int:
    value = settings.set_value(open_db(args.data), args.key, args.value)
    _notify_core(args)
    print(f"{args.key} = {value}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    try:
        status = control.call(args.data, "status")
    except control.ControlError as exc:
        print(f"core: not running ({exc}); registrations as stored:")
        rows = registrations.summary(open_db(args.data))
        calls: list[dict[str, Any]] = []
    else:
        print(f"core: running, SIP {status['sip']}, up {status['uptime']} s")
        rows = status["registrations"]
        calls = status["calls"]
    print(f"registrations: {len(rows)}")
    for r in rows:
        print(f"  {r['aor']:>6}  {r['contact']}  via {r['source']}  "
              f"expires in {r['expires_in']} s  {r['user_agent']}")  # fmt: skip
    print(f"calls: {len(calls)}")
    for c in calls:
        callee = c["answered_by"] or c["dialled"]
        codecs = "/".join(x or "-" for x in c["codecs"])
        print(f"  {c['id'][:8]}  {c['caller']:>6} -> {callee:<6}  {c['state']:<8}  "
              f"{c['duration']:>7.1f} s  {codecs}")  # fmt: skip
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pbx", description="IP-PBX appliance: run the services and manage the box."
    )
    parser.add_argument("--version", action="version", version=f"pbx {__version__}")
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("PBX_DATA", "./var")),
        help="data directory holding the database and sockets (env PBX_DATA; default ./var)",
    )  # fmt: skip
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        parent: argparse._SubParsersAction[argparse.ArgumentParser], name: str, text: str,
        fn: Callable[[argparse.Namespace], int] | None,
    ) -> argparse.ArgumentParser:  # fmt: skip
        p = parent.add_parser(name, help=text, description=text)
        if fn is not None:
            p.set_defaults(func=fn)
        return p

    p = command(sub, "run", "run the PBX core in the foreground (SIP registrar)", cmd_run)
    p.add_argument("--sip", type=_hostport, default=("127.0.0.1", 5060), metavar="HOST:PORT",
                   help="address for SIP over UDP and TCP (default 127.0.0.1:5060)")  # fmt: skip
    p.add_argument("--demo", action="store_true",
                   help="create demo extensions 101-104 if there are none, printing their "
                        "passwords once")  # fmt: skip

    p = command(sub, "web", "serve the setup page and REST API (pbx-web) in the foreground",
                cmd_web)  # fmt: skip
    p.add_argument("--listen", type=_hostport, default=("127.0.0.1", 8080), metavar="HOST:PORT",
                   help="address for the web page (default 127.0.0.1:8080; 0.0.0.0:8080 on "
                        "the box)")  # fmt: skip
    p.add_argument("--https", action="store_true",
                   help="serve HTTPS with the box's self-signed certificate (DATA/tls, made "
                        "on first start); cookies are then marked Secure")  # fmt: skip

    db = command(sub, "db", "database maintenance", None)
    dbsub = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    command(dbsub, "migrate", "apply pending schema migrations (safe to repeat)", cmd_db_migrate)

    ext = command(sub, "ext", "manage extensions", None)
    extsub = ext.add_subparsers(dest="ext_command", required=True, metavar="COMMAND")
    p = command(extsub, "add", "add an extension; prints a generated password", cmd_ext_add)
    p.add_argument("number", help="extension number, 2 to 6 digits")
    p.add_argument("--name", default="", help="display name shown as caller ID")
    p.add_argument("--password", help="SIP password (at least 10 characters, letters and "
                   "digits); generated when omitted")  # fmt: skip
    command(extsub, "list", "list extensions", cmd_ext_list)
    p = command(extsub, "remove", "remove an extension and its registrations", cmd_ext_remove)
    p.add_argument("number", help="extension number")
    p = command(extsub, "passwd", "set a new SIP password; prints a generated one", cmd_ext_passwd)
    p.add_argument("number", help="extension number")
    p.add_argument("--password", help="the new password; generated when omitted")

    cfg = command(sub, "config", "show or change settings", None)
    cfgsub = cfg.add_subparsers(dest="config_command", required=True, metavar="COMMAND")
    p = command(cfgsub, "get", "show settings with their meaning", cmd_config_get)
    p.add_argument("key", nargs="?", help="one setting (default: all)")
    p = command(cfgsub, "set", "change a setting; the running core applies it", cmd_config_set)
    p.add_argument("key", help="setting name, e.g. sip.min_expires")
    p.add_argument("value", help="new value")

    command(sub, "status", "show the core's state: registrations, live calls", cmd_status)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.Formatter.converter = time.gmtime
    try:
        return int(args.func(args))
    except (ExtensionError, SettingError) as exc:
        print(f"pbx: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, sqlite3.Error) as exc:  # the data directory or database is unusable
        print(f"pbx: error: {args.data}: {exc}", file=sys.stderr)
        return 1
