"""The ``registrar`` section of config/callserver.yaml (RFC 3261 §10.3 expiry limits, §11
qualify)."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["RegistrarSettings"]


class RegistrarSettings(BaseModel):
    """Expiry limits of bindings, contacts per AOR, and the per-AOR REGISTER rate.

    ``min_expires``: a shorter non-zero expiry gets 423 with Min-Expires; ``default_expires``:
    granted when a REGISTER asks none; ``max_expires``: a longer one is cut to it;
    ``max_contacts``: the default of a subscriber's contacts; ``register_rate`` and
    ``register_burst``: REGISTERs per AOR and source a second and at once before 503
    with Retry-After; ``qualify``: seconds between OPTIONS to each UDP binding (RFC 3261 §11),
    0 for none.
    """

    model_config = ConfigDict(extra="forbid")
    min_expires: int = Field(60, ge=1, description="seconds; shorter non-zero: 423")
    default_expires: int = Field(3600, ge=1, description="seconds, when none is asked")
    max_expires: int = Field(7200, ge=1, description="seconds; longer is cut to this")
    max_contacts: int = Field(5, ge=1, description="contacts per AOR, by default")
    register_rate: float = Field(1.0, gt=0, description="REGISTERs per AOR a second")
    register_burst: float = Field(5.0, ge=1, description="REGISTERs per AOR at once")
    qualify: float = Field(0.0, ge=0, description="seconds between OPTIONS to UDP bindings; 0: off")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.min_expires <= self.default_expires <= self.max_expires:
            raise ValueError(
                f"min_expires ({self.min_expires}) <= default_expires ({self.default_expires}) "
                f"<= max_expires ({self.max_expires}) does not hold"
            )
        return self
