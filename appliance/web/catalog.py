"""The setup page's message catalogue: `python -m appliance.web.catalog {extract,update,check}`.

- `extract` writes `translations/messages.pot` from the Python code (`_`, `_l`, `ngettext`,
  `T`: see `appliance.i18n`) and the templates, as `pybabel extract` does with `babel.cfg`;
- `update` does that, merges it into each language's `messages.po` and compiles `messages.mo`;
- `check` fails (exit 1, saying what) when the committed template is stale, when a message has
  no translation or a fuzzy one, when a translation loses a placeholder, or when a compiled
  catalogue is not its source compiled. The tests run it.

English is the source language: it has no catalogue of its own.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from appliance.i18n import LANGUAGES

ROOT = Path(__file__).resolve().parent.parent  # appliance/
TRANSLATIONS = Path(__file__).resolve().parent / "translations"
TEMPLATE = TRANSLATIONS / "messages.pot"
KEYWORDS = {"_": None, "_l": None, "gettext": None, "lazy_gettext": None,
            "ngettext": (1, 2), "lazy_ngettext": (1, 2), "pgettext": ((1, "c"), 2),
            "lazy_pgettext": ((1, "c"), 2), "T": None}  # fmt: skip
METHODS = [
    ("**/templates/**.html", "jinja2"),
    ("**.py", "python"),
]
OPTIONS = {"**/templates/**.html": {"trimmed": "true"}}
TRANSLATED = [code for code in LANGUAGES if code != "en"]
HEADER = (
    "# {what} of the setup page of pbx-appliance (GPL-3.0-or-later).\n"
    "# Made by `python -m appliance.web.catalog update`; translate in the .po files only."
)
FIXED_DATE = datetime(2026, 1, 1, tzinfo=UTC)
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|\{(\w+)(?:![rs])?(?::[^}]*)?\}")


def extract() -> Catalog:
    catalog = Catalog(project="pbx-appliance", charset="utf-8", fuzzy=False,
                      header_comment=HEADER.format(what="Messages"))  # fmt: skip
    for filename, lineno, message, comments, context in extract_from_dir(
        ROOT, METHODS, OPTIONS, KEYWORDS, comment_tags=("TRANSLATORS:",),
        strip_comment_tags=True,
    ):  # fmt: skip
        if "catalog.py" in filename:
            continue
        path = (ROOT.name + "/" + filename).replace("\\", "/")
        catalog.add(message, None, [(path, lineno)], auto_comments=comments, context=context)
    return catalog


def _po_bytes(catalog: Catalog) -> bytes:
    out = io.BytesIO()
    write_po(out, catalog, width=100, omit_header=False, sort_output=True,
             no_location=True)  # fmt: skip
    return _stable(out.getvalue())


def _stable(data: bytes) -> bytes:
    """The file without the header lines that change on every run (dates, versions)."""
    drop = (b'"POT-Creation-Date:', b'"PO-Revision-Date:', b'"Generated-By:')
    return b"\n".join(line for line in data.split(b"\n") if not line.startswith(drop))


def write_template() -> Catalog:
    catalog = extract()
    TEMPLATE.parent.mkdir(parents=True, exist_ok=True)
    TEMPLATE.write_bytes(_po_bytes(catalog))
    return catalog


def po_path(code: str) -> Path:
    return TRANSLATIONS / code / "LC_MESSAGES" / "messages.po"


def update() -> None:
    template = write_template()
    for code in TRANSLATED:
        path = po_path(code)
        if path.exists():
            with path.open("rb") as f:
                catalog = read_po(f, locale=code)
        else:
            catalog = Catalog(locale=code, project="pbx-appliance", charset="utf-8")
        catalog.header_comment = HEADER.format(what=f"The {code} translations of the messages")
        catalog.update(template, update_header_comment=False, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        catalog.fuzzy = False
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_po_bytes(catalog))
        compile_one(code)


def compile_one(code: str) -> None:
    path = po_path(code)
    with path.open("rb") as f:
        catalog = read_po(f, locale=code)
    path.with_suffix(".mo").write_bytes(_mo_bytes(catalog))


def _mo_bytes(catalog: Catalog) -> bytes:
    """The compiled catalogue, the same bytes for the same messages (its header's dates,
    which the .po does not keep, are fixed)."""
    catalog.creation_date = catalog.revision_date = FIXED_DATE
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


def placeholders(text: str) -> set[str]:
    return {a or b for a, b in PLACEHOLDER.findall(text)}


def problems() -> list[str]:
    """What is wrong with the committed catalogue, one line each (none: it is good)."""
    found: list[str] = []
    fresh = _po_bytes(extract())
    if not TEMPLATE.exists() or _stable(TEMPLATE.read_bytes()) != fresh:
        found.append(f"{TEMPLATE.relative_to(ROOT.parent)} is stale: run"
                     " `python -m appliance.web.catalog update`")  # fmt: skip
    template = read_po(io.BytesIO(fresh))
    for code in TRANSLATED:
        path = po_path(code)
        if not path.exists():
            found.append(f"no catalogue for {code}: {path}")
            continue
        with path.open("rb") as f:
            catalog = read_po(f, locale=code)
        for message in template:
            if not message.id:
                continue
            key = message.id if isinstance(message.id, str) else message.id[0]
            mine = catalog.get(key, message.context)
            what = f"{code}: {key!r}"
            if mine is None:
                found.append(f"{what} is not in the catalogue")
                continue
            if mine.fuzzy:
                found.append(f"{what} is fuzzy")
            strings = mine.string if isinstance(mine.string, (list, tuple)) else [mine.string]
            ids = message.id if isinstance(message.id, (list, tuple)) else [message.id]
            if not all(strings) or (isinstance(message.id, (list, tuple)) and (
                len(strings) != (catalog.num_plurals or 1)
            )):  # fmt: skip
                found.append(f"{what} has no translation (or misses a plural form)")
                continue
            wanted = set().union(*(placeholders(i or "") for i in ids))
            for string in strings:
                got = placeholders(string or "")
                if got - wanted or (not isinstance(message.id, (list, tuple)) and got != wanted):
                    found.append(f"{what}: the translation {string!r} changes the placeholders")
        mo = path.with_suffix(".mo")
        if not mo.exists() or mo.read_bytes() != _mo_bytes(catalog):
            found.append(f"{mo.relative_to(ROOT.parent)} is not its .po compiled: run update")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m appliance.web.catalog", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("command", choices=("extract", "update", "check"))
    args = parser.parse_args(argv)
    if args.command == "extract":
        write_template()
    elif args.command == "update":
        update()
    else:
        found = problems()
        for line in found:
            print(line)
        if found:
            print(f"{len(found)} problems in the catalogue", file=sys.stderr)
            return 1
        print("the catalogue is complete and current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
