"""Tests for the routing's order: the codes a customer's phone dials, then the plans."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from pathlib import Path

from callserver.calls.session import CallSession
from callserver.config.tariffs import load_tariffs
from callserver.dialplan.routing import Routing
from callserver.media.prompts import PromptStore
from callserver.media.settings import MediaSettings
from tests.dialplan.fakes import FakeCall


async def test_codes_are_offered_the_calls_of_customers_only(tmp_path: Path) -> None:
    """A code takes a customer's call to it; a trunk's call to the same number is offered to
    no code and goes to the plans (here none: no plan)."""
    offered: list[str] = []
    answering = asyncio.sleep(0)

    def code(session: CallSession) -> Awaitable[None] | None:
        offered.append(session.called)
        return answering if session.called == "*8" else None

    routing = Routing(
        dialplans=tmp_path,
        blacklist=tmp_path / "blacklist.txt",
        prompts=PromptStore(tmp_path, MediaSettings().language_chain),
        tariffs=load_tariffs(),
        default_language="en",
        codes=[code],
    )
    customer, trunk = FakeCall(called="*8"), FakeCall(called="*8")
    customer.originating, trunk.originating = True, False
    assert routing.route(trunk) is None  # type: ignore[arg-type]
    assert offered == []
    assert routing.route(customer) is answering  # type: ignore[arg-type]
    assert offered == ["*8"]
    await answering
