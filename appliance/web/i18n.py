"""The setup page's languages, with Flask-Babel: which one a request gets, and the helpers every
page uses to say things in it.

- `_`, `ngettext`: translate now (in a view, during a request); `_l`: translate when shown
  (form labels and help texts, made once at import). Templates use `_()`, `ngettext()` and
  `{% trans %}` as Jinja's i18n extension defines them.
- `translate(message)`: a store or dial-plan message (`appliance.i18n.Text`, raised in English
  for the CLI and the API) in the page's language, or any other text unchanged.
- The language: the user's own choice (kept with the user), else the one chosen on this browser
  before logging in (kept in the session), else the best of the browser's `Accept-Language`,
  else the office's (`office.language`, set in the wizard).
- Dates, times and numbers: `format_datetime`, `format_number` and friends of Flask-Babel, in
  the office's time zone (`office.timezone`).

The catalogue is `appliance/web/translations/` (`python -m appliance.web.catalog` extracts,
updates, compiles and checks it). The REST API never translates: its messages are an interface.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, g, request, session
from flask_babel import (
    Babel,
    force_locale,
    get_locale,
    gettext,
    lazy_gettext,
    lazy_pgettext,
    ngettext,
)

from appliance.i18n import LANGUAGES, Text
from appliance.store import settings

__all__ = ["LANGUAGES", "_", "_l", "ngettext", "office_locale", "translate"]

_ = gettext
_l = lazy_gettext

NAMES = {"en": "English", "ru": "Русский"}
"""Each language in its own words, as the switch shows it."""


LABELS = {
    # calls
    "ringing": _l("ringing"),
    "answered": _l("answered"),
    "ended": _l("ended"),
    # trunks
    "registered": _l("registered"),
    "registering": _l("registering"),
    "failed": _l("failed"),
    "unreachable": _l("unreachable"),
    "reachable": _l("reachable"),
    "unknown": _l("unknown"),
    "disabled": _l("disabled"),
    "register": _l("register"),
    "ip": _l("by address"),
    # services
    "running": _l("running"),
    "stopped": _l("stopped"),
    # roles
    "admin": _l("admin"),
    "viewer": _l("viewer"),
    # classes of numbers an extension may call
    "internal": _l("internal"),
    "local": _l("local"),
    "mobile": _l("mobile"),
    "long-distance": _l("long distance"),
    "international": _l("international"),
    "premium": _l("premium-rate"),
    "emergency": _l("emergency"),
    # call records: direction, result, who hung up
    "inbound": _l("inbound"),
    "outbound": _l("outbound"),
    "busy": _l("busy"),
    "no-answer": _l("no answer"),
    "cancelled": _l("cancelled"),
    "interrupted": _l("interrupted"),
    "caller": _l("caller"),
    "callee": _l("callee"),
    "system": _l("the box"),
}
"""The codes the core and the store report (states, roles, classes, results), as the page
shows them; `CONTEXTS` has the few whose word depends on what they describe."""

CONTEXTS = {
    ("result", "failed"): lazy_pgettext("call result", "failed"),
    ("direction", "internal"): lazy_pgettext("call direction", "internal"),
}


def label(code: object, context: str = "") -> str:
    """A code (`ringing`, `registered`, `admin`, ...) in this request's language; `context`
    (`result`, `direction`) picks the word where one code means two things."""
    text = CONTEXTS.get((context, str(code))) or LABELS.get(str(code))
    return str(text) if text is not None else str(code)


def office_language() -> str:
    from appliance.web.auth import get_db  # (auth imports the forms, which import this)

    if "office_language" not in g:
        try:
            g.office_language = settings.get_str(get_db(), "office.language")
        except KeyError:
            g.office_language = "en"
    language: str = g.office_language
    return language


def select_locale() -> str:
    if request.path.startswith("/api/"):
        return "en"
    user = g.get("user")
    if user is not None and user.language in LANGUAGES:
        return str(user.language)
    chosen = session.get("language")
    if chosen in LANGUAGES:
        return str(chosen)
    return request.accept_languages.best_match(LANGUAGES) or office_language()


def select_timezone() -> str:
    from appliance.web.auth import get_db

    try:
        return settings.get_str(get_db(), "office.timezone")
    except KeyError:
        return "UTC"


def language() -> str:
    """This request's language."""
    locale = get_locale()
    return locale.language if locale is not None else "en"


@contextmanager
def office_locale() -> Iterator[None]:
    """Say what is said inside in the office's language (the phone sheet), whoever asks."""
    with force_locale(office_language()):
        yield


def translate(message: object) -> str:
    """A message in this request's language: a `Text` (or an exception raised with one) looked
    up in the catalogue, its parameters filled in (translated too when they are `Text`);
    anything else as `str()` says it."""
    if isinstance(message, BaseException):
        if not (message.args and isinstance(message.args[0], Text)):
            return str(message)
        message = message.args[0]
    if not isinstance(message, Text):
        return str(message)
    params = {k: translate(v) if isinstance(v, Text) else v for k, v in message.params.items()}
    text: str = gettext(message.msgid)
    try:
        return text.format(**params) if params else text
    except (KeyError, IndexError, ValueError):  # a translation that broke its placeholders
        return str(message)


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "en")
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "translations")
    Babel(app, locale_selector=select_locale, timezone_selector=select_timezone)
    app.jinja_env.policies["ext.i18n.trimmed"] = True  # as the catalogue extracts them

    @app.context_processor
    def languages() -> dict[str, Any]:
        return {"language": language(), "languages": NAMES, "translate": translate}

    app.add_template_filter(label)
