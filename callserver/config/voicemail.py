"""The ``voicemail`` section of config/callserver.yaml: the subscribers' voicemail boxes.

voicemail:
  timezone: Europe/Sarajevo     # the dates and times read out with each message
  retention_days: 30            # older messages are deleted by the purge
  purge_interval: 3600          # seconds between purges
  default_pin: null             # a box's PIN until its subscriber sets one (null: none)
  max_message: 120              # seconds of a message at most
  mwi_expires: 3600             # RFC 6665 §4.2.1.1: a SUBSCRIBE's expiry when it asks none
  smtp:                         # new messages mailed (WAV attached); host null: not mailed
    host: null
    port: 25
    sender: voicemail@localhost
    timeout: 30
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from callserver.config.zones import check_zone

__all__ = ["SmtpSettings", "VoicemailSettings"]


class SmtpSettings(BaseModel):
    """The operator's SMTP relay for new messages (``host`` None: no e-mail is sent)."""

    model_config = ConfigDict(extra="forbid")
    host: str | None = None
    port: int = Field(25, ge=1, le=65535)
    sender: str = Field("voicemail@localhost", pattern=r"^[^@\s<>,;]+@[^@\s<>,;]+$")
    timeout: float = Field(30.0, gt=0, le=600, description="seconds for the relay's answers")


class VoicemailSettings(BaseModel):
    """Voicemail boxes: the time zone of the dates read out, retention and its purge, the
    default PIN (digits; a box keeps only its own PIN's scrypt hash), MWI and e-mail."""

    model_config = ConfigDict(extra="forbid")
    timezone: str = "Europe/Sarajevo"
    retention_days: int = Field(30, ge=1, le=3650)
    purge_interval: float = Field(3600.0, gt=0, description="seconds between purges")
    default_pin: str | None = Field(None, pattern=r"^[0-9]{4,10}$")
    max_message: float = Field(120.0, gt=2, le=3600, description="seconds of a message")
    mwi_expires: int = Field(3600, ge=60, le=86400, description="seconds, when none is asked")
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_zone(value)
