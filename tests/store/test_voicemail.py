"""Voicemail in the store over a real SQLite file: mailboxes (validated fields, the PIN kept
only as a hash), messages (new then saved, counts for MWI, deleted then forgotten), the
migration, destinations `voicemail:NUM`, and the feature-code settings that must not collide."""

from __future__ import annotations

import pytest

from appliance.store import destinations, extensions, settings, voicemail
from appliance.store.database import Database
from appliance.store.migrations import MIGRATIONS, current_version
from appliance.store.voicemail import VoicemailError

NOW = 1_800_000_000.0


@pytest.fixture
def box(db: Database) -> Database:
    extensions.add(db, "102", "Owner", "Zr4wX8nQp3")
    voicemail.set_mailbox(db, "102", pin="4321", now=NOW)
    return db


def test_migration_12_makes_the_tables(db: Database) -> None:
    assert 12 in [version for version, _name, _step in MIGRATIONS]
    assert current_version(db) >= 12
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"voicemail_boxes", "voicemail_messages"} <= tables


def test_the_pin_is_kept_only_as_a_hash(box: Database) -> None:
    (stored,) = box.execute("SELECT pin_hash FROM voicemail_boxes").fetchone()
    assert "4321" not in stored and stored.startswith("scrypt$")
    assert voicemail.verify_pin(box, "102", "4321")
    assert not voicemail.verify_pin(box, "102", "1234")
    assert not voicemail.verify_pin(box, "555", "4321")


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"pin": "12"}, "pin", "the PIN must be 4 to 10 digits"),
        ({"max_seconds": 5}, "max_seconds", "a message may last 10 to 600 seconds"),
        ({"email": "nobody"}, "email", "this is not an e-mail address: nobody"),
        ({"greeting": "custom"}, "greeting", "a custom greeting needs a recorded file"),
        ({"greeting_file": "../etc/passwd"}, "greeting",
         "the greeting file must be a path inside the data directory"),
    ],
)  # fmt: skip
def test_bad_fields_are_refused_naming_the_field(
    box: Database, change: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(VoicemailError) as caught:
        voicemail.set_mailbox(box, "102", **change)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert str(caught.value) == message


def test_a_mailbox_needs_its_extension(db: Database) -> None:
    with pytest.raises(VoicemailError, match="there is no extension 103"):
        voicemail.set_mailbox(db, "103")


def test_messages_new_then_saved_counts_and_deletion(box: Database) -> None:
    paths = [voicemail.message_path("102", NOW + i, f"t{i}") for i in range(3)]
    assert paths[0] == "voicemail/102/20270115T080000Z-t0.ogg"
    first, second, third = (
        voicemail.add_message(box, "102", path=p, started_at=NOW + i, seconds=3.0, caller="101")
        for i, p in enumerate(paths)
    )
    assert voicemail.counts(box, "102") == (3, 0)
    assert voicemail.move(box, first.id, "saved")
    assert [m.id for m in voicemail.messages(box, "102")] == [second.id, third.id, first.id]
    assert voicemail.counts(box, "102") == (2, 1)
    deleted = voicemail.delete_message(box, second.id)
    assert deleted is not None and deleted.deleted
    assert voicemail.counts(box, "102") == (1, 1)
    assert voicemail.forget_message(box, second.id)
    assert voicemail.message(box, second.id) is None
    assert not voicemail.forget_message(box, third.id)  # not deleted: kept


def test_a_message_for_no_mailbox_or_outside_the_data_dir_is_refused(box: Database) -> None:
    with pytest.raises(VoicemailError, match="there is no mailbox 555"):
        voicemail.add_message(box, "555", path="voicemail/555/x.ogg", started_at=NOW, seconds=2)
    with pytest.raises(VoicemailError, match="inside the data directory"):
        voicemail.add_message(box, "102", path="/tmp/x.ogg", started_at=NOW, seconds=2)


def test_voicemail_is_a_destination(box: Database) -> None:
    assert destinations.check_destination(box, "voicemail:102") == "voicemail:102"
    with pytest.raises(destinations.DestinationError, match="extension 101 has no mailbox"):
        extensions.add(box, "101", "", "Kq7vT9pLm2")
        destinations.check_destination(box, "voicemail:101")


def test_feature_codes_are_checked_and_do_not_collide(db: Database) -> None:
    assert settings.get_str(db, "features.voicemail") == "*97"
    assert settings.set_value(db, "features.voicemail", "*98") == "*98"
    with pytest.raises(settings.SettingError, match=r"must be \* or # and 1 to 3 more keys"):
        settings.set_value(db, "features.voicemail", "97")
    with pytest.raises(settings.SettingError, match=r"\*1 is already the feature code of"):
        settings.set_value(db, "features.voicemail", "*1")


def test_mail_settings(db: Database) -> None:
    settings.set_value(db, "mail.host", "smtp.office.test")
    settings.set_value(db, "mail.password", "s3cret")
    with pytest.raises(settings.SettingError, match=r"mail\.port must be between 1 and 65535"):
        settings.set_value(db, "mail.port", "0")
    spec = settings.SETTINGS["mail.password"]
    assert isinstance(spec, settings.SecretSetting) and spec.secret
