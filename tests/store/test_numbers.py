"""One directory of the numbers the box answers: a number that would shadow another is
refused whichever table it goes in, with a message naming the other owner."""

from __future__ import annotations

import pytest

from appliance.store import dids, extensions, numbers
from appliance.store.database import Database
from appliance.store.dids import DidTaken
from appliance.store.extensions import ExtensionError, ExtensionExists
from appliance.store.numbers import Directory, NumberTaken


def test_a_did_cannot_take_an_extensions_number(office: Database) -> None:
    extensions.add(office, "100", "Reception")
    with pytest.raises(DidTaken) as taken:
        dids.add(office, "100", "hangup:busy", "Ural")
    assert str(taken.value) == "100 is already extension 100 (Reception)"
    assert isinstance(taken.value, NumberTaken) and isinstance(taken.value, dids.DidError)
    assert (taken.value.field, taken.value.owner) == ("number", "extension 100 (Reception)")
    assert dids.list_all(office) == []


def test_an_extension_cannot_take_a_dids_number(office: Database) -> None:
    dids.add(office, "100", "hangup:busy", "Ural")
    with pytest.raises(ExtensionExists) as taken:
        extensions.add(office, "100", "Reception")
    assert str(taken.value) == "100 is already the DID 100 (Ural)"
    # Both a conflict of numbers and an extension error: the API answers 409, forms show it
    # at the number field.
    assert isinstance(taken.value, NumberTaken) and isinstance(taken.value, ExtensionError)
    assert (taken.value.field, taken.value.owner) == ("number", "the DID 100 (Ural)")
    assert extensions.get(office, "100") is None


def test_an_extension_cannot_take_another_extensions_number(office: Database) -> None:
    extensions.add(office, "100")
    with pytest.raises(ExtensionExists) as taken:
        extensions.add(office, "100", "Second")
    assert str(taken.value) == "extension 100 already exists"
    assert isinstance(taken.value, NumberTaken)


def test_labels_are_left_out_when_there_are_none(office: Database) -> None:
    extensions.add(office, "100")
    dids.add(office, "200", "hangup:busy")
    assert numbers.owner(office, "100") == "extension 100"
    assert numbers.owner(office, "200") == "the DID 200"
    with pytest.raises(ExtensionExists, match=r"^200 is already the DID 200$"):
        extensions.add(office, "200")
    with pytest.raises(DidTaken, match=r"^100 is already extension 100$"):
        dids.add(office, "100", "hangup:busy")


def test_full_numbers_do_not_collide_with_extensions(office: Database) -> None:
    extensions.add(office, "101")
    dids.add(office, "+74951234567", "extension:101")
    assert numbers.owner(office, "+74951234567") == "the DID +74951234567"
    assert numbers.owner(office, "101") == "extension 101"
    assert numbers.owner(office, "102") is None


def test_check_free_names_the_field_and_ignores_the_row_being_changed(office: Database) -> None:
    extensions.add(office, "101", "Reception")
    assert numbers.check_free(office, "101", ignore=("extension", "101")) == "101"
    assert numbers.check_free(office, "102") == "102"
    with pytest.raises(NumberTaken) as taken:
        numbers.check_free(office, "101", field="first", ignore=("did", "101"))
    assert (str(taken.value), taken.value.field) == (
        "101 is already extension 101 (Reception)",
        "first",
    )


def test_a_feature_adds_its_numbers_with_one_directory_entry(
    office: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    office.execute("CREATE TABLE queues (number TEXT PRIMARY KEY, name TEXT NOT NULL)")
    office.execute("INSERT INTO queues VALUES ('500', 'Support')")
    queue = Directory(
        "queue",
        "SELECT number, name FROM queues WHERE number = ?",
        lambda key, name: f"queue {key} ({name})",
    )
    monkeypatch.setattr(numbers, "DIRECTORIES", [*numbers.DIRECTORIES, queue])
    with pytest.raises(ExtensionExists, match=r"^500 is already queue 500 \(Support\)$"):
        extensions.add(office, "500")
    with pytest.raises(DidTaken, match=r"^500 is already queue 500 \(Support\)$"):
        dids.add(office, "500", "hangup:busy")
