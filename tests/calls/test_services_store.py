"""The services store: the operator's defaults with the phones' changes, locks, a restart."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from callserver.calls.service_codes import ServiceCodeCalls, check_target
from callserver.calls.services_store import Override, ServicesStore, SqliteServiceStore
from callserver.config.centrex import Centrex, compile_centrex
from callserver.config.centrex_file import CentrexFile
from callserver.media.prompts import Play, SayDigits
from callserver.policy.service_codes import parse
from callserver.policy.services import ServiceSettings

OWN, OTHER, LOCKED = "+38733100201", "+38733100202", "+38733100203"
NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def _centrex(*, busy_default: str | None = None) -> Centrex:
    phone = {"ha1_md5": "0" * 32}
    services: dict[str, object] = {"locks": ["forward_always"]}
    group = {
        "customer": "acme",
        "numbers": ["+387 33 100 200-299"],
        "extensions": {"digits": 3},
        "language": "hr",
        "services": {"forward_busy": busy_default} if busy_default else {},
        "subscribers": {
            OWN: {**phone, "username": "u201"},
            OTHER: {**phone, "username": "u202"},
            LOCKED: {**phone, "username": "u203", "services": services},
        },
    }
    centrex, errors = compile_centrex(CentrexFile.model_validate({"groups": {"g": group}}))
    assert errors == []
    return centrex


async def _open(tmp_path: Path, centrex: Centrex) -> ServicesStore:
    return ServicesStore.open(tmp_path, lambda: centrex, asyncio.get_running_loop())


async def test_change_survives_a_restart(tmp_path: Path) -> None:
    """A change is served at once from memory and read back by a store opened again."""
    centrex = _centrex()
    store = await _open(tmp_path, centrex)
    assert store.change(OWN, {"forward_always": "202", "dnd": True})
    assert store.settings_of(OWN) == ServiceSettings(forward_always="202", dnd=True)
    assert store.settings_of(OTHER) == ServiceSettings()
    await store.close()
    again = await _open(tmp_path, centrex)
    assert again.settings_of("38733100201") == ServiceSettings(forward_always="202", dnd=True)
    assert dict(again.overrides_of(OWN)) == {"forward_always": "202", "dnd": True}
    await again.close()


async def test_phone_off_wins_over_operator_default(tmp_path: Path) -> None:
    """A forwarding the phone turned off stays off under the operator's default, and a new
    default of a setting the phone never touched shows through."""
    store = await _open(tmp_path, _centrex(busy_default="+38761100100"))
    assert store.settings_of(OWN).forward_busy == "+38761100100"
    assert store.change(OWN, {"forward_busy": None})
    assert store.settings_of(OWN).forward_busy is None
    assert store.settings_of(OTHER).forward_busy == "+38761100100"
    await store.close()


async def test_locked_service_is_refused_whole(tmp_path: Path) -> None:
    """A change touching a locked service changes nothing, even its unlocked parts."""
    store = await _open(tmp_path, _centrex())
    assert not store.change(LOCKED, {"forward_always": "202", "dnd": True})
    assert store.settings_of(LOCKED) == ServiceSettings()
    assert store.change(LOCKED, {"dnd": True})
    assert not store.change("+38733100299", {"dnd": True})  # not a subscriber
    with pytest.raises(ValueError, match="not service settings"):
        store.change(OWN, {"hold": True})
    await store.close()


async def test_codes_change_settings_and_say_so(tmp_path: Path) -> None:
    """Codes dialled by a phone change its settings and answer with the right prompt."""
    centrex = _centrex()
    store = await _open(tmp_path, centrex)
    calls = ServiceCodeCalls(lambda: centrex, store)
    own, locked = centrex.by_number[OWN], centrex.by_number[LOCKED]

    def dial(subscriber: object, dialled: str) -> tuple[object, ...]:
        request = parse(dialled, centrex.codes)
        assert request is not None
        return calls.perform(subscriber, request, NOW)  # type: ignore[arg-type]

    assert dial(own, "*21*061123456#") == (Play("service_activated"),)
    assert store.settings_of(OWN).forward_always == "+38761123456"
    assert dial(own, "*#21#") == (Play("forwarding_to"), SayDigits("38761123456"))
    assert dial(own, "*61*202*30#") == (Play("service_activated"),)
    assert store.settings_of(OWN).forward_no_answer == "202"
    assert store.settings_of(OWN).no_answer_seconds == 30
    assert dial(own, "*67*VM#") == (Play("service_activated"),)
    assert dial(own, "*#67#") == (Play("forwarding_to_voicemail"),)
    assert dial(own, "##002#") == (Play("service_deactivated"),)
    assert dial(own, "*#21#") == (Play("forwarding_off"),)
    assert store.settings_of(OWN).forward_busy is None
    assert dial(own, "*26#") == (Play("service_activated"),)
    assert dial(own, "*#26#") == (Play("service_activated"),)
    assert dial(own, "#43#") == (Play("service_deactivated"),)
    assert store.settings_of(OWN) == ServiceSettings(
        no_answer_seconds=30, dnd=True, call_waiting=False
    )
    assert dial(own, "*21*299#") == (Play("service_invalid"),)  # not an extension
    assert dial(own, "*21*201#") == (Play("service_invalid"),)  # itself
    assert dial(own, "*61*202*90#") == (Play("service_invalid"),)
    assert dial(own, "*39") == (Play("service_invalid"),)  # no MCID wired here
    assert dial(locked, "*21*202#") == (Play("service_not_allowed"),)
    assert dial(locked, "##002#") == (Play("service_not_allowed"),)
    assert store.settings_of(LOCKED) == ServiceSettings()
    await store.close()


def test_check_target() -> None:
    """A target is VM, an extension of the group, or a number normalised to E.164."""
    centrex = _centrex()
    own = centrex.by_number[OWN]
    assert check_target(centrex, own, "VM") == "VM"
    assert check_target(centrex, own, "202") == "202"
    assert check_target(centrex, own, "061123456") == "+38761123456"
    assert check_target(centrex, own, "+4930123456") == "+4930123456"
    assert check_target(centrex, own, "0038733100201") is None
    assert check_target(centrex, own, "298") is None


async def test_a_stored_value_a_setting_cannot_take_is_skipped(tmp_path: Path) -> None:
    """A row of an unknown setting or a wrong value (a damaged file, an older version) is left
    out on start, never laid over the operator's settings; a wrong value in a change raises."""
    stored = SqliteServiceStore(tmp_path / "services.sqlite")
    stored.apply(
        [
            Override(number=OWN, service="dnd", value="yes"),
            Override(number=OWN, service="no_answer_seconds", value=90),
            Override(number=OWN, service="hold", value=True),
            Override(number=OWN, service="call_waiting", value=False),
        ]
    )
    stored.close()
    store = await _open(tmp_path, _centrex())
    assert store.settings_of(OWN) == ServiceSettings(call_waiting=False)
    with pytest.raises(ValueError, match="no_answer_seconds"):
        store.change(OWN, {"no_answer_seconds": 3})
    await store.close()


async def test_a_reload_of_the_operator_defaults_shows_under_the_phones_changes(
    tmp_path: Path,
) -> None:
    """A new centrex file's defaults apply at once under what the phone set itself."""
    files = [_centrex()]
    store = ServicesStore.open(tmp_path, lambda: files[-1], asyncio.get_running_loop())
    assert store.change(OWN, {"dnd": True})
    assert store.settings_of(OWN) == ServiceSettings(dnd=True)
    files.append(_centrex(busy_default="+38761100100"))
    assert store.settings_of(OWN) == ServiceSettings(dnd=True, forward_busy="+38761100100")
    await store.close()
