"""The softphone logs the agent out as it closes only when the agent logged in from it: an
agent already logged in at a desk phone, whose login from the page is refused, stays in."""

from __future__ import annotations

from typing import Any

from callserver.calls.agent_desk import AgentOutcome
from callserver.sip.events import Peer
from callserver.softphone.session import SoftphoneSession
from tests.softphone.test_offer_refused import AGENT


class _Desk:
    """A login ``login_outcome`` (``refused``: logged in already), a logout done."""

    def __init__(self, login_outcome: str) -> None:
        self.login_outcome = login_outcome
        self.actions: list[str] = []

    def act(self, number: str, action: str, reason: str | None = None) -> AgentOutcome:
        self.actions.append(action)
        if action == "login":
            return AgentOutcome(
                agent=number,
                outcome=self.login_outcome,
                state="available",
                reason=None,
                detail="in",
            )
        return AgentOutcome(
            agent=number, outcome="logged_out", state="logged_out", reason=None, detail="out"
        )


def _session(desk: _Desk, sent: list[dict[str, Any]]) -> SoftphoneSession:
    return SoftphoneSession(
        subscriber=AGENT,
        desk=desk,
        server=Peer("udp", "127.0.0.1", 5060),
        bind_host="127.0.0.1",
        address="127.0.0.1",
        send=sent.append,
    )


async def test_a_refused_login_is_not_undone_on_close() -> None:
    desk, sent = _Desk("refused"), []  # type: ignore[var-annotated]
    session = _session(desk, sent)
    await session.handle({"type": "login"})
    await session.close()
    assert [m["outcome"] for m in sent] == ["refused"]
    assert desk.actions == ["login"]


async def test_a_login_from_the_page_is_undone_on_close() -> None:
    desk, sent = _Desk("logged_in"), []  # type: ignore[var-annotated]
    session = _session(desk, sent)
    await session.handle({"type": "login"})
    await session.close()
    assert desk.actions == ["login", "logout"]


class _BusyDesk(_Desk):
    """The first logout refused (the queue has not seen the call's end yet), later ones done."""

    def act(self, number: str, action: str, reason: str | None = None) -> AgentOutcome:
        outcome = super().act(number, action, reason)
        if action == "logout" and self.actions.count("logout") == 1:
            return AgentOutcome(
                agent=number, outcome="refused", state="in_call", reason=None, detail="busy"
            )
        return outcome


async def test_a_refused_logout_is_retried_before_close_returns() -> None:
    """No retry timer outlives the session: it could log out the agent's next softphone."""
    desk, sent = _BusyDesk("logged_in"), []  # type: ignore[var-annotated]
    session = _session(desk, sent)
    await session.handle({"type": "login"})
    await session.close()
    assert desk.actions == ["login", "logout", "logout"]
