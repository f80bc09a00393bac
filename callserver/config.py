"""Settings: config/callserver.yaml, overridden by CALLSERVER_* variables and command-line flags.

Precedence, highest first: flags (passed as init values), environment (``CALLSERVER_SIP__T1=0.25``
for nested fields), the YAML file, the defaults below. Every field is validated on load and an
error names the file, the line and the field (``config/callserver.yaml:7: sip.t1: ...``).
"""

from __future__ import annotations

import ipaddress
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from callserver.yamlpos import describe_errors, line_of, load_yaml_with_lines

__all__ = [
    "CallsSettings",
    "ConfigError",
    "ListenAddress",
    "MediaSettings",
    "Settings",
    "SipSettings",
    "load_settings",
    "parse_listen",
]

DEFAULT_CONFIG = Path("config/callserver.yaml")


class ConfigError(Exception):
    """One or more settings are invalid; ``errors`` holds one ``file:line: field: message`` each."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


class ListenAddress(BaseModel):
    """One SIP listening socket: ``udp:0.0.0.0:5060``, ``tcp:[::]:5060``."""

    model_config = ConfigDict(frozen=True)
    transport: Literal["udp", "tcp"]
    host: str
    port: int = Field(ge=0, le=65535)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}:{host}:{self.port}"


def parse_listen(text: str) -> list[ListenAddress]:
    """Parse ``[udp:|tcp:]HOST:PORT``; without a transport prefix both UDP and TCP listen.

    Raises:
        ValueError: the text is not of that form.
    """
    transports: list[Literal["udp", "tcp"]] = ["udp", "tcp"]
    rest = text.strip()
    prefix, sep, tail = rest.partition(":")
    if sep and prefix.lower() in ("udp", "tcp"):
        transports = ["udp"] if prefix.lower() == "udp" else ["tcp"]
        rest = tail
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"listen address {text!r} is not [udp:|tcp:]HOST:PORT")
    host = host.strip("[]")
    if not host:
        raise ValueError(f"listen address {text!r} has no host")
    return [ListenAddress(transport=t, host=host, port=int(port)) for t in transports]


class SipSettings(BaseModel):
    """SIP signalling: sockets, identity, RFC 3261 timers, parser limits, session timers."""

    model_config = ConfigDict(extra="forbid")
    listen: list[ListenAddress] = Field(
        default_factory=lambda: parse_listen("udp:0.0.0.0:5060") + parse_listen("tcp:0.0.0.0:5060")
    )
    advertised_address: str | None = None
    user_agent: str = "callserver"
    t1: float = Field(0.5, gt=0, le=10)
    t2: float = Field(4.0, gt=0, le=64)
    t4: float = Field(5.0, gt=0, le=64)
    max_message_bytes: int = Field(65535, ge=1024, le=1 << 20)
    max_headers: int = Field(100, ge=10, le=1000)
    max_header_line: int = Field(8192, ge=256, le=1 << 16)
    tcp_idle_timeout: float = Field(300.0, gt=0)
    tcp_max_connections: int = Field(1024, ge=1)
    session_expires: int = Field(1800, ge=90)
    min_se: int = Field(90, ge=90)

    @field_validator("listen", mode="before")
    @classmethod
    def _listen_strings(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            out: list[Any] = []
            for item in value:
                out.extend(parse_listen(item) if isinstance(item, str) else [item])
            return out
        return value

    @field_validator("advertised_address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("advertised_address must not be empty")
        return value

    @model_validator(mode="after")
    def _t2_not_below_t1(self) -> SipSettings:
        if self.t2 < self.t1:
            raise ValueError("t2 must not be smaller than t1")
        return self


Codec = Literal["PCMA", "PCMU"]
_DEFAULT_CODECS: tuple[Codec, ...] = ("PCMA", "PCMU")


class MediaSettings(BaseModel):
    """Media: RTP port range and the codecs we answer with, in the operator's preference order."""

    model_config = ConfigDict(extra="forbid")
    rtp_port_min: int = Field(20000, ge=1024, le=65534)
    rtp_port_max: int = Field(30000, ge=1025, le=65535)
    codecs: list[Codec] = Field(default_factory=lambda: list(_DEFAULT_CODECS))
    ptime: int = Field(20, ge=10, le=60)

    @model_validator(mode="after")
    def _range(self) -> MediaSettings:
        if self.rtp_port_max <= self.rtp_port_min:
            raise ValueError("rtp_port_max must be above rtp_port_min")
        if not self.codecs:
            raise ValueError("codecs must list at least one codec")
        return self


class CallsSettings(BaseModel):
    """Call handling defaults: the built-in answer behaviour and shutdown drain."""

    model_config = ConfigDict(extra="forbid")
    answer_after: float = Field(0.0, ge=0, description="built-in answer: ring this long first")
    answer_hangup_after: float = Field(30.0, gt=0, description="built-in answer: BYE after s")
    drain_timeout: float = Field(10.0, ge=0)
    max_calls: int = Field(10000, ge=1)


class Settings(BaseSettings):
    """All server settings (the schema of config/callserver.yaml)."""

    model_config = SettingsConfigDict(
        env_prefix="CALLSERVER_", env_nested_delimiter="__", extra="forbid"
    )
    sip: SipSettings = Field(default_factory=SipSettings)
    media: MediaSettings = Field(default_factory=MediaSettings)
    calls: CallsSettings = Field(default_factory=CallsSettings)
    data_dir: Path = Path("var")
    dialplans: Path = Path("dialplans")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console", "auto"] = "auto"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _FileSource(settings_cls))

    def advertised_host(self, fallback: str) -> str:
        """The address we put in Via, Contact and SDP: the setting, else ``fallback``."""
        return self.sip.advertised_address or fallback


_file_values: ContextVar[dict[str, Any] | None] = ContextVar("callserver_config_file", default=None)


class _FileSource(PydanticBaseSettingsSource):
    """The YAML file's values, below the environment in precedence."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return (_file_values.get() or {}).get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_file_values.get() or {})


def load_settings(path: Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Load settings from ``path`` (default config/callserver.yaml), env and ``overrides``.

    Raises:
        ConfigError: the file is unreadable or a value is invalid; every error is listed.
    """
    file_values: dict[str, Any] = {}
    lines: dict[tuple[str | int, ...], int] = {}
    source = path if path is not None else DEFAULT_CONFIG
    if path is not None or source.exists():
        file_values, lines = _read_yaml(source)
    token = _file_values.set(file_values)
    try:
        settings = Settings(**(overrides or {}))
    except ValidationError as exc:
        raise ConfigError(describe_errors(str(source), exc, lines)) from exc
    finally:
        _file_values.reset(token)
    _check_address(settings, source, lines)
    return settings


def _read_yaml(source: Path) -> tuple[dict[str, Any], dict[tuple[str | int, ...], int]]:
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{source}: cannot read: {exc.strerror}"]) from exc
    try:
        data, lines = load_yaml_with_lines(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError([f"{source}{where}: not valid YAML: {exc}"]) from exc
    if data is None:
        return {}, lines
    if not isinstance(data, dict):
        raise ConfigError([f"{source}:1: the file must hold a mapping of settings"])
    return data, lines


def _check_address(
    settings: Settings, source: Path, lines: dict[tuple[str | int, ...], int]
) -> None:
    address = settings.sip.advertised_address
    if address is None:
        return
    try:
        ipaddress.ip_address(address)
    except ValueError:
        if not all(part.isalnum() or "-" in part for part in address.split(".")):
            line = line_of(lines, ("sip", "advertised_address"))
            raise ConfigError(
                [f"{source}:{line}: sip.advertised_address: {address!r} is no address or host"]
            ) from None
