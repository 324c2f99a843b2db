"""The writer the power-cut test kills: configuration writes through the store functions the
CLI and the web service use, bindings and CDRs through the core's writer thread, a WAL
checkpoint thread as in the core, until it is SIGKILLed.

    python -m tests.store.power_cut_child DATA ROUND

Every write is announced on standard output before it starts (`try KIND KEY VALUE`) and
acknowledged after the store function returned (`ack KIND KEY VALUE`), each line one
`write(2)` to the pipe (atomic below PIPE_BUF, so the main thread's and the writer thread's
lines never mix). An acknowledged write must be in the database after the kill; a tried one
may or may not be. ROUND makes this run's numbers and values its own.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

from appliance.store import cdrs, extensions, registrations, settings
from appliance.store.database import Database
from appliance.store.db import Checkpointer, Writer, open_db

RENAMED = [f"{n}" for n in range(100000, 100010)]
"""Extensions the test creates first; every round renames them."""
SETTING = "calls.ring_timeout"
PASSWORD = "Kq7vT9pLm2"


def say(*words: object) -> None:
    os.write(1, (" ".join(map(str, words)) + "\n").encode())


def cdr(call_id: str) -> cdrs.Cdr:
    now = time.time()
    return cdrs.Cdr(
        id=call_id, started_at=now - 3, ended_at=now, caller="101", dialled="102",
        disposition="answered", hangup_side="caller", hangup_cause="BYE", answered_at=now - 2,
        answered_by="102", codec_caller="PCMU", codec_callee="PCMU",
        rtp_caller={"packets": 100, "lost": 0}, rtp_callee={"packets": 100, "lost": 0},
    )  # fmt: skip


def binding(aor: str, key: str) -> registrations.Registration:
    now = time.time()
    return registrations.Registration(
        aor, key, f"<sip:{aor}@127.0.0.1:5062>", now + 3600, uuid.uuid4().hex, 1, None, "UDP",
        "UDP 127.0.0.1:5062", "power-cut", now,
    )  # fmt: skip


def submit_cdr(writer: Writer, call_id: str) -> None:
    def write(db: Database) -> None:
        cdrs.write(db, [cdr(call_id)])
        say("ack cdr", call_id, "-")

    say("try cdr", call_id, "-")
    writer.submit(f"CDR {call_id}", write)


def submit_binding(writer: Writer, aor: str, key: str) -> None:
    def write(db: Database) -> None:
        registrations.write(db, [binding(aor, key)], [])
        say("ack reg", aor, key)

    say("try reg", aor, key)
    writer.submit(f"binding {aor}", write)


def main(data: Path, round_: int) -> None:
    db = open_db(data)
    writer = Writer(data)
    Checkpointer(data, interval=0.01).start(db)  # checkpoints often: kills land in them too
    say("ready")
    step = 0
    while True:
        step += 1
        tag = f"r{round_}s{step}"
        number = str(200000 + round_ * 1000 + step)
        if step <= 999:
            say("try ext", number, tag)
            extensions.add(db, number, tag, password=PASSWORD)
            say("ack ext", number, tag)
        target = RENAMED[step % len(RENAMED)]
        say("try name", target, tag)
        extensions.rename(db, target, tag)
        say("ack name", target, tag)
        value = str(5 + (round_ * 7 + step) % 500)
        say("try set", SETTING, value)
        settings.set_value(db, SETTING, value)
        say("ack set", SETTING, value)
        submit_cdr(writer, f"{tag}-{uuid.uuid4().hex[:8]}")
        submit_binding(writer, number, tag)
        writer.drain()  # (else this thread's commits, back to back, starve the writer's)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
