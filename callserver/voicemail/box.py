"""One voicemail box on disk: its messages (new or saved), its PIN and its greeting.

Theory of operation
-------------------
A subscriber's box is the folder ``<data_dir>/voicemail/<number>/`` (E.164 digits, no ``+``),
where ``calls.session.CallSession.record`` writes each message as a WAV with a JSON file of
its metadata beside it. The box keeps its own state in two more places, each written whole
and atomically (a ``.part`` file fsync'd, then renamed):

- a message's folder (new or saved) is the JSON's ``"folder"`` key (absent: new);
- ``box.json`` holds the PIN, hashed with scrypt and a random salt (never the digits), and
  the name of the recorded greeting (``greeting.wav``; None: the default prompt).

Everything here is blocking file I/O: the event loop calls it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from callserver.process.durable import sync_directory, write_json

__all__ = ["BOX_FILE", "GREETING", "Mailbox", "Message", "Summary", "valid_pin"]

BOX_FILE = "box.json"
GREETING = "greeting.wav"
_MESSAGE = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{8}\.json")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
PIN_DIGITS = (4, 10)  # a PIN is this many digits, at least and at most


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """A message of the box: its WAV, when it began (UTC), who left it, new or saved."""

    name: str
    wav: Path
    time: datetime
    caller: str
    duration: float
    folder: Literal["new", "saved"]
    call_id: str = ""  # of the call that left it


@dataclass(frozen=True, slots=True, kw_only=True)
class Summary:
    """How many new and saved messages a box holds (RFC 3842 ``Voice-Message: new/old``)."""

    new: int
    saved: int


def valid_pin(pin: str) -> bool:
    """True when ``pin`` is 4 to 10 digits."""
    low, high = PIN_DIGITS
    return pin.isdigit() and low <= len(pin) <= high


def hash_pin(pin: str) -> str:
    """``pin`` hashed with scrypt and a random salt, as ``scrypt$salt$hash`` (hex)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def pin_matches(pin: str, stored: str) -> bool:
    """True when ``pin`` hashes to ``stored`` (``hash_pin``'s form); compared in constant time."""
    kind, salt, digest = [*stored.split("$"), "", ""][:3]
    if kind != "scrypt" or not salt or not digest:
        return False
    actual = hashlib.scrypt(pin.encode(), salt=bytes.fromhex(salt), **_SCRYPT)
    return hmac.compare_digest(actual.hex(), digest)


class Mailbox:
    """The box in ``folder``; see the module docstring. Blocking: run it off the loop."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @property
    def number(self) -> str:
        """The box's name: its subscriber's number."""
        return self.folder.name

    def messages(self) -> list[Message]:
        """Every message, new ones first, each folder oldest first."""
        if not self.folder.is_dir():
            return []
        found = [
            message
            for path in self.folder.iterdir()
            if _MESSAGE.fullmatch(path.name) and (message := _read(path)) is not None
        ]
        return sorted(found, key=lambda m: (m.folder != "new", m.time, m.name))

    def summary(self) -> Summary:
        """How many new and saved messages the box holds."""
        messages = self.messages()
        new = sum(1 for m in messages if m.folder == "new")
        return Summary(new=new, saved=len(messages) - new)

    def save(self, message: Message) -> None:
        """Move ``message`` to the saved ones (a message deleted meanwhile stays gone)."""
        path = message.wav.with_suffix(".json")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        data["folder"] = "saved"
        write_json(path, data)

    def delete(self, message: Message) -> None:
        """Delete ``message`` (its JSON first: a WAV without one is no message)."""
        message.wav.with_suffix(".json").unlink(missing_ok=True)
        message.wav.unlink(missing_ok=True)
        sync_directory(self.folder)

    def purge(self, now: datetime, retention: timedelta) -> list[Message]:
        """Delete the messages that began before ``now - retention``; the ones deleted."""
        cutoff = now - retention
        old = [m for m in self.messages() if m.time < cutoff]
        for message in old:
            self.delete(message)
        return old

    def has_pin(self) -> bool:
        """True when the subscriber set a PIN of its own."""
        return bool(self._state().get("pin"))

    def check_pin(self, pin: str, default_hash: str | None) -> bool:
        """True when ``pin`` is the box's PIN (its own, else the operator's default hash)."""
        stored = self._state().get("pin") or default_hash
        return isinstance(stored, str) and pin_matches(pin, stored)

    def set_pin(self, pin: str) -> None:
        """Keep ``pin`` (hashed) as the box's PIN.

        Raises:
            ValueError: ``pin`` is not 4 to 10 digits.
        """
        if not valid_pin(pin):
            raise ValueError("a PIN is 4 to 10 digits")
        self._update(pin=hash_pin(pin))

    def greeting(self) -> Path | None:
        """The subscriber's recorded greeting, or None (the default prompt plays)."""
        name = self._state().get("greeting")
        path = self.folder / str(name) if name else None
        return path if path is not None and path.is_file() else None

    def keep_greeting(self, recording: Path) -> Path:
        """Make ``recording`` (a WAV, moved here) the box's greeting; its new path. The
        drafts recorded beside it (and their JSON) are deleted."""
        target = self.folder / GREETING
        self.folder.mkdir(parents=True, exist_ok=True)
        recording.replace(target)
        self._update(greeting=GREETING)
        for draft in recording.parent.glob("*.*"):
            if draft.suffix in (".wav", ".json"):
                draft.unlink(missing_ok=True)
        return target

    def _state(self) -> dict[str, object]:
        path = self.folder / BOX_FILE
        if not path.is_file():
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}

    def _update(self, **values: object) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_json(self.folder / BOX_FILE, {**self._state(), **values})


def _read(path: Path) -> Message | None:
    """The message whose JSON is ``path``; None when it is unreadable or its WAV is gone."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        wav = path.with_suffix(".wav")
        if not wav.is_file():
            return None
        return Message(
            name=path.stem,
            wav=wav,
            time=datetime.fromisoformat(str(data["time"]).replace("Z", "+00:00")),
            caller=str(data.get("caller", "")),
            duration=float(data.get("duration", 0.0)),
            folder="saved" if data.get("folder") == "saved" else "new",
            call_id=str(data.get("call_id", "")),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
