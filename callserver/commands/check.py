"""``callserver check``: every operator file named, known by where it sits and what it holds.

Theory of operation
-------------------
Each path an operator names is one of the operator files (docs/operations.md):

- a directory: a directory of dialplans when it is the settings' ``dialplans`` directory or is
  named ``dialplans`` (every ``*.yaml``/``*.yml`` in it is a dialplan, as the server loads
  them); any other directory is checked file by file, each file known as below;
- a file is known first by where it sits: the trunks, tariffs, centrex and blacklist files the
  settings name, a file in a dialplans directory, ``trunks.yaml``, ``tariffs.yaml``,
  ``centrex.yaml``, ``callserver.yaml``, a ``.txt`` file (a number list: the blacklist), an
  E.164 or ``default`` file name (a dialplan);
- then by what it holds: a ``steps`` key makes a dialplan; otherwise the top-level keys vote
  for settings, trunks, tariffs or centrex (``trunks:``, ``tariffs:`` and ``centrex:`` holding
  a path are settings' keys, holding a mapping the other files'). A file that cannot be read
  as a mapping is checked as settings, whose reader names the fault.

A settings file brings everything it names: trunks, tariffs, centrex, prompts, blacklist,
every dialplan and the campaigns the server runs (``<data_dir>/campaigns/``, neither stopped
nor done: their copies, checked as ``callserver campaign start`` checks a campaign file).
The trunks file's customers' recording announcements must be among the prompts (in the
default language, or one its chain falls back to). The centrex file is checked against the
trunks' customers and the numbers that have a dialplan file. A dialplan, trunks, tariffs,
centrex, blacklist or campaign file named alone is checked in the context of the settings in
force (``--config``, else config/callserver.yaml): its prompts, tariffs (caps a dialplan may
only shorten), routes, customers and dialplans. A campaign file is known by its keys
(``numbers``, ``customer``, ``plan``, ``window`` ...) and is checked with its numbers.

``check`` returns one ``Checked`` per path (in order), each with its errors and warnings, so
the command prints ``PATH: ok (kind)`` or the errors of each.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from callserver.campaigns.file import CampaignFile
from callserver.commands.campaign import check_file, check_started
from callserver.config.centrex import load_centrex, trunk_usernames
from callserver.config.centrex_file import CentrexFile
from callserver.config.centrex_groups import Centrex
from callserver.config.errors import OperatorFileError
from callserver.config.settings import DEFAULT_CONFIG, Settings, load_settings, read_yaml
from callserver.config.tariffs import TariffsFile, load_tariffs
from callserver.config.trunks import TrunksFile, load_trunks
from callserver.dialplan.compiler import PlanContext, compile_file
from callserver.dialplan.loader import load_plans
from callserver.dialplan.reload import plan_context
from callserver.dialplan.routing import load_blacklist, plan_numbers
from callserver.dialplan.verbs.queue import centrex_agents
from callserver.media.hold_music import check_music
from callserver.media.prompts import PromptStore, check_prompts
from callserver.policy.blacklist import NumberListError

__all__ = ["Checked", "Kind", "check", "kind_of"]

Kind = Literal[
    "settings", "dialplan", "dialplans", "trunks", "tariffs", "centrex", "blacklist", "campaign"
]

_DIALPLAN_NAME = re.compile(r"(?:[0-9]{3,15}|default)")
_DIALPLAN_SUFFIXES = (".yaml", ".yml")
_NAMED: dict[str, Kind] = {
    "trunks.yaml": "trunks",
    "trunks.yml": "trunks",
    "tariffs.yaml": "tariffs",
    "tariffs.yml": "tariffs",
    "centrex.yaml": "centrex",
    "centrex.yml": "centrex",
    "callserver.yaml": "settings",
    "callserver.yml": "settings",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Checked:
    """One path's outcome: what it was taken for, its errors and its warnings."""

    path: Path | None
    kind: Kind
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def check(paths: list[Path], config: Path | None = None) -> list[Checked]:
    """Check every path (the settings ``config`` alone when there are none).

    Args:
        paths: Files and directories as the operator named them.
        config: The settings in force (``--config``); None reads config/callserver.yaml.
    """
    if not paths:
        return [_check_settings(config)]
    out: list[Checked] = []
    try:
        settings = load_settings(config)
    except OperatorFileError as exc:  # the files are still checked, against the default settings
        settings = Settings.model_construct()
        if config is None:
            out.append(Checked(path=DEFAULT_CONFIG, kind="settings", errors=tuple(exc.errors)))
    if config is not None:
        out.append(_check_settings(config))
    for path in paths:
        out.extend(_check_path(path, settings))
    return out


def kind_of(path: Path, settings: Settings) -> Kind:
    """What the file or directory ``path`` is (see the module docstring)."""
    if path.is_dir() and _is_dialplan_dir(path, settings):
        return "dialplans"
    by_place = _kind_by_place(path, settings)
    if by_place is not None:
        return by_place
    return _kind_by_content(path) or "settings"


def _check_path(path: Path, settings: Settings) -> Iterator[Checked]:
    if path.is_dir() and not _is_dialplan_dir(path, settings):
        files = sorted(p for p in path.iterdir() if p.is_file() and _is_operator_file(p))
        if not files:
            yield Checked(path=path, kind="dialplans", errors=(f"{path}: no operator files",))
        for file in files:
            yield _check_file(file, kind_of(file, settings), settings)
        return
    yield _check_file(path, kind_of(path, settings), settings)


def _check_file(path: Path, kind: Kind, settings: Settings) -> Checked:
    if kind == "settings":
        return _check_settings(path)
    if kind != "dialplans" and not path.is_file():
        return Checked(path=path, kind=kind, errors=(f"{path}: cannot read: no such file",))
    checks: dict[Kind, Callable[[Path, Settings], Checked]] = {
        "dialplans": _check_dialplans,
        "dialplan": _check_dialplan,
        "trunks": _check_trunks,
        "tariffs": _check_tariffs,
        "centrex": _check_centrex,
        "blacklist": _check_blacklist,
        "campaign": _check_campaign,
    }
    return checks[kind](path, settings)


def _check_settings(path: Path | None) -> Checked:
    """A settings file and every file it names (trunks, tariffs, prompts, blacklist, plans)."""
    try:
        settings = load_settings(path)
    except OperatorFileError as exc:
        return Checked(path=path, kind="settings", errors=tuple(exc.errors))
    errors = [*_check_trunks(settings.trunks, settings).errors]
    errors += _check_tariffs(settings.tariffs, settings).errors
    errors += _check_centrex(settings.centrex, settings).errors
    errors += check_prompts(settings.media.prompts_dir)
    errors += check_music(settings.media.hold_music_dir)
    errors += _blacklist_errors(settings.blacklist)
    plans = _check_dialplans(settings.dialplans, settings)
    errors += plans.errors
    errors += check_started(settings)
    errors += _admin_customer_errors(path or DEFAULT_CONFIG, settings)
    return Checked(path=path, kind="settings", errors=tuple(errors), warnings=plans.warnings)


def _admin_customer_errors(path: Path, settings: Settings) -> list[str]:
    """The admin tokens' customers that trunks.yaml does not have (its own errors are
    reported by its check)."""
    wanted = settings.admin.customers()
    if not wanted:
        return []
    try:
        known = load_trunks(settings.trunks).customers
    except OperatorFileError:
        return []
    return [
        f"{path}: admin.tokens: customer {name!r} is not one of {settings.trunks}'s customers "
        f"({', '.join(sorted(known)) or 'none'})"
        for name in sorted(wanted - set(known))
    ]


def _check_trunks(path: Path, settings: Settings) -> Checked:
    """config/trunks.yaml, its customers' recording announcements against the prompts."""
    media = settings.media
    prompts = PromptStore(media.prompts_dir, media.language_chain)
    language = media.default_language

    def missing(name: str) -> list[str]:
        return [] if prompts.exists(name, language) else [language]

    def load(file: Path) -> object:
        return load_trunks(file, missing_prompt=missing)

    return Checked(path=path, kind="trunks", errors=_config_errors(load, path))


def _check_tariffs(path: Path, settings: Settings) -> Checked:
    return Checked(path=path, kind="tariffs", errors=_config_errors(load_tariffs, path))


def _check_centrex(path: Path, settings: Settings) -> Checked:
    """config/centrex.yaml, against the settings' trunks (when valid) and dialplan files."""
    try:
        trunks: TrunksFile | None = load_trunks(settings.trunks)
    except OperatorFileError:
        trunks = None  # reported with the trunks file
    numbers = plan_numbers(settings.dialplans)

    def load(file: Path) -> object:
        if trunks is None:
            return load_centrex(file, dialplan_numbers=numbers)
        usernames = trunk_usernames(trunks)
        customers = trunks.customers
        return load_centrex(
            file,
            customers=customers,
            dialplan_numbers=numbers,
            trunk_usernames=usernames,
            realm=trunks.digest.realm,
        )

    return Checked(path=path, kind="centrex", errors=_config_errors(load, path))


def _check_campaign(path: Path, settings: Settings) -> Checked:
    return Checked(path=path, kind="campaign", errors=check_file(settings, path))


def _check_blacklist(path: Path, settings: Settings) -> Checked:
    return Checked(path=path, kind="blacklist", errors=tuple(_blacklist_errors(path)))


def _check_dialplans(path: Path, settings: Settings) -> Checked:
    result = load_plans(path, _plan_context(settings))
    return Checked(path=path, kind="dialplans", errors=result.errors, warnings=result.warnings)


def _check_dialplan(path: Path, settings: Settings) -> Checked:
    try:
        plan = compile_file(path, _plan_context(settings))
    except OperatorFileError as exc:
        return Checked(path=path, kind="dialplan", errors=tuple(exc.errors))
    return Checked(path=path, kind="dialplan", warnings=tuple(plan.warnings))


def _config_errors(load: Callable[[Path], object], path: Path) -> tuple[str, ...]:
    try:
        load(path)
    except OperatorFileError as exc:
        return tuple(exc.errors)
    return ()


def _blacklist_errors(path: Path) -> list[str]:
    try:
        load_blacklist(path)
    except NumberListError as exc:
        return list(exc.errors)
    except (OSError, UnicodeDecodeError) as exc:
        return [f"{path}: cannot read: {exc}"]
    return []


def _plan_context(settings: Settings) -> PlanContext:
    """The compile context of the server's prompts, tariffs and routes (see ``plan_context``)."""
    try:
        tariffs = load_tariffs(settings.tariffs)
    except OperatorFileError:
        tariffs = None  # reported with the tariffs file
    try:
        routes: Collection[str] | None = load_trunks(settings.trunks).routes.keys()
    except OperatorFileError:
        routes = None  # reported with the trunks file
    try:
        centrex = load_centrex(settings.centrex)
    except OperatorFileError:
        centrex = Centrex()  # reported with the centrex file; queue steps find no agents
    media = settings.media
    prompts = PromptStore(media.prompts_dir, media.language_chain)
    agents = centrex_agents(lambda: centrex)
    return plan_context(prompts, tariffs, media.default_language, routes, agents)


def _is_dialplan_dir(path: Path, settings: Settings) -> bool:
    return path.name == "dialplans" or _same(path, settings.dialplans)


def _is_operator_file(path: Path) -> bool:
    return path.suffix in (*_DIALPLAN_SUFFIXES, ".txt")


def _kind_by_place(path: Path, settings: Settings) -> Kind | None:
    named: dict[Kind, Path] = {
        "trunks": settings.trunks,
        "tariffs": settings.tariffs,
        "centrex": settings.centrex,
        "blacklist": settings.blacklist,
    }
    for kind, where in named.items():
        if _same(path, where):
            return kind
    if path.suffix in _DIALPLAN_SUFFIXES and _is_dialplan_dir(path.parent, settings):
        return "dialplan"
    if path.name in _NAMED:
        return _NAMED[path.name]
    if path.suffix == ".txt":
        return "blacklist"
    if path.suffix in _DIALPLAN_SUFFIXES and _DIALPLAN_NAME.fullmatch(path.stem):
        return "dialplan"
    return None


def _kind_by_content(path: Path) -> Kind | None:
    """The kind the top-level keys vote for; None when the file says nothing clear."""
    try:
        data, _ = read_yaml(path)
    except (OperatorFileError, ValueError):
        return None  # checked as settings: its reader names the fault
    if "steps" in data:
        return "dialplan"
    votes = {
        kind: sum(1 for key, value in data.items() if _votes(kind, key, value)) for kind in _KEYS
    }
    best = max(votes.values(), default=0)
    winners = [kind for kind, count in votes.items() if count == best]
    return winners[0] if best and len(winners) == 1 else None


def _votes(kind: Kind, key: str, value: object) -> bool:
    if key in ("trunks", "tariffs", "centrex"):  # a path in settings, a mapping in its own file
        return kind == ("settings" if isinstance(value, str) else key)
    return key in _KEYS[kind]


_KEYS: dict[Kind, frozenset[str]] = {
    "settings": frozenset(Settings.model_fields),
    "trunks": frozenset(TrunksFile.model_fields),
    "tariffs": frozenset(TariffsFile.model_fields),
    "centrex": frozenset(CentrexFile.model_fields),
    "campaign": frozenset(CampaignFile.model_fields),
}


def _same(path: Path, other: Path) -> bool:
    try:
        return path.resolve() == other.resolve()
    except OSError:
        return False
