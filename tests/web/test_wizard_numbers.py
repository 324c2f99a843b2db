"""The first-boot wizard never proposes a taken number: on a box where `pbx run --demo` made
101-104 before anyone opened the page, it proposes the first free numbers of the office's range
and says which are taken; the defaults, submitted as a new user would, make every proposed
extension. Asked for numbers from a taken one, it skips the taken ones; it refuses only when the
range ends first, and then makes none. The office step proposes the page's language as the
office's, and the phone sheet prints in the office's language."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.cli import DEMO_EXTENSIONS
from appliance.store import dids, extensions, settings
from appliance.store.db import open_db
from tests.web.conftest import Pages
from tests.web.test_pages import Dom, dom, dump, error, flashes, sheet, store, value

STRONG = "Correct-Horse-9"


def defaults(page: Dom) -> dict[str, str]:
    """What a browser submits when nothing is changed: each input's value, each select's
    selected option (its first when none is)."""
    found = {
        e.attrs["name"]: e.attrs.get("value", "")
        for e in page.find_all("input")
        if e.attrs.get("name") and e.attrs.get("type") not in ("submit", "checkbox")
    }
    for select in page.find_all("select"):
        options = [o for o in select.children if o.tag == "option"]
        options += [o for g in select.children if g.tag == "optgroup" for o in g.children]
        chosen = [o for o in options if "selected" in o.attrs] or options[:1]
        found[select.attrs["name"]] = chosen[0].attrs.get("value", "") if chosen else ""
    return found


def accept(pages: Pages, url: str, **typed: str) -> Dom:
    """Submit the form on `url` as proposed, but for what is `typed`; the page the answer shows
    (after a redirect)."""
    response = pages.client.post(url, data={**defaults(dom(pages.get(url))), **typed})
    if response.status_code == 302:
        response = pages.get(response.headers["Location"])
    assert response.status_code == 200, url
    return dom(response)


def office(pages: Pages, **typed: str) -> None:
    """The wizard's office step as a new user does it: the office's name typed, the rest as
    proposed but for what is `typed`."""
    page = accept(pages, "/setup/office", office_name="Dental Clinic", **typed)
    assert page.find_all("h1")[0].text == "The first phones", error(page, "office_name")


def numbers(data: Path) -> list[str]:
    with store(data) as db:
        return [e.number for e in extensions.list_all(db)]


def demo_box(data: Path, *made: str) -> None:
    """A fresh box where `pbx run --demo` made `made` (by default its demo extensions)."""
    db = open_db(data)
    try:
        for number in made or DEMO_EXTENSIONS:
            extensions.add(db, number, f"Demo {number}")
    finally:
        db.conn.close()


@pytest.fixture
def wizard(pages: Pages, data: Path) -> Pages:
    """The admin account just made on first boot; the wizard's office step is next."""
    response = pages.submit(
        "/setup/account", {"username": "tech", "password": STRONG, "confirm": STRONG}
    )
    assert response.headers["Location"] == "/setup/office"
    return pages


def test_after_the_demo_the_wizard_proposes_the_next_free_numbers_and_makes_them_all(
    pages: Pages, data: Path
) -> None:
    demo_box(data)  # 101-104, in the default range of 10 to 999999
    wizard = pages
    wizard.submit("/setup/account", {"username": "tech", "password": STRONG, "confirm": STRONG})
    proposed = dom(wizard.get("/setup/office"))
    assert (value(proposed, "number_min"), value(proposed, "number_max")) == ("100", "199")
    office(wizard)

    page = dom(wizard.get("/setup/extensions"))
    assert (value(page, "first"), value(page, "count")) == ("105", "4")
    note = page.by_id("free-numbers")
    assert note is not None
    assert note.text == "Numbers 105 to 108 are free. Taken: 101–104."

    done = accept(wizard, "/setup/extensions")
    assert error(done, "first") == ""
    assert sorted(sheet(done)) == ["105", "106", "107", "108"]
    assert flashes(done) == ["Set-up done: 4 extensions created."]
    assert numbers(data) == ["101", "102", "103", "104", "105", "106", "107", "108"]
    with store(data) as db:
        assert settings.get_text(db, "web.setup_done") == "1"


def test_a_hole_in_the_range_is_used_when_it_fits_and_skipped_when_it_does_not(
    wizard: Pages, data: Path
) -> None:
    office(wizard)  # 100-199
    demo_box(data, "100", "101", "103")  # a hole at 102: too small for 4 phones
    page = dom(wizard.get("/setup/extensions"))
    assert (value(page, "first"), value(page, "count")) == ("104", "4")
    note = page.by_id("free-numbers")
    assert note is not None and note.text == "Numbers 104 to 107 are free. Taken: 100, 101 and 103."

    response = wizard.submit("/setup/extensions", {"first": "2", "count": "1"})
    assert "2 to 6 digits" in error(dom(response), "first")  # the store's own check

    # Numbers asked for from a taken one: the taken are skipped, the hole is filled.
    response = wizard.submit("/setup/extensions", {"first": "100", "count": "4"})
    assert response.status_code == 200
    made = dom(response)
    assert sorted(sheet(made)) == ["102", "104", "105", "106"]
    assert flashes(made) == [
        "Set-up done: 4 extensions created. Taken numbers were skipped: 100, 101 and 103."
    ]


def test_one_free_number_is_proposed_as_one_phone(wizard: Pages, data: Path) -> None:
    office(wizard)
    demo_box(data, "100", "101", "103")
    page = wizard.submit("/setup/extensions", {"first": "100", "count": "1"})
    assert sorted(sheet(dom(page))) == ["102"]


def test_numbers_owned_by_a_did_are_taken_too(wizard: Pages, data: Path) -> None:
    office(wizard)
    demo_box(data, "101")
    with store(data) as db:
        dids.add(db, "100", "extension:101", "Short number")
    page = dom(wizard.get("/setup/extensions"))
    assert value(page, "first") == "102"
    note = page.by_id("free-numbers")
    assert note is not None and "Taken: 100, 101." in note.text
    done = accept(wizard, "/setup/extensions")
    assert sorted(sheet(done)) == ["102", "103", "104", "105"]


def test_a_nearly_full_range_proposes_what_fits_and_the_defaults_still_work(
    wizard: Pages, data: Path
) -> None:
    office(wizard, number_max="105")
    demo_box(data, *DEMO_EXTENSIONS)  # 101-104: 100 and 105 are free, apart
    page = dom(wizard.get("/setup/extensions"))
    assert (value(page, "first"), value(page, "count")) == ("100", "1")
    done = accept(wizard, "/setup/extensions")
    assert sorted(sheet(done)) == ["100"]


def test_numbers_beyond_the_range_are_refused_and_none_are_made(wizard: Pages, data: Path) -> None:
    office(wizard)
    demo_box(data, "197")
    before = dump(data)
    response = wizard.submit("/setup/extensions", {"first": "196", "count": "4"})
    assert response.status_code == 200
    assert error(dom(response), "first") == (
        "extension 200 is outside the allowed range 100-199."
        " Only 3 numbers are free from 196 to the end of the range."
    )
    assert dump(data) == before
    response = wizard.submit("/setup/extensions", {"first": "250", "count": "1"})
    assert error(dom(response), "first") == "extension 250 is outside the allowed range 100-199"


def test_a_full_range_says_so_and_skipping_still_finishes(wizard: Pages, data: Path) -> None:
    office(wizard, number_min="10", number_max="12")
    demo_box(data, "10", "11", "12")
    note = dom(wizard.get("/setup/extensions")).by_id("free-numbers")
    assert note is not None and note.text.startswith("Every number from 10 to 12 is taken")
    assert wizard.submit("/setup/extensions", {}, action="/setup/skip").status_code == 302


def test_the_office_language_is_proposed_from_the_page_and_kept(wizard: Pages, data: Path) -> None:
    def proposed() -> str:
        page = dom(wizard.get("/setup/office"))
        (select,) = page.find_all("select", name="language")
        return next(o.attrs["value"] for o in select.children if "selected" in o.attrs)

    assert proposed() == "en"
    wizard.client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "ru-RU,ru;q=0.9"
    assert proposed() == "ru"
    page = accept(wizard, "/setup/office", office_name="Клиника")
    assert page.find_all("h1")[0].text != "The office" and not error(page, "office_name")
    with store(data) as db:
        assert settings.get(db, "office.language") == "ru"
    wizard.client.environ_base.pop("HTTP_ACCEPT_LANGUAGE")
    assert proposed() == "ru"  # set now: what is stored, whoever reads the page


def test_the_phone_sheet_is_printed_in_the_office_language(wizard: Pages, data: Path) -> None:
    wizard.client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"  # the page is read in English
    office(wizard, language="ru")
    done = accept(wizard, "/setup/extensions")
    assert [e.attrs.get("lang") for e in done.find_all("html")] == ["en"]
    cards = [e for e in done.find_all("div") if "sheet" in e.classes]
    assert [c.attrs.get("lang") for c in cards] == ["ru"]
    assert sorted(sheet(done)) == ["100", "101", "102", "103"]
