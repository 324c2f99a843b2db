"""The web service's side of the control socket: ask the running core for its state, or tell
it to re-read the configuration. A stopped core is not an error here: pages say so.

What reaches a page is said in the page's language; the core itself answers in English."""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app, flash, request

from appliance import control
from appliance.web.i18n import _

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


def applied(message: str) -> None:
    """After a change is committed: tell the core, and flash `message` saying whether it took
    the change now or will when it starts."""
    if reload():
        flash(message)
    else:
        later = _("The core is not running; it applies this when it starts.")
        flash(f"{message} {later}")


def trunk_test(name: str) -> dict[str, Any] | None:
    """Ask the core to test trunk `name` now: its state and an OPTIONS round trip (`rtt_ms`,
    `reachable`), or `{"error": ...}` when the core does not run that trunk; None when the core
    is down. Waits up to 8 s (the core's own ping gives up after 5)."""
    data = current_app.config["DATA_DIR"]
    try:
        answer = control.call(data, "trunk_test", timeout=8.0, name=name)
    except (control.ControlError, OSError, ValueError) as exc:
        logger.info("core did not test trunk %s: %s", name, exc)
        if isinstance(exc, control.ControlError) and not control.socket_path(data).exists():
            return None
        return {"error": _failure(exc, name)}
    answer.pop("ok", None)
    return answer


def _failure(exc: Exception, trunk: str) -> str:
    """Why the core did not test a trunk, for the page: in its language when it is one of the
    known reasons, else as the core (or the system) said it."""
    if isinstance(exc, control.ControlError) and str(exc).startswith("no trunk "):
        return str(_("no trunk '%(name)s' is running", name=trunk))  # the core's, translated
    if isinstance(exc, TimeoutError):
        return str(_("the core did not answer in time"))
    if isinstance(exc, ValueError):
        return str(_("the core's answer could not be read"))
    return str(exc) or type(exc).__name__


def bans() -> list[dict[str, Any]] | None:
    """The bans in force in the running core (address, reason, banned_at, until, remaining,
    count), or None when it is down (the store has them then: `store.bans`)."""
    try:
        answer = control.call(current_app.config["DATA_DIR"], "bans", timeout=3.0)
    except (control.ControlError, OSError, ValueError) as exc:
        logger.debug("core bans unavailable: %s", exc)
        return None
    return list(answer["bans"])


def lift_ban(address: str) -> bool | None:
    """Ask the running core to lift `address`'s ban (a canonical address): whether one was in
    force (False too when the core failed to answer); None when the core is down (then the
    store's row is removed instead)."""
    try:
        answer = control.call(
            current_app.config["DATA_DIR"], "ban_remove", timeout=3.0, address=address
        )
    except (control.ControlError, OSError, ValueError) as exc:
        logger.info("core did not lift the ban of %s: %s", address, exc)
        if control.socket_path(current_app.config["DATA_DIR"]).exists():
            return False  # running, and it failed: the store's row alone would come back
        return None
    return bool(answer["removed"])


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
