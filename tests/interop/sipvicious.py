"""SIPVicious (PyPI `sipvicious` 0.3.8): the scanner suite that finds a PBX on a network
within hours. `svmap` finds SIP devices, `svwar` guesses extensions, `svcrack` guesses an
extension's password; each runs here to its end against a box on loopback.

Every run names a free local port (`-P`; the tools default to 5060) and the box as the
address its Via names (`-x`), and is bounded: the tool stops `maximumtime` seconds after the
box last answered, and the process is killed by its PID past `timeout`.

What 0.3.8 does, measured here: `svwar` and `svcrack` take `-b` (the address to send from) but
their command lines never pass it on, so they always send from the address the kernel picks
for the target, 127.0.0.1 for a box on 127.0.0.1 (`svmap` does bind it). `svwar` first asks
for a random extension and stops ("authentication request for an unknown extension") unless
`--force` is given; with it, an answer equal to that first one ends the scan of a REGISTER or
INVITE scan, while an OPTIONS scan goes through the whole range.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.interop.sipp import free_port

BIN = Path(sys.executable).parent
"""The tools' entry points, installed in the test environment with the package."""
TIMEOUT = 60.0


@dataclass(frozen=True)
class ScanRun:
    argv: tuple[str, ...]
    returncode: int
    output: str

    def describe(self) -> str:
        return f"$ {' '.join(self.argv)}\nexit status {self.returncode}\n{self.output}"


def _run(tool: str, args: list[str], target: tuple[str, int], timeout: float) -> ScanRun:
    host, port = target
    argv = (str(BIN / f"sipvicious_{tool}"), "-p", str(port), *args, host)
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
    )
    return ScanRun(argv, proc.returncode, proc.stdout + proc.stderr)


def svmap(
    target: tuple[str, int], *, source: str = "127.0.0.1", timeout: float = TIMEOUT
) -> ScanRun:
    """Look for a SIP device at `target` (OPTIONS), from `source`."""
    args = ["-b", source, "-P", str(free_port(source)), "-x", source]
    return _run("svmap", args, target, timeout)


def svwar(
    target: tuple[str, int], extensions: str, *, method: str = "REGISTER", force: bool = True,
    maximumtime: int = 3, timeout: float = TIMEOUT,
) -> ScanRun:  # fmt: skip
    """Guess which of `extensions` (e.g. "100-110") exist, asking with `method`."""
    args = ["-P", str(free_port()), "-x", "127.0.0.1", "-e", extensions, "-m", method,
            "--maximumtime", str(maximumtime)]  # fmt: skip
    if force:
        args.append("--force")
    return _run("svwar", args, target, timeout)


def svcrack(
    target: tuple[str, int], user: str, words: Path, *, maximumtime: int = 3,
    timeout: float = TIMEOUT,
) -> ScanRun:  # fmt: skip
    """Guess `user`'s password from the file `words` (one a line), by REGISTER."""
    args = ["-u", user, "-d", str(words), "-P", str(free_port()), "-x", "127.0.0.1",
            "--maximumtime", str(maximumtime)]  # fmt: skip
    return _run("svcrack", args, target, timeout)
