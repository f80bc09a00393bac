"""What ``callserver campaign start|status|stop`` and the admin API do to a campaign's folder.

``start_campaign`` checks a campaign file against the customers and dialplans given and
copies it and its numbers to ``<data_dir>/campaigns/<name>/`` (refused while a campaign of
that name runs); the running server's ``CampaignRunner.scan`` then picks it up.
``stop_campaign`` marks a started one stopped. ``read_status`` is its progress as the
server last wrote it (``state.json``): the command prints it, the API answers it as JSON.
All of it is file work: the server's callers run it in a thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from callserver.campaigns.file import Campaign, load_in_force
from callserver.campaigns.schedule import RESULTS
from callserver.campaigns.store import CampaignFolder
from callserver.config.errors import OperatorFileError
from callserver.config.settings import read_yaml
from callserver.config.trunks import TrunksFile

__all__ = [
    "CAMPAIGNS_DIR",
    "CampaignStatus",
    "read_status",
    "start_campaign",
    "started_folders",
    "stop_campaign",
]

CAMPAIGNS_DIR = "campaigns"
"""The campaigns' folder under the data dir."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CampaignStatus:
    """A started campaign's progress: ``state`` (``stopped``, else the server's last word:
    ``running``, ``done``, ``server stopped``, or ``waiting for the server`` before its
    first), the counts, the results by kind, the next retry and the calling window as the
    server last saw them (ISO 8601 times)."""

    name: str
    customer: str | None
    state: str
    numbers: int
    dialled: int
    in_progress: int
    waiting: int
    results: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    next_retry: str | None = None
    window: Mapping[str, Any] | None = None
    results_file: Path | None = None


def start_campaign(root: Path, source: Path, trunks: TrunksFile, dialplans: Path) -> Campaign:
    """Check the campaign file ``source`` against ``trunks`` and the plans of ``dialplans``,
    and copy it to its folder under ``root`` (``<data_dir>/campaigns``).

    Raises:
        OperatorFileError: the campaign file or its numbers are invalid.
        ValueError: a campaign of that name is running already.
    """
    campaign = load_in_force(source, trunks, dialplans)
    folder = CampaignFolder(root, campaign.name)
    if folder.in_force():
        raise ValueError(f"campaign {campaign.name} is running; stop it first")
    folder.start(source, campaign.numbers_file)
    return campaign


def stop_campaign(folder: CampaignFolder) -> None:
    """Mark ``folder``'s campaign stopped (no new call; those in progress end as they will).

    Raises:
        ValueError: it was never started.
    """
    if not folder.started():
        raise ValueError(f"campaign {folder.name} was never started")
    folder.stop()


def read_status(folder: CampaignFolder) -> CampaignStatus:
    """The progress of ``folder``'s campaign (see :class:`CampaignStatus`).

    Raises:
        ValueError: it was never started.
    """
    if not folder.started():
        raise ValueError(f"campaign {folder.name} was never started")
    progress: dict[str, Any] = folder.read_state().get("progress") or {}
    state = "stopped" if folder.stopped() else progress.get("status", "waiting for the server")
    results = progress.get("results") or {}
    window = progress.get("window")
    return CampaignStatus(
        name=folder.name,
        customer=_customer(folder),
        state=str(state),
        numbers=int(progress.get("numbers", 0)),
        dialled=int(progress.get("dialled", 0)),
        in_progress=int(progress.get("in_progress", 0)),
        waiting=int(progress.get("waiting", 0)),
        results=MappingProxyType({kind: int(results.get(kind, 0)) for kind in RESULTS}),
        next_retry=progress.get("next_retry") or None,
        window=MappingProxyType(window) if isinstance(window, dict) else None,
        results_file=folder.results_file,
    )


def started_folders(root: Path) -> list[CampaignFolder]:
    """The folders of the campaigns ever started under ``root``, by name."""
    if not root.is_dir():
        return []
    folders = (CampaignFolder(root, path.name) for path in sorted(root.iterdir()))
    return [folder for folder in folders if folder.started()]


def _customer(folder: CampaignFolder) -> str | None:
    """The customer the started copy names (None: unreadable)."""
    try:
        data, _ = read_yaml(folder.campaign_file, "a campaign's fields")
    except OperatorFileError:
        return None
    customer = data.get("customer")
    return customer if isinstance(customer, str) else None
