"""Power-cut simulation: a child process writing configuration (the store functions the CLI and
the web service call), bindings and CDRs (through the core's writer thread) is SIGKILLed at a
random moment, 100 times over one database; after each kill the database opens, passes
`PRAGMA integrity_check`, and holds every write the child had acknowledged.

SIGKILL tests the process half of a power cut: the kernel's page cache survives it. That what
was committed also reaches the disk before the acknowledgement is `synchronous=FULL`'s part
(`appliance.store.db`), which only holds on a disk that honours fsync.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

from appliance.store import extensions, settings
from appliance.store.db import open_db
from tests.feed import Feed, FeedClosed
from tests.store.power_cut_child import PASSWORD, RENAMED, SETTING

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 100
MAX_LINES = 150
"""A kill comes after a random number (0 to this) of the child's lines since it was ready:
some tens of its writes at most, so 100 rounds take some 20 s here."""
WAIT = 15.0
BUDGET = 90.0
"""Seconds the whole test may take (about 20 s here; the machine is shared)."""


class Child:
    """One run of `power_cut_child`, its standard output read line by line as it comes."""

    def __init__(self, data: Path, round_: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.store.power_cut_child", str(data), str(round_)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True, bufsize=1,
        )  # fmt: skip
        self.lines: Feed[str] = Feed()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
        self.lines.close()

    def kill_after(self, lines: int) -> list[str]:
        """SIGKILL the child (by PID) once it printed `lines` lines after `ready`; return
        every line it printed."""
        try:
            _, _, start = self.lines.wait(lambda line: line == "ready", WAIT)
            if lines:
                self.lines.wait(lambda _line: True, WAIT, since=start + lines - 1)
        except FeedClosed as exc:
            raise AssertionError(f"the child stopped early ({exc}): {self.lines.items}") from None
        finally:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=WAIT)
            self._reader.join(timeout=WAIT)
        return self.lines.items


def test_every_acknowledged_write_survives_a_kill_at_any_moment(tmp_path: Path) -> None:
    data = tmp_path / "var"
    db = open_db(data)
    settings.set_value(db, "ext.number_min", "100000")
    for number in RENAMED:
        extensions.add(db, number, "first", password=PASSWORD)
    state = {("name", n): "first" for n in RENAMED}
    state[("set", SETTING)] = str(settings.get_int(db, SETTING))
    db.conn.close()
    rng = random.Random()
    seed = rng.randrange(2**32)
    rng.seed(seed)
    started = time.monotonic()
    acknowledged: dict[str, set[tuple[str, str]]] = defaultdict(set)
    in_flight = 0
    for round_ in range(1, ROUNDS + 1):
        assert time.monotonic() - started < BUDGET, f"{round_ - 1} rounds took too long"
        lines = Child(data, round_).kill_after(rng.randint(0, MAX_LINES))
        tried: dict[tuple[str, str], list[str]] = defaultdict(list)
        """Values written to each (kind, key) since its last acknowledgement: one may be in."""
        for line in lines[1:]:
            what, kind, key, value = line.split(" ")
            if what == "try":
                tried[(kind, key)].append(value)
            else:
                acknowledged[kind].add((key, value))
                tried[(kind, key)] = []
                if kind in ("name", "set"):
                    state[(kind, key)] = value
        in_flight += any(tried.values())

        db = open_db(data)  # opens, and finds its schema complete (no migration to run)
        try:
            context = f"round {round_} (seed {seed}), killed after {len(lines)} lines"
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)], context
            names = dict(db.execute("SELECT number, name FROM extensions").fetchall())
            for number, name in acknowledged["ext"]:
                assert names.get(number) == name, f"{context}: extension {number} lost"
            found = {("name", n): names[n] for n in RENAMED}
            found[("set", SETTING)] = str(settings.get_int(db, SETTING))
            for slot, now in found.items():
                allowed = {state[slot], *tried[slot]}
                assert now in allowed, f"{context}: {slot} is {now!r}, not one of {allowed}"
                state[slot] = now
            ids = {i for (i,) in db.execute("SELECT id FROM cdrs").fetchall()}
            lost = {i for i, _ in acknowledged["cdr"]} - ids
            assert not lost, f"{context}: acknowledged CDRs lost: {sorted(lost)}"
            bindings = set(db.execute("SELECT aor, contact_key FROM registrations").fetchall())
            gone = acknowledged["reg"] - bindings
            assert not gone, f"{context}: acknowledged bindings lost: {sorted(gone)}"
        finally:
            db.conn.close()
    # The kills came in the middle of writing, most of the time (the child always writes).
    assert in_flight >= ROUNDS // 2, f"only {in_flight} of {ROUNDS} kills caught a write"
    assert all(acknowledged[kind] for kind in ("ext", "name", "set", "cdr", "reg")), acknowledged
