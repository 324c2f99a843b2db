"""The `pbx` command: runs the services and manages the box from a shell."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from appliance import (
    __version__,
    cli_lines,
    cli_menus,
    cli_prompts,
    cli_reset,
    cli_voicemail,
    control,
    numbering,
)
from appliance.i18n import T
from appliance.service import reexec
from appliance.store import (
    bans,
    destinations,
    dids,
    encryption,
    extensions,
    recordings,
    registrations,
    routes,
    settings,
    trunks,
)
from appliance.store.db import open_db, transaction
from appliance.store.destinations import DestinationError
from appliance.store.dids import DidError
from appliance.store.extensions import ExtensionError
from appliance.store.menus import MenuError
from appliance.store.migrations import current_version, migrate
from appliance.store.numbers import NumberTaken
from appliance.store.routes import RouteError
from appliance.store.settings import SettingError
from appliance.store.trunks import TrunkError

PASSWORD_ENV = "PBX_TRUNK_PASSWORD"
"""Where `pbx trunk add/set --password -` takes a trunk's password from, when it is set."""

DEMO_EXTENSIONS = ("101", "102", "103", "104")


def _hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) < 65536:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}")
    return int(text)


def cmd_run(args: argparse.Namespace) -> int:
    db = open_db(args.data)
    if args.demo and not extensions.list_all(db):
        print("Demo extensions (passwords are shown only now):")
        for number in DEMO_EXTENSIONS:
            password = extensions.add(db, number, f"Demo {number}")
            print(f"  {number}  password {password}")
    if args.demo:
        _demo_ports(db)
    db.conn.close()
    # The core's stack (SIP, media, uvloop) is loaded here only, not by `pbx web` or the CLI.
    from appliance.pbx.core import CoreError, CoreOptions, run_core

    host, port = args.sip
    try:
        restart = run_core(CoreOptions(args.data, host, port, args.tls))
    except CoreError as exc:
        print(f"pbx: error: {exc}", file=sys.stderr)
        return 1
    if restart:
        reexec()
    return 0


def _demo_ports(db: Any) -> None:
    """The simulated board's ports for the demo (FXS 1-2 as extensions 201-202, FXO 3 as the
    trunk city-line), made once. Their extensions' passwords stay with the ports: the gateway
    registers with them, nobody types them."""
    from appliance.store import ports

    if ports.list_all(db):
        return
    print("Analog demo ports (`pbx lines status`; pick up with `pbx lines sim offhook 1`):")
    try:
        made = ports.demo_ports(db)
    except (ExtensionError, ports.PortError) as exc:  # e.g. 201 outside the office's range
        print(f"pbx: the analog demo ports were not made: {exc}", file=sys.stderr)
        return
    for port in made:
        what = f"extension {port.extension}" if port.kind == "fxs" else f"trunk {port.trunk}"
        print(f"  port {port.port}  {port.kind.upper()}  {what}")


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


def _extension_extras(ext: extensions.Extension) -> str:
    """What differs from a new extension's defaults: permissions, caller ID."""
    extras = []
    if ext.permissions != numbering.DEFAULT_PERMISSIONS:
        extras.append(f"may call {','.join(ext.permissions)}")
    if ext.caller_id:
        extras.append(f"caller ID {ext.caller_id}")
    if ext.max_outbound_calls is not None:
        extras.append(f"at most {ext.max_outbound_calls or 'any number of'} outbound calls")
    return f"  ({'; '.join(extras)})" if extras else ""


def cmd_ext_list(args: argparse.Namespace) -> int:
    db = open_db(args.data)
    rows = extensions.list_all(db)
    policies = encryption.of_extensions(db)
    for ext in rows:
        policy = policies.get(ext.number, encryption.DEFAULT)
        srtp = "" if policy == encryption.DEFAULT else f"  [media encryption {policy}]"
        print(f"{ext.number:>6}  {ext.name}{_extension_extras(ext)}{srtp}")
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


def cmd_ext_set(args: argparse.Namespace) -> int:
    db = open_db(args.data)
    if extensions.get(db, args.number) is None:
        raise ExtensionError(f"no extension {args.number}")
    changes = (args.name, args.permissions, args.caller_id, args.media_encryption,
               args.max_calls)  # fmt: skip
    if changes == (None,) * len(changes):
        raise ExtensionError(
            "nothing to change: give --name, --permissions, --caller-id, --media-encryption"
            " or --max-calls"
        )
    with transaction(db):
        if args.name is not None:
            extensions.rename(db, args.number, args.name.strip())
        if args.permissions is not None:
            extensions.set_permissions(db, args.number, args.permissions.split(","))
        if args.caller_id is not None:
            extensions.set_caller_id(db, args.number, args.caller_id)
        if args.media_encryption is not None:
            encryption.set_for_extension(db, args.number, args.media_encryption)
        if args.max_calls is not None:
            extensions.set_max_outbound_calls(db, args.number, args.max_calls)
    _notify_core(args)
    ext = extensions.get(db, args.number)
    assert ext is not None
    print(f"extension {ext.number} changed: may call {','.join(ext.permissions)};"
          f" caller ID {ext.caller_id or 'from the route or trunk'};"
          f" media encryption {encryption.of_extension(db, ext.number)};"
          f" outbound calls at once {_max_calls_text(ext.max_outbound_calls)}")  # fmt: skip
    return 0


def _max_calls_text(limit: int | None) -> str:
    return "the default (tollfraud.max_outbound_calls)" if limit is None else str(limit or "any")


TRUNK_OPTIONS = {
    "kind": "kind", "username": "username", "auth_user": "auth_user", "password": "password",
    "proxy": "outbound_proxy", "transport": "transport", "from_user": "from_user",
    "from_domain": "from_domain", "codecs": "codecs", "max_calls": "max_calls",
    "expires": "expires", "options_interval": "options_interval",
    "external_address": "external_address", "match": "match_cidrs", "did_from": "did_from",
    "late_offer": "late_offer", "enabled": "enabled", "server": "server",
}  # fmt: skip
"""`pbx trunk add/set` options (argparse dest) and the trunk field each sets."""


def _trunk_fields(args: argparse.Namespace) -> dict[str, object]:
    fields = {
        field: getattr(args, dest)
        for dest, field in TRUNK_OPTIONS.items()
        if getattr(args, dest) is not None
    }
    if fields.get("password") == "-":
        fields["password"] = _read_password()
    return fields


def _read_password() -> str:
    """The password from PBX_TRUNK_PASSWORD, else asked for without echo: never in argv."""
    given = os.environ.get(PASSWORD_ENV)
    if given is not None:
        return given
    try:
        return getpass.getpass("trunk password: ")
    except EOFError:
        raise TrunkError(
            f"no password: set {PASSWORD_ENV} or type it when asked", "password"
        ) from None


def cmd_trunk_add(args: argparse.Namespace) -> int:
    db = open_db(args.data)
    with transaction(db):
        trunk = trunks.add(db, args.name, **_trunk_fields(args))
        if args.media_encryption is not None:
            encryption.set_for_trunk(db, trunk.name, args.media_encryption)
    _notify_core(args)
    print(f"trunk {trunk.name} added ({trunk.kind}, {trunk.server})")
    return 0


def cmd_trunk_set(args: argparse.Namespace) -> int:
    fields = _trunk_fields(args)
    if not fields and args.media_encryption is None:
        raise TrunkError("nothing to change: give the options to set (see --help)")
    db = open_db(args.data)
    with transaction(db):
        if fields:
            trunks.update(db, args.name, **fields)
        if args.media_encryption is not None:
            encryption.set_for_trunk(db, args.name, args.media_encryption)
    _notify_core(args)
    print(f"trunk {args.name} changed")
    return 0


def cmd_trunk_list(args: argparse.Namespace) -> int:
    db = open_db(args.data)
    rows = trunks.list_all(db)
    policies = encryption.of_trunks(db)
    options = {field: dest.replace("_", "-") for dest, field in TRUNK_OPTIONS.items()}
    for t in rows:
        print(f"{t.name}  {t.kind}  {t.transport} {t.server}"
              f"{'' if t.enabled else '  (disabled)'}")  # fmt: skip
        shown = []
        for key, value in t.masked().items():
            if key in ("name", "kind", "transport", "server", "enabled", "created_at",
                       "updated_at"):  # fmt: skip
                continue
            text = ("yes" if value else "no") if isinstance(value, bool) else str(value)
            shown.append(f"{options.get(key, key)} {text or '-'}")
        shown.append(f"media-encryption {policies.get(t.name, encryption.DEFAULT)}")
        print(f"  {', '.join(shown)}")
    if not rows:
        print("no trunks")
    return 0


def cmd_trunk_remove(args: argparse.Namespace) -> int:
    trunks.remove(open_db(args.data), args.name)
    _notify_core(args)
    print(f"trunk {args.name} removed")
    return 0


def cmd_did_add(args: argparse.Namespace) -> int:
    db = open_db(args.data)
    did = dids.add(db, args.number, args.to, args.label or "", args.trunk or "")
    _notify_core(args)
    print(f"DID {did.number} added: calls go to {destinations.describe(db, did.destination)}")
    return 0


def cmd_did_set(args: argparse.Namespace) -> int:
    db = open_db(args.data)
    if args.to is None and args.label is None and args.trunk is None:
        raise DidError("nothing to change: give --to, --label or --trunk")
    did = dids.update(db, args.number, destination=args.to, label=args.label, trunk=args.trunk)
    _notify_core(args)
    print(f"DID {did.number} changed: calls go to {destinations.describe(db, did.destination)}")
    return 0


def cmd_did_list(args: argparse.Namespace) -> int:
    db = open_db(args.data)
    rows = dids.list_all(db)
    for d in rows:
        trunk = f"trunk {d.trunk}" if d.trunk else "any trunk"
        print(f"{d.number:<16}  {d.label or '-':<20}  {trunk}"
              f"  -> {destinations.describe(db, d.destination)}")  # fmt: skip
    if not rows:
        print("no DIDs")
    return 0


def cmd_did_remove(args: argparse.Namespace) -> int:
    db = open_db(args.data)
    did = dids.get(db, args.number)
    dids.remove(db, args.number)
    _notify_core(args)
    print(f"DID {did.number if did else args.number} removed")
    return 0


def cmd_route_add(args: argparse.Namespace) -> int:
    route = routes.add(
        open_db(args.data), args.name, args.pattern, args.trunk, args.prepend or "",
        args.caller_id or "", args.position,
    )  # fmt: skip
    _notify_core(args)
    print(f"route {route.name} added at position {route.position}")
    return 0


def cmd_route_set(args: argparse.Namespace) -> int:
    changes = (args.pattern, args.trunk, args.prepend, args.caller_id, args.position)
    if all(change is None for change in changes):
        raise RouteError("nothing to change: give the options to set (see --help)")
    route = routes.update(
        open_db(args.data), args.name, patterns=args.pattern, trunks=args.trunk,
        prepend=args.prepend, caller_id=args.caller_id, position=args.position,
    )  # fmt: skip
    _notify_core(args)
    print(f"route {route.name} changed (position {route.position})")
    return 0


def cmd_route_list(args: argparse.Namespace) -> int:
    rows = routes.list_all(open_db(args.data))
    for r in rows:
        extras = (f"  prepend {r.prepend}" if r.prepend else "") + (
            f"  caller ID {r.caller_id}" if r.caller_id else ""
        )
        print(f"{r.position:>2}. {r.name}  {','.join(r.patterns)}  via {' > '.join(r.trunks)}"
              f"{extras}")  # fmt: skip
    if not rows:
        print("no routes")
    return 0


def cmd_route_move(args: argparse.Namespace) -> int:
    route = routes.move(open_db(args.data), args.name, args.position)
    _notify_core(args)
    print(f"route {route.name} is now at position {route.position}")
    return 0


def cmd_route_remove(args: argparse.Namespace) -> int:
    routes.remove(open_db(args.data), args.name)
    _notify_core(args)
    print(f"route {args.name} removed")
    return 0


def cmd_bans(args: argparse.Namespace) -> int:
    """The bans in force: the running core's, else those stored (the core loads them)."""
    now = time.time()
    try:
        rows = control.call(args.data, "bans")["bans"]
    except control.ControlError as exc:
        print(f"core: not running ({exc}); bans as stored:")
        rows = [ban.describe(now) for ban in bans.active(open_db(args.data), now)]
    print(f"bans: {len(rows)}")
    for b in rows:
        until = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(b["until"]))
        print(f"  {b['address']:<15}  until {until} ({b['remaining']} s left, ban {b['count']})"
              f"  {b['reason']}")  # fmt: skip
    return 0


def cmd_bans_remove(args: argparse.Namespace) -> int:
    try:
        address = bans.canonical_address(args.address)
    except ValueError:
        print(f"pbx: error: not an IP address: {args.address!r}", file=sys.stderr)
        return 2
    try:
        removed = bool(control.call(args.data, "ban_remove", address=address)["removed"])
    except control.ControlError:  # not running: the store's row is all there is
        removed = bans.remove(open_db(args.data), address)
    if not removed:
        print(f"pbx: error: {address} is not banned", file=sys.stderr)
        return 1
    print(f"ban of {address} lifted")
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
        lines: list[dict[str, Any]] = []
    else:
        print(f"core: running, SIP {status['sip']}, up {status['uptime']} s")
        rows = status["registrations"]
        calls = status["calls"]
        lines = status["trunks"]
        reasons = ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in status["refused_by"].items())
        print(f"requests refused from unknown sources: {status['refused']} ({reasons})")
        guard = status["security"]
        print(f"bans in force: {guard['bans_active']}; packets dropped from banned sources:"
              f" {guard['dropped']}; over the rate limit: {guard['rate_limited']}")  # fmt: skip
        load = status["overload"]
        print(f"overload: {load['state']}; new requests refused with 503: {load['refused']}"
              f" in {load['episodes']} episodes; SIP queue {load['queue_kib']} KiB"
              f" (peak {load['peak_queue_kib']}, threshold {load['threshold_kib']})")  # fmt: skip
    print(f"trunks: {len(lines)}")
    for t in lines:
        last = f"  last answer: {t['last_response']}" if t["last_response"] else ""
        print(f"  {t['name']:<12} {t['state']:<12} {t['server']}  "
              f"calls {t['calls']}/{t['max_calls'] or '-'}{last}")  # fmt: skip
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


def _trunk_arguments(p: argparse.ArgumentParser, *, adding: bool) -> None:
    """The options of `pbx trunk add` and `pbx trunk set` (which changes only those given)."""
    p.add_argument("name", help="trunk name: up to 32 lower-case letters, digits, '-', '_'")
    p.add_argument(
        "--server",
        required=adding,
        metavar="HOST[:PORT]",
        help="the provider's SIP server (host name or IP; IPv6 as [ADDR]:PORT)",
    )
    p.add_argument(
        "--kind",
        choices=trunks.KINDS,
        help="register: the box registers with --username/--password (default); "
        "ip: the provider sends calls to the box's address",
    )
    p.add_argument(
        "--username", help="the account at the provider (user part of From and the registration)"
    )
    p.add_argument(
        "--auth-user", help="digest user name, when the provider's differs from --username"
    )
    p.add_argument(
        "--password",
        help=f"the account's password; '-' to take it from "
        f"{PASSWORD_ENV} or be asked for it (kept out of shell history)",
    )
    p.add_argument(
        "--proxy", metavar="HOST[:PORT]", help="outbound proxy to send everything to ('' for none)"
    )
    p.add_argument("--transport", choices=trunks.TRANSPORTS, help="udp (default) or tcp")
    p.add_argument(
        "--from-user",
        help="user part of From on outbound calls, when the provider wants other than the username",
    )
    p.add_argument(
        "--from-domain", help="host part of From, when the provider wants other than the server"
    )
    p.add_argument(
        "--codecs",
        metavar="CODEC[,CODEC]",
        help="offered, most preferred first: some of PCMA, PCMU, G722 (default all)",
    )
    p.add_argument("--max-calls", metavar="N", help="calls at once over it; 0 for no limit")
    p.add_argument("--expires", metavar="S", help="registration time asked for (60-86400 s)")
    p.add_argument(
        "--options-interval",
        metavar="S",
        help="seconds between OPTIONS keep-alives (0 off, or 10-3600; default 30)",
    )
    p.add_argument(
        "--external-address",
        metavar="A",
        help="public address to announce when the box is behind NAT ('' to find it)",
    )
    p.add_argument(
        "--match",
        metavar="CIDR[,CIDR]",
        help="networks whose calls come from this trunk (default: the server's address)",
    )
    p.add_argument(
        "--did-from",
        metavar="auto|request-uri|to|header:NAME",
        help="where an inbound call's number (DID) is read (default auto)",
    )
    p.add_argument(
        "--late-offer",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="send INVITEs without SDP, for providers that want to offer first",
    )
    p.add_argument(
        "--enable",
        dest="enabled",
        action="store_const",
        const=True,
        help="use the trunk (a new one is in use)",
    )
    p.add_argument("--disable", dest="enabled", action="store_const", const=False,
                   help="keep the trunk but do not register or send calls by it")  # fmt: skip
    _media_encryption_argument(p)


def _media_encryption_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--media-encryption", choices=encryption.POLICIES,
        help="SRTP (SDES, over SIP over TLS only): none; optional (accept SRTP, offer plain RTP;"
             " the default); required (refuse plain RTP with 488, offer only SRTP)",
    )  # fmt: skip


def cmd_recording_rules(args: argparse.Namespace) -> int:
    found = recordings.rules(open_db(args.data))
    for r in found:
        keep = ("default" if r.retention_days is None else "for ever" if r.retention_days == 0
                else f"{r.retention_days} days")  # fmt: skip
        print(f"{r.id:>4}  {r.match:<9}  {r.value:<16}  {'record' if r.record else 'do not record'}"
              f"  keep {keep}{'  consent announcement' if r.consent else ''}")  # fmt: skip
    if not found:
        print("no recording rules: calls are recorded only by the feature code")
    return 0


def cmd_recording_add_rule(args: argparse.Namespace) -> int:
    rule = recordings.add_rule(
        open_db(args.data), args.match, args.value, record=not args.no_record,
        retention_days=args.retention_days, consent=args.consent,
    )  # fmt: skip
    _notify_core(args)
    print(f"recording rule {rule.id} added: {rule.match} {rule.value}")
    return 0


def cmd_recording_remove_rule(args: argparse.Namespace) -> int:
    recordings.remove_rule(open_db(args.data), args.id)
    _notify_core(args)
    print(f"recording rule {args.id} removed")
    return 0


def cmd_recording_list(args: argparse.Namespace) -> int:
    found = recordings.listing(open_db(args.data), call_id=args.call, limit=args.limit,
                               include_deleted=args.deleted)  # fmt: skip
    for r in found:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.started_at))
        gone = f"  deleted ({r.deleted_reason})" if r.deleted_at is not None else ""
        print(f"{r.id:>6}  {started}  {r.call_id}  {r.seconds:7.1f} s  {r.bytes:>10} B"
              f"  {r.path}{gone}")  # fmt: skip
    if not found:
        print("no recordings")
    return 0


def cmd_recording_settings(args: argparse.Namespace) -> int:
    db = open_db(args.data)
    if args.key is not None:
        if args.value is None:
            raise recordings.RecordingError(T("give a value for {key}", key=args.key))
        with transaction(db):
            recordings.set_setting(db, args.key, args.value)
        _notify_core(args)
    for key, value in recordings.all_settings(db).items():
        print(f"{key} = {value}  # {recordings.SETTINGS[key].help}")
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
    p.add_argument("--tls", type=_port, default=None, metavar="PORT",
                   help="port for SIP over TLS on the same host (default 5061, or the SIP port "
                        "+ 1 when that is not 5060; 0 for any free port)")  # fmt: skip
    p.add_argument("--demo", action="store_true",
                   help="create demo extensions 101-104 if there are none, printing their "
                        "passwords once")  # fmt: skip

    p = command(sub, "web", "serve the setup page and REST API (pbx-web) in the foreground",
                cmd_web)  # fmt: skip
    p.add_argument("--listen", type=_hostport, default=("127.0.0.1", 8080), metavar="HOST:PORT",
                   help="address for the web page (default 127.0.0.1:8080; the box's unit "
                        "serves 0.0.0.0:443 with --https)")  # fmt: skip
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

    p = command(extsub, "set", "change an extension's name, calling permissions or caller ID",
                cmd_ext_set)  # fmt: skip
    p.add_argument("number", help="extension number")
    p.add_argument("--name", help="display name shown as caller ID inside the office")
    p.add_argument("--permissions", metavar="CLASS[,CLASS]",
                   help="classes of numbers it may call: internal (always), local, mobile, "
                        "long-distance, international, premium; emergency numbers always "
                        "(default internal,local,mobile,long-distance)")  # fmt: skip
    p.add_argument("--caller-id", metavar="DID",
                   help="one of the office's numbers (DIDs) shown on its outside calls; '' "
                        "for the route's or trunk's")  # fmt: skip
    _media_encryption_argument(p)
    p.add_argument("--max-calls", metavar="N|default",
                   help="outbound calls it may have up at once (0: no limit; default: the "
                        "setting tollfraud.max_outbound_calls)")  # fmt: skip

    trunk = command(sub, "trunk", "manage SIP trunks to providers", None)
    trunksub = trunk.add_subparsers(dest="trunk_command", required=True, metavar="COMMAND")
    p = command(trunksub, "add", "add a SIP trunk", cmd_trunk_add)
    _trunk_arguments(p, adding=True)
    p = command(trunksub, "set", "change a trunk's settings (only those given)", cmd_trunk_set)
    _trunk_arguments(p, adding=False)
    command(trunksub, "list", "list trunks with their settings (passwords masked)",
            cmd_trunk_list)  # fmt: skip
    p = command(trunksub, "remove", "remove a trunk no route or DID uses", cmd_trunk_remove)
    p.add_argument("name", help="trunk name")

    did = command(sub, "did", "manage the office's numbers (DIDs) and where their calls go",
                  None)  # fmt: skip
    didsub = did.add_subparsers(dest="did_command", required=True, metavar="COMMAND")
    for name, text, fn in (
        ("add", "add one of the office's numbers (a DID)", cmd_did_add),
        ("set", "change where a DID's calls go, its label or its trunk", cmd_did_set),
    ):
        p = command(didsub, name, text, fn)
        p.add_argument("number", help="the number, as the office dials it or in +E.164 form")
        p.add_argument("--to", required=name == "add", metavar="DESTINATION",
                       help="where its calls go: extension:NUMBER or hangup:CAUSE (busy, "
                            "not-found, unavailable, rejected, congestion)")  # fmt: skip
        p.add_argument("--label", help="a name for people and call records (32 characters)")
        p.add_argument("--trunk", metavar="NAME",
                       help="the trunk its calls come in on ('' for any trunk)")  # fmt: skip
    command(didsub, "list", "list the office's numbers and where their calls go", cmd_did_list)
    p = command(didsub, "remove", "remove a DID no extension or route shows as caller ID",
                cmd_did_remove)  # fmt: skip
    p.add_argument("number", help="the number")

    route = command(sub, "route", "manage outbound routes: which numbers go out by which trunks",
                    None)  # fmt: skip
    routesub = route.add_subparsers(dest="route_command", required=True, metavar="COMMAND")
    for name, text, fn in (
        ("add", "add an outbound route (last, or at --position)", cmd_route_add),
        ("set", "change a route (a --pattern or --trunk list replaces the old one)",
         cmd_route_set),
    ):  # fmt: skip
        p = command(routesub, name, text, fn)
        p.add_argument("name", help="route name: lower-case letters, digits, '-', '_'")
        p.add_argument("--pattern", action="append", required=name == "add", metavar="P",
                       help="dial pattern (X any digit, Z 1-9, N 2-9, [1-5] a set, a final . "
                            "one or more more, ! any more; PREFIX|REST strips PREFIX); "
                            "repeat for more")  # fmt: skip
        p.add_argument(
            "--trunk",
            action="append",
            required=name == "add",
            metavar="T",
            help="trunk to send the call by; repeat for failover, in order",
        )
        p.add_argument(
            "--prepend", metavar="DIGITS", help="digits (or a leading +) put before the number sent"
        )
        p.add_argument(
            "--caller-id",
            metavar="DID",
            help="one of the office's numbers (DIDs) to present; '' for none",
        )
        p.add_argument(
            "--position",
            type=int,
            metavar="N",
            help="place in the order routes are tried (1 first)",
        )
    command(routesub, "list", "list routes in the order they are tried", cmd_route_list)
    p = command(routesub, "move", "move a route to another place in the order", cmd_route_move)
    p.add_argument("name", help="route name")
    p.add_argument("position", type=int, help="new place, 1 for the route tried first")
    p = command(routesub, "remove", "remove an outbound route", cmd_route_remove)
    p.add_argument("name", help="route name")

    cfg = command(sub, "config", "show or change settings", None)
    cfgsub = cfg.add_subparsers(dest="config_command", required=True, metavar="COMMAND")
    p = command(cfgsub, "get", "show settings with their meaning", cmd_config_get)
    p.add_argument("key", nargs="?", help="one setting (default: all)")
    p = command(cfgsub, "set", "change a setting; the running core applies it", cmd_config_set)
    p.add_argument("key", help="setting name, e.g. sip.min_expires")
    p.add_argument("value", help="new value")

    command(sub, "status", "show the core's state: registrations, live calls", cmd_status)

    p = command(sub, "bans", "list the addresses banned for failed authentications",
                cmd_bans)  # fmt: skip
    banssub = p.add_subparsers(dest="bans_command", metavar="COMMAND")
    p = command(banssub, "remove", "lift an address's ban (and forget its earlier bans)",
                cmd_bans_remove)  # fmt: skip
    p.add_argument("address", help="the banned IP address")
    rec = command(sub, "recording", "call recording: rules, recordings, storage settings", None)
    recsub = rec.add_subparsers(dest="recording_command", required=True, metavar="COMMAND")
    command(recsub, "rules", "list the rules that decide which calls are recorded",
            cmd_recording_rules)  # fmt: skip
    p = command(recsub, "add-rule", "record (or not) the calls of an extension, DID, route or"
                " direction", cmd_recording_add_rule)  # fmt: skip
    p.add_argument("match", choices=recordings.MATCH_KINDS,
                   help="what the rule looks at; the most specific kind decides")  # fmt: skip
    p.add_argument("value", help="the extension or DID, the route or trunk name, or inbound, "
                                 "outbound or internal")  # fmt: skip
    p.add_argument(
        "--no-record",
        action="store_true",
        help="do not record these calls (an exception to a broader rule)",
    )
    p.add_argument("--retention-days", type=int, metavar="DAYS",
                   help="keep its recordings this long (default: recording.retention_days; "
                        "0 for ever)")  # fmt: skip
    p.add_argument(
        "--consent",
        action="store_true",
        help="inbound callers hear that the call is recorded before it connects",
    )
    p = command(recsub, "remove-rule", "remove a recording rule", cmd_recording_remove_rule)
    p.add_argument("id", type=int, help="the rule's number, as `pbx recording rules` shows")
    p = command(recsub, "list", "list the recordings, newest first", cmd_recording_list)
    p.add_argument("--call", metavar="CALL_ID", help="only this call's recordings")
    p.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    p.add_argument("--deleted", action="store_true", help="include deleted ones and why")
    p = command(recsub, "settings", "show recording settings, or change one",
                cmd_recording_settings)  # fmt: skip
    p.add_argument("key", nargs="?", choices=list(recordings.SETTINGS),
                   help="a setting to change")  # fmt: skip
    p.add_argument("value", nargs="?", help="its new value")
    cli_menus.add_commands(sub, command, _notify_core)
    cli_prompts.add_commands(sub, command)
    cli_lines.add_commands(sub, command)
    cli_voicemail.add_commands(sub, command, _notify_core)
    cli_reset.add_commands(sub, command)
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
    except (
        ExtensionError, SettingError, TrunkError, DidError, RouteError, NumberTaken,
        DestinationError, recordings.RecordingError, MenuError, *cli_prompts.ERRORS,
        *cli_lines.ERRORS, *cli_voicemail.ERRORS, *cli_reset.ERRORS,
    ) as exc:  # fmt: skip
        print(f"pbx: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, sqlite3.Error) as exc:  # the data directory or database is unusable
        print(f"pbx: error: {args.data}: {exc}", file=sys.stderr)
        return 1
