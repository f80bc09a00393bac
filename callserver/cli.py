"""The ``callserver`` command: run, check, reload, rate, passwd, subscribers, agents, cdr,
stats, campaign, version, prompts synth."""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from callserver import __version__
from callserver.config.errors import OperatorFileError
from callserver.config.settings import Settings, load_settings, parse_listen

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="callserver", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the server in the foreground")
    run.add_argument("--config", type=Path, help="settings file (default config/callserver.yaml)")
    run.add_argument(
        "--sip-listen",
        action="append",
        metavar="[udp:|tcp:]HOST:PORT",
        help="listen here instead of the configured addresses (repeatable)",
    )
    run.add_argument("--dialplans", type=Path, help="dialplan directory")
    run.add_argument("--data-dir", type=Path, help="data directory (CDRs, voicemail, recordings)")
    run.add_argument("--no-uvloop", action="store_true", help="use the plain asyncio loop")
    check = sub.add_parser("check", help="validate operator files and prompts; exit 1 on errors")
    check.add_argument(
        "paths",
        nargs="*",
        type=Path,
        help="settings, dialplan, trunks, tariffs or blacklist files, or dialplan directories "
        "(default: the config and every file it names)",
    )
    check.add_argument("--config", type=Path, help="settings file")
    reload = sub.add_parser("reload", help="tell the running server to reload (SIGHUP)")
    reload.add_argument("--config", type=Path, help="settings file (for the data dir)")
    reload.add_argument("--data-dir", type=Path, help="data directory of the running server")
    sub.add_parser("version", help="print the version")
    _add_prompts_parser(sub)
    _add_cdr_parser(sub)
    _add_recordings_parser(sub)
    _add_rate_parser(sub)
    _add_stats_parser(sub)
    _add_campaign_parser(sub)
    _add_agents_parser(sub)
    subscribers = sub.add_parser("subscribers", help="Centrex subscribers")
    tools = subscribers.add_subparsers(dest="subscribers_command", required=True)
    show = tools.add_parser("show", help="what is in force for NUMBER: services, registrations")
    show.add_argument("number", nargs="+", metavar="NUMBER", help="its number (+387..., 033...)")
    show.add_argument("--config", type=Path, help="settings file")
    show.add_argument("--data-dir", type=Path, help="data directory (default: the settings')")
    passwd = sub.add_parser(
        "passwd", help="print the HA1 lines of a subscriber's password for centrex.yaml"
    )
    passwd.add_argument("username", help="the subscriber's digest username")
    passwd.add_argument("realm", help="its group's realm (default in centrex.yaml: callserver)")
    return parser


def _add_prompts_parser(sub: Any) -> None:
    prompts = sub.add_parser("prompts", help="prompt tools")
    tools = prompts.add_subparsers(dest="prompts_command", required=True)
    synth = tools.add_parser(
        "synth",
        help="speak prompts/<lang>.txt into prompts/<lang>/*.wav with espeak-ng; write the"
        " music on hold into prompts/moh/",
    )
    synth.add_argument("--prompts-dir", type=Path, default=Path("prompts"), metavar="DIR")
    synth.add_argument("--lang", action="extend", nargs="+", metavar="LANG", dest="languages")
    synth.add_argument("--only", action="extend", nargs="+", metavar="NAME", default=[])


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if args.sip_listen:
        listen = [str(a) for text in args.sip_listen for a in parse_listen(text)]
        out["sip"] = {"listen": listen}
    if args.dialplans is not None:
        out["dialplans"] = args.dialplans
    if args.data_dir is not None:
        out["data_dir"] = args.data_dir
    return out


def _run(args: argparse.Namespace) -> int:
    from callserver.process.logs import configure_logging

    try:
        settings = load_settings(args.config, _overrides(args))
    except (OperatorFileError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 1
    configure_logging(settings.log_level, settings.log_format)
    runner = _event_loop_runner(use_uvloop=not args.no_uvloop)
    try:
        return int(runner(_serve(settings, args.config, _overrides(args))))
    except OperatorFileError as exc:  # another operator file (trunks) is invalid
        print(exc, file=sys.stderr)
        return 1
    except OSError as exc:  # a listen address that cannot be bound
        print(f"callserver: {exc.strerror or exc}", file=sys.stderr)
        return 1


def _event_loop_runner(*, use_uvloop: bool) -> Any:
    if use_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.run
    return asyncio.run


async def _serve(settings: Settings, config_path: Path | None, overrides: dict[str, Any]) -> int:
    from callserver.app import Server

    # The flags keep their precedence over the file when SIGHUP reloads it.
    from callserver.process.pidfile import remove_pid, write_pid

    server = Server(settings, config_path, overrides)
    server.install_signal_handlers()
    pid_file: list[Path] = []
    try:
        await server.serve_forever(on_ready=lambda: pid_file.append(write_pid(settings.data_dir)))
    finally:
        for path in pid_file:
            remove_pid(path)
    return 0


def _reload(args: argparse.Namespace) -> int:
    from callserver.process.pidfile import signal_reload

    overrides = {} if args.data_dir is None else {"data_dir": args.data_dir}
    try:
        data_dir = load_settings(args.config, overrides).data_dir
        pid = signal_reload(data_dir)
    except OperatorFileError as exc:
        print("\n".join(exc.errors), file=sys.stderr)
        return 1
    except (LookupError, PermissionError) as exc:
        print(f"callserver reload: {exc}", file=sys.stderr)
        return 1
    print(f"reload sent to process {pid}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from callserver.commands.check import check

    results = check(list(args.paths), args.config)
    errors = 0
    for result in results:
        for warning in result.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        for line in result.errors:
            print(line, file=sys.stderr)
        errors += len(result.errors)
        if not result.errors and result.path is not None:
            print(f"{result.path}: ok ({result.kind})")
    if errors:
        print(f"{errors} error(s)", file=sys.stderr)
        return 1
    print("ok")
    return 0


def _prompts_synth(args: argparse.Namespace) -> int:
    from callserver.media.synth import (
        MUSIC,
        SynthError,
        synth_language,
        synth_music,
        text_languages,
    )

    only = [name for name in args.only if name not in MUSIC]
    music = not args.only or len(only) < len(args.only)  # the music on hold: prompts/moh/
    speech = not args.only or bool(only)
    languages = (args.languages or text_languages(args.prompts_dir)) if speech else []
    if speech and not languages:
        print(f"{args.prompts_dir}: no <lang>.txt prompt texts", file=sys.stderr)
        return 1
    try:
        for language in languages:
            for path, seconds in synth_language(args.prompts_dir, language, only):
                print(f"{path} {seconds:.2f} s")
        if music:
            path, seconds = synth_music(args.prompts_dir)
            print(f"{path} {seconds:.2f} s")
    except SynthError as exc:
        print(f"callserver: {exc}", file=sys.stderr)
        return 1
    return 0


def _add_cdr_parser(sub: Any) -> None:
    cdr = sub.add_parser("cdr", help="call detail records: export and statistics")
    tools = cdr.add_subparsers(dest="cdr_command", required=True)
    export = tools.add_parser("export", help="write CDRs to stdout (Asterisk Master.csv order)")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    stats = tools.add_parser("stats", help="calls, answered, ASR and ACD per trunk and number")
    stats.add_argument("--top", type=int, default=20, metavar="N", help="rows per table (20)")
    for tool in (export, stats):
        tool.add_argument("--config", type=Path, help="settings file (for the data dir)")
        tool.add_argument("--data-dir", type=Path, help="data directory (default: the config's)")
        tool.add_argument("--since", metavar="TIME", help="from this start time (ISO 8601, UTC)")
        tool.add_argument("--until", metavar="TIME", help="before this start time (ISO 8601, UTC)")


def _cdr(args: argparse.Namespace) -> int:
    import sqlite3

    import structlog

    from callserver.cdr.export import cdr_export_command, cdr_stats_command

    # stdout carries the CDRs: log lines (cdr.ingested, warnings) go to stderr.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))
    overrides = {} if args.data_dir is None else {"data_dir": args.data_dir}
    try:
        data_dir = load_settings(args.config, overrides).data_dir
        if args.cdr_command == "export":
            cdr_export_command(
                data_dir, since=args.since, until=args.until, fmt=args.format, out=sys.stdout
            )
        else:
            cdr_stats_command(
                data_dir, since=args.since, until=args.until, out=sys.stdout, top=args.top
            )
    except OperatorFileError as exc:
        print("\n".join(exc.errors), file=sys.stderr)
        return 1
    except (ValueError, OSError, sqlite3.Error) as exc:
        print(f"callserver cdr: {exc}", file=sys.stderr)
        return 1
    return 0


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


def _recordings(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from callserver.commands import recordings
    from callserver.config.trunks import TrunkTable, load_trunks

    overrides = {} if args.data_dir is None else {"data_dir": args.data_dir}
    try:
        settings = load_settings(args.config, overrides)
        data_dir, command = settings.data_dir, args.recordings_command
        if command == "purge":
            table = TrunkTable(load_trunks(settings.trunks))
            now, out, dry = datetime.now(UTC), sys.stdout, args.dry_run
            recordings.purge_recordings(data_dir, table.retention_days, now, out, dry_run=dry)
            return 0
        chosen = recordings.select(
            data_dir, customer=args.customer, since=args.since, until=args.until
        )
        if command == "list":
            recordings.list_recordings(chosen, sys.stdout)
        else:
            count = recordings.export_recordings(chosen, args.to)
            print(f"exported {count} recording(s) to {args.to}")
    except OperatorFileError as exc:
        print("\n".join(exc.errors), file=sys.stderr)
        return 1
    except (ValueError, OSError, sqlite3.Error) as exc:
        print(f"callserver recordings: {exc}", file=sys.stderr)
        return 1
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


def _stats(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from callserver.commands.stats import format_report, queue_report, report_period

    overrides = {} if args.data_dir is None else {"data_dir": args.data_dir}
    try:
        settings = load_settings(args.config, overrides)
        zone = ZoneInfo(settings.stats.timezone)
        since, until = report_period(args.since, args.until, zone, datetime.now(UTC))
        level = settings.stats.service_level if args.service_level is None else args.service_level
        stats, problems = queue_report(
            settings.data_dir, since=since, until=until, customer=args.customer, service_level=level
        )
    except OperatorFileError as exc:
        print("\n".join(exc.errors), file=sys.stderr)
        return 1
    except (ValueError, OSError) as exc:
        print(f"callserver stats: {exc}", file=sys.stderr)
        return 1
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
        "pause": "pause AGENT with a reason code",
        "unpause": "make a paused AGENT available again",
    }
    for name, text in actions.items():
        tool = tools.add_parser(name, help=f"{text}: on the running server, else on the data dir")
        tool.add_argument("agent", metavar="AGENT", help="the agent's number (+387 33 100 201)")
        if name == "pause":
            tool.add_argument("reason", metavar="REASON", help="the reason code (digits)")
    for tool in tools.choices.values():
        tool.add_argument("--config", type=Path, help="settings file")
        tool.add_argument("--data-dir", type=Path, help="data directory (default: the config's)")


def _agents(args: argparse.Namespace) -> int:
    from callserver.commands.agents import FAILED, agent_rows, change_agent, format_rows
    from callserver.config.centrex import load_customers
    from callserver.dialplan.routing import plan_numbers

    overrides = {} if args.data_dir is None else {"data_dir": args.data_dir}
    try:
        settings = load_settings(args.config, overrides)
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
    except OperatorFileError as exc:
        print("\n".join(exc.errors), file=sys.stderr)
        return 1
    except (ValueError, LookupError, OSError, sqlite3.Error) as exc:
        print(f"callserver agents: {exc}", file=sys.stderr)
        return 1
    where = "" if running else " (no running server: agents.sqlite changed directly)"
    print(f"{outcome.agent}: {outcome.outcome}: {outcome.detail}{where}")
    return 1 if outcome.outcome in FAILED else 0


def _add_rate_parser(sub: Any) -> None:
    rate = sub.add_parser(
        "rate", help="what a call to NUMBER is: class, cap, warning, who pays what"
    )
    rate.add_argument(
        "number", nargs="+", metavar="NUMBER", help="the called number (092 292 123, +387..., 112)"
    )
    rate.add_argument("--seconds", type=int, default=60, metavar="N", help="call length (60)")
    rate.add_argument(
        "--caller", metavar="NUMBER", help="the calling number (default: a BiH fixed number)"
    )
    rate.add_argument("--format", choices=("text", "json"), default="text")
    rate.add_argument("--config", type=Path, help="settings file (for its tariffs file)")


def _rate(args: argparse.Namespace) -> int:
    from callserver.commands.rate import DEFAULT_CALLER, format_quote, quote
    from callserver.config.tariffs import load_tariffs

    try:
        tariffs = load_tariffs(load_settings(args.config).tariffs)
        number = " ".join(args.number)  # written with spaces, unquoted: 092 292 123
        data = quote(tariffs, number, seconds=args.seconds, caller=args.caller or DEFAULT_CALLER)
    except OperatorFileError as exc:
        print("\n".join(exc.errors), file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"callserver rate: {exc}", file=sys.stderr)
        return 1
    format_quote(data, args.format, sys.stdout)
    return 0


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


def _campaign(args: argparse.Namespace) -> int:
    from callserver.commands import campaign

    overrides = {} if args.data_dir is None else {"data_dir": args.data_dir}
    command = {"start": campaign.start, "status": campaign.status, "stop": campaign.stop}
    try:
        settings = load_settings(args.config, overrides)
        command[args.campaign_command](settings, args.file, sys.stdout)
    except OperatorFileError as exc:
        print("\n".join(exc.errors), file=sys.stderr)
        return 1
    except (ValueError, OSError) as exc:
        print(f"callserver campaign: {exc}", file=sys.stderr)
        return 1
    return 0


def _subscribers(args: argparse.Namespace) -> int:
    from callserver.commands.subscribers import show
    from callserver.config.centrex import load_customers
    from callserver.dialplan.routing import plan_numbers

    try:
        settings = load_settings(args.config)
        _, centrex = load_customers(
            settings.trunks, settings.centrex, plan_numbers(settings.dialplans)
        )
        data_dir = args.data_dir or settings.data_dir
        number = " ".join(args.number)  # written with spaces: +387 33 100 201
        sys.stdout.write(show(centrex, data_dir, number, settings.media.default_language))
    except OperatorFileError as exc:
        print("\n".join(exc.errors), file=sys.stderr)
        return 1
    except (ValueError, sqlite3.Error) as exc:
        print(f"callserver subscribers: {exc}", file=sys.stderr)
        return 1
    return 0


def _passwd(args: argparse.Namespace) -> int:
    from callserver.commands.passwd import ha1_lines, read_password

    try:
        sys.stdout.write(ha1_lines(args.username, args.realm, read_password(sys.stdin)))
    except ValueError as exc:
        print(f"callserver passwd: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``callserver`` console script."""
    args = _parser().parse_args(argv)
    if args.command == "version":
        print(f"callserver {__version__}")
        return 0
    if args.command == "check":
        return _check(args)
    if args.command == "prompts":
        return _prompts_synth(args)
    if args.command == "cdr":
        return _cdr(args)
    if args.command == "recordings":
        return _recordings(args)
    if args.command == "reload":
        return _reload(args)
    if args.command == "rate":
        return _rate(args)
    if args.command == "stats":
        return _stats(args)
    if args.command == "passwd":
        return _passwd(args)
    if args.command == "subscribers":
        return _subscribers(args)
    if args.command == "campaign":
        return _campaign(args)
    if args.command == "agents":
        return _agents(args)
    return _run(args)
