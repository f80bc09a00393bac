"""The ``callserver`` command: run, check, version (DESIGN.md "Contracts other tools rely on")."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from callserver import __version__
from callserver.config import ConfigError, Settings, load_settings, parse_listen

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
    check = sub.add_parser("check", help="validate settings files; exit 1 on errors")
    check.add_argument("paths", nargs="*", type=Path, help="settings files (default: the config)")
    check.add_argument("--config", type=Path, help="settings file")
    sub.add_parser("version", help="print the version")
    return parser


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
    from callserver.logs import configure_logging

    try:
        settings = load_settings(args.config, _overrides(args))
    except (ConfigError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 1
    configure_logging(settings.log_level, settings.log_format)
    runner = _event_loop_runner(use_uvloop=not args.no_uvloop)
    try:
        return int(runner(_serve(settings, args.config, _overrides(args))))
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
    server = Server(settings, config_path, overrides)
    server.install_signal_handlers()
    await server.serve_forever()
    return 0


def _check(args: argparse.Namespace) -> int:
    errors: list[str] = []
    # Every path named is checked: a typo must not fall back to checking the default file.
    configs: list[Path | None] = [p for p in (args.config, *args.paths) if p is not None]
    for path in configs or [None]:
        try:
            load_settings(path)
        except ConfigError as exc:
            errors.extend(exc.errors)
    for line in errors:
        print(line, file=sys.stderr)
    if errors:
        print(f"{len(errors)} error(s)", file=sys.stderr)
        return 1
    print("ok")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``callserver`` console script."""
    args = _parser().parse_args(argv)
    if args.command == "version":
        print(f"callserver {__version__}")
        return 0
    if args.command == "check":
        return _check(args)
    return _run(args)
