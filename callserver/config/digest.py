"""The digest sections of config/trunks.yaml: a trunk's or route's credentials, and how
digest trunks and phones are challenged (RFC 3261 §22, RFC 7616, RFC 8760)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

__all__ = ["DigestAlgorithm", "DigestCredentials", "DigestSettings", "LockoutSettings"]

DigestAlgorithm = Literal["SHA-256", "MD5", "SHA-256-sess", "MD5-sess"]
_NO_CONTROL = r"^[^\x00-\x1f\x7f]+$"


class DigestCredentials(BaseModel):
    """A trunk's digest user name and password (RFC 3261 §22.4); the password never prints."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    username: str = Field(min_length=1, max_length=128, pattern=_NO_CONTROL)
    password: SecretStr = Field(min_length=1, max_length=256)


def _default_algorithms() -> list[DigestAlgorithm]:
    return ["SHA-256", "MD5"]  # RFC 8760 §2.4: the most preferred first


class LockoutSettings(BaseModel):
    """Password guessing (``policy.lockout``): failures per source address and per username
    before answers are held ``delay`` seconds, and before the source or username is refused
    for ``penalty`` seconds; a source in its penalty gets ``answer`` (403, or drop: nothing)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    slow_after: int = Field(3, ge=1, le=1000)
    delay: float = Field(2.0, ge=0, le=30)
    refuse_after: int = Field(10, ge=1, le=1000)
    penalty: float = Field(900, gt=0, le=7 * 86400)
    answer: Literal[403, "drop"] = "drop"
    max_keys: int = Field(10_000, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _slow_before_refuse(self) -> LockoutSettings:
        if self.slow_after > self.refuse_after:
            raise ValueError(
                f"slow_after ({self.slow_after}) must not be more than "
                f"refuse_after ({self.refuse_after})"
            )
        return self


class DigestSettings(BaseModel):
    """How digest trunks are challenged (RFC 3261 §22.1, RFC 8760 §2.4, RFC 7616 §3.3)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    realm: str = Field("callserver", min_length=1, max_length=128, pattern=_NO_CONTROL)
    challenge: Literal[401, 407] = 407
    algorithms: list[DigestAlgorithm] = Field(default_factory=_default_algorithms, min_length=1)
    nonce_lifetime: float = Field(300, gt=0, le=86400)
    lockout: LockoutSettings = Field(default_factory=LockoutSettings)

    @field_validator("algorithms")
    @classmethod
    def _once_each(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each algorithm may be listed only once")
        return value
