"""The ``admin`` section of config/callserver.yaml: the admin API's address and its tokens.

admin:
  listen: 127.0.0.1:8080        # host:port of the HTTP API, /healthz, /readyz and /metrics
  enabled: true
  tokens:                       # ``callserver admin token NAME --role ...`` prints an entry
    - name: noc
      role: operator
      sha256: 3f1c...           # the hex SHA-256 digest of the token; the token is not stored
    - name: acme-portal
      role: customer
      customer: acme            # one of config/trunks.yaml's customers (``callserver check``)
      sha256: 9b2e...
  softphone:                    # the agents' WebRTC softphone (/api/softphone)
    address: 127.0.0.1          # the address of the ICE candidates offered to the browsers
    max_sessions: 100

A bearer token is looked up by its digest, so the settings file never holds a usable secret.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from callserver.config.sip_settings import check_host

__all__ = [
    "AdminSettings",
    "AdminToken",
    "Role",
    "SoftphoneSettings",
    "parse_admin_listen",
    "token_digest",
]

Role = Literal["operator", "customer"]
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def token_digest(token: str) -> str:
    """The hex SHA-256 digest of a bearer token, as the settings hold it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_admin_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (an IPv6 host in brackets) as a host and a port; port 0 picks a free one.

    Raises:
        ValueError: the text is not of that form, or the port is above 65535.
    """
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"{text!r} is not HOST:PORT (127.0.0.1:8080)")
    if int(port) > 65535:
        raise ValueError(f"{text!r}: port {port} is above 65535")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{text!r}: put an IPv6 host in brackets, [::1]:8080")
    return check_host(host), int(port)


class AdminToken(BaseModel):
    """One bearer token: who holds it (``name``, in the audit log), its role and its digest."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    role: Role
    customer: str | None = None
    sha256: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError(
                f"token name {value!r}: use letters, digits, '.', '_' or '-' (up to 64), "
                "as it appears in the audit log"
            )
        return value

    @field_validator("sha256")
    @classmethod
    def _digest(cls, value: str) -> str:
        digest = value.strip().lower()
        if not _HEX_DIGEST.fullmatch(digest):
            raise ValueError(
                "not a SHA-256 hex digest (64 hex digits): paste the sha256 line "
                "`callserver admin token` printed, never the token itself"
            )
        return digest

    @model_validator(mode="after")
    def _customer(self) -> Self:
        if self.role == "customer" and not self.customer:
            raise ValueError(
                f"token {self.name!r}: a customer token names its customer "
                "(customer: acme, one of trunks.yaml's customers)"
            )
        if self.role == "operator" and self.customer is not None:
            raise ValueError(
                f"token {self.name!r}: an operator token sees every customer; "
                "remove customer, or make it role: customer"
            )
        return self


class SoftphoneSettings(BaseModel):
    """The agents' softphone: whether it is served, the one address its ICE host candidates
    are offered on (the browsers must reach it; 127.0.0.1 keeps it on the machine), and how
    many may be open at once."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    address: str = Field("127.0.0.1", description="an IP address the agents' browsers reach")
    max_sessions: int = Field(100, ge=1)

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        try:
            return str(ipaddress.ip_address(value.strip()))
        except ValueError:
            raise ValueError(
                f"{value!r} is not an IP address: give the address of this server the agents' "
                "browsers reach (127.0.0.1 for a browser on this machine)"
            ) from None


class AdminSettings(BaseModel):
    """Where the admin API listens, whether it runs, and the bearer tokens it accepts."""

    model_config = ConfigDict(extra="forbid")
    listen: str = Field("127.0.0.1:8080", description="HOST:PORT; port 0: a free port")
    enabled: bool = True
    tokens: tuple[AdminToken, ...] = ()
    softphone: SoftphoneSettings = Field(default_factory=SoftphoneSettings)

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        parse_admin_listen(value)
        return value.strip()

    @field_validator("tokens")
    @classmethod
    def _unique(cls, tokens: tuple[AdminToken, ...]) -> tuple[AdminToken, ...]:
        for seen, token in enumerate(tokens):
            for other in tokens[:seen]:
                if other.name == token.name:
                    raise ValueError(f"token name {token.name!r} is listed twice")
                if other.sha256 == token.sha256:
                    raise ValueError(
                        f"tokens {other.name!r} and {token.name!r} have the same sha256: "
                        "make a new token for each holder"
                    )
        return tokens

    @property
    def address(self) -> tuple[str, int]:
        """The host and port to listen on."""
        return parse_admin_listen(self.listen)

    def customers(self) -> set[str]:
        """The customers the customer tokens name (``callserver check`` looks each up)."""
        return {token.customer for token in self.tokens if token.customer is not None}
