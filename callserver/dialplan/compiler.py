"""Load and compile one dialplan file: every error with file, line and field, all at once.

Theory of operation
-------------------
``compile_file`` reads the YAML with line numbers, validates the top level
(``schema.DialplanFile``) and then each step against its verb's model, collecting every error
instead of stopping at the first. A file without errors is then checked as a whole:

- every step reference (``next``, menu options, branches, ``start``) names a step;
- each verb's load-time preparation runs (time windows, holidays, number lists);
- every prompt exists in every language the file uses, along the fallback chain;
- no loop of steps runs without waiting for the caller (it would spin forever);
- ``max_duration`` may shorten the called number's cap, never lengthen it (``policy.caps``);
- steps that cannot be reached from the start are warnings, not errors.

The whole-file checks run over the steps that passed validation, and the steps are checked
even when a top-level key is wrong, so one run reports every mistake of a file (a step that
failed validation still counts as existing for references).

The result is an immutable ``Plan`` whose ``version`` is a hash of the file's bytes, so a CDR
can name the exact version a call ran. Nothing here is checked again during a call.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from callserver.config.errors import OperatorFileError
from callserver.config.positions import describe_errors, line_of
from callserver.config.settings import read_yaml
from callserver.dialplan.plan import DEFAULT_PLAN, Plan
from callserver.dialplan.schema import DialplanFile, StepProblem, parse_step
from callserver.dialplan.values import prompt_names
from callserver.dialplan.verbs.base import (
    AgentLookup,
    CompileContext,
    Registry,
    Step,
    StepError,
    StepParams,
)

__all__ = ["PlanContext", "compile_file", "plan_version"]

_FILE_NAME = re.compile(r"^(?:[1-9][0-9]{2,14}|default)$")  # E.164 digits: no trunk prefix 0
Lines = dict[tuple[str | int, ...], int]


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanContext:
    """What compiling consults besides the file.

    ``prompt_exists(name, language)`` answers along the fallback chain; ``cap_of(number,
    max_duration)`` raises ValueError when the dialplan's cap would lengthen the number's.
    """

    registry: Registry
    default_language: str
    prompt_exists: Callable[[str, str], bool]
    cap_of: Callable[[str, float], object] | None = None
    routes: frozenset[str] | None = None
    agents: AgentLookup | None = None


def compile_file(path: Path, context: PlanContext) -> Plan:
    """Load, validate and compile ``path``.

    Raises:
        OperatorFileError: every error found, in line order.
    """
    source = str(path)
    try:
        data, lines = read_yaml(path, holds="a dialplan (a mapping with a steps key)")
    except ValueError as exc:  # PyYAML's date constructor on an impossible date (2026-02-30)
        raise OperatorFileError([f"{source}: not valid YAML: {exc}"]) from exc
    errors = [] if _FILE_NAME.match(path.stem) else [_name_error(source, path)]
    try:
        top = DialplanFile.model_validate(data)
    except ValidationError as exc:
        errors += describe_errors(source, exc, lines)
        if any(error["loc"][:1] == ("steps",) for error in exc.errors()):
            raise OperatorFileError(errors) from exc
        # Only top-level keys are wrong: the steps are still worth checking, with defaults.
        top = DialplanFile.model_construct(steps=data["steps"])
    steps = _parse_steps(source, top, lines, context.registry, errors)
    _check_plan(source, top, steps, lines, context, errors)  # the steps that parsed
    if errors:
        raise OperatorFileError(_in_line_order(errors))
    version = plan_version(path.read_bytes())
    start = top.start or next(iter(top.steps))
    return Plan(
        number=path.stem,
        source=source,
        version=version,
        start=start,
        steps=steps,
        language=top.language,
        languages=frozenset(_languages(top, steps, context)),
        max_duration=top.max_duration,
        warnings=tuple(_unreachable(source, start, steps, lines)),
    )


def plan_version(data: bytes) -> str:
    """The version of a dialplan file's bytes: the first 12 hex digits of their SHA-256 (the
    CDR's ``dialplan_version``, the ``callserver_dialplan_info`` metric's)."""
    return hashlib.sha256(data).hexdigest()[:12]


def _name_error(source: str, path: Path) -> str:
    return (
        f"{source}:1: (file name): {path.stem!r} is not an E.164 number: name the file after "
        "the called number's international digits (38733100200.yaml, not 033100200.yaml) "
        "or default.yaml"
    )


def _parse_steps(
    source: str, top: DialplanFile, lines: Lines, registry: Registry, errors: list[str]
) -> dict[str, Step]:
    steps: dict[str, Step] = {}
    names = list(top.steps)
    for index, (name, raw) in enumerate(top.steps.items()):
        where: tuple[str | int, ...] = ("steps", name)
        try:
            verb, params = parse_step(raw, registry)
        except StepProblem as exc:
            errors.append(_error(source, lines, where, str(exc)))
            continue
        except ValidationError as exc:
            errors.extend(describe_errors(source, exc, lines, prefix=where))
            continue
        following = names[index + 1] if index + 1 < len(names) else None
        steps[name] = Step(
            name=name,
            verb=verb.name,
            params=params,
            next=params.next if "next" in params.model_fields_set else following,
            line=line_of(lines, where),
        )
    return steps


def _check_plan(
    source: str,
    top: DialplanFile,
    steps: dict[str, Step],
    lines: Lines,
    context: PlanContext,
    errors: list[str],
) -> None:
    for name, step in steps.items():
        unused = type(step.params).next_unused
        if unused and "next" in step.params.model_fields_set:
            message = f"next is not used here: {unused}"
            errors.append(_error(source, lines, ("steps", name, "next"), message))
    for path, target in _references(top, steps):
        if target not in top.steps:
            errors.append(_error(source, lines, path, f"unknown step {target!r}"))
    compile_context = CompileContext(
        timezone=top.timezone,
        source=source,
        routes=context.routes,
        number=Path(source).stem,
        agents=context.agents,
    )
    for name, step in list(steps.items()):
        prepare = context.registry[step.verb].prepare
        if prepare is None:
            continue
        try:
            steps[name] = _with(step, prepare(step.params, compile_context))
        except StepError as exc:
            for path, message in exc.problems:
                errors.append(_error(source, lines, ("steps", name, *path), message))
    languages = _languages(top, steps, context)
    errors.extend(_missing_prompts(source, steps, lines, languages, context))
    errors.extend(_loops(source, steps, lines))
    errors.extend(_cap_error(source, top, lines, context))


def _with(step: Step, prepared: object) -> Step:
    return Step(
        name=step.name,
        verb=step.verb,
        params=step.params,
        next=step.next,
        prepared=prepared,
        line=step.line,
    )


def _references(
    top: DialplanFile, steps: Mapping[str, Step]
) -> list[tuple[tuple[str | int, ...], str]]:
    out: list[tuple[tuple[str | int, ...], str]] = []
    if top.start is not None:
        out.append((("start",), top.start))
    for name, step in steps.items():
        if step.params.next is not None:
            out.append((("steps", name, "next"), step.params.next))
        out.extend(
            (("steps", name, *path), target) for path, target in step.params.targets().items()
        )
    return out


def _edges(step: Step) -> set[str]:
    found = set(step.params.targets().values())
    if step.next is not None and _continues(step.params):
        found.add(step.next)
    return found


def _continues(params: StepParams) -> bool:
    # As the verbs' run() do: some never continue with ``next`` (``next_unused``); voicemail
    # only with one it names; every other verb may.
    if type(params).next_unused:
        return False
    return "voicemail" not in type(params).model_fields or "next" in params.model_fields_set


def _languages(top: DialplanFile, steps: Mapping[str, Step], context: PlanContext) -> set[str]:
    if top.languages is not None:
        return set(top.languages)
    found = {top.language or context.default_language}
    for step in steps.values():
        chooses = getattr(step.params, "languages", None)
        if callable(chooses):
            found |= chooses()
    return found


def _missing_prompts(
    source: str,
    steps: Mapping[str, Step],
    lines: Lines,
    languages: set[str],
    context: PlanContext,
) -> list[str]:
    errors = []
    for name, step in steps.items():
        for path, items in step.params.prompts().items():
            for prompt in prompt_names(items):
                missing = [
                    lang for lang in sorted(languages) if not context.prompt_exists(prompt, lang)
                ]
                if missing:
                    message = f"prompt {prompt!r} is missing for language {', '.join(missing)}"
                    errors.append(_error(source, lines, ("steps", name, *path), message))
    return errors


def _loops(source: str, steps: Mapping[str, Step], lines: Lines) -> list[str]:
    """Cycles among steps that never wait for the caller (Tarjan's strongly connected sets)."""
    idle = {name for name, step in steps.items() if not step.params.waits_for_caller()}
    graph = {name: sorted(_edges(steps[name]) & idle) for name in idle}
    errors = []
    for group in _cycles(graph):
        first = min(group, key=lambda name: steps[name].line)
        route = " → ".join([*sorted(group, key=lambda name: steps[name].line), first])
        message = f"the steps {route} loop without waiting for the caller"
        errors.append(_error(source, lines, ("steps", first), message))
    return errors


def _cycles(graph: Mapping[str, list[str]]) -> list[set[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph[node]:
                out.append(group)

    for node in graph:
        if node not in index:
            visit(node)
    return out


def _cap_error(source: str, top: DialplanFile, lines: Lines, context: PlanContext) -> list[str]:
    if top.max_duration is None or context.cap_of is None:
        return []
    number = DEFAULT_PLAN if not source else Path(source).stem
    try:
        context.cap_of(number, top.max_duration)
    except ValueError as exc:
        return [_error(source, lines, ("max_duration",), str(exc))]
    return []


def _unreachable(source: str, start: str, steps: Mapping[str, Step], lines: Lines) -> list[str]:
    seen, todo = {start}, [start]
    while todo:
        for other in _edges(steps[todo.pop()]):
            if other not in seen and other in steps:
                seen.add(other)
                todo.append(other)
    return [
        _error(source, lines, ("steps", name), f"never reached from the start step {start!r}")
        for name in steps
        if name not in seen
    ]


def _error(source: str, lines: Lines, path: tuple[str | int, ...], message: str) -> str:
    field = ".".join(str(part) for part in path)
    return f"{source}:{line_of(lines, path)}: {field}: {message}"


def _in_line_order(errors: list[str]) -> list[str]:
    def line(text: str) -> int:
        parts = text.split(":")
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0

    return sorted(dict.fromkeys(errors), key=line)
