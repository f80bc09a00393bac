"""config/centrex.yaml as a file: the schema of its groups and subscribers (pydantic).

What one entry can say is checked here, with its own line: an E.164 number, a number block
(``+387 33 100 200-299``), HA1 digests of the right length, barring class names, a
``password`` key (refused: only HA1 values are stored). What needs the whole file (a number
inside its group's blocks, duplicate numbers, extensions and usernames) is checked by
``callserver.config.centrex.compile_centrex``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from callserver.config.trunks import Barring
from callserver.policy.numbering import e164
from callserver.policy.service_codes import AGENT, MCID_WINDOW, MCID_WINDOWS, SUPERVISION
from callserver.policy.services import LOCKABLE, NO_ANSWER_SECONDS, VOICEMAIL

__all__ = [
    "CentrexFile",
    "GroupSchema",
    "NumberBlock",
    "ServiceCodesSchema",
    "ServicesSchema",
    "SubscriberSchema",
    "e164",
    "parse_block",
]

_Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Language = Annotated[str, Field(pattern=r"^[a-z]{2}$")]  # a prompts/ language: bs, hr, en, de
_NO_CONTROL = r"^[^\x00-\x1f\x7f]+$"
_PASSWORD = (
    "a plain password is never stored: run `callserver passwd USERNAME REALM` and paste its "
    "ha1_md5 and ha1_sha256 lines instead"
)


class NumberBlock(BaseModel):
    """A block of consecutive E.164 numbers, ``first`` to ``last`` (same length)."""

    model_config = ConfigDict(frozen=True)
    first: str
    last: str

    def __contains__(self, number: object) -> bool:
        return (
            isinstance(number, str)
            and len(number) == len(self.first)
            and self.first <= number <= self.last
        )

    def numbers(self) -> list[str]:
        """Every number of the block, in order."""
        width = len(self.first) - 1
        return [f"+{n:0{width}d}" for n in range(int(self.first[1:]), int(self.last[1:]) + 1)]


def parse_block(text: str) -> NumberBlock:
    """Parse ``+387 33 100 200-299`` (the last digits range) or a single number.

    Raises:
        ValueError: not a number, not E.164, or a range that runs backwards.
    """
    head, dash, tail = text.partition("-")
    try:
        first = e164(head)
    except ValueError:
        message = f"{text!r}: a block holds full numbers: write it in E.164 (+387 ...)"
        raise ValueError(message) from None
    tail = tail.strip()
    if not dash:
        return NumberBlock(first=first, last=first)
    if not tail.isdigit() or len(tail) >= len(first):
        raise ValueError(f"{text!r}: write a block as its first number, '-', its last digits")
    last = first[: -len(tail)] + tail
    if last < first:
        raise ValueError(f"{text!r}: the block ends before it starts")
    return NumberBlock(first=first, last=last)


def _block(value: Any) -> Any:
    return parse_block(value) if isinstance(value, str) else value


Block = Annotated[NumberBlock, BeforeValidator(_block)]


def _hex_digest(length: int, algorithm: str) -> AfterValidator:
    def check(value: str) -> str:
        if len(value) != length or value.strip("0123456789abcdef"):
            raise ValueError(
                f"an {algorithm} HA1 is {length} lower-case hex digits, as "
                "`callserver passwd USERNAME REALM` prints it"
            )
        return value

    return AfterValidator(check)


def _target(value: str) -> str:
    """A forwarding target: ``VM``, an extension (2-6 digits) or a number (E.164 kept)."""
    text = value.strip()
    if text == VOICEMAIL or (text.isdigit() and 2 <= len(text) <= 6):
        return text
    try:
        return e164(text)
    except ValueError:
        message = f"{value!r}: a forwarding target is a number, an extension or {VOICEMAIL}"
        raise ValueError(message) from None


def _locks(value: list[str]) -> list[str]:
    unknown = sorted(set(value) - LOCKABLE)
    if unknown:
        known = ", ".join(sorted(LOCKABLE))
        raise ValueError(
            f"{', '.join(unknown)}: not a service that can be locked; these are {known}"
        )
    return value


Target = Annotated[str, AfterValidator(_target)]


class ServicesSchema(BaseModel):
    """Supplementary services (``policy.services.ServiceSettings``) as the operator sets them:
    a group's defaults, or a subscriber's on top of them (only the keys it writes), and the
    services its phones may not change (``locks``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    forward_always: Target | None = None
    forward_busy: Target | None = None
    forward_no_answer: Target | None = None
    no_answer_seconds: int = Field(20, ge=NO_ANSWER_SECONDS[0], le=NO_ANSWER_SECONDS[1])
    forward_unreachable: Target | None = None
    call_waiting: bool = True
    dnd: bool = False
    locks: Annotated[list[str], AfterValidator(_locks)] = Field(default_factory=list)


ROLES = ("supervisor",)  # a supervisor listens, whispers and barges (calls.supervision)


def _role(value: str) -> str:
    if value not in ROLES:
        raise ValueError(f"{value!r}: a subscriber's role is one of {', '.join(ROLES)} (or none)")
    return value


class SubscriberSchema(BaseModel):
    """A phone of a group: its extension, display name, digest credentials (HA1 only, RFC 7616
    §3.4.2), barring classes on top of the group's, CLIR default, maximum contacts, the
    language of its prompts, its pickup group (the group's id when unset), its role
    (``supervisor``), its services on top of the group's and the address its new voicemail
    messages are mailed to."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    extension: Annotated[str, Field(pattern=r"^[0-9]{2,6}$")] | None = None
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=_NO_CONTROL)] | None = None
    username: str = Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x20\x7f:\"]+$")
    ha1_md5: Annotated[str, _hex_digest(32, "MD5")] | None = None
    ha1_sha256: Annotated[str, _hex_digest(64, "SHA-256")] | None = None
    barring: Barring = Field(default_factory=list)
    clir: bool = False
    max_contacts: int | None = Field(None, ge=1, le=100)
    language: Language | None = None
    pickup_group: _Id | None = None
    role: Annotated[str, AfterValidator(_role)] | None = None  # supervisor: *222EXT ...
    services: ServicesSchema = Field(default_factory=ServicesSchema)
    email: Annotated[str, Field(max_length=254, pattern=r"^[^@\s<>,;]+@[^@\s<>,;]+$")] | None = None

    password: None = Field(None, exclude=True, description="refused: see _no_password")

    @field_validator("password", mode="before")
    @classmethod
    def _no_password(cls, value: object) -> None:
        raise ValueError(_PASSWORD)  # at the key's own line; never stored, never echoed

    @model_validator(mode="after")
    def _has_ha1(self) -> SubscriberSchema:
        if self.ha1_md5 is None and self.ha1_sha256 is None:
            raise ValueError(
                "a subscriber needs ha1_md5 or ha1_sha256 (or both): "
                "`callserver passwd USERNAME REALM` prints them"
            )
        return self


class ExtensionRule(BaseModel):
    """How a subscriber's extension is found when it sets none: the last ``digits`` digits of
    its number (None: every subscriber sets its own)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    digits: int | None = Field(None, ge=2, le=6)


class GroupSchema(BaseModel):
    """A Centrex group of a customer of trunks.yaml: its number blocks (the customer's numbers:
    written here, not in trunks.yaml), channel pool, barring, digest realm, the language of its
    phones' prompts, the services its subscribers start from, and its subscribers."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    customer: _Id
    numbers: Annotated[list[Block], Field(min_length=1)]
    channels: int | None = Field(None, ge=0)
    barring: Barring = Field(default_factory=list)
    realm: str = Field("callserver", min_length=1, max_length=128, pattern=_NO_CONTROL)
    extensions: ExtensionRule = Field(default_factory=ExtensionRule)
    language: Language | None = None
    services: ServicesSchema = Field(default_factory=ServicesSchema)
    subscribers: dict[str, SubscriberSchema] = Field(default_factory=dict)


def _code(value: str) -> str:
    if not (value.isdigit() and value.isascii() and 1 <= len(value) <= 4):
        raise ValueError(f'{value!r}: a service code is 1 to 4 digits (quote it: "21")')
    return value


_Code = Annotated[str, AfterValidator(_code)]


class ServiceCodesSchema(BaseModel):
    """The service codes phones dial (``policy.service_codes.ServiceCodes``): 1 to 4 digits
    each, every one different (``*21*NUMBER#`` with ``forward_always: "21"``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    forward_always: _Code = "21"
    forward_busy: _Code = "67"
    forward_no_answer: _Code = "61"
    forward_unreachable: _Code = "62"
    all_forwarding: _Code = "002"
    call_waiting: _Code = "43"
    dnd: _Code = "26"
    clir: _Code = "31"
    mcid: _Code = "39"
    pickup: _Code = "8"
    voicemail: _Code = "97"
    listen: _Code = "222"  # a supervisor's *222EXT (calls.supervision)
    whisper: _Code = "223"
    barge: _Code = "224"
    agent_login: _Code = "45"  # a call-centre agent's *45 (calls.agent_desk)
    agent_logout: _Code = "46"
    agent_pause: _Code = "47"  # *47*REASON# pauses, #47# ends the pause
    # Not a code: how long after an incoming call ends *39 still marks it (seconds).
    mcid_window_seconds: int = Field(MCID_WINDOW, ge=MCID_WINDOWS[0], le=MCID_WINDOWS[1])

    @model_validator(mode="after")
    def _distinct(self) -> ServiceCodesSchema:
        seen: dict[str, str] = {}
        for service, code in self.model_dump(exclude={"mcid_window_seconds"}).items():
            if code in seen:
                raise ValueError(f"{service} and {seen[code]} both have the code {code!r}")
            seen[code] = service
        supervision = {mode: getattr(self, mode) for mode in SUPERVISION}
        for mode, code in supervision.items():
            for other, longer in supervision.items():
                if other != mode and longer.startswith(code):
                    raise ValueError(
                        f"{mode}'s code {code!r} begins {other}'s {longer!r}: a supervisor's "
                        "codes are followed by an extension, so none may begin another"
                    )
        self._agent_codes_apart()
        return self

    def _agent_codes_apart(self) -> None:
        """An agent's code neither begins another code nor starts with one: a phone that
        dials as soon as what was keyed is a code would otherwise stop short."""
        codes = self.model_dump(exclude={"mcid_window_seconds"})
        for agent in AGENT:
            code = codes[agent]
            for other, value in codes.items():
                if other == agent:
                    continue
                if value.startswith(code) or code.startswith(value):
                    first, second = (agent, other) if value.startswith(code) else (other, agent)
                    raise ValueError(
                        f"{first}'s code {codes[first]!r} begins {second}'s "
                        f"{codes[second]!r}: an agent's code may begin no other code, and no "
                        "code may begin it"
                    )


class CentrexFile(BaseModel):
    """The schema of config/centrex.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    groups: dict[_Id, GroupSchema] = Field(default_factory=dict)
    service_codes: ServiceCodesSchema = Field(default_factory=ServiceCodesSchema)
