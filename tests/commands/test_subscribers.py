"""``callserver subscribers show``: the operator's services, the phone's changes, locks,
language, pickup group and registrations of one subscriber, from the files and data dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from callserver.calls.services_store import Override, SqliteServiceStore
from callserver.commands.subscribers import show
from callserver.config.centrex import Centrex, compile_centrex
from callserver.config.centrex_file import CentrexFile
from callserver.registrar.store import SqliteBindingStore
from tests.registrar.support import UDP, registered, registrar

WALL = 1_900_000_000.0  # a pinned wall clock


def _centrex() -> Centrex:
    phone = {
        "username": "38733100201",
        "ha1_md5": "0" * 32,
        "name": "Reception",
        "language": "hr",
        "pickup_group": "front",
        "services": {"forward_busy": "+387 61 100 100", "locks": ["forward_always"]},
    }
    group = {
        "customer": "acme",
        "numbers": ["+387 33 100 200-299"],
        "extensions": {"digits": 3},
        "subscribers": {
            "+387 33 100 201": phone,
            "+387 33 100 202": {"username": "u202", "ha1_md5": "1" * 32, "role": "supervisor"},
        },
    }
    centrex, errors = compile_centrex(CentrexFile.model_validate({"groups": {"office": group}}))
    assert errors == []
    return centrex


def test_show_tells_what_is_in_force_and_why(tmp_path: Path) -> None:
    """The phone's CFNR and DND over the operator's CFB, the lock, language, pickup group and
    the stored registration with its time left; a number with nothing stored shows defaults,
    and a supervisor its role."""
    services = SqliteServiceStore(tmp_path / "services.sqlite")
    services.apply(
        [
            Override(number="+38733100201", service="forward_no_answer", value="VM"),
            Override(number="+38733100201", service="dnd", value=True),
        ]
    )
    services.close()
    bindings = SqliteBindingStore(tmp_path / "registrar.sqlite", wall=lambda: WALL)
    bindings.apply(
        registered(registrar(), 100.0, ["<sip:201@192.0.2.10:5062>;expires=600"], flow=UDP).changes,
        100.0,
    )
    bindings.close()
    text = show(_centrex(), tmp_path, "033 100 201", "en", wall=lambda: WALL + 100)
    assert text.splitlines()[0] == "+38733100201  Reception"
    assert "  language: hr" in text and "  pickup group: front" in text
    assert "  locked (the phone may not change): forward_always" in text
    lines = {line.split()[0]: line.split()[1:] for line in text.splitlines()[7:14]}
    assert lines["forward_busy"] == ["+38761100100", "+38761100100", "-"]
    assert lines["forward_no_answer"] == ["VM", "off", "VM"]
    assert lines["dnd"] == ["on", "off", "on"]
    assert lines["call_waiting"] == ["on", "on", "-"]
    assert "    sip:201@192.0.2.10:5062  udp from 192.0.2.10:5062, 500 s left" in text
    other = show(_centrex(), tmp_path / "empty", "+38733100202", "en")
    assert "  language: en (the server's default)" in other
    assert "  registrations: none" in other
    assert "  pickup group: office, role: supervisor" in other and "role" not in text


def test_show_refuses_a_number_that_is_no_subscriber(tmp_path: Path) -> None:
    """A number outside the centrex file, or not a number, is a clear error."""
    with pytest.raises(ValueError, match="no subscriber"):
        show(_centrex(), tmp_path, "+38733100299", "en")
    with pytest.raises(ValueError):
        show(_centrex(), tmp_path, "reception", "en")
