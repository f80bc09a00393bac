"""Media settings: the ``media:`` section of config/callserver.yaml.

RTP ports and codecs, symmetric RTP, the inactivity timeout, in-band DTMF, prompts and their
language fallback chain, the music on hold, and recording limits. Validated by pydantic like
every other section.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

__all__ = ["Codec", "MediaSettings", "RecordingSettings"]

Codec = Literal["PCMA", "PCMU"]
_DEFAULT_CODECS: tuple[Codec, ...] = ("PCMA", "PCMU")
_LANGUAGE = r"^[a-z]{2,3}$"


def _default_fallback() -> dict[str, list[str]]:
    return {"hr": ["bs", "en"], "bs": ["hr", "en"], "de": ["en"], "en": []}


class RecordingSettings(BaseModel):
    """Recording limits: the longest recording, when trailing silence ends it, the shortest kept."""

    model_config = ConfigDict(extra="forbid")
    max_seconds: float = Field(300.0, gt=0, le=3600)
    min_seconds: float = Field(1.0, ge=0)
    silence_seconds: float = Field(5.0, gt=0, description="this much trailing silence ends it")
    silence_dbfs: float = Field(-45.0, le=0, description="frames quieter than this are silence")


class MediaSettings(BaseModel):
    """Media: RTP ports, codecs in the operator's order, symmetric RTP, DTMF, prompts."""

    model_config = ConfigDict(extra="forbid")
    rtp_port_min: int = Field(20000, ge=1024, le=65534)
    rtp_port_max: int = Field(30000, ge=1025, le=65535, validate_default=True)
    codecs: list[Codec] = Field(default_factory=lambda: list(_DEFAULT_CODECS))
    ptime: int = Field(20, ge=10, le=60)
    # Symmetric RTP (RFC 4961): send to where the peer's packets come from (NAT). False: accept
    # and send only to the address in the SDP.
    symmetric_rtp: bool = True
    rtp_timeout: float = Field(60.0, ge=0, description="no RTP this long ends the call (0: never)")
    statistics_interval: float = Field(60.0, ge=0, description="log media.statistics (0: never)")
    reorder_packets: int = Field(8, ge=1, le=64)
    inband_dtmf: Literal["auto", "always", "never"] = "auto"
    # An RFC 4733 key press whose end never comes (a phone that sends no key release) is
    # reported once it has lasted this long.
    dtmf_max_event: float = Field(2.0, gt=0, le=60)
    prompts_dir: Path = Path("prompts")
    # Music on hold: every audio file in this directory, by name, played in turn and looped
    # (None: the ``moh`` directory inside prompts_dir).
    music_dir: Path | None = None
    default_language: str = Field("en", pattern=_LANGUAGE)
    language_fallback: dict[str, list[str]] = Field(default_factory=_default_fallback)
    recording: RecordingSettings = Field(default_factory=RecordingSettings)

    @field_validator("rtp_port_max")
    @classmethod
    def _range(cls, value: int, info: ValidationInfo) -> int:
        if value <= info.data.get("rtp_port_min", 0):
            raise ValueError("rtp_port_max must be above rtp_port_min")
        return value

    @field_validator("codecs")
    @classmethod
    def _some_codec(cls, value: list[Codec]) -> list[Codec]:
        if not value:
            raise ValueError("codecs must list at least one codec")
        return value

    @field_validator("language_fallback")
    @classmethod
    def _languages(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for lang, chain in value.items():
            for name in (lang, *chain):
                if not re.fullmatch(_LANGUAGE[1:-1], name):
                    raise ValueError(f"{name!r} is not a language code like 'hr' or 'de'")
        return value

    @property
    def hold_music_dir(self) -> Path:
        """The directory of the music on hold (``music_dir``, else ``<prompts_dir>/moh``)."""
        return self.music_dir if self.music_dir is not None else self.prompts_dir / "moh"

    def language_chain(self, language: str) -> list[str]:
        """``language``, then its fallbacks, then the default language; each once."""
        chain = [language, *self.language_fallback.get(language, []), self.default_language]
        return list(dict.fromkeys(chain))
