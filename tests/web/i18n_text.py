"""What a person reads on a page of the setup page, and the words in it that are not in the
page's language. Shared by the page tests (tests/web/test_i18n.py, HTML from the Flask test
client) and the browser tests (tests/e2e/test_i18n.py, the DOM after app.js ran).

The text read: every text node but those inside <script>, <style>, <code>, <kbd>, <textarea>
(a field's value) or an element marked `translate="no"`; and the attributes a person reads or
hears: placeholder, title, aria-label, alt, data-confirm (app.js asks it in a dialog), label (of
an <option> or <optgroup>), the value of an <input> button, and the words app.js says (the JSON
of `<meta name="i18n">`). Field values are data, not text: they are not read.

Data the test itself put on the page (names, the office's name...) is taken out first, and so
are the names of IANA time zones (identifiers like Europe/Moscow, data of the zone database:
in the text, and the options of a time zone select). Besides the words in ALLOWED, a Russian
page may show host names (sip.example.net), dial patterns (8XXXXXXXXXX) and examples of names
that can only be Latin ("например, main или city-line").
"""

from __future__ import annotations

import json
import re
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from html.parser import HTMLParser

ALLOWED = frozenset(
    (
        # protocols, standards and their terms, as Russian technicians write them too
        "SIP", "SIPS", "RTP", "RTCP", "SDP", "UDP", "TCP", "TLS", "HTTP", "HTTPS", "IP", "IPv4",
        "IPv6", "URL", "URI", "DNS", "NAT", "DID", "DTMF", "E.164", "RFC", "MD5", "SHA-256",
        "UTC", "QR", "ID", "CSV", "JSON", "API", "REST", "OpenAPI", "PBX", "CDR", "CIDR",
        "CSRF", "CRM", "CPU", "PID", "SRTP", "SDES", "SMTP", "STARTTLS", "AUTH", "PIN", "NOTIFY",
        "IVR", "FXS", "FXO", "ETSI", "FSK", "V.23", "Bell", "WAV", "MP3", "OGG", "a-z",
        # the address notation HOST:PORT
        "HOST", "PORT",
        # SIP requests and header fields (a trunk's settings name them)
        "OPTIONS", "REGISTER", "INVITE", "From", "To", "Request-URI",
        # values typed into a field, named in its help text (a trunk's "number called read from")
        "auto", "request-uri", "to", "header",
        # destination kinds and recording-rule values as they are typed (sound:NAME, ivr:NAME)
        "sound", "ivr", "announcement", "inbound", "outbound", "internal",
        # codecs
        "PCMU", "PCMA", "G.722", "G722", "Opus",
        # units
        "GiB", "MiB", "KiB", "ms", "Hz", "kHz",
        # product and program names
        "pbx", "pbx-core", "pbx-web", "pbx-lines", "lines", "run",
        # keys
        "Ctrl", "Ctrl+C",
        # the language switch names each language in its own words
        "English",
    )
)  # fmt: skip
"""Latin words a Russian page may show, as written (case counts: "DID" is not "did")."""

LANGUAGE_NAMES = frozenset({"English", "Русский"})
"""What the language switch (and a choice of language) shows: each language in its own words."""

SKIPPED_TAGS = frozenset({"script", "style", "code", "kbd", "textarea"})
VOID_TAGS = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link",
                       "meta", "source", "track", "wbr"})  # fmt: skip
TEXT_ATTRIBUTES = ("placeholder", "title", "aria-label", "alt", "data-confirm")
BUTTON_INPUTS = frozenset({"submit", "button", "reset"})

TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+\-/:@'’]*")
LATIN = re.compile(r"[A-Za-z]")
CYRILLIC = re.compile(r"[\u0400-\u04FF][\u0400-\u04FF\-]*")
PARTS = re.compile(r"[/+:@_\-.]")
HOST = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}")
EXAMPLES = re.compile(
    r"(?<!\w)(?:например|напр\.|к примеру)[,:]?\s+"
    r"[a-z0-9][a-z0-9_.-]*(?:(?:\s*,\s*|\s+или\s+|\s+и\s+)[a-z0-9][a-z0-9_.-]*)*"
)
"""Examples of names a person types that can only be Latin (user, trunk and route names are
lower-case letters, digits, '-' and '_'): "например, main или city-line"."""
DIAL_PATTERN = re.compile(r"[0-9XZN\[\]\-.!+]*[XZN][0-9XZN\[\]\-.!+]*")
"""Dial patterns (X any digit, Z 1-9, N 2-9): 8XXXXXXXXXX, NXXXXXX, [1-4]XX."""


@dataclass(frozen=True)
class Chunk:
    """A piece of text a person reads: a text node or an attribute's value."""

    text: str
    lang: str
    """The language the markup says it is in (the nearest `lang` attribute)."""
    where: str
    """Where it is: the element (`<label>`), or the attribute (`<input placeholder>`)."""


class _Reader(HTMLParser):
    def __init__(self, within: str | None) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool, str]] = []  # (tag, skipped, lang)
        self.chunks: list[Chunk] = []
        self.within = within

    def _add(self, text: str | None, lang: str, where: str) -> None:
        words = " ".join((text or "").split())
        if words:
            self.chunks.append(Chunk(words, lang, where))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        skipped, lang = (self.stack[-1][1], self.stack[-1][2]) if self.stack else (False, "")
        skipped = skipped or tag in SKIPPED_TAGS or attributes.get("translate") == "no"
        if tag == "option" and attributes.get("value") in _zone_names():
            skipped = True  # a time zone, named by its IANA identifier (data)
        if self.within and not self.stack:
            skipped = True  # read only inside elements of that class
        if self.within and self.within in (attributes.get("class") or "").split():
            skipped = tag in SKIPPED_TAGS or attributes.get("translate") == "no"
        lang = attributes.get("lang") or lang
        if not skipped:
            for name in TEXT_ATTRIBUTES:
                self._add(attributes.get(name), lang, f"<{tag} {name}>")
            if tag in ("option", "optgroup"):
                self._add(attributes.get("label"), lang, f"<{tag} label>")
            if tag == "input" and (attributes.get("type") or "").lower() in BUTTON_INPUTS:
                self._add(attributes.get("value"), lang, "<input value>")
            if tag == "meta" and attributes.get("name") == "i18n":
                for key, value in json.loads(attributes.get("content") or "{}").items():
                    self._add(str(value), lang, f"<meta i18n> {key}:")
        if tag not in VOID_TAGS:
            self.stack.append((tag, skipped, lang))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, -1, -1):
            if self.stack[depth][0] == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        tag, skipped, lang = self.stack[-1] if self.stack else ("", bool(self.within), "")
        if not skipped:
            self._add(data, lang, f"<{tag}>")


def visible_text(html: str, within: str | None = None) -> list[Chunk]:
    """The pieces of text a person reads on the page `html`, in document order (only inside
    the elements of class `within`, when given)."""
    reader = _Reader(within)
    reader.feed(html)
    reader.close()
    return reader.chunks


def page_language(html: str) -> str:
    """The page's `<html lang>` ('' when it says none)."""
    match = re.search(r"<html[^>]*\slang=\"([^\"]*)\"", html)
    return match.group(1) if match else ""


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


@cache
def _zones() -> re.Pattern[str]:
    names = sorted(_zone_names(), key=len, reverse=True)
    spelled = (re.escape(name).replace("_", "[_ ]") for name in names if "/" in name)
    return re.compile(r"(?<![\w/])(?:" + "|".join(spelled) + r")(?![\w/])")


def _without(text: str, data: Iterable[str]) -> str:
    for value in sorted({d for d in data if d}, key=len, reverse=True):
        text = text.replace(value, " ")
    return _zones().sub(" ", text)


def allowed(word: str) -> bool:
    """A Latin word a Russian page may show: in ALLOWED, a host name (sip.example.net) or a
    dial pattern; or made of such parts (UDP/TCP)."""

    def fine(part: str) -> bool:
        return (
            not LATIN.search(part)
            or part in ALLOWED
            or HOST.fullmatch(part) is not None
            or DIAL_PATTERN.fullmatch(part) is not None
        )

    return fine(word) or all(fine(part) for part in PARTS.split(word))


def latin_words(text: str) -> list[str]:
    """The Latin words of `text` that a Russian page may not show."""
    found = []
    for match in TOKEN.finditer(EXAMPLES.sub(" ", text)):
        word = match.group().rstrip(".:-/'’")
        if LATIN.search(word) and not allowed(word):
            found.append(word)
    return found


def untranslated(
    html: str, language: str, data: Iterable[str] = (), within: str | None = None
) -> list[str]:
    """What on the page `html` is not in `language` ('ru': Latin words outside ALLOWED; 'en':
    any Cyrillic): for each piece of text that has some, a line with those words and the text
    they are in, once each. `data`: strings the
    test put on the page (names, numbers), taken out of the text first; `within`: read only
    inside the elements of this class."""
    data = list(data)
    found: dict[str, None] = {}
    for chunk in visible_text(html, within):
        if chunk.text in LANGUAGE_NAMES:
            continue  # the language switch (or a choice of language): each in its own words
        text = _without(chunk.text, data)
        words = latin_words(text) if language != "en" else CYRILLIC.findall(text)
        if words:
            shown = ", ".join(dict.fromkeys(words))
            found[f"{shown}  (in {chunk.where} {chunk.text!r})"] = None
    return list(found)


def report(findings: dict[str, list[str]]) -> str:
    """The findings of several pages (page -> lines), as a failure message."""
    lines = []
    for page, words in findings.items():
        if words:
            lines.append(f"{page}:")
            lines += (f"    {word}" for word in words)
    return "\n".join(lines)
