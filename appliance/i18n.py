"""Messages that the store and the dial plan raise, in English and translatable.

The store is shared by the CLI (English: its texts are for technicians at a shell), the REST API
(English and stable: its messages are an interface) and the setup page (the user's language).
So an error is raised with a `Text`: a `str` that reads as the English message, and keeps its
message id and parameters, so that the page can look the id up in its catalogue and fill in the
same parameters (`appliance.web.i18n.translate`). `pybabel extract -k T` finds the ids.

    raise ExtensionError(T("extension {number} already exists", number=number))
"""

from __future__ import annotations

from typing import Any

LANGUAGES = ("en", "ru")
"""The languages of the page, the prompts and the office (`office.language`)."""


class Text(str):
    """An English message that remembers its id and parameters."""

    msgid: str
    params: dict[str, Any]

    def __new__(cls, msgid: str, params: dict[str, Any]) -> Text:
        text = super().__new__(cls, msgid.format(**params) if params else msgid)
        text.msgid = msgid
        text.params = params
        return text

    def __getnewargs__(self) -> tuple[str, dict[str, Any]]:  # type: ignore[override]  # copy, pickle
        return self.msgid, self.params


def T(msgid: str, **params: Any) -> Text:
    """Mark `msgid` for translation; `{name}` placeholders take `params`."""
    return Text(msgid, params)
