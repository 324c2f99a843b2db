"""Give freed memory back to the system after a load, in a process that stays up for months.

glibc's malloc keeps freed chunks inside its heap (the responses of 40,000 completed
transactions, 550 bytes each, are such chunks): `give_back` runs the cyclic collector (what a
cycle kept) and `malloc_trim(0)`, which hands every free page inside the heap back (madvise),
not only the top. A no-op for the second where the C library is not glibc.

What it cannot give back: CPython (3.11) returns one of its 1 MiB arenas of small objects only
when all of it is free, and after a load a few objects made during it and still alive keep many
arenas whose pools are otherwise free (measured: 21 MiB in 36 arenas; docs/PERFORMANCE.md)."""

from __future__ import annotations

import ctypes
import gc
import logging
import time

logger = logging.getLogger(__name__)

_libc = ctypes.CDLL(None)
_trim = getattr(_libc, "malloc_trim", None)


def give_back() -> float:
    """Collect and trim now; return the milliseconds it took (the caller's loop waited)."""
    t0 = time.perf_counter()
    gc.collect()
    if _trim is not None:
        _trim(0)
    return 1000 * (time.perf_counter() - t0)
