"""The web service's side of the control socket: ask the running core for its state, or tell
it to re-read the configuration. A stopped core is not an error here: pages say so."""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app, request

from appliance import control

logger = logging.getLogger(__name__)


def status() -> dict[str, Any] | None:
    """The core's status (registrations, live calls, addresses), or None when it is down."""
    try:
        return control.call(current_app.config["DATA_DIR"], "status", timeout=3.0)
    except (control.ControlError, OSError, ValueError) as exc:
        logger.debug("core status unavailable: %s", exc)
        return None


def reload() -> bool:
    """Tell the core to apply the stored configuration now; False when it is not running
    (it reads the store when it starts)."""
    return _command("reload")


def restart() -> bool:
    """Ask the core to restart in place; False when it is not running."""
    return _command("restart")


def _command(cmd: str) -> bool:
    try:
        control.call(current_app.config["DATA_DIR"], cmd, timeout=5.0)
    except (control.ControlError, OSError, ValueError) as exc:
        logger.info("core did not take %r: %s", cmd, exc)
        return False
    return True


def sip_server(state: dict[str, Any] | None = None) -> str:
    """The address phones register to: the core's advertised SIP address, or this page's host
    when the core is down."""
    state = status() if state is None else state
    if state is not None:
        return str(state.get("advertised") or state["sip"])
    return f"{request.host.rsplit(':', 1)[0]}:5060"
