"""``callserver campaign start|status|stop FILE``: an outbound campaign (docs/callcentre.md).

``start`` checks the campaign file against the files in force (the customers of trunks.yaml,
the dialplans), copies it and its numbers to ``<data_dir>/campaigns/<name>/`` and sends
SIGHUP to the running server, which picks it up (``campaigns.runner``); with no server
running, the server starts it when it starts. ``stop`` marks it stopped (no new call; the
calls in progress end as they will) and tells the server the same way. ``status`` prints the
progress from the campaign's state file: numbers, calls placed, in progress, results by kind,
the next retry.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from callserver.campaigns.file import load_in_force
from callserver.campaigns.operations import (
    CAMPAIGNS_DIR,
    read_status,
    start_campaign,
    stop_campaign,
)
from callserver.campaigns.store import (
    CAMPAIGN_FILE,
    NUMBERS_FILE,
    CampaignFolder,
    campaign_name,
)
from callserver.config.errors import OperatorFileError
from callserver.config.settings import Settings, read_yaml
from callserver.config.trunks import load_trunks
from callserver.process.pidfile import signal_reload

__all__ = ["CAMPAIGNS_DIR", "check_file", "check_started", "folder_of", "start", "status", "stop"]


def folder_of(settings: Settings, source: Path) -> CampaignFolder:
    """The data-dir folder of the campaign the file ``source`` names.

    Raises:
        OperatorFileError: the file cannot be read as YAML.
    """
    data, _ = read_yaml(source, "a campaign's fields")
    return CampaignFolder(settings.data_dir / CAMPAIGNS_DIR, campaign_name(source, data))


def start(settings: Settings, source: Path, out: TextIO) -> None:
    """Check and start the campaign of ``source`` (see the module docstring).

    Raises:
        OperatorFileError: the campaign file, its numbers or trunks.yaml are invalid.
        ValueError: a campaign of that name is running already.
    """
    root, trunks = settings.data_dir / CAMPAIGNS_DIR, load_trunks(settings.trunks)
    campaign = start_campaign(root, source, trunks, settings.dialplans)
    out.write(f"campaign {campaign.name}: {len(campaign.entries)} numbers, started\n")
    _tell_server(settings, out)


def stop(settings: Settings, source: Path, out: TextIO) -> None:
    """Mark the campaign of ``source`` stopped.

    Raises:
        OperatorFileError: the file cannot be read.
        ValueError: it was never started.
    """
    folder = folder_of(settings, source)
    stop_campaign(folder)
    out.write(f"campaign {folder.name}: stopped\n")
    _tell_server(settings, out)


def status(settings: Settings, source: Path, out: TextIO) -> None:
    """Print the progress of the campaign of ``source``.

    Raises:
        OperatorFileError: the file cannot be read.
        ValueError: it was never started.
    """
    shown = read_status(folder_of(settings, source))
    out.write(f"campaign {shown.name}: {shown.state}\n")
    for label, count in (
        ("numbers", shown.numbers),
        ("dialled", shown.dialled),
        ("in progress", shown.in_progress),
        ("waiting", shown.waiting),
        *shown.results.items(),
    ):
        out.write(f"  {label + ':':13} {count}\n")
    out.write(f"  {'next retry:':13} {shown.next_retry or '-'}\n")
    out.write(f"  {'window:':13} {_window(shown.window)}\n")
    out.write(f"  {'results:':13} {shown.results_file}\n")


def check_file(settings: Settings, source: Path) -> tuple[str, ...]:
    """The errors ``start`` gives for the campaign file ``source`` (``callserver check``);
    a started campaign's copy (``campaign.yaml``) is read with its numbers' copy."""
    try:
        trunks = load_trunks(settings.trunks)
    except OperatorFileError:
        return (f"{source}: not checked: {settings.trunks} has errors (check it first)",)
    copy = source.with_name(NUMBERS_FILE)
    numbers = copy if source.name == CAMPAIGN_FILE and copy.is_file() else None
    try:
        load_in_force(source, trunks, settings.dialplans, numbers)
    except OperatorFileError as exc:
        return tuple(exc.errors)
    return ()


def check_started(settings: Settings) -> list[str]:
    """The errors of the campaigns the server runs (``<data_dir>/campaigns/``, neither
    stopped nor done) against the files in force; none when trunks.yaml has errors of its
    own (reported with it)."""
    root = settings.data_dir / CAMPAIGNS_DIR
    try:
        load_trunks(settings.trunks)
    except OperatorFileError:
        return []
    if not root.is_dir():
        return []
    errors: list[str] = []
    for path in sorted(root.iterdir()):
        folder = CampaignFolder(root, path.name)
        if folder.in_force():
            errors += check_file(settings, folder.campaign_file)
    return errors


def _window(window: Mapping[str, Any] | None) -> str:
    """The window as the server last saw it: open, or why not and when it opens."""
    if window is None:
        return "-"
    status = str(window.get("status"))
    if status == "open":
        return "open"
    why = f"holiday ({window.get('holiday')})" if status == "holiday" else "closed"
    opens = window.get("opens")
    if not isinstance(opens, str):
        return f"{why}: no opening within a fortnight"
    at = datetime.fromisoformat(opens).strftime("%Y-%m-%d %H:%M")
    return f"{why}: no call until {at} {window.get('timezone')}"


def _tell_server(settings: Settings, out: TextIO) -> None:
    try:
        pid = signal_reload(settings.data_dir)
    except LookupError:
        out.write("no server running: it starts the campaign when it starts\n")
    else:
        out.write(f"told the server (process {pid})\n")
