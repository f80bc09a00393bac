"""``queue``: the caller waits for an agent of a call centre queue, hearing music and its place.

    support:
      queue: support                   # the queue's name (letters, digits, _ . -)
      agents:                          # extensions or subscriber numbers of the group
        "201": {skills: {en: 80, bs: 100}}
        "202": {skills: {bs: 50}, ring_timeout: 20s}
        "+38733100203": {}
      strategy: skills                 # ring_all, longest_idle (default), round_robin,
                                       # fewest_calls, skills
      skills: ["${language}"]          # what the caller needs (literal or ${variable})
      vip: ["+38761111111", "+387 62*"]  # key customers wait ahead of the others ...
      vip_priority: 10                 # ... with this priority (default shown; others: 0)
      ring_timeout: 15s                # an agent's phone rings this long (defaults shown)
      wrap_up: 10s                     # after each call, before the agent's next one
      max_waiting: 20                  # optional: callers beyond it get the full branch
      max_wait: 10m                    # optional: then the timeout branch
      greeting: queue_welcome          # played once as the caller joins (default shown)
      announce_every: 30s              # the position and estimated wait (0s: never)
      announce: [position, wait]       # which of the two (default shown)
      music: true                      # music on hold between announcements (default shown)
      leave_key: "9"                   # optional: the caller leaves to the left branch
      callback_key: "1"                # optional: the caller leaves a callback request
      callback_confirm: queue_callback # what it hears then (default shown), then the
                                       # callback branch (default: hang up)
      callback_refused: queue_callback_anonymous   # a withheld number hears this, waits on
      callback_display: "Callback: "   # before the number on the agent's phone
      callback_attempts: 3             # calls to the number before the request is dropped
      callback_retry: 5m               # between them
      display: "Support: "             # before the caller's name on the agent's phone
      alert_info: "<urn:alert:service:call-waiting>"   # optional, as the phone knows it
      call_info: "<https://crm.example/c?n=${caller}>;purpose=info"   # optional
      answered: survey                 # after the agent's call ends (default: hang up)
      timeout: voicemail               # the branches (default: hang up)
      full: voicemail
      no_agents: closed
      left: voicemail
      callback: goodbye
      record: {mode: stereo, announcement: recording_notice}   # optional, see below

Agents are checked at load time against config/centrex.yaml: each must be a subscriber of the
customer the plan's number belongs to. A VIP list is written like a blacklist step's (numbers,
prefixes ending in ``*``, ``anonymous``). A skill is a word (``en``, ``billing``) or a
``${variable}`` set earlier (``language``, a menu's choice); an empty one is left out. The
caller's CDR names the queue (``queue``), its wait in milliseconds (``queue_wait``) and the
agent who answered (``answered_by``).

``record`` records the caller's conversation with the agent who answers, from that answer on,
as ``record_call`` does (``mode`` mixed or stereo, caller left; ``record: stereo`` is short
for ``{mode: stereo}``); its ``announcement`` is played to the caller before it joins the
queue. A call already recorded (a ``record_call`` step, the customer's ``recording``) keeps its
one recording and skips the announcement.

A callback request (``callback_key``, which must differ from ``leave_key``) keeps the caller's
place in the queue with no live call (``calls.queue_callbacks``): an agent it is offered to is
rung showing ``callback_display`` and the number, and once the agent answers the number is
called as the customer's call (its CDR names the queue and the agent); busy or not answered,
the request waits again ``callback_retry`` later, ``callback_attempts`` calls in all. A caller
whose number is withheld or unknown cannot leave one: it hears ``callback_refused`` and waits
on.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from callserver.calls.session_host import AgentDisplay
from callserver.config.centrex_groups import Centrex
from callserver.dialplan.playlist import expand, substitute
from callserver.dialplan.values import VARIABLE, Duration, PromptItem, PromptList, StepName
from callserver.dialplan.verbs.base import (
    AgentLookup,
    CallControl,
    CompileContext,
    Precondition,
    QueueRequest,
    Step,
    StepError,
    StepParams,
    Verb,
    present,
)
from callserver.media.prompts import PlaylistItem, SayNumber
from callserver.media.recording_writer import RecordingMode
from callserver.policy.blacklist import NumberList, NumberListError
from callserver.queues.queue import QueueAgent, QueueConfig, Strategy

__all__ = ["VERB", "AgentParams", "Params", "Prepared", "QueueRecording", "centrex_agents"]

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
_SKILL = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}")
Announced = Literal["position", "wait"]
_ANNOUNCED: tuple[Announced, ...] = ("position", "wait")
_BRANCHES = ("answered", "timeout", "full", "no_agents", "left", "callback")


class AgentParams(BaseModel):
    """One agent's skills (name: level 1-100) and its own ring timeout."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    skills: dict[str, int] = Field(default_factory=dict)
    ring_timeout: Duration | None = Field(None, gt=0, le=600)

    @field_validator("skills")
    @classmethod
    def _levels(cls, value: dict[str, int]) -> dict[str, int]:
        for name, level in value.items():
            if not _SKILL.fullmatch(name):
                raise ValueError(f"skill {name!r}: letters, digits, _ . and - only")
            if not 1 <= level <= 100:
                raise ValueError(f"skill {name}: level {level} is not from 1 to 100")
        return value


class QueueRecording(BaseModel):
    """A queue's recording of the caller and its agent: one channel or two, and what the
    caller hears first."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    mode: RecordingMode = "mixed"
    announcement: PromptList | None = None

    @model_validator(mode="before")
    @classmethod
    def _short(cls, value: object) -> object:
        return {"mode": value} if isinstance(value, str) else value


class Params(StepParams):
    """The queue, its agents and limits, what the caller hears, the agent's display, the
    branches."""

    next_unused = "a queue continues with answered, timeout, full, no_agents, left or callback"

    queue: str
    agents: dict[str, AgentParams]
    strategy: Strategy = Strategy.LONGEST_IDLE
    skills: list[str] = Field(default_factory=list)
    vip: list[Any] = Field(default_factory=list)
    vip_priority: int = Field(10, ge=1, le=100)
    ring_timeout: Duration = Field(15.0, gt=0, le=600)
    wrap_up: Duration = Field(10.0, ge=0, le=3600)
    max_waiting: int | None = Field(None, ge=1, le=10000)
    max_wait: Duration | None = Field(None, gt=0, le=86400)
    greeting: PromptList | None = ["queue_welcome"]
    announce_every: Duration = Field(30.0, ge=0, le=3600)
    announce: list[Announced] = Field(default_factory=lambda: [*_ANNOUNCED], min_length=1)
    music: bool = True
    leave_key: str | None = Field(None, pattern=r"^[0-9*#]$")
    callback_key: str | None = Field(None, pattern=r"^[0-9*#]$")
    callback_confirm: PromptList | None = ["queue_callback"]
    callback_refused: PromptList | None = ["queue_callback_anonymous"]
    callback_display: str = Field("Callback: ", max_length=64)
    callback_attempts: int = Field(3, ge=1, le=20)
    callback_retry: Duration = Field(300.0, ge=10, le=86400)
    display: str | None = Field(None, max_length=64)
    alert_info: str | None = Field(None, max_length=512)
    call_info: str | None = Field(None, max_length=512)
    answered: StepName | None = None
    timeout: StepName | None = None
    full: StepName | None = None
    no_agents: StepName | None = None
    left: StepName | None = None
    record: QueueRecording | None = None
    callback: StepName | None = None

    @field_validator("queue", mode="before")
    @classmethod
    def _name(cls, value: object) -> object:
        if isinstance(value, str) and not _NAME.fullmatch(value):
            raise ValueError(f"queue {value!r}: letters, digits, _ . and - only (64 at most)")
        return value

    @field_validator("agents", mode="before")
    @classmethod
    def _agents(cls, value: object) -> object:
        if isinstance(value, list):  # a plain list: agents without skills
            value = {entry: {} for entry in value}
        if isinstance(value, dict):
            unquoted = [key for key in value if not isinstance(key, str)]
            if unquoted:
                raise ValueError(f'quote {unquoted[0]} ("{unquoted[0]}"): an agent is text')
            return {key: {} if entry is None else entry for key, entry in value.items()}
        return value

    @field_validator("skills")
    @classmethod
    def _skills(cls, value: list[str]) -> list[str]:
        for skill in value:
            if not (_SKILL.fullmatch(skill) or VARIABLE.fullmatch(skill)):
                raise ValueError(f"skill {skill!r}: a word (en, billing) or one ${{variable}}")
        return value

    @field_validator("vip", mode="before")
    @classmethod
    def _entries(cls, value: object) -> object:
        return [] if value is None else value

    @model_validator(mode="after")
    def _consistent(self) -> Params:
        if not self.agents:
            raise ValueError("agents: a queue needs at least one agent")
        if self.leave_key is not None and self.left is None:
            raise ValueError("leave_key needs left: the step a caller who leaves goes to")
        if self.callback_key is not None and self.callback_key == self.leave_key:
            raise ValueError(f"callback_key and leave_key are both {self.callback_key!r}")
        return self

    def targets(self) -> dict[tuple[str | int, ...], str]:
        """The answered, timeout, full, no_agents, left and callback steps."""
        named = {name: getattr(self, name) for name in _BRANCHES}
        return {(name,): step for name, step in named.items() if step is not None}

    def waits_for_caller(self) -> bool:
        """A queue waits for the caller (an agent, the leave or callback key, its hang-up)."""
        return True

    def prompts(self) -> dict[tuple[str | int, ...], list[PromptItem]]:
        """The greeting, the announcement's words and, with a callback key, its prompts."""
        words: list[PromptItem] = []
        if self.announce_every and "position" in self.announce:
            words += _POSITION_WORDS
        if self.announce_every and "wait" in self.announce:
            words += _WAIT_WORDS
        announced: dict[tuple[str | int, ...], list[PromptItem]] = {}
        if words:
            announced[("announce",)] = words
        if self.record is not None and self.record.announcement:
            announced[("record", "announcement")] = self.record.announcement
        if self.callback_key is not None:
            announced |= present(
                callback_confirm=self.callback_confirm, callback_refused=self.callback_refused
            )
        return {**present(greeting=self.greeting), **announced}


_POSITION_WORDS = ("queue_position",)  # "you are number" N
_WAIT_WORDS = ("queue_wait", "queue_minutes")  # "your wait is about" N "minutes"


@dataclass(frozen=True, slots=True, kw_only=True)
class Prepared:
    """What load time makes of a queue step: the queue's settings and the VIP list."""

    config: QueueConfig
    vip: NumberList


def prepare(params: Params, context: CompileContext) -> Prepared:
    """Resolve the agents to the subscribers of the plan's customer and compile the VIP
    list; every problem is reported."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    try:
        vip = NumberList.from_entries(params.vip, context.source, path=("vip",))
    except NumberListError as exc:
        problems.extend((problem.path, problem.message) for problem in exc.problems)
        vip = NumberList()
    customer, members = _members(params, context, problems)
    if problems:
        raise StepError.many(problems)
    config = QueueConfig(
        customer=customer,
        name=params.queue,
        agents=tuple(members),
        strategy=params.strategy,
        ring_timeout=params.ring_timeout,
        wrap_up=params.wrap_up,
        max_waiting=params.max_waiting,
        max_wait=params.max_wait,
        callback_attempts=params.callback_attempts,
        callback_retry=params.callback_retry,
    )
    return Prepared(config=config, vip=vip)


def _members(
    params: Params, context: CompileContext, problems: list[tuple[tuple[str | int, ...], str]]
) -> tuple[str, list[QueueAgent]]:
    if context.agents is None:
        problems.append((("agents",), "a queue step needs config/centrex.yaml: its agents"))
        return "", []
    customers: set[str] = set()
    members: dict[str, QueueAgent] = {}
    for written, agent in params.agents.items():
        try:
            customer, number = context.agents(context.number, written)
        except ValueError as exc:
            problems.append((("agents", written), str(exc)))
            continue
        if number in members:
            problems.append((("agents", written), f"{number} is listed twice"))
            continue
        customers.add(customer)
        members[number] = QueueAgent(
            number=number, skills=dict(agent.skills), ring_timeout=agent.ring_timeout
        )
    return (customers.pop() if len(customers) == 1 else ""), list(members.values())


def centrex_agents(centrex: Callable[[], Centrex]) -> AgentLookup:
    """The agent lookup of the Centrex in force: an extension of the group of the plan's
    number, or the number of a subscriber of that group's customer."""

    def lookup(plan: str, written: str) -> tuple[str, str]:
        groups = centrex()
        group = groups.group_of(plan) if plan.isdigit() else None
        if group is None:
            raise ValueError(
                f"the plan's number {plan} is in no Centrex group: agents are subscribers"
            )
        digits = written.replace(" ", "")
        if digits.startswith("+") or len(digits) > 6:
            found = groups.subscriber(digits)
        else:
            found = groups.extension(group.id, digits)
        if found is None:
            raise ValueError(f"{written!r} is no subscriber of group {group.id}")
        if groups.groups[found.group].customer != group.customer:
            raise ValueError(f"{written!r} is a subscriber of another customer")
        return group.customer, found.number

    return lookup


def _announcement(params: Params, variables: dict[str, str]) -> Callable[..., list[PlaylistItem]]:
    """The playlist of a position and an estimated wait (rounded up to whole minutes)."""

    def say(position: int, wait: float | None) -> list[PlaylistItem]:
        items: list[PlaylistItem] = []
        if "position" in params.announce:
            items += [*expand(list(_POSITION_WORDS), variables), SayNumber(position)]
        if "wait" in params.announce and wait is not None:
            minutes = max(1, math.ceil(wait / 60))
            words = expand(list(_WAIT_WORDS), variables)
            items += [words[0], SayNumber(minutes), words[1]]
        return items

    return say


def request_of(call: CallControl, params: Params, prepared: Prepared) -> QueueRequest:
    """The wait the step asks for, with the call's variables filled in."""
    variables = call.variables
    skills = frozenset(filter(None, (substitute(s, variables) for s in params.skills)))
    vip = prepared.vip.match(call.caller) is not None
    display = AgentDisplay(
        prefix=params.display,
        alert_info=_filled(params.alert_info, variables),
        call_info=_filled(params.call_info, variables),
    )
    greeting: Sequence[PlaylistItem] = ()
    if params.greeting:
        greeting = expand(params.greeting, variables)
    record = params.record
    notice = expand(record.announcement, variables) if record and record.announcement else []
    confirm = expand(params.callback_confirm, variables) if params.callback_confirm else ()
    refused = expand(params.callback_refused, variables) if params.callback_refused else ()
    return QueueRequest(
        config=prepared.config,
        priority=params.vip_priority if vip else 0,
        skills=skills,
        announce_every=params.announce_every or None,
        announcement=_announcement(params, variables),
        greeting=greeting,
        music=params.music,
        leave_key=params.leave_key,
        display=display,
        record=None if record is None else record.mode,
        record_announcement=notice,
        callback_key=params.callback_key,
        callback_confirm=confirm,
        callback_refused=refused,
        callback_display=params.callback_display,
    )


def _filled(text: str | None, variables: dict[str, str]) -> str | None:
    return None if text is None else substitute(text, variables)


async def run(call: CallControl, step: Step) -> str | None:
    """Wait for an agent; then the branch of how the wait ended (abandoned: the call is
    over)."""
    params = step.params
    assert isinstance(params, Params) and isinstance(step.prepared, Prepared)
    request = request_of(call, params, step.prepared)
    if request.priority:
        call.note("vip", True)
    outcome = await call.queue(request)
    if outcome.result == "abandoned":
        return None
    if outcome.result != "answered":
        call.note("end_detail", f"queue {params.queue}: {outcome.result}")
    branch: str | None = getattr(params, outcome.result)
    return branch


VERB = Verb(name="queue", params=Params, requires=Precondition.ANSWERED, run=run, prepare=prepare)
