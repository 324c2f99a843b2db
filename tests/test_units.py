"""The services' systemd units (issue 14, item 1): each runs as the unprivileged `pbx` user,
Type=notify, restarted on failure, writing only to the data directory, with systemd's own
security analysis at an exposure of 3.0 or less (`systemd-analyze security --offline`, which
reads the unit files; no systemd needs to run). docs/APPLIANCE.md records the figures."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[1] / "systemd"
SERVICES = ("pbx-core", "pbx-lines", "pbx-web")
EXPOSURE_BAR = 3.0


def unit(name: str) -> dict[str, list[str]]:
    """The [Service] section: each key with all its values in order (keys repeat in a unit)."""
    found: dict[str, list[str]] = {}
    section = ""
    for line in (UNITS / f"{name}.service").read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "Service" and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def exposure(name: str) -> float:
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", f"--threshold={EXPOSURE_BAR * 10:.0f}",
         str(UNITS / f"{name}.service")],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d)", done.stdout)
    assert found, done.stdout + done.stderr
    assert done.returncode == 0, f"{name}: exposure {found[1]} over {EXPOSURE_BAR}"
    return float(found[1])


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_is_hardened_to_the_bar(name: str) -> None:
    assert exposure(name) <= EXPOSURE_BAR


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_is_an_unprivileged_notify_service_writing_only_its_data(name: str) -> None:
    service = unit(name)
    assert service["Type"] == ["notify"] and service["Restart"] == ["on-failure"]
    assert service["User"] == ["pbx"] and service["Group"] == ["pbx"]
    assert service["ReadWritePaths"] == ["/var/lib/pbx"] and service["ProtectSystem"] == ["strict"]
    assert service["NoNewPrivileges"] == ["yes"]
    caps = service["CapabilityBoundingSet"]
    # The page binds 443; SIP and RTP are unprivileged ports; the gateway needs no capability.
    assert caps == (["CAP_NET_BIND_SERVICE"] if name == "pbx-web" else [""])
    assert service.get("AmbientCapabilities", [""]) == caps


def test_the_services_that_ping_the_watchdog_have_one() -> None:
    # appliance.service.watchdog pings from the core's and the gateway's event loops.
    assert unit("pbx-core")["WatchdogSec"] == ["30"]
    assert unit("pbx-lines")["WatchdogSec"] == ["30"]
    # The simulated board runs the gateway as a child of `pbx lines run` (its READY=1 counts).
    assert unit("pbx-lines")["NotifyAccess"] == ["all"]
    assert unit("pbx-core")["NotifyAccess"] == ["main"]
