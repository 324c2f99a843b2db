"""The pbx-core service: SIP endpoint, registrar, store and control socket in one event loop."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.store.database import Database

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None  # type: ignore[assignment]

from appliance import certs, control, heap
from appliance.media.engine import MediaEngine, MediaError
from appliance.pbx import recording as call_recording
from appliance.pbx.b2bua import CallConfig, CallEngine
from appliance.pbx.checkpoint import CallCheckpoint
from appliance.pbx.dialplan import DialPlan, Rules
from appliance.pbx.directory import Directory, Numbers
from appliance.pbx.encryption import Policies
from appliance.pbx.hold import HoldMusic
from appliance.pbx.mail import MailConfig, Mailer
from appliance.pbx.mwi import MessageWaiting
from appliance.pbx.outbox import Outbox
from appliance.pbx.retention import Keeper as RecordingKeeper
from appliance.pbx.security import BanKeeper, guard_config
from appliance.pbx.tollfraud import History, Limits
from appliance.pbx.trunks import Trunks
from appliance.pbx.voicemail import Voicemail
from appliance.service import sd_notify, sd_stopping, watchdog
from appliance.sip.digest import DigestServer
from appliance.sip.endpoint import SipEndpoint
from appliance.sip.guard import Guard as SipGuard
from appliance.sip.guard import GuardConfig
from appliance.sip.registrar import Registrar, RegistrarConfig
from appliance.sip.transport import TcpLimits
from appliance.store import cdrs, events, extensions, live_calls, settings, trunks
from appliance.store.db import Checkpointer, Writer, open_db

logger = logging.getLogger(__name__)

PURGE_INTERVAL = 60.0
CDR_PRUNE_INTERVAL = 3600.0
"""How often call records past `cdrs.retention_days` or beyond `cdrs.max_rows` are deleted;
also at start-up and when a reload changes either."""


class CoreError(Exception):
    """The core cannot start; `str()` says why, for a technician."""


@dataclass(frozen=True, slots=True)
class CoreOptions:
    data_dir: Path
    sip_host: str = "127.0.0.1"
    sip_port: int = 5060
    tls_port: int | None = None
    """Where SIP over TLS listens: None for 5061 (or the SIP port + 1 when that is not 5060;
    a free port when the SIP port is 0), 0 for a free port."""


def registrar_config(db: Database) -> RegistrarConfig:
    return RegistrarConfig(
        min_expires=settings.get_int(db, "sip.min_expires"),
        max_expires=settings.get_int(db, "sip.max_expires"),
        default_expires=settings.get_int(db, "sip.default_expires"),
        max_contacts=settings.get_int(db, "sip.max_contacts"),
    )


@dataclass(frozen=True, slots=True)
class Config:
    """Everything the core serves from, read from the store in one go. A reload reads it in
    a thread of its own (10,000 DIDs take tens of milliseconds) and the loop only swaps it in,
    between two messages."""

    credentials: dict[str, extensions.Credentials]
    nonce_ttl: int
    digest_algorithms: tuple[str, ...]
    registrar: RegistrarConfig
    numbers: Numbers
    rules: Rules
    trunk_configs: list[trunks.Trunk]
    calls: CallConfig
    cdr_retention: cdrs.Retention
    tcp_limits: TcpLimits
    security: GuardConfig
    media_encryption: Policies
    limits: Limits
    events_retention_days: int
    overload_queue_kib: int
    recording: call_recording.Config
    music_class: str
    mail: MailConfig = MailConfig()  # noqa: RUF009 (frozen: one shared default is safe)

    @classmethod
    def read(cls, db: Database) -> Config:
        return cls(
            extensions.all_credentials(db),
            settings.get_int(db, "sip.nonce_ttl"),
            settings.get_list(db, "sip.digest_algorithms"),
            registrar_config(db),
            Numbers.read(db),
            Rules.read(db),
            trunks.list_all(db),
            CallConfig(
                ring_timeout=settings.get_int(db, "calls.ring_timeout"),
                media_timeout=settings.get_int(db, "calls.media_timeout"),
                max_duration=settings.get_int(db, "calls.max_duration"),
            ),
            cdrs.Retention.read(db),
            TcpLimits(
                max_per_source=settings.get_int(db, "sip.tcp_max_per_source"),
                max_total=settings.get_int(db, "sip.tcp_max_total"),
            ),
            guard_config(db),
            Policies.read(db),
            Limits.read(db),
            settings.get_int(db, "events.retention_days"),
            settings.get_int(db, "sip.overload_queue_kib"),
            call_recording.Config.read(db),
            settings.get_str(db, "moh.class"),
            mail=MailConfig.read(db),
        )

    @classmethod
    def read_from(cls, data_dir: Path) -> Config:
        """`read` on a connection of its own (for another thread)."""
        db = open_db(data_dir, migrate_schema=False)
        try:
            return cls.read(db)
        finally:
            db.conn.close()


def advertised_address(host: str) -> str:
    """The address to put in SDP, Via and Contact when listening on `host`.

    A wildcard (`0.0.0.0`, `::`) is no address a phone can send to: then it is the address of
    the interface the default route leaves by (a UDP socket's connect() picks it and sends
    nothing), or loopback on a machine with no route."""
    if host not in ("0.0.0.0", "::", ""):
        return host
    family = socket.AF_INET6 if host == "::" else socket.AF_INET
    probe = "2001:db8::1" if family == socket.AF_INET6 else "192.0.2.1"  # documentation ranges
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((probe, 9))
            return str(sock.getsockname()[0])
        except OSError:
            return "::1" if family == socket.AF_INET6 else "127.0.0.1"


GC_THRESHOLDS = (10_000, 50, 1_000)
"""The hot paths make no reference cycles (an ended call breaks its own; the leak test in
tests/interop/test_sipp_calls.py checks it), so the cyclic collector has little to find; its
default thresholds (700, 10, 10) made it walk every live object several times a second under a
registration load, each time stalling the loop. Measured with bench/register: 2,000 REGISTER/s
went from 1,430-1,540/s achieved with retransmissions to the full rate without them."""


def tune_gc() -> None:
    gc.freeze()  # start-up objects live for ever: keep them out of every collection
    gc.set_threshold(*GC_THRESHOLDS)


class Core:
    def __init__(self, options: CoreOptions) -> None:
        self.options = options
        self.db = open_db(options.data_dir)
        self.recovered = live_calls.recover(self.db)
        """The calls a previous run left in progress (a crash), now closed `interrupted`."""
        if self.recovered:
            logger.warning("closed %d calls left in progress when pbx-core last stopped "
                           "(disposition interrupted)", len(self.recovered))  # fmt: skip
        self.checkpointer = Checkpointer(options.data_dir)
        self.writer = Writer(options.data_dir)
        self.started = time.time()
        realm = settings.get_text(self.db, "sip.realm")
        secret = bytes.fromhex(settings.get_text(self.db, "sip.nonce_secret"))
        self.digest = DigestServer(realm, secret)
        self.sip_guard = SipGuard()
        """Bans and rate limits per source (intrusion protection; `pbx/security.py`)."""
        self.endpoint = SipEndpoint(guard=self.sip_guard)
        self.registrar = Registrar(self.endpoint, self.db, self.digest, writer=self.writer)
        self.endpoint.handlers["REGISTER"] = self.registrar
        advertised = advertised_address(options.sip_host)
        try:
            self.media = MediaEngine(
                options.sip_host,
                settings.get_int(self.db, "rtp.port_min"),
                settings.get_int(self.db, "rtp.port_max"),
                advertised,
            )
        except MediaError as exc:
            raise CoreError(str(exc)) from None
        self.advertised = advertised
        self.directory = Directory()
        self.trunks = Trunks(self.endpoint, lambda: self.advertised, self._normalize)
        self.dialplan = DialPlan(self.directory, self.trunks)
        self.dialplan.prompts.data_dir = options.data_dir
        self.outbox = Outbox(self.writer)
        self.tollfraud = self.dialplan.tollfraud  # toll-fraud limits: events through the outbox
        self.tollfraud.outbox = self.outbox
        self.calls = CallEngine(
            self.endpoint, self.registrar, self.digest, self.media, self.dialplan,
            record=self._record, advertised=advertised,
        )  # fmt: skip
        self.trunks.calls_on = self.calls.calls_on
        self.call_checkpoint = CallCheckpoint(self.calls, self.writer)
        self.recording = call_recording.CallRecording(
            self.media, options.data_dir, self.writer, prompts=self.dialplan.prompts
        )
        """Call recording by the rules and the feature code: a feature on the call hooks."""
        self.recording.attach(self.calls)
        self.hold_music = HoldMusic(self.calls, options.data_dir)
        self.recording_keeper = RecordingKeeper(options.data_dir, self.writer)
        self.voicemail = Voicemail(options.data_dir, self.writer, outbox=self.outbox,
                                   mailer=Mailer())  # fmt: skip
        """Voicemail: mailboxes for the dial plan's destinations, MWI, e-mail."""
        self.voicemail.load_counts(self.db)
        self.dialplan.voicemail = self.voicemail
        self.mwi = MessageWaiting(self.calls, self.voicemail.counts)
        self.mwi.unsolicited = self.voicemail.unsolicited
        self.voicemail.mwi = self.mwi
        self.endpoint.handlers["SUBSCRIBE"] = self.mwi.on_subscribe
        self._background: set[asyncio.Task[None]] = set()
        self._reloading = asyncio.Lock()
        self.cdr_retention = cdrs.Retention()
        self._pruning: asyncio.Future[int] | None = None
        self.events_retention_days = 90
        self._apply(Config.read(self.db))
        self.ban_keeper = BanKeeper(self.sip_guard, self.db, self.writer)
        self.tollfraud.load(History.read(self.db, self.tollfraud.limits, time.time()))
        self._stop = asyncio.Event()
        self.restart_requested = False

    def _normalize(self, number: str) -> str:
        return self.dialplan.from_provider(number)

    def _record(self, record: cdrs.Cdr) -> None:
        self.tollfraud.ended(record)
        # (its live-call checkpoint row goes in the same transaction)
        self.writer.submit(f"CDR {record.id}", lambda db: live_calls.close(db, record))

    def status(self, _request: dict[str, Any]) -> dict[str, Any]:
        host, port = self.endpoint.local
        return {
            "sip": f"{host}:{port}",
            "advertised": f"{self.advertised}:{port}",
            "pid": os.getpid(),
            "uptime": int(time.time() - self.started),
            "registrations": self.registrar.summary(),
            "calls": self.calls.live_calls(),
            "trunks": self.trunks.status(),
            "refused": sum(self.sip_guard.counters.refused.values()),
            "refused_by": dict(self.sip_guard.counters.refused),
            "security": self.sip_guard.status(),
            "overload": self.endpoint.overload.status(),
        }

    def counters(self, _request: dict[str, Any]) -> dict[str, Any]:
        """What the core holds right now: for leak checks and for the curious."""
        layer = self.endpoint.transactions
        return {
            "calls": len(self.calls.calls),
            "dialogs": len(self.calls.dialogs),
            "pending_invites": len(self.calls.pending),
            "tasks": len(asyncio.all_tasks()),
            "media_legs": len(self.media.legs),
            "free_rtp_ports": self.media.free_ports,
            "server_transactions": len(layer.server),
            "client_transactions": len(layer.client),
            "open_fds": len(os.listdir("/proc/self/fd")),
            **self.sip_guard.status(),
            **self._tcp_counters(),
            **{f"overload.{k}": v for k, v in self.endpoint.overload.status().items()},
            "completed_transactions": len(layer.completed),
            "completed_evicted": layer.completed.evicted,
        }

    def _tcp_counters(self) -> dict[str, int]:
        tcp = self.endpoint.tcp
        if tcp is None:
            return {"tcp_connections": 0, "tcp_inbound": 0, "tcp_refused": 0, "tcp_expired": 0}
        return {
            "tcp_connections": len(tcp.connections),  # open, either way
            "tcp_inbound": tcp.inbound,  # from outside, counted toward the caps
            "tcp_refused": tcp.refused,  # refused or closed for a cap, since start
            "tcp_expired": tcp.expired,  # closed for sending no SIP message in time
        }

    async def trunk_test(self, request: dict[str, Any]) -> dict[str, Any]:
        """The setup page's "test" button: a trunk's state and an OPTIONS round trip now."""
        name = str(request.get("name", ""))
        line = self.trunks.get(name)
        if line is None:
            return {"error": f"no trunk {name!r} is running"}
        status = line.status()
        try:
            status["rtt_ms"] = round(await line.ping(), 1)
            status["reachable"] = True
        except TimeoutError:
            status["rtt_ms"], status["reachable"] = None, False
        return status

    def collect(self, _request: dict[str, Any]) -> dict[str, Any]:
        """Run the cyclic garbage collector now; say how many unreachable objects it found, and
        how many all collections since start-up found.

        Ended calls must leave no reference cycles (each would wait for a collection that
        stalls the loop), so after any number of calls this stays near zero: a test checks."""
        unreachable = gc.collect()
        collected = sum(generation["collected"] for generation in gc.get_stats())
        return {"unreachable": unreachable, "collected_since_start": collected}

    async def reload(self, _request: dict[str, Any]) -> dict[str, Any]:
        """Re-read the configuration in a thread, then apply it whole between two messages;
        answers with how long each took (the loop is held only for the second)."""
        async with self._reloading:  # one at a time, so that the last read is the one applied
            t0 = time.perf_counter()
            config = await asyncio.to_thread(Config.read_from, self.options.data_dir)
            t1 = time.perf_counter()
            retention = self.cdr_retention
            self._apply(config)
            t2 = time.perf_counter()
            if config.cdr_retention != retention:
                self.prune_cdrs()  # what the new settings no longer keep goes now
        return {"reloaded": True, "read_ms": round(1000 * (t1 - t0), 2),
                "apply_ms": round(1000 * (t2 - t1), 3)}  # fmt: skip

    def restart(self, _request: dict[str, Any]) -> dict[str, Any]:
        """Stop cleanly, then start again in the same process (`run_core` re-executes it).

        Registrations are kept in the store, so phones stay registered; calls in progress end."""
        self.restart_requested = True
        asyncio.get_running_loop().call_soon(self._stop.set)
        return {"restarting": True}

    def _apply(self, config: Config) -> None:
        self.registrar.use_credentials(config.credentials)
        self.digest.nonce_ttl = config.nonce_ttl
        self.digest.algorithms = config.digest_algorithms
        self.registrar.config = config.registrar
        self.directory.use(config.numbers)
        self.dialplan.use(config.rules)
        for line in self.trunks.reload(config.trunk_configs):
            task = asyncio.get_running_loop().create_task(line.stop())
            self._background.add(task)  # (kept until done: the loop holds tasks weakly)
            task.add_done_callback(self._background.discard)
        self.calls.config = config.calls
        self.tollfraud.use(config.limits)
        self.events_retention_days = config.events_retention_days
        self.cdr_retention = config.cdr_retention
        self.endpoint.tcp_limits = config.tcp_limits  # for new connections; open ones stay
        self.endpoint.overload.set_threshold(config.overload_queue_kib)
        self.sip_guard.config = config.security
        self.calls.encryption = config.media_encryption  # for new offers; calls keep theirs
        self.recording.config = config.recording
        self.hold_music.music_class = config.music_class
        if self.voicemail.mailer is not None:
            self.voicemail.mailer.config = config.mail

    def _give_back_memory(self) -> None:
        """A load ended (the completed transactions it left expired): give the system back what
        the C allocator can of what the load freed (`appliance.heap` says what it cannot)."""
        logger.info("load over: memory given back in %.1f ms", heap.give_back())

    async def _purge(self) -> None:
        while True:
            await asyncio.sleep(PURGE_INTERVAL)
            self.ban_keeper.sweep()
            removed = self.registrar.purge()
            if removed:
                logger.info("removed %d expired registrations", removed)

    def prune_cdrs(self) -> asyncio.Future[int]:
        """Delete the call records the retention settings no longer keep, on the store's writer
        thread: one batch (`cdrs.PRUNE_BATCH`) per transaction, each next batch queued behind
        what was submitted meanwhile (CDRs, bindings whose 200 OK waits), so neither the loop
        nor a phone waits for a large backlog. The future gives how many went (what went
        before a failure, which the writer logs). One pruning at a time: asked for while one
        runs, its future."""
        if self._pruning is not None and not self._pruning.done():
            return self._pruning
        loop = asyncio.get_running_loop()
        done: asyncio.Future[int] = loop.create_future()
        self._pruning = done
        retention, now, limit = self.cdr_retention, time.time(), cdrs.PRUNE_BATCH
        total = 0

        def finish() -> None:
            if not done.done():
                done.set_result(total)
            if total:
                logger.info("deleted %d call records (cdrs.retention_days %d, cdrs.max_rows %d)",
                            total, retention.days, retention.max_rows)  # fmt: skip

        def batch(db: Database) -> None:
            nonlocal total
            removed = 0
            try:
                removed = cdrs.prune(db, retention, now, limit)
                total += removed
            finally:
                if removed == limit:
                    self.writer.submit("CDR pruning", batch)
                else:
                    loop.call_soon_threadsafe(finish)

        self.writer.submit("CDR pruning", batch)
        return done

    async def _prune(self) -> None:
        while True:
            await self.prune_cdrs()
            self.prune_events()
            await asyncio.sleep(CDR_PRUNE_INTERVAL)

    def prune_events(self) -> None:
        """Delete the outbox's events older than `events.retention_days`, on the writer
        thread, a batch per transaction (each next one queued behind what came meanwhile)."""
        days, now = self.events_retention_days, time.time()

        def batch(db: Database) -> None:
            if events.prune(db, days, now) == events.PRUNE_BATCH:
                self.writer.submit("event pruning", batch)

        self.writer.submit("event pruning", batch)

    async def _listen_tls(self) -> str:
        """SIP over TLS with the box's certificate (DATA/tls, self-signed when none is given)
        on 5061, or the SIP port + 1 when that is not 5060 (port 0: a free one), unless
        `--tls` names the port. Returns what
        the READY line says of it. Without a certificate the core serves on without TLS."""
        opts = self.options
        sip_port = opts.sip_port
        port = 5061 if sip_port == 5060 else (sip_port + 1 if sip_port else 0)
        if opts.tls_port is not None:
            port = opts.tls_port
        try:
            cert, key = await asyncio.to_thread(certs.certificate, opts.data_dir, [opts.sip_host])
            context = certs.server_context(cert, key)
            await self.endpoint.listen_tls(opts.sip_host, port, context, certs.client_context())
        except certs.CertificateError as exc:
            logger.error("no SIP over TLS: %s", exc)
            return "tls off"
        except OSError as exc:
            self.endpoint.close()
            raise CoreError(
                f"cannot listen for SIP over TLS on {opts.sip_host}:{port}: {exc.strerror or exc}"
            ) from None
        assert self.endpoint.tls is not None
        host, bound = self.endpoint.tls.local
        return f"tls {host}:{bound}"

    async def run(self) -> None:
        opts = self.options
        try:
            await self.endpoint.listen(opts.sip_host, opts.sip_port)
        except OSError as exc:
            self.endpoint.close()
            raise CoreError(
                f"cannot listen for SIP on {opts.sip_host}:{opts.sip_port}: {exc.strerror or exc}"
                " (is another pbx or SIP server running there?)"
            ) from None
        tls_at = await self._listen_tls()
        self.checkpointer.start(self.db)
        self.media.start()
        self.calls.start()
        self.recording_keeper.start()  # crash recovery of recordings, then the storage rules
        self.tollfraud.start()
        self.trunks.start()
        sock_path = control.socket_path(opts.data_dir)
        commands: dict[str, control.Command] = {
            "status": self.status,
            "reload": self.reload,
            "counters": self.counters,
            "gc": self.collect,
            "restart": self.restart,
            "trunk_test": self.trunk_test,
            "bans": self.ban_keeper.list,
            "ban_remove": self.ban_keeper.remove,
        }
        server = await control.serve(sock_path, commands)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        tasks = [asyncio.create_task(self._purge()), asyncio.create_task(self._prune())]
        tasks.append(asyncio.create_task(self.call_checkpoint.run()))
        tasks.append(asyncio.create_task(self.recording_keeper.run()))
        tasks.append(asyncio.create_task(watchdog()))
        tune_gc()
        self.endpoint.transactions.completed.on_drained = self._give_back_memory
        host, port = self.endpoint.local
        print(f"pbx-core: SIP on udp+tcp {host}:{port}, {tls_at}, control {sock_path}", flush=True)
        sd_notify("READY=1")
        try:
            await self._stop.wait()
        finally:
            sd_stopping(restarting=self.restart_requested)
            for task in tasks:
                task.cancel()
            self.calls.close()
            self.mwi.close()
            self.voicemail.close()
            self.tollfraud.close()
            await self.trunks.close()
            self.media.close()
            self.registrar.flush(wait=True)
            self.writer.stop()
            self.checkpointer.stop()
            server.close()
            sock_path.unlink(missing_ok=True)
            self.endpoint.close()
            self.db.conn.close()
            print("pbx-core: stopped", flush=True)


def run_core(options: CoreOptions) -> bool:
    """Run the core in the foreground until SIGTERM/SIGINT or a restart command, on uvloop
    when installed; return True when a restart was asked for."""
    if uvloop is None:  # pragma: no cover - uvloop is a Linux dependency
        return asyncio.run(_main(options))
    return bool(uvloop.run(_main(options)))


async def _main(options: CoreOptions) -> bool:
    core = Core(options)
    await core.run()
    return core.restart_requested
