"""The call centre's resources of the admin API, built from narrow views of the server:
queues, agents, originated calls and campaigns (``queues_api``, ``agents_api``,
``originate_api``, ``campaigns_api``)."""

from __future__ import annotations

from callserver.admin.agents_api import AgentsApi
from callserver.admin.campaigns_api import CampaignsApi
from callserver.admin.centre_view import PlanQueues
from callserver.admin.originate_api import OriginateApi
from callserver.admin.queues_api import QueuesApi
from callserver.admin.readiness import ServerState

__all__ = ["centre_resources"]


def centre_resources(
    server: ServerState,
) -> list[QueuesApi | AgentsApi | OriginateApi | CampaignsApi]:
    """The queues, agents, originate and campaigns resources of ``server``."""
    phones, admission = server.phones, server.admission
    queues = PlanQueues(lambda: server.routing.dialplans.plans)
    originate = OriginateApi(
        server.calls.originated,
        customers=lambda: admission.table.config.customers.keys(),
        owns=admission.inside_group,
        centrex=lambda: server.centrex,
        plans=lambda: server.routing.dialplans.plans,
        ring_timeout=lambda: server.settings.calls.outbound_ring_timeout,
        draining=lambda: server.calls.draining,
    )
    return [
        QueuesApi(phones.centre, queues, lambda: server.centrex, lambda: server.settings.stats),
        AgentsApi(phones.centre, phones.agents, queues, lambda: server.centrex),
        originate,
        CampaignsApi(
            server.campaigns,
            data_dir=lambda: server.settings.data_dir,
            trunks=lambda: admission.table.config,
            dialplans=lambda: server.settings.dialplans,
        ),
    ]
