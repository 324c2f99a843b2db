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
from flask_babel import Babel, force_locale, get_locale, gettext, lazy_gettext, ngettext

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
    # services
    "running": _l("running"),
    "stopped": _l("stopped"),
}
"""The states the core and the store report as codes, as the page shows them."""


def label(code: object) -> str:
    """A state code (`ringing`, `registered`, `running`, ...) in this request's language."""
    text = LABELS.get(str(code))
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
    if isinstance(message, BaseException) and message.args:
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

    @app.context_processor
    def languages() -> dict[str, Any]:
        return {"language": language(), "languages": NAMES, "translate": translate}

    app.add_template_filter(label)
