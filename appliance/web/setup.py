"""The first-boot wizard, after the admin account: the office, then the first extensions.

The phones step never proposes a taken number: it proposes the first run of free numbers in the
office's range (a number is taken when anything in the store's number directory owns it:
an extension, a DID, ...), and says which numbers are taken. Asked for `count` extensions from
`first`, it makes that many, skipping taken numbers (and says which it skipped); it refuses,
making none, only when the range ends before that many free numbers."""

from __future__ import annotations

from collections.abc import Iterable

from babel.lists import format_list
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from appliance.store import extensions, numbers, settings
from appliance.store.database import Database
from appliance.store.db import transaction
from appliance.store.extensions import ExtensionError
from appliance.store.settings import SettingError
from appliance.web import corectl
from appliance.web.auth import access, get_db
from appliance.web.extensions import sheet_page
from appliance.web.forms import FIRST_PHONES, FirstExtensionsForm, OfficeForm, reject, text
from appliance.web.i18n import _, language, ngettext, translate

bp = Blueprint("setup", __name__, url_prefix="/setup")

OFFICE_FIELDS = {
    "office_name": "office.name",
    "country": "office.country",
    "timezone": "office.timezone",
    "language": "office.language",
    "number_min": "ext.number_min",
    "number_max": "ext.number_max",
}


@bp.route("/office", methods=["GET", "POST"])
@access("admin")
def office() -> ResponseReturnValue:
    db = get_db()
    form = OfficeForm()
    if request.method == "GET":
        for field, key in OFFICE_FIELDS.items():
            value = settings.get(db, key)
            if key.startswith("ext.") and value in (10, 999999):
                continue  # the defaults that allow everything: propose 100-199 instead
            form[field].data = value or form[field].data
        if not stored(db, "office.language"):
            form.language.data = language()  # propose the language this page is read in
    if form.validate_on_submit() and save_settings(form, OFFICE_FIELDS):
        corectl.reload()
        return redirect(url_for("setup.first_extensions"))
    state = corectl.status()
    return render_template(
        "setup_office.html", form=form, sip_server=corectl.sip_server(state),
        web_address=request.host_url, core_running=state is not None,
    )  # fmt: skip


def stored(db: Database, key: str) -> bool:
    """Whether the setting was ever set (else it reads as its default)."""
    try:
        settings.get_text(db, key)
    except KeyError:
        return False
    return True


def save_settings(form: OfficeForm, fields: dict[str, str]) -> bool:
    """Validate every field's setting, then store them all in one transaction, or none."""
    db = get_db()
    values = {}
    for field, key in fields.items():
        try:
            values[key] = settings.SETTINGS[key].validate(str(form[field].data))
        except SettingError as exc:
            reject(form[field], translate(exc))
    low, high = values.get("ext.number_min"), values.get("ext.number_max")
    if isinstance(low, int) and isinstance(high, int) and low > high:
        reject(form.number_max, _("must not be lower than the lowest number"))
    if any(form[field].errors for field in fields):
        return False
    with transaction(db):
        for key, value in values.items():
            settings.set_value(db, key, str(value))
    return True


# --- the first phones ----------------------------------------------------------------------------


def taken(db: Database, number: int) -> bool:
    """Whether anything the box answers (an extension, a DID, ...) owns `number`."""
    return bool(numbers.owners(db, str(number)))


def free_run(db: Database, low: int, high: int, count: int) -> tuple[int, int, list[int]]:
    """What the phones step proposes in the range [low, high]: (first, count, taken), the
    first run of `count` free numbers in a row, and the taken numbers before it in the range.
    When no run is that long, the longest run there is (its first number, its length); when
    every number is taken, (low, 0, those numbers)."""
    seen: list[int] = []
    best = (low, 0)
    start, length = low, 0
    for number in range(low, high + 1):
        if taken(db, number):
            seen.append(number)
            start, length = number + 1, 0
            continue
        length += 1
        if length > best[1]:
            best = (start, length)
        if length == count:
            break
    first, found = best
    return first, found, [n for n in seen if n < first]


def spans(found: Iterable[int]) -> str:
    """Numbers as people list them, consecutive ones as a span: "101–104, 110 and 120"."""
    groups: list[list[int]] = []
    for number in sorted(found):
        if groups and number == groups[-1][-1] + 1:
            groups[-1].append(number)
        else:
            groups.append([number])
    shown = [f"{g[0]}–{g[-1]}" if len(g) > 2 else ", ".join(map(str, g)) for g in groups]
    return format_list(shown, locale=language()) if shown else ""


def proposal(db: Database, wanted: int) -> tuple[int, int, str]:
    """The first free numbers of the office's range for `wanted` phones: (first, count, what
    the page says of them: which are free, which are taken)."""
    low, high = settings.get_int(db, "ext.number_min"), settings.get_int(db, "ext.number_max")
    first, count, before = free_run(db, low, high, wanted)
    if count == 0:
        return (
            low,
            wanted,
            _(
                "Every number from %(low)s to %(high)s is taken: widen the range in the office"
                " step, or skip this step.",
                low=low,
                high=high,
            ),
        )
    if count == 1:
        free = _("Number %(first)s is free.", first=first)
    else:
        free = _("Numbers %(first)s to %(last)s are free.", first=first, last=first + count - 1)
    if before:
        free = " ".join([free, _("Taken: %(numbers)s.", numbers=spans(before))])
    return first, count, free


def plan(db: Database, first: str, count: int) -> tuple[list[str], list[str]]:
    """The numbers to make: `count` free ones from `first` on in the office's range, each as
    wide as `first` ("0100" -> "0101"), and the taken numbers skipped on the way. Fewer when
    the range ends first."""
    extensions.check_number(first)
    high = settings.get_int(db, "ext.number_max")
    made: list[str] = []
    skipped: list[str] = []
    number = int(first)
    while len(made) < count and number <= high:
        (skipped if taken(db, number) else made).append(str(number).zfill(len(first)))
        number += 1
    return made, skipped


def create(db: Database, form: FirstExtensionsForm) -> tuple[list[tuple[str, str, str]], str]:
    """Make the extensions the form asks for, all or none: (number, name, password) of each
    and what the page says of it. Raises ExtensionError, saying why, when none were made."""
    first, count = text(form.first), form.count.data or 0
    made, skipped = plan(db, first, count)
    if len(made) < count:  # the range ends first: say where, and how many would fit
        high = settings.get_int(db, "ext.number_max")
        try:
            extensions.check_range(db, str(max(int(first), high + 1)).zfill(len(first)))
        except ExtensionError as exc:
            if not made:
                raise
            room = ngettext(
                "Only %(num)d number is free from %(first)s to the end of the range.",
                "Only %(num)d numbers are free from %(first)s to the end of the range.",
                len(made),
                first=first,
            )
            raise ExtensionError(f"{translate(exc)}. {room}") from None
    created = []
    with transaction(db):
        for number in made:
            created.append((number, "", extensions.add(db, number)))
        settings.set_text(db, "web.setup_done", "1")
    done = ngettext(
        "Set-up done: %(num)d extension created.",
        "Set-up done: %(num)d extensions created.",
        len(created),
    )
    if skipped:
        skipped_text = _(
            "Taken numbers were skipped: %(numbers)s.", numbers=spans(map(int, skipped))
        )
        done = f"{done} {skipped_text}"
    return created, done


@bp.route("/extensions", methods=["GET", "POST"])
@access("admin")
def first_extensions() -> ResponseReturnValue:
    db = get_db()
    form = FirstExtensionsForm()
    first, count, free = proposal(db, FIRST_PHONES)
    if request.method == "GET":
        form.first.data, form.count.data = str(first), count
    if form.validate_on_submit():
        try:
            created, done = create(db, form)
        except ExtensionError as exc:
            reject(form.first, translate(exc))
        else:
            corectl.reload()
            flash(done)
            return sheet_page(created, first_boot=True)  # its cards in the office's language
    return render_template("setup_extensions.html", form=form, free=free)


@bp.route("/skip", methods=["POST"])
@access("admin")
def skip() -> ResponseReturnValue:
    """Finish the wizard without creating extensions (they can be added later)."""
    settings.set_text(get_db(), "web.setup_done", "1")
    flash(_("Set-up done. Add extensions on the Extensions page."))
    return redirect(url_for("dashboard.index"))
