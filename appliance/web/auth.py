"""Who may do what: sessions, roles on every route, first-boot account, login with lock-out.

Every view declares its access with `@access("public" | "viewer" | "admin")`; a route that
declares nothing is refused (fail closed). Viewers read; only admins change anything."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)  # fmt: skip
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from appliance.store import logins, settings, users
from appliance.store.database import Database
from appliance.store.db import open_db
from appliance.web.forms import AccountForm, LoginForm, reject, secret, text
from appliance.web.i18n import LANGUAGES, NAMES, _, _l, language, ngettext, translate

bp = Blueprint("auth", __name__)

ACCESS_LEVELS = ("public", "viewer", "admin")
F = TypeVar("F", bound=Callable[..., Any])

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def access(level: str) -> Callable[[F], F]:
    """Declare who may use a view: anyone, any logged-in user, or admins only."""
    assert level in ACCESS_LEVELS

    def mark(view: F) -> F:
        view.access = level  # type: ignore[attr-defined]
        return view

    return mark


def get_db() -> Database:
    """This request's database connection (opened on first use, closed after the request)."""
    if "db" not in g:
        g.db = open_db(current_app.config["DATA_DIR"], migrate_schema=False)
    db: Database = g.db
    return db


def view_access(endpoint: str | None) -> str:
    if endpoint is None:
        return "public"  # no route: the 404 handler answers
    if endpoint == "static":
        return "public"
    view = current_app.view_functions.get(endpoint)
    return str(getattr(view, "access", "undeclared"))


def current_user() -> users.User | None:
    user: users.User | None = g.get("user")
    return user


def setup_done(db: Database) -> bool:
    try:
        return settings.get_text(db, "web.setup_done") == "1"
    except KeyError:
        return False


def _load_user() -> ResponseReturnValue | None:
    """Before every page request: find the session's user and enforce the view's access."""
    g.user = None
    if request.blueprint == "api" or request.path.startswith("/api/"):
        return None  # the API authenticates each request by its bearer token (or answers 404)
    level = view_access(request.endpoint)
    if level == "public" and request.endpoint == "static":
        return None
    db = get_db()
    name, epoch = session.get("user"), session.get("epoch")
    if isinstance(name, str):
        user = users.get(db, name)
        if user is not None and user.session_epoch == epoch:
            g.user = user
        else:
            session.clear()  # password or role changed, or the user was removed
    if g.user is None and users.count(db) == 0:  # first boot: the admin account first
        # (the language switch works there too: the account may be made in Russian)
        if request.endpoint not in ("auth.first_account", "auth.choose_language"):
            return redirect(url_for("auth.first_account"))
        return None
    if level == "public":
        return None
    if g.user is None:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    if level not in ("viewer", "admin") or (level == "admin" and g.user.role != "admin"):
        abort(403)
    if (
        g.user.role == "admin"
        and request.blueprint not in ("setup", "auth")
        and request.method == "GET"
        and not setup_done(db)
    ):
        return redirect(url_for("setup.office"))
    return None


def _close_db(_exc: BaseException | None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.conn.close()


def _headers(response: Any) -> Any:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if current_app.config["HTTPS"]:
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
    if request.endpoint != "static":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


CSRF_FAILED = (
    "This form expired or did not come from this page (CSRF check failed). Go back, reload the"
    " page and submit it again."
)
ERROR_NAMES = {
    400: _l("Bad Request"),
    401: _l("Unauthorized"),
    403: _l("Forbidden"),
    404: _l("Not Found"),
    405: _l("Method Not Allowed"),
    413: _l("Request Entity Too Large"),
    429: _l("Too Many Requests"),
    500: _l("Internal Server Error"),
    503: _l("Service Unavailable"),
}
"""The errors a page may show, by their HTTP names (in English as werkzeug says them)."""
ERROR_TEXTS = {
    400: _l("The browser sent something this page cannot take. Go back and try again."),
    401: _l("Log in to see this page."),
    403: _l("Your role may not do this: ask an admin."),
    404: _l("There is no such page on this box."),
    405: _l("This page does not take this kind of request."),
    413: _l("What was sent is too large: at most 8 MiB."),
    429: _l("Too many tries: wait a while, then try again."),
    500: _l("Something went wrong on the box: its log says what."),
    503: _l("The service is not ready yet: try again in a moment."),
}
"""What a page says for an error that carries no message of its own (werkzeug's default)."""


def _error(exc: HTTPException) -> ResponseReturnValue:
    code = exc.code or 500
    message = exc.description or exc.name
    if isinstance(exc, CSRFError):
        message = CSRF_FAILED
    # Keep what the exception says in its headers (Allow on a 405, RFC 9110 §15.5.6).
    headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
    if request.path.startswith("/api/"):  # an interface: English and stable
        return jsonify(error={"code": code, "message": message}), code, headers
    name = str(ERROR_NAMES.get(code, exc.name))
    if isinstance(exc, CSRFError):
        message = _(
            "This form expired or did not come from this page (CSRF check failed). Go back,"
            " reload the page and submit it again."
        )
    elif not exc.description or exc.description == type(exc).description:
        message = str(ERROR_TEXTS.get(code, message))  # werkzeug's own words: ours instead
    else:
        message = translate(exc.description)  # a view's abort(), already in the page's words
    page = render_template("error.html", code=code, name=name, message=message)
    return page, code, headers


def init_app(app: Flask) -> None:
    app.before_request(_load_user)
    app.teardown_request(_close_db)
    app.after_request(_headers)
    app.register_error_handler(HTTPException, _error)

    @app.context_processor
    def globals_() -> dict[str, Any]:
        return {"user": current_user()}


def _login(user: users.User) -> None:
    """Start the user's session. A language chosen on this browser before logging in becomes
    theirs, unless they chose one before (the one a previous user left behind never does)."""
    chosen = None if session.get("language_left") else session.get("language")
    session.clear()
    session["user"], session["epoch"] = user.username, user.session_epoch
    session.permanent = True
    if chosen in LANGUAGES and not user.language:
        users.set_language(get_db(), user.username, chosen)


def _safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this box only (never `//host` or `/\\host`,
    which browsers read as another site)."""
    if (
        target
        and target.startswith("/")
        and target[1:2] not in ("/", "\\")
        and (target.isprintable())
    ):
        return target
    return url_for("dashboard.index")


@bp.route("/setup/account", methods=["GET", "POST"])
@access("public")
def first_account() -> ResponseReturnValue:
    """First boot: there is no default password; the first visitor creates the admin."""
    db = get_db()
    if users.count(db):
        return redirect(url_for("auth.login"))
    form = AccountForm()
    if form.validate_on_submit():
        try:
            user = users.add_first_admin(db, text(form.username), secret(form.password))
        except users.UserError as exc:
            reject(form[exc.field], translate(exc))
        else:
            _login(user)
            flash(
                _(
                    "Account %(name)s created. Now a few questions about the office.",
                    name=user.username,
                )
            )
            return redirect(url_for("setup.office"))
    return render_template("first_account.html", form=form)


@bp.route("/login", methods=["GET", "POST"])
@access("public")
def login() -> ResponseReturnValue:
    db = get_db()
    form = LoginForm()
    source = request.remote_addr or "unknown"
    wait = logins.locked_for(db, source, time.time())
    if wait:
        minutes = int(wait // 60) + 1
        reject(
            form.password,
            ngettext(
                "Too many failed logins from %(source)s. Try again in %(num)d minute.",
                "Too many failed logins from %(source)s. Try again in %(num)d minutes.",
                minutes,
                source=source,
            ),
        )
        return render_template("login.html", form=form), 429
    if form.validate_on_submit():
        user = users.authenticate(db, text(form.username), secret(form.password))
        if user is None:
            locked = logins.failed(db, source, time.time())
            if locked:
                reject(
                    form.password,
                    ngettext(
                        "Too many failed logins from %(source)s: locked for %(num)d minute.",
                        "Too many failed logins from %(source)s: locked for %(num)d minutes.",
                        int(locked // 60),
                        source=source,
                    ),
                )
                return render_template("login.html", form=form), 429
            reject(form.password, _("Wrong user name or password."))
            return render_template("login.html", form=form), 401
        _login(user)
        return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", form=form)


@bp.route("/language", methods=["POST"])
@access("public")
def choose_language() -> ResponseReturnValue:
    """The page's language for this browser, and for the logged-in user from now on (kept with
    the user: it follows them to another browser and survives logging out)."""
    chosen = request.form.get("language", "")
    if chosen not in LANGUAGES:
        abort(400, _("Choose one of the languages: %(names)s.", names=", ".join(NAMES.values())))
    session["language"] = chosen
    session.pop("language_left", None)
    user = current_user()
    if user is not None:
        users.set_language(get_db(), user.username, chosen)
    return redirect(_safe_next(request.form.get("next")))


@bp.route("/logout", methods=["POST"])
@access("viewer")
def logout() -> ResponseReturnValue:
    """Ends this user's sessions everywhere: a cookie copied earlier is no good afterwards
    (a signed cookie cannot be revoked alone; the user's session epoch moves on)."""
    user = current_user()
    if user is not None:
        users.end_sessions(get_db(), user.username)
    left = language()
    session.clear()
    session["language"], session["language_left"] = left, True  # the login page keeps it
    flash(_("Logged out."))
    return redirect(url_for("auth.login"))
