"""The technician's setup page and REST API (`pbx-web`): a Flask app factory with blueprints.

It reads and writes the configuration in the store and talks to the running core only through
the control socket (never through `sip` or `media`)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from flask_babel import format_datetime
from flask_wtf.csrf import CSRFProtect

from appliance.store import settings
from appliance.store.db import open_db

csrf = CSRFProtect()


def when(ts: float | None) -> str:
    """A Unix time as people read it: in the office's time zone, as the page's language writes
    a date and a time ("Mar 11, 2024, 9:30:00 AM", "11 мар. 2024 г., 09:30:00"); "never" for
    none."""
    from appliance.web.i18n import _

    if ts is None:
        return str(_("never"))
    return str(format_datetime(datetime.fromtimestamp(ts, UTC), "medium"))


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app. `config` needs DATA_DIR (the data directory); HTTPS=True marks cookies
    Secure. Anything else overrides Flask's configuration (tests pass TESTING and friends)."""
    from appliance.web import (
        api,
        auth,
        cdrs,
        dashboard,
        dids,
        extensions,
        i18n,
        recordings,
        routes,
        security,
        setup,
        system,
        trunks,
    )

    app = Flask(__name__)
    app.config.update(
        DATA_DIR=Path("./var"),
        HTTPS=False,
        MAX_CONTENT_LENGTH=8 << 20,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
        SESSION_COOKIE_NAME="pbx_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        TEMPLATES_AUTO_RELOAD=False,
        JSON_SORT_KEYS=False,
    )
    app.config.update(config or {})
    app.config["DATA_DIR"] = Path(app.config["DATA_DIR"])
    app.config["SESSION_COOKIE_SECURE"] = bool(app.config["HTTPS"])
    db = open_db(app.config["DATA_DIR"])  # applies pending migrations once, at start
    try:
        app.secret_key = settings.get_text(db, "web.secret_key")
    except KeyError:
        app.secret_key = secrets.token_hex(32)
    db.conn.close()

    app.add_template_filter(when)
    i18n.init_app(app)
    csrf.init_app(app)
    auth.init_app(app)
    pages = (
        auth,
        setup,
        dashboard,
        extensions,
        trunks,
        dids,
        routes,
        cdrs,
        recordings,
        security,
        system,
    )
    for module in (*pages, api):
        app.register_blueprint(module.bp)
    from appliance.web import prompts as prompts_page

    app.register_blueprint(prompts_page.bp)
    from appliance.web import menus as menus_page

    app.register_blueprint(menus_page.bp)
    from appliance.web import ports as ports_page

    app.register_blueprint(ports_page.bp)
    from appliance.web import voicemail as voicemail_page

    app.register_blueprint(voicemail_page.bp)
    csrf.exempt(api.bp)  # bearer tokens, never cookies: there is nothing to forge
    return app
