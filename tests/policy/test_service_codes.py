"""The service-code parser: ETSI TS 122 030 MMI strings dialled from a phone to values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callserver.policy.service_codes import (
    AgentCode,
    CallerIdOnce,
    Invalid,
    MaliciousCall,
    Procedure,
    ServiceChange,
    ServiceCodes,
    agent_code,
    parse,
    supervision,
)

CODES = ServiceCodes()


def ch(
    procedure: Procedure, service: str, target: str | None = None, seconds: int | None = None
) -> ServiceChange:
    return ServiceChange(procedure=procedure, service=service, target=target, seconds=seconds)


@pytest.mark.parametrize(
    ("dialled", "expected"),
    [
        ("*21*061123456#", ch("activate", "forward_always", "061123456")),
        ("*21*061123456%23", ch("activate", "forward_always", "061123456")),
        ("#21#", ch("deactivate", "forward_always")),
        ("%2321%23", ch("deactivate", "forward_always")),
        ("*67*202#", ch("activate", "forward_busy", "202")),
        ("#67#", ch("deactivate", "forward_busy")),
        ("*61*VM*30#", ch("activate", "forward_no_answer", "VM", 30)),
        ("*61*202#", ch("activate", "forward_no_answer", "202")),
        ("#61#", ch("deactivate", "forward_no_answer")),
        ("*62*+38761123456#", ch("activate", "forward_unreachable", "+38761123456")),
        ("#62#", ch("deactivate", "forward_unreachable")),
        ("##002#", ch("erase", "all_forwarding")),
        ("*#21#", ch("interrogate", "forward_always")),
        ("##21#", ch("erase", "forward_always")),
        ("*43#", ch("activate", "call_waiting")),
        ("#43#", ch("deactivate", "call_waiting")),
        ("*26#", ch("activate", "dnd")),
        ("#26#", ch("deactivate", "dnd")),
        ("#31#061123456", CallerIdOnce(withhold=True, number="061123456")),
        ("*31#061123456", CallerIdOnce(withhold=False, number="061123456")),
        ("%2331%23061123456", CallerIdOnce(withhold=True, number="061123456")),
        ("*39", MaliciousCall()),
        ("*39#", MaliciousCall()),
    ],
)  # fmt: skip
def test_codes(dialled: str, expected: object) -> None:
    """Each default code of the issue parses to what it asks for, with # escaped or not."""
    assert parse(dialled, CODES) == expected


@pytest.mark.parametrize(
    "dialled",
    ["*21*#", "*21#", "*21*061123456", "*21*061*123#", "*61*202*3#", "*61*202*61#",
     "*61*202*x#", "*21*abc#", "*43*202#", "*#43*1#", "#31#", "#31#abc", "*#002#", "*002#",
     "#39#", "*39*1", "*21*061123456#9", "*#31#"],
)  # fmt: skip
def test_codes_written_wrong(dialled: str) -> None:
    """A code of ours written wrong is Invalid, with a reason, never None nor an exception."""
    result = parse(dialled, CODES)
    assert isinstance(result, Invalid)
    assert result.reason


@pytest.mark.parametrize("dialled", ["201", "+38733100201", "*8", "**201", "*97", "*123#", ""])
def test_other_numbers_are_not_codes(dialled: str) -> None:
    """Numbers and other parts' codes (pickup, the voicemail box) are not service codes."""
    assert parse(dialled, CODES) is None


def test_operator_codes() -> None:
    """Codes the operator changed are the ones read; the defaults then mean nothing."""
    codes = ServiceCodes(forward_always="72", dnd="78")
    assert parse("*72*202#", codes) == ServiceChange(
        procedure="activate", service="forward_always", target="202"
    )
    assert parse("*78#", codes) == ch("activate", "dnd")
    assert parse("*21*202#", codes) is None
    assert parse("*26#", codes) is None


@given(st.text(alphabet="*#0123456789%2+VMx", max_size=24))
def test_any_dialled_string(dialled: str) -> None:
    """Any string parses to a request or None, never raising."""
    result = parse(dialled, CODES)
    kinds = ServiceChange | CallerIdOnce | MaliciousCall | Invalid
    assert result is None or isinstance(result, kinds)


@given(
    st.sampled_from(["forward_always", "forward_busy", "forward_unreachable"]),
    st.from_regex(r"\A\+?[0-9]{2,15}\Z"),
)
def test_forwarding_target_round_trip(service: str, target: str) -> None:
    """*SC*TARGET# gives back the target as dialled for every forwarding service."""
    code = getattr(CODES, service)
    assert parse(f"*{code}*{target}#", CODES) == ServiceChange(
        procedure="activate", service=service, target=target
    )


@pytest.mark.parametrize(
    ("dialled", "expected"),
    [
        ("*222201", ("listen", "201")),
        ("*223201", ("whisper", "201")),
        ("*224123456", ("barge", "123456")),
        ("*2242", None),  # an extension has 2 to 6 digits
        ("*2241234567", None),
        ("*222", None),
        ("*222\uff12\uff10\uff11", None),  # ASCII digits only (these are full-width)
        ("*21*201#", None),
        ("**201", None),
        ("222201", None),
    ],
)
def test_supervisor_codes(dialled: str, expected: tuple[str, str] | None) -> None:
    """A supervisor's code and extension read as mode and extension; anything else is None."""
    assert supervision(dialled, CODES) == expected


def test_supervisor_codes_are_not_service_codes_and_follow_the_operator() -> None:
    """parse leaves a supervisor's code alone; the operator's codes are the ones read."""
    assert parse("*222201", CODES) is None and parse("*222#", CODES) is None
    codes = ServiceCodes(listen="51", whisper="52", barge="53")
    assert supervision("*52201", codes) == ("whisper", "201")
    assert supervision("*222201", codes) is None


@pytest.mark.parametrize(
    ("dialled", "expected"),
    [
        ("*45", AgentCode(action="login")),
        ("*45#", AgentCode(action="login")),
        ("*46", AgentCode(action="logout")),
        ("*46%23", AgentCode(action="logout")),
        ("*47*3#", AgentCode(action="pause", reason="3")),
        ("*47*123456#", AgentCode(action="pause", reason="123456")),
        ("*47#", AgentCode(action="pause")),
        ("*47", AgentCode(action="pause")),
        ("#47#", AgentCode(action="unpause")),
        ("%2347%23", AgentCode(action="unpause")),
        ("*21*201#", None),
        ("*44", None),
        ("061123456", None),
    ],
)  # fmt: skip
def test_agent_codes(dialled: str, expected: AgentCode | None) -> None:
    """*45 logs in, *46 out, *47*REASON# pauses, *47# pauses with no reason, #47# ends the
    pause; others are None."""
    assert agent_code(dialled, CODES) == expected


@pytest.mark.parametrize(
    "dialled", ["*47*#", "*47*1234567#", "*47*3", "*47*A#", "*47#9", "#45#", "*45*1#", "*46#9"]
)
def test_agent_codes_written_wrong(dialled: str) -> None:
    """A pause with an empty, too long or unfinished reason, a login or logout with more:
    Invalid."""
    assert isinstance(agent_code(dialled, CODES), Invalid)


def test_agent_codes_are_not_service_codes_and_follow_the_operator() -> None:
    """parse leaves an agent's code alone; the operator's codes are the ones read."""
    assert parse("*45", CODES) is None and parse("*47*3#", CODES) is None
    codes = ServiceCodes(agent_login="71", agent_logout="72", agent_pause="73")
    assert agent_code("*73*9#", codes) == AgentCode(action="pause", reason="9")
    assert agent_code("*45", codes) is None


@given(st.text(alphabet="*#0123456789%2+x", max_size=16))
def test_any_dialled_string_as_an_agent_code(dialled: str) -> None:
    """Any string is an agent's code, Invalid, or None, never raising."""
    assert agent_code(dialled, CODES) is None or isinstance(
        agent_code(dialled, CODES), AgentCode | Invalid
    )
