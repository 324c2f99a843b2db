"""Numbered schema migrations. Each runs once, in its own transaction, recorded by number."""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable

from appliance.store.database import Database

logger = logging.getLogger(__name__)

Migration = Callable[[Database], None]


def _m0001_initial(db: Database) -> None:
    db.execute(
        """CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE extensions (
            number TEXT PRIMARY KEY,
            name TEXT NOT NULL DEFAULT '',
            realm TEXT NOT NULL,
            ha1_md5 TEXT NOT NULL,
            ha1_sha256 TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE registrations (
            aor TEXT NOT NULL,
            contact_key TEXT NOT NULL,
            contact TEXT NOT NULL,
            expires_at REAL NOT NULL,
            call_id TEXT NOT NULL,
            cseq INTEGER NOT NULL,
            q REAL,
            transport TEXT NOT NULL,
            source TEXT NOT NULL,
            user_agent TEXT NOT NULL DEFAULT '',
            registered_at REAL NOT NULL,
            PRIMARY KEY (aor, contact_key)
        ) WITHOUT ROWID"""
    )
    db.execute(
        "INSERT INTO settings (key, value) VALUES (?, ?), (?, ?)",
        ["sip.realm", "pbx", "sip.nonce_secret", secrets.token_hex(32)],
    )


def _m0002_cdrs(db: Database) -> None:
    db.execute(
        """CREATE TABLE cdrs (
            id TEXT PRIMARY KEY,
            started_at REAL NOT NULL,
            answered_at REAL,
            ended_at REAL NOT NULL,
            caller TEXT NOT NULL,
            caller_name TEXT NOT NULL DEFAULT '',
            dialled TEXT NOT NULL,
            answered_by TEXT,
            disposition TEXT NOT NULL CHECK (disposition IN
                ('answered', 'busy', 'no-answer', 'failed', 'cancelled')),
            duration REAL NOT NULL,
            billsec REAL NOT NULL,
            hangup_side TEXT NOT NULL,
            hangup_cause TEXT NOT NULL,
            codec_caller TEXT,
            codec_callee TEXT,
            rtp_caller TEXT,
            rtp_callee TEXT
        )"""
    )
    db.execute("CREATE INDEX cdrs_started ON cdrs (started_at)")


def _m0003_web(db: Database) -> None:
    db.execute(
        """CREATE TABLE users (
            username TEXT PRIMARY KEY,
            role TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
            password_hash TEXT NOT NULL,
            session_epoch INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE api_tokens (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
            token_hash TEXT NOT NULL UNIQUE,
            created_at REAL NOT NULL,
            last_used_at REAL
        )"""
    )
    db.execute(
        """CREATE TABLE login_failures (
            source TEXT PRIMARY KEY,
            failures INTEGER NOT NULL,
            first_at REAL NOT NULL,
            locked_until REAL
        ) WITHOUT ROWID"""
    )
    db.execute("CREATE INDEX cdrs_caller ON cdrs (caller, started_at)")
    db.execute("CREATE INDEX cdrs_dialled ON cdrs (dialled, started_at)")
    db.execute(
        "INSERT INTO settings (key, value) VALUES (?, ?)",
        ["web.secret_key", secrets.token_hex(32)],
    )


def _m0004_trunks(db: Database) -> None:
    # `instance` is the Contact's `line` parameter: the token by which the box recognises the
    # calls a provider sends to a registered trunk.
    db.execute(
        """CREATE TABLE trunks (
            name TEXT PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('register', 'ip')),
            server TEXT NOT NULL,
            outbound_proxy TEXT NOT NULL DEFAULT '',
            transport TEXT NOT NULL DEFAULT 'udp' CHECK (transport IN ('udp', 'tcp')),
            username TEXT NOT NULL DEFAULT '',
            auth_user TEXT NOT NULL DEFAULT '',
            password TEXT NOT NULL DEFAULT '',
            from_user TEXT NOT NULL DEFAULT '',
            from_domain TEXT NOT NULL DEFAULT '',
            codecs TEXT NOT NULL DEFAULT 'PCMA,PCMU,G722',
            max_calls INTEGER NOT NULL DEFAULT 0,
            expires INTEGER NOT NULL DEFAULT 300,
            options_interval INTEGER NOT NULL DEFAULT 30,
            external_address TEXT NOT NULL DEFAULT '',
            match_cidrs TEXT NOT NULL DEFAULT '',
            did_from TEXT NOT NULL DEFAULT 'auto',
            late_offer INTEGER NOT NULL DEFAULT 0,
            enabled INTEGER NOT NULL DEFAULT 1,
            instance TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE dids (
            number TEXT PRIMARY KEY,
            label TEXT NOT NULL DEFAULT '',
            trunk TEXT NOT NULL DEFAULT '',
            destination TEXT NOT NULL,
            created_at REAL NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE routes (
            name TEXT PRIMARY KEY,
            position INTEGER NOT NULL,
            patterns TEXT NOT NULL,
            prepend TEXT NOT NULL DEFAULT '',
            trunks TEXT NOT NULL,
            caller_id TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL
        )"""
    )
    db.execute(
        "ALTER TABLE extensions ADD COLUMN permissions TEXT NOT NULL"
        " DEFAULT 'internal,local,mobile,long-distance'"
    )
    db.execute("ALTER TABLE extensions ADD COLUMN caller_id TEXT NOT NULL DEFAULT ''")
    db.execute("ALTER TABLE cdrs ADD COLUMN direction TEXT NOT NULL DEFAULT 'internal'")
    for column in ("trunk", "did", "did_label", "sent"):
        db.execute(f"ALTER TABLE cdrs ADD COLUMN {column} TEXT")
    db.execute("CREATE INDEX cdrs_trunk ON cdrs (trunk, started_at)")


def _m0005_languages(db: Database) -> None:
    # '' until the user chooses: then the browser's Accept-Language, else office.language.
    db.execute("ALTER TABLE users ADD COLUMN language TEXT NOT NULL DEFAULT ''")


def _m0006_bans(db: Database) -> None:
    # Sources banned for failed authentications: written by the core (its writer thread),
    # read by the CLI and the setup page when the core is down. A row whose ban ended stays
    # a while so that the next ban of the address is longer (`count` of bans so far).
    db.execute(
        """CREATE TABLE bans (
            address TEXT PRIMARY KEY,
            reason TEXT NOT NULL,
            banned_at REAL NOT NULL,
            until REAL NOT NULL,
            count INTEGER NOT NULL DEFAULT 1
        ) WITHOUT ROWID"""
    )


def _m0007_events_tollfraud(db: Database) -> None:
    # The outbox: every feature's events, kept for the dashboard, statistics and (later)
    # webhooks, which mark what they sent in `delivered_at`.
    db.execute(
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            kind TEXT NOT NULL,
            subject TEXT NOT NULL DEFAULT '',
            data TEXT NOT NULL DEFAULT '{}',
            delivered_at REAL,
            acknowledged_at REAL,
            acknowledged_by TEXT
        )"""
    )
    db.execute("CREATE INDEX events_at ON events (at)")
    db.execute("CREATE INDEX events_kind ON events (kind, at)")
    db.execute(
        """CREATE TABLE countries_called (
            country TEXT PRIMARY KEY,
            first_at REAL NOT NULL,
            number TEXT NOT NULL DEFAULT '',
            caller TEXT NOT NULL DEFAULT ''
        ) WITHOUT ROWID"""
    )
    # NULL: the office's default (`tollfraud.max_outbound_calls`); 0: no limit.
    db.execute("ALTER TABLE extensions ADD COLUMN max_outbound_calls INTEGER")
    # The countries called before this version: no alert for them.
    from appliance.numbering import NumberError, country_of

    rows = db.execute(
        "SELECT sent, MIN(started_at), MIN(caller) FROM cdrs WHERE direction = 'outbound'"
        " AND sent LIKE '+%' GROUP BY sent"
    ).fetchall()
    first: dict[str, tuple[float, str, str]] = {}
    for sent, at, caller in rows:
        try:
            country = country_of(sent)
        except NumberError:
            continue
        if country not in first or at < first[country][0]:
            first[country] = (at, sent, caller)
    db.conn.executemany(
        "INSERT INTO countries_called (country, first_at, number, caller) VALUES (?, ?, ?, ?)",
        [(country, *seen) for country, seen in first.items()],
    )


def _m0008_media_encryption(db: Database) -> None:
    # SRTP (SDES) per line: none | optional (accept SRTP offers, offer plain) | required.
    for table in ("extensions", "trunks"):
        db.execute(
            f"ALTER TABLE {table} ADD COLUMN media_encryption TEXT NOT NULL DEFAULT 'optional'"
        )


def _m0009_live_calls(db: Database) -> None:
    # The core's checkpoint of the calls in progress (`appliance.store.live_calls`): after a
    # crash the next start closes each with a CDR `interrupted`, its duration up to the last
    # checkpoint. `record` is the CDR as it would be written then, as JSON.
    db.execute(
        """CREATE TABLE live_calls (
            id TEXT PRIMARY KEY,
            started_at REAL NOT NULL,
            checkpoint_at REAL NOT NULL,
            record TEXT NOT NULL
        )"""
    )
    _widen_check(db, "cdrs", "disposition", "interrupted")


def _m0010_custom_prompts(db: Database) -> None:
    # Prompts the office made: typed text synthesised offline, or uploaded audio
    # (appliance.store.prompts).
    from appliance.store.prompts import migrate_tables

    migrate_tables(db)


def _m0011_call_recording(db: Database) -> None:
    # Recordings' rows and the rules deciding which calls are recorded (appliance.store.recordings).
    from appliance.store.recordings import migrate_tables

    migrate_tables(db)


def _m0012_voicemail(db: Database) -> None:
    # Mailboxes (one per extension) and the messages left in them (appliance.store.voicemail).
    from appliance.store.voicemail import migrate_tables

    migrate_tables(db)


def _m0013_menus(db: Database) -> None:
    db.execute(
        """CREATE TABLE IF NOT EXISTS ivr_menus (
            name TEXT PRIMARY KEY,
            label TEXT NOT NULL DEFAULT '',
            greeting TEXT NOT NULL,
            invalid_prompt TEXT NOT NULL DEFAULT 'sound:pbx-invalid',
            timeout INTEGER NOT NULL DEFAULT 5 CHECK (timeout BETWEEN 1 AND 60),
            repeats INTEGER NOT NULL DEFAULT 3 CHECK (repeats BETWEEN 1 AND 10),
            direct_dial INTEGER NOT NULL DEFAULT 0 CHECK (direct_dial IN (0, 1)),
            on_timeout TEXT NOT NULL DEFAULT 'hangup:unavailable',
            on_invalid TEXT NOT NULL DEFAULT 'hangup:unavailable',
            created_at REAL NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE IF NOT EXISTS ivr_choices (
            menu TEXT NOT NULL REFERENCES ivr_menus (name) ON DELETE CASCADE,
            key TEXT NOT NULL CHECK (length(key) = 1 AND instr('0123456789*#', key) > 0),
            destination TEXT NOT NULL,
            PRIMARY KEY (menu, key)
        )"""
    )
    db.execute("CREATE INDEX IF NOT EXISTS ivr_choices_destination ON ivr_choices (destination)")
    db.execute(
        """CREATE TABLE IF NOT EXISTS announcements (
            name TEXT PRIMARY KEY,
            label TEXT NOT NULL DEFAULT '',
            prompt TEXT NOT NULL,
            then_to TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL
        )"""
    )


def _m0014_analog_ports(db: Database) -> None:
    db.execute(
        """CREATE TABLE IF NOT EXISTS ports (
            port INTEGER PRIMARY KEY CHECK (port BETWEEN 1 AND 64),
            kind TEXT NOT NULL CHECK (kind IN ('fxs', 'fxo')),
            extension TEXT NOT NULL DEFAULT '',
            password TEXT NOT NULL DEFAULT '',
            trunk TEXT NOT NULL DEFAULT '',
            caller_id TEXT NOT NULL DEFAULT 'etsi-fsk'
                CHECK (caller_id IN ('etsi-fsk', 'bell202', 'dtmf', 'none')),
            board TEXT NOT NULL DEFAULT 'sim'
        )"""
    )
    db.execute(
        "CREATE UNIQUE INDEX IF NOT EXISTS ports_extension ON ports (extension)"
        " WHERE extension != ''"
    )


def _widen_check(db: Database, table: str, column: str, value: str) -> None:
    """Add `value` to the `CHECK (column IN (...))` of `table`: SQLite cannot alter a
    constraint, so the table is rebuilt as its documented procedure says (a new table with the
    new definition, the rows copied, the old one dropped, the new one renamed, its indexes and
    triggers made again: https://www.sqlite.org/lang_altertable.html#otheralter). The current
    definition is read from the schema, so columns other migrations added are kept."""
    (sql,) = db.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", [table]
    ).fetchone()
    check = re.compile(rf"(CHECK\s*\(\s*{column}\s+IN\s*\()([^)]*)(\))", re.IGNORECASE)
    match = check.search(sql)
    if match is None:
        raise RuntimeError(f"no CHECK ({column} IN ...) in the definition of {table}: {sql}")
    if f"'{value}'" in match[2]:
        return
    widened = sql[: match.start(2)] + f"{match[2].rstrip()}, '{value}'" + sql[match.end(2) :]
    new = f"{table}_widened"
    widened = re.sub(rf"^CREATE TABLE\s+\"?{table}\"?", f"CREATE TABLE {new}", widened)
    extras = [
        row[0]
        for row in db.execute(
            "SELECT sql FROM sqlite_master WHERE type IN ('index', 'trigger') AND tbl_name = ?"
            " AND sql IS NOT NULL",
            [table],
        ).fetchall()
    ]
    db.execute(widened)
    db.execute(f"INSERT INTO {new} SELECT * FROM {table}")
    db.execute(f"DROP TABLE {table}")
    db.execute(f"ALTER TABLE {new} RENAME TO {table}")
    for statement in extras:
        db.execute(statement)


MIGRATIONS: list[tuple[int, str, Migration]] = [
    (1, "initial: settings, extensions, registrations", _m0001_initial),
    (2, "call detail records", _m0002_cdrs),
    (3, "setup page: users, API tokens, login failures", _m0003_web),
    (4, "trunks, DIDs, outbound routes", _m0004_trunks),
    (5, "each user's language", _m0005_languages),
    (6, "bans of sources that failed to authenticate", _m0006_bans),
    (7, "events outbox; toll-fraud limits", _m0007_events_tollfraud),
    (8, "media encryption per extension and trunk", _m0008_media_encryption),
    (9, "live-call checkpoint; CDR disposition interrupted", _m0009_live_calls),
    (10, "custom prompts", _m0010_custom_prompts),
    (11, "call recording", _m0011_call_recording),
    (12, "voicemail", _m0012_voicemail),
    (13, "IVR menus and announcements", _m0013_menus),
    (14, "analog ports", _m0014_analog_ports),
]


def migrate(db: Database) -> list[int]:
    """Apply every migration not yet recorded; return the numbers applied. Safe to repeat."""
    db.execute(
        """CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at REAL NOT NULL
        )"""
    )
    applied: list[int] = []
    for version, name, step in MIGRATIONS:
        conn = db.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = conn.execute(
                "SELECT 1 FROM schema_migrations WHERE version = ?", [version]
            ).fetchone()
            if done is None:
                step(db)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    [version, name, time.time()],
                )
                applied.append(version)
                logger.info("applied migration %04d %s", version, name)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return applied


def current_version(db: Database) -> int:
    row = db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)
