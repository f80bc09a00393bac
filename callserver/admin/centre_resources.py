"""The call centre's resources of the admin API, built from narrow views of the server:
queues, agents (``queues_api``, ``agents_api``)."""

from __future__ import annotations

from callserver.admin.agents_api import AgentsApi
from callserver.admin.centre_view import PlanQueues
from callserver.admin.queues_api import QueuesApi
from callserver.admin.readiness import ServerState

__all__ = ["centre_resources"]


def centre_resources(server: ServerState) -> list[QueuesApi | AgentsApi]:
    """The queues and agents resources of ``server``."""
    phones = server.phones
    queues = PlanQueues(lambda: server.routing.dialplans.plans)
    return [
        QueuesApi(phones.centre, queues, lambda: server.centrex, lambda: server.settings.stats),
        AgentsApi(phones.centre, phones.agents, queues, lambda: server.centrex),
    ]
