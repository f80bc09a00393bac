"""The ``stats`` section of config/callserver.yaml: how ``callserver stats`` reads a period.

stats:
  timezone: Europe/Sarajevo     # --since/--until without an offset are in this zone
  service_level: 20             # seconds: answered within this counts for the service level
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from callserver.config.zones import check_zone

__all__ = ["StatsSettings"]


class StatsSettings(BaseModel):
    """The operator's time zone for report periods and the default service-level threshold."""

    model_config = ConfigDict(extra="forbid")
    timezone: str = "Europe/Sarajevo"
    service_level: float = Field(20.0, gt=0, le=3600, description="seconds to answer")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_zone(value)
