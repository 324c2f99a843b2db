"""The scan of a core's output that fails tests (`tests/conftest.py`, issue 13), on the output of
a real Python process logging in the services' format: what it must catch, what it must let
pass, and how a test declares what it provokes."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import log_problems

PROGRAM = r"""
import logging, threading, time
from appliance.cli import main  # noqa: F401  (the services' modules, as a core has them)
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
log = logging.getLogger("appliance.sip.endpoint")
print("pbx-core: SIP on udp+tcp 127.0.0.1:5070, control /tmp/x", flush=True)
log.info("400 from 127.0.0.9:4000: Bad Request (bad host)")
log.warning("overload: refusing new INVITEs")
try:
    {}["missing"]
except KeyError:
    log.exception("handler failed")
try:
    1 / 0
except ZeroDivisionError:
    log.warning("kept going", exc_info=True)
log.error("no SIP over TLS: no certificate")
thread = threading.Thread(target=lambda: [][1], name="store-writer")
thread.start(); thread.join()
print("pbx-core: stopped", flush=True)
raise RuntimeError("uncaught at exit")
"""


def output() -> list[str]:
    proc = subprocess.run(  # both streams on one pipe, as a core's output is read
        [sys.executable, "-c", PROGRAM], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=60, check=False,
    )  # fmt: skip
    lines = proc.stdout.splitlines()
    assert any("pbx-core: stopped" in line for line in lines), lines
    return lines


def test_the_scan_finds_every_fault_and_nothing_else() -> None:
    problems = log_problems(output(), [])
    heads = [problem.splitlines()[0] for problem in problems]
    assert len(problems) == 5, "\n---\n".join(problems)
    assert heads[0].endswith("ERROR appliance.sip.endpoint: handler failed")
    assert "KeyError: 'missing'" in problems[0]  # the traceback belongs to its record
    assert heads[1].endswith("WARNING appliance.sip.endpoint: kept going")
    assert "ZeroDivisionError" in problems[1]
    assert heads[2].endswith("ERROR appliance.sip.endpoint: no SIP over TLS: no certificate")
    assert heads[3].startswith("Exception in thread store-writer")
    assert "IndexError" in problems[3]
    assert heads[4] == "Traceback (most recent call last):"
    assert problems[4].endswith("RuntimeError: uncaught at exit")
    # INFO and WARNING lines without a traceback, and printed lines, are no fault.
    assert not any("overload" in p or "Bad Request" in p or "pbx-core" in p for p in problems)


def test_declared_errors_pass_and_only_those() -> None:
    expected = [re.compile(r"no SIP over TLS"), re.compile(r"ZeroDivisionError")]
    heads = [problem.splitlines()[0] for problem in log_problems(output(), expected)]
    assert len(heads) == 3, heads
    assert "handler failed" in heads[0] and heads[1].startswith("Exception in thread")


def test_tracebacks_chained_stay_one_fault_and_two_in_a_row_are_two() -> None:
    lines = [
        "2026-12-03 10:00:00,000 ERROR appliance.pbx.core: reload failed",
        "Traceback (most recent call last):",
        "KeyError: 'x'",
        "",
        "During handling of the above exception, another exception occurred:",
        "",
        "Traceback (most recent call last):",
        "ValueError: y",
        "Traceback (most recent call last):",
        "RuntimeError: z",
    ]
    problems = log_problems(lines, [re.compile("reload failed")])
    assert problems == ["Traceback (most recent call last):\nRuntimeError: z"]


def test_a_bare_traceback_after_printed_lines_is_a_fault_of_its_own() -> None:
    lines = [
        "pbx-core: SIP on udp+tcp 127.0.0.1:5070, control /tmp/x",
        "Traceback (most recent call last):",
        '  File "x.py", line 1, in <module>',
        "ValueError: bad",
    ]
    assert log_problems(lines, []) == ["\n".join(lines[1:])]
    assert log_problems(lines, [re.compile("ValueError: bad")]) == []
