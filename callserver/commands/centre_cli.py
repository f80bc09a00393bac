"""The call centre's commands on the command line: ``callserver recordings``, ``stats``,
``agents`` and ``campaign`` (their parsers, and what each runs).

``add_parsers`` adds them to ``callserver``'s parser; ``RUNNERS`` maps a command to its
function. Each function imports what it works with when it runs, so ``callserver run`` and
the other commands load none of it.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from callserver.config.errors import OperatorFileError
from callserver.config.settings import Settings, load_settings

__all__ = ["RUNNERS", "add_parsers"]


Runner = Callable[[argparse.Namespace], int]


def _reported(command: str, *errors: type[Exception]) -> Callable[[Runner], Runner]:
    """A runner whose operator-file errors, and ``errors``, are printed for the operator
    (``callserver COMMAND: ...``) with exit status 1 instead of a traceback."""

    def wrap(run: Runner) -> Runner:
        def reported(args: argparse.Namespace) -> int:
            try:
                return run(args)
            except OperatorFileError as exc:
                print("\n".join(exc.errors), file=sys.stderr)
                return 1
            except errors as exc:
                print(f"callserver {command}: {exc}", file=sys.stderr)
                return 1

        return reported

    return wrap


def _settings(args: argparse.Namespace) -> Settings:
    """The settings of ``--config``, with ``--data-dir`` in force when given."""
    return load_settings(args.config, {} if args.data_dir is None else {"data_dir": args.data_dir})


def add_parsers(sub: Any) -> None:
    """Add ``recordings``, ``stats``, ``campaign`` and ``agents`` to ``sub`` (argparse's
    subparsers of ``callserver``)."""
    _add_recordings_parser(sub)
    _add_stats_parser(sub)
    _add_campaign_parser(sub)
    _add_agents_parser(sub)


def _add_recordings_parser(sub: Any) -> None:
    recordings = sub.add_parser("recordings", help="call recordings: list, export, purge")
    tools = recordings.add_subparsers(dest="recordings_command", required=True)
    listing = tools.add_parser("list", help="one line a recording: day, customer, uuid, length")
    export = tools.add_parser("export", help="copy recordings and an index.csv to DIR or FILE.tar")
    export.add_argument("to", type=Path, metavar="DIR|FILE.tar[.gz]")
    purge = tools.add_parser("purge", help="delete the recordings past retention now")
    purge.add_argument("--dry-run", action="store_true", help="only list what would go")
    for tool in (listing, export):
        tool.add_argument("--customer", metavar="NAME", help="only this customer's")
        tool.add_argument("--since", metavar="DATE", help="made on this day or later (UTC)")
        tool.add_argument("--until", metavar="DATE", help="made before this day (UTC)")
    for tool in (listing, export, purge):
        tool.add_argument("--config", type=Path, help="settings file (data dir, trunks.yaml)")
        tool.add_argument("--data-dir", type=Path, help="data directory (default: the config's)")


@_reported("recordings", ValueError, OSError, sqlite3.Error)
def _recordings(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from callserver.commands import recordings
    from callserver.config.trunks import TrunkTable, load_trunks

    settings = _settings(args)
    data_dir, command = settings.data_dir, args.recordings_command
    if command == "purge":
        table = TrunkTable(load_trunks(settings.trunks))
        now, out, dry = datetime.now(UTC), sys.stdout, args.dry_run
        recordings.purge_recordings(data_dir, table.retention_days, now, out, dry_run=dry)
        return 0
    chosen = recordings.select(data_dir, customer=args.customer, since=args.since, until=args.until)
    if command == "list":
        recordings.list_recordings(chosen, sys.stdout)
    else:
        count = recordings.export_recordings(chosen, args.to)
        print(f"exported {count} recording(s) to {args.to}")
    return 0


def _add_stats_parser(sub: Any) -> None:
    stats = sub.add_parser("stats", help="call-centre statistics")
    tools = stats.add_subparsers(dest="stats_command", required=True)
    queues = tools.add_parser(
        "queues", help="per queue and agent: offered, answered, abandoned, service level ..."
    )
    zone = "in stats.timezone unless it has an offset"
    queues.add_argument("--since", metavar="TIME", help=f"from this date or time ({zone})")
    queues.add_argument("--until", metavar="TIME", help=f"before this date or time ({zone})")
    queues.add_argument("--customer", metavar="NAME", help="only this customer's queues")
    queues.add_argument("--format", choices=("text", "csv", "json"), default="text")
    queues.add_argument(
        "--service-level",
        type=float,
        metavar="SECONDS",
        help="answered within this counts for the service level (default: stats.service_level)",
    )
    queues.add_argument("--config", type=Path, help="settings file (data dir, time zone)")
    queues.add_argument("--data-dir", type=Path, help="data directory (default: the config's)")


@_reported("stats", ValueError, OSError)
def _stats(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from callserver.commands.stats import format_report, queue_report, report_period

    settings = _settings(args)
    zone = ZoneInfo(settings.stats.timezone)
    since, until = report_period(args.since, args.until, zone, datetime.now(UTC))
    level = settings.stats.service_level if args.service_level is None else args.service_level
    stats, problems = queue_report(
        settings.data_dir, since=since, until=until, customer=args.customer, service_level=level
    )
    for problem in problems:
        print(f"{problem} (line skipped)", file=sys.stderr)
    format_report(stats, args.format, zone, sys.stdout)
    return 0


def _add_agents_parser(sub: Any) -> None:
    agents = sub.add_parser("agents", help="call-centre agents: list, log in, log out, pause")
    tools = agents.add_subparsers(dest="agents_command", required=True)
    listing = tools.add_parser("list", help="every agent's state (from agents.sqlite)")
    listing.add_argument("--customer", metavar="NAME", help="only this customer's agents")
    listing.add_argument("--format", choices=("text", "json"), default="text")
    actions = {
        "login": "log AGENT in (within its customer's licences)",
        "logout": "log AGENT out",
        "pause": "pause AGENT, with a reason code or none",
        "unpause": "make a paused AGENT available again",
    }
    for name, text in actions.items():
        tool = tools.add_parser(name, help=f"{text}: on the running server, else on the data dir")
        tool.add_argument("agent", metavar="AGENT", help="the agent's number (+387 33 100 201)")
        if name == "pause":
            tool.add_argument(
                "reason", metavar="REASON", nargs="?", help="the reason code (digits; optional)"
            )
    for tool in tools.choices.values():
        tool.add_argument("--config", type=Path, help="settings file")
        tool.add_argument("--data-dir", type=Path, help="data directory (default: the config's)")


@_reported("agents", ValueError, LookupError, OSError, sqlite3.Error)
def _agents(args: argparse.Namespace) -> int:
    from callserver.commands.agents import FAILED, agent_rows, change_agent, format_rows
    from callserver.config.centrex import load_customers
    from callserver.dialplan.routing import plan_numbers

    settings = _settings(args)
    if args.agents_command == "list":
        format_rows(agent_rows(settings.data_dir, args.customer), args.format, sys.stdout)
        return 0
    trunks, centrex = load_customers(
        settings.trunks, settings.centrex, plan_numbers(settings.dialplans)
    )
    customers = trunks.customers
    outcome, running = change_agent(
        settings.data_dir,
        args.agent,
        args.agents_command,
        getattr(args, "reason", None),
        centrex=lambda: centrex,
        licences=lambda c: customers[c].agents if c in customers else 0,
    )
    where = "" if running else " (no running server: agents.sqlite changed directly)"
    print(f"{outcome.agent}: {outcome.outcome}: {outcome.detail}{where}")
    return 1 if outcome.outcome in FAILED else 0


def _add_campaign_parser(sub: Any) -> None:
    campaign = sub.add_parser("campaign", help="outbound campaigns: start, status, stop")
    tools = campaign.add_subparsers(dest="campaign_command", required=True)
    for name, text in (
        ("start", "check the campaign file and start it on the running server"),
        ("status", "print a campaign's progress: calls placed, in progress, results"),
        ("stop", "stop a campaign: no new call is placed"),
    ):
        tool = tools.add_parser(name, help=text)
        tool.add_argument("file", type=Path, metavar="FILE", help="the campaign file (YAML)")
        tool.add_argument("--config", type=Path, help="settings file")
        tool.add_argument("--data-dir", type=Path, help="data directory (default: the config's)")


@_reported("campaign", ValueError, OSError)
def _campaign(args: argparse.Namespace) -> int:
    from callserver.commands import campaign

    command = {"start": campaign.start, "status": campaign.status, "stop": campaign.stop}
    settings = _settings(args)
    command[args.campaign_command](settings, args.file, sys.stdout)
    return 0


RUNNERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "recordings": _recordings,
    "stats": _stats,
    "campaign": _campaign,
    "agents": _agents,
}
