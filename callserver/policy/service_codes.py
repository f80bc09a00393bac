"""Service codes dialled from a phone: what ``*21*0611234#`` or ``#31#061...`` asks for.

Theory of operation
-------------------
The codes follow the man-machine interface of ETSI TS 122 030 §6.5 (3GPP TS 22.030): a
supplementary service has a *service code* (SC) of digits, and the procedure is in the
characters around it:

=====================  ==============================  =====================================
dialled                procedure                       example (the default codes)
=====================  ==============================  =====================================
``*SC*SI#``            activate with supplementary     ``*21*061123456#`` (CFU to a number),
                       information (a target, then     ``*61*201*30#`` (CFNR to 201 after
                       for CFNR the ring time)         30 s)
``*SC#``               activate                        ``*43#`` call waiting on
``#SC#``               deactivate                      ``#21#``, ``#26#``
``*#SC#``              interrogate (read back)         ``*#21#``
``##SC#``              erase                           ``##002#`` every forwarding off
``#SC#NUMBER``         this call: suppress (CLIR)      ``#31#061123456``
``*SC#NUMBER``         this call: show the caller ID   ``*31#061123456``
``*SC`` or ``*SC#``    invoke (MCID, an agent's login  ``*39``, ``*45``, ``*46``
                       and logout)
``*SC*REASON#``        an agent pauses with REASON     ``*47*3#``
``#SC#``               ... ends its pause              ``#47#``
=====================  ==============================  =====================================

The operator may change each SC (``ServiceCodes``, centrex.yaml's ``service_codes``). A
Request-URI user may carry ``#`` escaped as ``%23`` (RFC 3261 §19.1.2): it is unescaped here.
``parse`` answers None for anything that is not one of these codes, so the codes answered
elsewhere (pickup ``*8`` and ``**EXT``, the voicemail box ``*97``, a supervisor's ``*222EXT``
listen, ``*223EXT`` whisper and ``*224EXT`` barge, read by ``supervision``; a call-centre
agent's ``*45``, ``*46``, ``*47*REASON#`` and ``#47#``, read by ``agent_code``: their codes are
set here too) and every number route on as before; a code of ours
written wrong (``*21*#``, ``*61*201*3#``) is an ``Invalid`` the phone is told about.

A target is kept as dialled (digits, or ``VM``): which number or extension it names depends
on the subscriber's group, so ``calls.service_codes`` checks it.

Pure: values and functions, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Final, Literal
from urllib.parse import unquote

from callserver.policy.services import NO_ANSWER_SECONDS, VOICEMAIL

__all__ = [
    "AGENT",
    "FORWARDING",
    "MCID_WINDOW",
    "MCID_WINDOWS",
    "AgentCode",
    "CallerIdOnce",
    "Invalid",
    "MaliciousCall",
    "Procedure",
    "ServiceChange",
    "ServiceCodes",
    "ServiceRequest",
    "agent_code",
    "parse",
    "supervision",
]

MCID_WINDOW: Final = 60
"""Seconds after an incoming call ends during which ``*39`` still marks it. ETSI EN 300 356-11
leaves how long the network keeps a call's identity for MCID after the caller clears to the
network; a minute is what a subscriber needs to hang up and dial the code."""

MCID_WINDOWS: Final = (5, 3600)
"""The shortest and longest window an operator may set, in seconds."""

FORWARDING: Final = ("forward_always", "forward_busy", "forward_no_answer", "forward_unreachable")
"""The forwarding services, as ``policy.services.ServiceSettings`` names them."""

Procedure = Literal["activate", "deactivate", "interrogate", "erase"]

SUPERVISION: Final = ("listen", "whisper", "barge")
"""A supervisor's codes, as ``media.monitoring`` names the modes (``calls.supervision``)."""

AGENT: Final = ("agent_login", "agent_logout", "agent_pause")
"""A call-centre agent's codes (``calls.agent_desk``)."""

_ANSWERED_ELSEWHERE = frozenset({"pickup", "voicemail", *SUPERVISION, *AGENT})  # calls.pickup, ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceCodes:
    """The service code (digits) of each service (ETSI TS 122 030 Annex B defaults)."""

    forward_always: str = "21"
    forward_busy: str = "67"
    forward_no_answer: str = "61"
    forward_unreachable: str = "62"
    all_forwarding: str = "002"
    call_waiting: str = "43"
    dnd: str = "26"
    clir: str = "31"
    mcid: str = "39"
    pickup: str = "8"  # *8: a call ringing in the pickup group (calls.pickup)
    voicemail: str = "97"  # *97: the subscriber's own box (voicemail.service)
    listen: str = "222"  # *222EXT: a supervisor listens to EXT's call (calls.supervision)
    whisper: str = "223"  # *223EXT: ... speaks to EXT alone
    barge: str = "224"  # *224EXT: ... joins EXT's call
    agent_login: str = "45"  # *45: a call-centre agent logs in (calls.agent_desk)
    agent_logout: str = "46"  # *46: ... logs out
    agent_pause: str = "47"  # *47*REASON#: ... pauses with a reason code; #47#: available again
    mcid_window_seconds: int = MCID_WINDOW  # not a code: how long after a call *39 marks it

    def service_of(self, code: str) -> str | None:
        """The service whose code is ``code``, else None."""
        return next((f.name for f in fields(self) if getattr(self, f.name) == code), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceChange:
    """A procedure on a service: ``service`` as ServiceSettings names it (or
    ``all_forwarding``), a target as dialled, and CFNR's ring time in seconds."""

    procedure: Procedure
    service: str
    target: str | None = None
    seconds: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerIdOnce:
    """This one call to ``number``, with the caller ID withheld (CLIR) or shown."""

    withhold: bool
    number: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MaliciousCall:
    """Mark the subscriber's last incoming call as malicious (MCID)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Invalid:
    """A code of ours written wrong; ``reason`` says how (for the log)."""

    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentCode:
    """A call-centre agent's code: ``action`` is ``login``, ``logout``, ``pause`` (with its
    ``reason`` code, or None: paused without one) or ``unpause``."""

    action: Literal["login", "logout", "pause", "unpause"]
    reason: str | None = None


ServiceRequest = ServiceChange | CallerIdOnce | MaliciousCall | Invalid

_MMI = re.compile(r"^(\*#|##|\*|#)(\d+)((?:\*[^*#]*)*)(#?)(.*)$")
_EXTENSION = re.compile(r"[0-9]{2,6}")
_TARGET = re.compile(rf"^(\+?\d{{2,15}}|{VOICEMAIL})$")
_PREFIXES: Final[dict[str, Procedure]] = {
    "*": "activate",
    "#": "deactivate",
    "*#": "interrogate",
    "##": "erase",
}


def parse(dialled: str, codes: ServiceCodes) -> ServiceRequest | None:
    """What ``dialled`` (a Request-URI user) asks for, or None when it is not a service code
    (ETSI TS 122 030 §6.5.2; see the module docstring)."""
    text = unquote(dialled)
    match = _MMI.match(text)
    if match is None:
        return None
    prefix, code, extra, hash_, rest = match.groups()
    service = codes.service_of(code)
    if service is None or service in _ANSWERED_ELSEWHERE:
        return None
    if service == "clir":
        return _clir(prefix, extra, hash_, rest)
    if service == "mcid":
        ok = prefix == "*" and not extra and not rest
        return MaliciousCall() if ok else Invalid(reason=f"{text!r}: MCID is *{code}")
    if not hash_ or rest:
        return Invalid(reason=f"{text!r}: a service code ends with #")
    infos = extra.split("*")[1:]
    return _change(_PREFIXES[prefix], service, infos, text)


def supervision(dialled: str, codes: ServiceCodes) -> tuple[str, str] | None:
    """The mode (``listen``, ``whisper``, ``barge``) and extension of a supervisor's code
    ``*CODE EXT`` (``*222201``: listen to 201), or None when ``dialled`` is not one. EXT is
    2 to 6 digits, as a Centrex extension; the codes are no prefix of one another
    (centrex.yaml's check), so at most one matches."""
    text = unquote(dialled)
    if text[:1] != "*":
        return None
    for mode in SUPERVISION:
        code = getattr(codes, mode)
        extension = text[1 + len(code) :]  # all digits, 2 to 6 (ASCII only)
        if text[1:].startswith(code) and _EXTENSION.fullmatch(extension):
            return mode, extension
    return None


_REASON = re.compile(r"[0-9]{1,6}")


def agent_code(dialled: str, codes: ServiceCodes) -> AgentCode | Invalid | None:
    """The agent's code ``dialled`` is, or None when it is none (ETSI TS 122 030 §6.5.2
    procedures): ``*45`` (or ``*45#``) logs in, ``*46`` (``*46#``) logs out, ``*47*REASON#``
    pauses with REASON (1 to 6 digits), ``*47#`` (or ``*47``) pauses with no reason code and
    ``#47#`` ends the pause (the default codes)."""
    match = _MMI.match(unquote(dialled))
    if match is None:
        return None
    prefix, code, extra, hash_, rest = match.groups()
    service = codes.service_of(code)
    if service not in AGENT:
        return None
    text = f"{prefix}{code}{extra}{hash_}{rest}"
    if service != "agent_pause":
        if prefix != "*" or extra or rest:
            return Invalid(
                reason=f"{text!r}: an agent logs in with *{codes.agent_login}, out with "
                f"*{codes.agent_logout}"
            )
        return AgentCode(action="login" if service == "agent_login" else "logout")
    if prefix == "#" and not extra and hash_ and not rest:
        return AgentCode(action="unpause")
    if prefix == "*" and not extra and not rest:
        return AgentCode(action="pause")  # no reason code
    reason = extra[1:]
    if prefix != "*" or not hash_ or rest or not _REASON.fullmatch(reason):
        return Invalid(
            reason=f"{text!r}: a pause is *{code}*REASON# (1 to 6 digits) or *{code}# "
            f"(no reason), its end #{code}#"
        )
    return AgentCode(action="pause", reason=reason)


def _clir(prefix: str, extra: str, hash_: str, rest: str) -> ServiceRequest:
    number = rest.strip()
    if prefix not in ("*", "#") or extra or not hash_ or not re.fullmatch(r"\+?\d{2,15}", number):
        return Invalid(reason="per-call caller ID is #31#NUMBER or *31#NUMBER")
    return CallerIdOnce(withhold=prefix == "#", number=number)


def _change(procedure: Procedure, service: str, infos: list[str], text: str) -> ServiceRequest:
    forwarding = service in FORWARDING
    if service == "all_forwarding":
        if procedure not in ("deactivate", "erase") or infos:
            return Invalid(reason=f"{text!r}: all forwarding can only be erased (##...#)")
        return ServiceChange(procedure="erase", service=service)
    if procedure != "activate" or not forwarding:
        if infos:
            return Invalid(reason=f"{text!r}: no number goes with this procedure")
        if procedure == "interrogate" and not forwarding and service not in ("call_waiting", "dnd"):
            return Invalid(reason=f"{text!r}: cannot be read back")
        if procedure == "activate" and forwarding:
            return Invalid(reason=f"{text!r}: forwarding needs a number")
        return ServiceChange(procedure=procedure, service=service)
    return _forwarding(service, infos, text)


def _forwarding(service: str, infos: list[str], text: str) -> ServiceRequest:
    most = 2 if service == "forward_no_answer" else 1
    if not 1 <= len(infos) <= most or not _TARGET.match(infos[0]):
        return Invalid(reason=f"{text!r}: forwarding is *code*NUMBER#")
    seconds = None
    if len(infos) == 2:
        low, high = NO_ANSWER_SECONDS
        if not infos[1].isdigit() or not low <= int(infos[1]) <= high:
            return Invalid(reason=f"{text!r}: the ring time is {low} to {high} seconds")
        seconds = int(infos[1])
    return ServiceChange(procedure="activate", service=service, target=infos[0], seconds=seconds)
