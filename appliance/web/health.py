"""System health for the dashboard, read from /proc and statvfs (no extra dependency)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

_last_cpu: tuple[float, float] | None = None
"""(busy, total) jiffies at the previous reading: CPU use is the share busy since then."""


def _cpu_percent() -> float | None:
    global _last_cpu
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
    total = sum(fields[:8])
    busy = total - idle
    previous, _last_cpu = _last_cpu, (busy, total)
    if previous is None or total <= previous[1]:
        return None
    return round(100.0 * (busy - previous[0]) / (total - previous[1]), 1)


def _meminfo() -> dict[str, int]:
    out = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("MemTotal", "MemAvailable"):
            out[key] = int(rest.split()[0]) * 1024
    return out


def snapshot(data_dir: Path) -> dict[str, Any]:
    mem = _meminfo()
    disk = os.statvfs(data_dir)
    load1, load5, load15 = os.getloadavg()
    return {
        "cpu_percent": _cpu_percent(),
        "cpus": os.cpu_count() or 1,
        "load": [round(load1, 2), round(load5, 2), round(load15, 2)],
        "memory_total": mem.get("MemTotal", 0),
        "memory_used": mem.get("MemTotal", 0) - mem.get("MemAvailable", 0),
        "disk_total": disk.f_blocks * disk.f_frsize,
        "disk_used": (disk.f_blocks - disk.f_bavail) * disk.f_frsize,
        "uptime": int(float(Path("/proc/uptime").read_text().split()[0])),
        "time": time.time(),
    }
