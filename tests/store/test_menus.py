"""IVR menus and announcements in the store: checked whole before anything is written (keys,
destinations, prompts, limits), choices replaced together, and a menu or announcement still
sent calls to is never removed from under its referrers."""

from __future__ import annotations

import pytest

from appliance.store import destinations, dids, extensions, menus, prompts
from appliance.store.database import Database
from appliance.store.menus import Announcement, Menu, MenuError


@pytest.fixture
def db(office: Database) -> Database:
    extensions.add(office, "101", "Reception", "Kq7vT9pLm2")
    extensions.add(office, "102", "Billing", "Zr4wX8nQp3")
    return office


def main_menu(**changes: object) -> Menu:
    base = Menu("main", "Main", "sound:hello-world",
                choices=(("2", "extension:102"), ("1", "extension:101")))  # fmt: skip
    return Menu(**{**{f: getattr(base, f) for f in base.__dataclass_fields__}, **changes})


def test_a_menu_is_stored_canonical_with_its_choices_in_key_order(db: Database) -> None:
    saved = menus.save_menu(db, main_menu(name=" Main "), create=True)
    assert saved.name == "main"
    assert saved.choices == (("1", "extension:101"), ("2", "extension:102"))
    assert menus.get_menu(db, "main") == saved
    assert destinations.check_destination(db, "ivr:main") == "ivr:main"
    assert destinations.describe(db, "ivr:main") == "menu main"


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"choices": (("x", "extension:101"),)}, "choices", "not a key"),
        ({"choices": (("1", "extension:101"), ("1", "extension:102"))}, "choices", "two choices"),
        ({"choices": (("1", "extension:109"),)}, "choice_1", "no extension 109"),
        ({"on_timeout": "nowhere"}, "on_timeout", "KIND:TARGET"),
        ({"greeting": "no-such-prompt"}, "greeting", "no prompt"),
        ({"greeting": "sound:../etc"}, "greeting", "not a prompt of the pack"),
        ({"timeout": 0}, "timeout", "1 to 60"),
        ({"repeats": 11}, "repeats", "1 to 10"),
        ({"name": "Bad Name!"}, "name", "a name is"),
        ({"choices": (("5", "ivr:main"),)}, "choice_5", "no menu main"),
    ],
)
def test_bad_menus_are_refused_naming_the_field(
    db: Database, changes: dict[str, object], field: str, words: str
) -> None:
    with pytest.raises(MenuError) as refused:
        menus.save_menu(db, main_menu(**changes), create=True)
    assert refused.value.field == field, refused.value
    assert words in str(refused.value)
    assert menus.list_menus(db) == []


def test_set_replaces_the_choices_and_a_menu_cannot_choose_itself(db: Database) -> None:
    menus.save_menu(db, main_menu(), create=True)
    menus.save_menu(db, main_menu(choices=(("9", "extension:101"),)), create=False)
    assert menus.get_menu(db, "main").choices == (("9", "extension:101"),)  # type: ignore[union-attr]
    with pytest.raises(MenuError, match="itself"):
        menus.save_menu(db, main_menu(choices=(("0", "ivr:main"),)), create=False)
    with pytest.raises(MenuError, match="already"):
        menus.save_menu(db, main_menu(), create=True)
    with pytest.raises(MenuError, match="no menu"):
        menus.save_menu(db, main_menu(name="other"), create=False)


def test_nested_menus_and_referrers_keep_a_menu_in_use(db: Database) -> None:
    menus.save_menu(db, main_menu(name="billing"), create=True)
    menus.save_menu(db, main_menu(choices=(("3", "ivr:billing"),)), create=True)
    dids.add(db, "+74951234567", "ivr:main", "Main line")
    with pytest.raises(MenuError, match="DID"):
        menus.remove_menu(db, "main")
    with pytest.raises(MenuError, match="menu main"):
        menus.remove_menu(db, "billing")
    with pytest.raises(destinations.DestinationError):
        destinations.check_unused(db, "extension:102", "extension 102", "number")
    dids.remove(db, "+74951234567")
    menus.remove_menu(db, "main")
    menus.remove_menu(db, "billing")
    assert menus.list_menus(db) == []


def test_announcements_hang_up_or_go_on(db: Database) -> None:
    closed = menus.save_announcement(
        db, Announcement("closed", "", "sound:vm-goodbye", "extension:101"), create=True
    )
    assert closed.then == "extension:101"
    bye = menus.save_announcement(db, Announcement("bye", "", "sound:vm-goodbye"), create=True)
    assert bye.then == ""
    with pytest.raises(MenuError, match="itself"):
        menus.save_announcement(db, Announcement("bye", "", "sound:x", "announcement:bye"),
                                create=False)  # fmt: skip
    menus.save_announcement(db, Announcement("bye", "", "sound:x", "announcement:closed"),
                            create=False)  # fmt: skip
    with pytest.raises(MenuError, match="announcement bye"):
        menus.remove_announcement(db, "closed")
    assert [a.name for a in menus.list_announcements(db)] == ["bye", "closed"]


def test_a_custom_prompt_is_a_greeting_once_it_exists(db: Database) -> None:
    """A custom prompt (the Prompts page's) is named bare; the name must be one stored."""
    menu = main_menu(greeting="welcome")
    with pytest.raises(MenuError, match="no prompt welcome"):
        menus.save_menu(db, menu, create=True)
    prompts.add(db, "welcome", "en", "tts", "Welcome", "prompts/custom/w.wav", 1.5)
    assert menus.save_menu(db, menu, create=True).greeting == "welcome"
    closed = menus.save_announcement(db, Announcement("closed", "", "welcome"), create=True)
    assert closed.prompt == "welcome"


def test_a_label_too_long_is_refused_not_cut(db: Database) -> None:
    long = "x" * (menus.LABEL_MAX + 1)
    with pytest.raises(MenuError, match="at most 64") as info:
        menus.save_menu(db, main_menu(label=long), create=True)
    assert info.value.field == "label"
    with pytest.raises(MenuError, match="at most 64"):
        menus.save_announcement(db, Announcement("closed", long, "sound:vm-goodbye"), create=True)
    assert menus.list_menus(db) == [] and menus.list_announcements(db) == []
