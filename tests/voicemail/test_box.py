"""Tests for a voicemail box on disk: messages new and saved, deletion, PIN, greeting, purge."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from callserver.voicemail.box import BOX_FILE, Mailbox, Summary, hash_pin, pin_matches
from tests.voicemail.messages import write_message

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def test_messages_new_first_then_saved_each_oldest_first(tmp_path: Path) -> None:
    """New messages come before saved ones, each folder in the order they were left."""
    box = Mailbox(tmp_path / "38761000201")
    write_message(box.folder, T0, call_id="a")
    write_message(box.folder, T0 + timedelta(hours=1), call_id="b")
    write_message(box.folder, T0 + timedelta(hours=2), call_id="c")
    first = box.messages()[0]
    box.save(first)
    order = [(m.call_id, m.folder) for m in box.messages()]
    assert order == [("b", "new"), ("c", "new"), ("a", "saved")]
    assert box.summary() == Summary(new=2, saved=1)


def test_delete_removes_the_wav_and_its_metadata(tmp_path: Path) -> None:
    """A deleted message leaves neither its WAV nor its JSON behind."""
    box = Mailbox(tmp_path / "38761000201")
    wav = write_message(box.folder, T0)
    box.delete(box.messages()[0])
    assert not wav.exists() and not wav.with_suffix(".json").exists()
    assert box.summary() == Summary(new=0, saved=0)


def test_unreadable_metadata_is_not_a_message(tmp_path: Path) -> None:
    """A JSON that does not parse, or whose WAV is gone, is skipped, not raised."""
    box = Mailbox(tmp_path / "38761000201")
    wav = write_message(box.folder, T0)
    wav.with_suffix(".json").write_text("{not json", encoding="utf-8")
    other = write_message(box.folder, T0 + timedelta(minutes=1), call_id="x")
    other.unlink()
    assert box.messages() == []


def test_pin_is_stored_hashed_and_checked(tmp_path: Path) -> None:
    """The PIN is kept as a salted scrypt hash; the right digits match, others do not."""
    box = Mailbox(tmp_path / "38761000201")
    assert not box.check_pin("1234", None)
    box.set_pin("482915")
    stored = (box.folder / BOX_FILE).read_text(encoding="utf-8")
    assert "482915" not in stored
    assert json.loads(stored)["pin"].startswith("scrypt$")
    assert box.check_pin("482915", None)
    assert not box.check_pin("482916", None)


def test_default_pin_applies_until_the_box_has_its_own(tmp_path: Path) -> None:
    """The operator's default PIN opens a box with none; a PIN of its own replaces it."""
    box = Mailbox(tmp_path / "38761000201")
    default = hash_pin("0000")
    assert box.check_pin("0000", default)
    box.set_pin("7777")
    assert not box.check_pin("0000", default)
    assert box.check_pin("7777", default)


@pytest.mark.parametrize("pin", ["123", "12345678901", "12a4", ""])
def test_a_pin_not_4_to_10_digits_is_refused(tmp_path: Path, pin: str) -> None:
    """Setting a PIN that is not 4 to 10 digits raises and keeps nothing."""
    box = Mailbox(tmp_path / "38761000201")
    with pytest.raises(ValueError, match="4 to 10 digits"):
        box.set_pin(pin)
    assert not (box.folder / BOX_FILE).exists()


def test_pin_matches_refuses_a_foreign_hash() -> None:
    """A stored value not in the scrypt form never matches."""
    assert not pin_matches("1234", "1234")
    assert not pin_matches("1234", "md5$ab$cd")


def test_keep_greeting_moves_the_draft_and_clears_drafts(tmp_path: Path) -> None:
    """A kept greeting becomes greeting.wav; the draft and its JSON are gone."""
    box = Mailbox(tmp_path / "38761000201")
    assert box.greeting() is None
    draft = write_message(box.folder / ".drafts", T0)
    kept = box.keep_greeting(draft)
    assert box.greeting() == kept == box.folder / "greeting.wav"
    assert list((box.folder / ".drafts").iterdir()) == []
    assert box.messages() == []  # the greeting is no message


def test_purge_deletes_only_messages_past_retention(tmp_path: Path) -> None:
    """Messages older than the retention at the pinned time go; newer ones and saved ones
    within it stay."""
    box = Mailbox(tmp_path / "38761000201")
    write_message(box.folder, T0 - timedelta(days=31), call_id="old")
    write_message(box.folder, T0 - timedelta(days=29), call_id="recent")
    gone = box.purge(T0, timedelta(days=30))
    assert [m.call_id for m in gone] == ["old"]
    assert [m.call_id for m in box.messages()] == ["recent"]


def test_saving_a_message_deleted_meanwhile_changes_nothing(tmp_path: Path) -> None:
    """A message another call (or the purge) deleted is not brought back by a save."""
    box = Mailbox(tmp_path / "38761000201")
    write_message(box.folder, T0)
    message = box.messages()[0]
    box.delete(message)
    box.save(message)
    assert box.messages() == [] and list(box.folder.glob("*.json")) == []
