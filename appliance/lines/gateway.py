"""The analog gateway process (`pbx-lines`): the line board's ports as SIP user agents of the
core.

It loads the board profile and the ports from the store, opens the board link and each port's
audio, and runs two SIP endpoints, one shared by the FXS ports' user agents (127.0.0.1:5070
by default) and one by the FXO lines' (the next port: the address of their trunk in the
core, which tells a trunk on loopback apart by its port), and one media engine for their RTP.
Each FXS port REGISTERs to the core as its extension; the core knows nothing of the
hardware. A board that goes away marks the ports faulty; the link re-handshakes by itself
and the ports come back without a restart. A changed configuration (the office country, the
board, a port) is seen within `CONFIG_POLL_S` and applied by starting the process again once
every port is idle.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from appliance import factory_reset
from appliance.control import lines_socket_path, serve
from appliance.lines import protocol as p
from appliance.lines.audio import AudioError, PortAudio
from appliance.lines.boards import BoardProfile, Driver, PortKind, load_profile, shipped_profiles
from appliance.lines.fxo import FxoPort
from appliance.lines.fxo import State as FxoState
from appliance.lines.fxs import (
    STATUS_REGISTERED,
    STATUS_UNREGISTERED,
    FxsPort,
    LedPattern,
    SipContext,
    State,
)
from appliance.lines.gpio import GPIOD, GpiodApi
from appliance.lines.gpio_board import GpioBoard, HostResetButton, HostStatusLed
from appliance.lines.link import BoardLink, LinkDown, LinkState
from appliance.lines.tones import CountryPlan, plan_for
from appliance.media.engine import MediaEngine
from appliance.service import reexec, sd_notify, sd_stopping, watchdog
from appliance.sip.endpoint import SipEndpoint
from appliance.sip.message import Request
from appliance.sip.transaction import Destination, ServerTransaction
from appliance.sip.ua.registration import RegistrationClient, RegistrationConfig, RegistrationState
from appliance.store import dids, extensions, ports, settings
from appliance.store.db import open_db

logger = logging.getLogger(__name__)

READY = "pbx-lines: ready on "

CONFIG_POLL_S = 5.0
"""How often the gateway looks whether its configuration (the office country, the ports) was
changed on the setup page or with `pbx`."""

RESTART = 3
"""`_run`'s answer when the configuration changed: `main` starts the gateway again."""


def config_stamp(data_dir: Path) -> tuple[object, ...]:
    """What the running gateway was built from: the office country, the board and every
    port's row (its extension's password included). Another value means a restart applies it."""
    db = open_db(data_dir)
    try:
        rows = tuple(ports.list_all(db))
        return (str(settings.get(db, "office.country")), ports.board(db), rows)
    finally:
        db.conn.close()


class Gateway:
    """Everything `pbx-lines` runs; `start()` then `stop()` on one event loop."""

    def __init__(
        self,
        data_dir: Path,
        profile: BoardProfile,
        core: tuple[str, int],
        *,
        sip: tuple[str, int] = (ports.GATEWAY_HOST, ports.GATEWAY_PORT),
        fxo_sip: tuple[str, int] | None = None,
        device: str | None = None,
        rtp: tuple[int, int] = (30000, 31000),
        sim_control: Path | None = None,
        gpio: GpiodApi = GPIOD,
        gpio_dev: Path = Path("/dev"),
    ) -> None:
        self.data_dir = data_dir
        self.profile = profile
        self.core = Destination("UDP", core[0], core[1])
        self.sip_addr = sip
        self.fxo_addr = fxo_sip or (sip[0], sip[1] + 1)
        self.device = device or (profile.serial.device if profile.serial else "")
        self.speed = profile.serial.speed if profile.serial else 115200
        self.sim_control = sim_control
        self.endpoint = SipEndpoint()
        self.fxo_endpoint = SipEndpoint()
        self.media = MediaEngine(sip[0], rtp[0], rtp[1])
        self.fxs: dict[int, FxsPort] = {}
        self.fxo: dict[int, FxoPort] = {}
        self.registrations: dict[int, RegistrationClient] = {}
        self._stamp = config_stamp(data_dir)  # first: a change after it is seen
        self.plan = office_plan(data_dir)
        self.link: BoardLink | GpioBoard
        if profile.driver == Driver.GPIO:  # the ports on the host's own GPIO (a SLIC module)
            self.link = GpioBoard(
                profile, flash=self.plan.flash, pulse_timing=self.plan.pulse,
                on_event=self._event, on_state=self._link_state, api=gpio, dev=gpio_dev,
            )  # fmt: skip
        else:
            self.link = BoardLink(
                self.device, self.speed, on_event=self._event, on_state=self._link_state
            )
        self.host_led: HostStatusLed | None = None
        """The status LED on the host's GPIO, beside a board that has no status LED of its
        own (a GPIO board drives the profile's status LED itself, by the `Led` command)."""
        if profile.status_led is not None and profile.driver != Driver.GPIO:
            self.host_led = HostStatusLed(profile.status_led, api=gpio, dev=gpio_dev)
        self.reset_button: HostResetButton | None = None
        """The profile's reset button: held 10 s, it files a factory reset."""
        if profile.reset_button is not None:
            self.reset_button = HostResetButton(
                profile.reset_button, self._reset_held, api=gpio, dev=gpio_dev
            )
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.config_changed = asyncio.Event()
        """Set once the configuration differs from what the gateway started with and every
        port is idle (a call is never cut for it): `_run` then restarts the process."""
        self._watch: asyncio.Task[None] | None = None
        self.config_poll_s = CONFIG_POLL_S
        self._status_led: LedPattern | None = None

    async def start(self) -> None:
        db = open_db(self.data_dir)
        try:
            configured = {row.port: row for row in ports.list_all(db)}
            lengths = frozenset(len(e.number) for e in extensions.list_all(db))
            line_numbers = {
                row.port: next((d.number for d in dids.on_trunk(db, row.trunk)), "")
                for row in configured.values() if row.kind == "fxo"
            }  # fmt: skip
        finally:
            db.conn.close()
        plan = self.plan
        await self.endpoint.listen(*self.sip_addr, tcp=False)
        host, port = self.endpoint.local[0], self.endpoint.local[1]
        via = f"UDP {host}:{port}"
        domain = f"{self.core.host}:{self.core.port}"
        context = SipContext(self.endpoint, self.core, domain, via)
        fxo_context: SipContext | None = None
        if any(row.kind == "fxo" for row in configured.values()):
            await self.fxo_endpoint.listen(*self.fxo_addr, tcp=False)
            local = self.fxo_endpoint.local
            fxo_context = SipContext(
                self.fxo_endpoint, self.core, domain, f"UDP {local[0]}:{local[1]}"
            )
        self.media.start()
        for board_port in self.profile.ports:
            row = configured.get(board_port.number)
            if row is not None and row.kind == "fxo" and board_port.kind == PortKind.FXO:
                assert fxo_context is not None
                self._add_fxo(row, board_port.pcm, line_numbers[row.port], plan, fxo_context)
                continue
            if row is None or row.kind != "fxs" or board_port.kind != PortKind.FXS:
                continue
            try:
                audio: PortAudio | None = PortAudio(board_port.pcm)
            except AudioError as exc:
                logger.error("port %d: no audio: %s", board_port.number, exc)
                audio = None
            fxs = FxsPort(
                board_port.number,
                row.extension,
                row.password,
                plan,
                row.caller_id,
                context,
                self.media,
                audio,
                self._send,
                lengths,
            )
            self.fxs[board_port.number] = fxs
            self.media.clock.add(fxs)
            self._register(fxs, domain, via)
        for method, handler in (
            ("INVITE", self._invite),
            ("BYE", self._bye),
            ("CANCEL", self._cancel),
            ("NOTIFY", self._notify),
        ):
            self.endpoint.handlers[method] = handler
        for method, handler in (
            ("INVITE", self._fxo_invite),
            ("BYE", self._fxo_bye),
            ("CANCEL", self._fxo_cancel),
        ):
            self.fxo_endpoint.handlers[method] = handler
        self.fxo_endpoint.on_ack = self._ack
        if self.host_led is not None:
            self.media.clock.add(self.host_led)
            self.show_status_led(again=True)  # unregistered until the ports are
        if self.reset_button is not None:
            self.media.clock.add(self.reset_button)
        await self.link.start()
        self._watch = asyncio.get_running_loop().create_task(self._watch_config())
        self._server = await serve(
            lines_socket_path(self.data_dir), {"status": self._status, "sim": self._sim}
        )

    def _add_fxo(
        self, row: ports.Port, pcm: str, line_number: str, plan: CountryPlan, context: SipContext
    ) -> None:
        """The FXO port of `row`: calls in go to `line_number` (its trunk's DID)."""
        try:
            audio: PortAudio | None = PortAudio(pcm)
        except AudioError as exc:
            logger.error("port %d: no audio: %s", row.port, exc)
            audio = None
        fxo = FxoPort(
            row.port, row.trunk, line_number, plan, row.caller_id, context, self.media, audio,
            self._send,
        )  # fmt: skip
        self.fxo[row.port] = fxo
        self.media.clock.add(fxo)

    def _register(self, fxs: FxsPort, domain: str, via: str) -> None:
        config = RegistrationConfig(
            registrar=f"sip:{domain}",
            dest=self.core,
            aor=f"{fxs.extension}@{domain}",
            credentials=fxs.credentials,
            contact=fxs.contact(),
            via=via,
            expires=300,
            retry_min=1.0,
            retry_max=30.0,
        )

        def changed(client: RegistrationClient) -> None:
            fxs.registered = client.state is RegistrationState.REGISTERED
            self.show_status_led()

        client = RegistrationClient(self.endpoint, config, changed)
        self.registrations[fxs.number] = client
        client.start()

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self._server is not None:
            self._server.close()
        for client in self.registrations.values():
            with contextlib.suppress(Exception):
                await client.stop()
        await self.link.stop()
        if self.host_led is not None:
            self.media.clock.remove(self.host_led)
            self.host_led.close()
        if self.reset_button is not None:
            self.media.clock.remove(self.reset_button)
            self.reset_button.close()
        for fxs in self.fxs.values():
            self.media.clock.remove(fxs)
            if fxs.audio is not None:
                fxs.audio.close()
        for fxo in self.fxo.values():
            self.media.clock.remove(fxo)
            if fxo.audio is not None:
                fxo.audio.close()
        self.endpoint.close()
        self.fxo_endpoint.close()

    def _reset_held(self) -> None:
        """The reset button was held: a factory reset (appliance.factory_reset), which the
        appliance's units carry out by rebooting; elsewhere nothing acts on a request."""
        if not factory_reset.on_appliance():
            logger.warning("reset button held: a factory reset needs the appliance (elsewhere: "
                           "pbx factory-reset with the services stopped)")  # fmt: skip
            return
        logger.warning("reset button held: factory reset requested, the box restarts")
        factory_reset.request(self.data_dir, "the reset button")

    async def _watch_config(self) -> None:
        while True:
            await asyncio.sleep(self.config_poll_s)
            try:
                stamp = await asyncio.to_thread(config_stamp, self.data_dir)
            except Exception as exc:  # noqa: BLE001 - a locked or migrating store: next time
                logger.warning("configuration not read: %s", exc)
                continue
            if stamp != self._stamp and self.idle():
                logger.info("the configuration changed: restarting to apply it")
                self.config_changed.set()
                return

    def idle(self) -> bool:
        """No port is in use (off hook, ringing, in a call, dialling out)."""
        return all(fxs.state in (State.IDLE, State.FAULT) for fxs in self.fxs.values()) and all(
            fxo.state in (FxoState.IDLE, FxoState.FAULT) for fxo in self.fxo.values()
        )

    # -- the board --------------------------------------------------------------------------

    def _send(self, command: p.Message) -> None:
        if self.link.state is not LinkState.UP:
            # No board to tell: what matters (LEDs, ringing) is sent again when it is back.
            logger.debug("board down: %s not sent", type(command).__name__)
            return

        async def send() -> None:
            try:
                await self.link.send(command)
            except (LinkDown, Exception) as exc:  # noqa: BLE001 - logged; the port goes on
                logger.warning("board command %s failed: %s", type(command).__name__, exc)

        task = asyncio.get_running_loop().create_task(send())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _event(self, event: p.Message) -> None:
        port = getattr(event, "port", 0)
        fxs = self.fxs.get(port)
        fxo = self.fxo.get(port)
        if fxs is not None:
            fxs.board_event(event)
        elif fxo is not None:
            fxo.board_event(event)
        elif isinstance(event, p.BoardFault):
            logger.warning("board fault on port %d: %s", port, event.text)

    def _link_state(self, state: LinkState) -> None:
        for fxs in self.fxs.values():
            if state is LinkState.UP:
                fxs.board_up()
            else:
                fxs.board_down()
        for fxo in self.fxo.values():
            if state is LinkState.UP:
                fxo.board_up()
            else:
                fxo.board_down()
        if state is LinkState.UP:
            self.show_status_led(again=True)

    def show_status_led(self, *, again: bool = False) -> None:
        """The status LED says whether every FXS port is registered: the board's (led 0, by
        the `Led` command; a GPIO board's is the profile's line) or the host's."""
        registered = bool(self.fxs) and all(fxs.registered for fxs in self.fxs.values())
        pattern = STATUS_REGISTERED if registered else STATUS_UNREGISTERED
        if pattern != self._status_led or again:
            self._status_led = pattern
            if self.host_led is not None:
                self.host_led.show(pattern.mode, pattern.on_ms, pattern.off_ms)
            elif self.link.state is LinkState.UP:
                self._send(pattern.command(p.STATUS_LED))

    # -- SIP from the core ------------------------------------------------------------------

    def _port_of(self, req: Request) -> FxsPort | None:
        for fxs in self.fxs.values():
            if fxs.owns(req):
                return fxs
        uri = req.uri
        for fxs in self.fxs.values():
            if f";port={fxs.number}" in uri or uri.startswith(f"sip:{fxs.extension}@"):
                return fxs
        return None

    def _fxo_of(self, req: Request) -> FxoPort | None:
        """The FXO port a request is for: the one whose call it is, or for a new call out
        (the core sends every FXO trunk's calls to this address) the first idle line."""
        for fxo in self.fxo.values():
            if fxo.owns(req):
                return fxo
        if req.method != "INVITE" or req.to.tag:
            return None
        for fxo in self.fxo.values():
            if f";line={fxo.number}" in req.uri:
                return fxo
        return next((fxo for fxo in self.fxo.values() if fxo.idle()), None)

    def _ack(self, req: Request) -> None:
        for fxo in self.fxo.values():
            if fxo.owns(req):
                fxo.ack_received(req)
                return

    def _invite(self, req: Request, txn: ServerTransaction) -> None:
        fxs = self._port_of(req)
        if fxs is None:
            txn.respond(self.endpoint.response(req, 404))
            return
        fxs.invite_received(req, txn)

    def _fxo_invite(self, req: Request, txn: ServerTransaction) -> None:
        fxo = self._fxo_of(req)
        if fxo is None:
            txn.respond(self.fxo_endpoint.response(req, 486, "Busy Here (every line in use)"))
            return
        fxo.invite_received(req, txn)

    def _fxo_bye(self, req: Request, txn: ServerTransaction) -> None:
        fxo = self._fxo_of(req)
        if fxo is None:
            txn.respond(self.fxo_endpoint.response(req, 481))
            return
        fxo.bye_received(req, txn)

    def _fxo_cancel(self, req: Request, txn: ServerTransaction) -> None:
        fxo = self._fxo_of(req)
        if fxo is None:
            txn.respond(self.fxo_endpoint.response(req, 481))
            return
        fxo.cancel_received(req, txn)

    def _bye(self, req: Request, txn: ServerTransaction) -> None:
        fxs = self._port_of(req)
        if fxs is None or not fxs.owns(req):
            txn.respond(self.endpoint.response(req, 481))
            return
        fxs.bye_received(req, txn)

    def _cancel(self, req: Request, txn: ServerTransaction) -> None:
        fxs = self._port_of(req)
        if fxs is None or not fxs.owns(req):
            txn.respond(self.endpoint.response(req, 481))
            return
        fxs.cancel_received(req, txn)

    def _notify(self, req: Request, txn: ServerTransaction) -> None:
        fxs = self._port_of(req)
        if fxs is None or not fxs.owns(req):
            txn.respond(self.endpoint.response(req, 481))
            return
        fxs.notify_received(req, txn)

    # -- the control socket -----------------------------------------------------------------

    def _status(self, _request: dict[str, Any]) -> dict[str, Any]:
        return {
            "ports": [fxs.status() for fxs in self.fxs.values()]
            + [fxo.status() for fxo in self.fxo.values()],
            "board": "up" if self.link.state is LinkState.UP else "down",
        }

    async def _sim(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.sim_control is None:
            raise ValueError("the board is not simulated")
        from appliance.lines.sim import sim_command

        path, line = self.sim_control, str(request.get("command", ""))
        answer = await asyncio.get_running_loop().run_in_executor(None, sim_command, path, line)
        return {"reply": answer}


def office_plan(data_dir: Path) -> CountryPlan:
    """The tones, cadences and hook timings of the office's country (US's for one unknown)."""
    db = open_db(data_dir)
    try:
        country = str(settings.get(db, "office.country"))
    finally:
        db.conn.close()
    try:
        return plan_for(country)
    except LookupError:
        return plan_for("US")


def _hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


async def _run(args: argparse.Namespace) -> int:
    profiles = shipped_profiles()
    db = open_db(args.data)
    try:
        name = args.board or ports.board(db)
    finally:
        db.conn.close()
    path = Path(name) if Path(name).is_file() else profiles[name]
    gateway = Gateway(
        args.data,
        load_profile(path),
        _hostport(args.core),
        sip=_hostport(args.sip),
        fxo_sip=_hostport(args.fxo_sip) if args.fxo_sip else None,
        device=args.device,
        sim_control=args.sim_control,
    )
    await gateway.start()
    print(f"{READY}{args.sip}", flush=True)
    sd_notify("READY=1")
    pings = asyncio.create_task(watchdog())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    waits = [loop.create_task(stop.wait()), loop.create_task(gateway.config_changed.wait())]
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in (*waits, pings):
        task.cancel()
    restarting = gateway.config_changed.is_set() and not stop.is_set()
    sd_stopping(restarting=restarting)
    await gateway.stop()
    return RESTART if restarting else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run `pbx-lines` until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m appliance.lines.gateway")
    parser.add_argument("--data", type=Path, required=True, help="the data directory")
    parser.add_argument("--board", help="a board profile name or file (default: lines.board)")
    parser.add_argument("--core", default="127.0.0.1:5060", help="the core's SIP HOST:PORT")
    parser.add_argument("--sip", default=f"{ports.GATEWAY_HOST}:{ports.GATEWAY_PORT}",
                        help="HOST:PORT of the FXS ports' SIP endpoint")  # fmt: skip
    parser.add_argument("--fxo-sip", help="HOST:PORT of the FXO lines' (default: --sip's next "
                        "port, their trunk's server in the core)")  # fmt: skip
    parser.add_argument("--device", help="the board's serial device (default: the profile's)")
    parser.add_argument("--sim-control", type=Path, help="the simulated board's control socket")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        import uvloop  # as the core: its timers and sockets cost less per 20 ms tick
    except ImportError:  # pragma: no cover - uvloop is a Linux dependency
        code = asyncio.run(_run(args))
    else:
        code = int(uvloop.run(_run(args)))
    if code == RESTART:
        reexec()  # same PID: systemd, `pbx lines run` and a test harness keep tracking it
    return code


if __name__ == "__main__":
    raise SystemExit(main())
