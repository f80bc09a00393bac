"""The ``callserver`` command: run, check, reload, rate, passwd, subscribers, agents, cdr,
stats, campaign, admin token, version, prompts synth, cluster, edge-config."""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from callserver import __version__
from callserver.commands import cluster_cli
from callserver.commands.centre_cli import RUNNERS, add_parsers
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
        help="settings, dialplan, trunks, tariffs, centrex, blacklist or campaign files, or "
        "dialplan directories (default: the config, every file it names and the campaigns "
        "under its data dir)",
    )
    check.add_argument("--config", type=Path, help="settings file")
    reload = sub.add_parser("reload", help="tell the running server to reload (SIGHUP)")
    reload.add_argument("--config", type=Path, help="settings file (for the data dir)")
    reload.add_argument("--data-dir", type=Path, help="data directory of the running server")
    sub.add_parser("version", help="print the version")
    _add_prompts_parser(sub)
    _add_cdr_parser(sub)
    _add_rate_parser(sub)
    add_parsers(sub)
    cluster_cli.add_parsers(sub)
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
    _add_admin_parser(sub)
    return parser


def _add_admin_parser(sub: Any) -> None:
    admin = sub.add_parser("admin", help="the admin API: tokens")
    tools = admin.add_subparsers(dest="admin_command", required=True)
    token = tools.add_parser(
        "token", help="print a new bearer token once and its admin.tokens lines (its digest)"
    )
    token.add_argument("name", help="who holds it: its name in the audit log")
    token.add_argument("--role", required=True, choices=("operator", "customer"))
    token.add_argument("--customer", help="a customer token's customer (trunks.yaml)")


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
        tool.add_argument(
            "--local",
            action="store_true",
            help="this node's own cdr.sqlite, even with cluster.postgres (the cluster's CDRs)",
        )


def _cdr(args: argparse.Namespace) -> int:
    import sqlite3

    import structlog

    from callserver.cdr.export import cdr_export_command, cdr_stats_command

    # stdout carries the CDRs: log lines (cdr.ingested, warnings) go to stderr.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))
    overrides = {} if args.data_dir is None else {"data_dir": args.data_dir}
    try:
        settings = load_settings(args.config, overrides)
        data_dir = settings.data_dir
        postgres = None if args.local else settings.cluster.postgres  # the cluster's CDRs
        period = {"since": args.since, "until": args.until, "postgres": postgres}
        if args.cdr_command == "export":
            cdr_export_command(data_dir, fmt=args.format, out=sys.stdout, **period)
        else:
            cdr_stats_command(data_dir, out=sys.stdout, top=args.top, **period)
    except OperatorFileError as exc:
        print("\n".join(exc.errors), file=sys.stderr)
        return 1
    except (ValueError, OSError, sqlite3.Error) as exc:
        print(f"callserver cdr: {exc}", file=sys.stderr)
        return 1
    return 0


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


def _subscribers(args: argparse.Namespace) -> int:
    from redis.exceptions import RedisError

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
        language, shared = settings.media.default_language, settings.cluster.redis
        sys.stdout.write(show(centrex, data_dir, number, language, shared=shared))
    except OperatorFileError as exc:
        print("\n".join(exc.errors), file=sys.stderr)
        return 1
    except (ValueError, sqlite3.Error) as exc:
        print(f"callserver subscribers: {exc}", file=sys.stderr)
        return 1
    except RedisError as exc:
        print(
            f"callserver subscribers: the cluster's Redis ({shared}) cannot be read: {exc};"
            " start it, or check cluster.redis",
            file=sys.stderr,
        )
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


def _admin(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from callserver.commands.admin_token import new_token

    try:
        token, lines = new_token(args.name, args.role, args.customer)
    except ValidationError as exc:
        for error in exc.errors():
            message = str(error["msg"]).removeprefix("Value error, ")
            print(f"callserver admin token: {message}", file=sys.stderr)
        return 2
    print(f"token (shown once, give it to {args.name}): {token}")
    print("admin.tokens entry for config/callserver.yaml (only the digest is stored):")
    sys.stdout.write(lines)
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
    if args.command == "reload":
        return _reload(args)
    if args.command == "rate":
        return _rate(args)
    if args.command == "passwd":
        return _passwd(args)
    if args.command == "subscribers":
        return _subscribers(args)
    if args.command == "admin":
        return _admin(args)
    if args.command in RUNNERS:
        return RUNNERS[args.command](args)
    if args.command in cluster_cli.RUNNERS:
        return cluster_cli.RUNNERS[args.command](args)
    return _run(args)
