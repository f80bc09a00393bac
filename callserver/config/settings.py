"""Settings: config/callserver.yaml, overridden by CALLSERVER_* variables and command-line flags.

Precedence, highest first: flags (passed as init values), environment (``CALLSERVER_SIP__T1=0.25``
for nested fields), the YAML file, the defaults below. Every field is validated on load and an
error names the file, the line and the field (``config/callserver.yaml:7: sip.t1: ...``).
The ``sip`` section (``SipSettings``, with ``parse_listen`` and ``check_host``) is defined in
``sip_settings`` and re-exported here.
"""

from __future__ import annotations

from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from callserver.config.admin import AdminSettings
from callserver.config.cluster import ClusterSettings
from callserver.config.errors import OperatorFileError
from callserver.config.positions import Origin, describe_errors, load_yaml_with_lines
from callserver.config.registrar import RegistrarSettings
from callserver.config.sip_settings import SipSettings, check_host, parse_listen
from callserver.config.stats import StatsSettings
from callserver.config.voicemail import VoicemailSettings
from callserver.media.settings import MediaSettings, RecordingSettings
from callserver.policy.overload import OverloadSettings
from callserver.sip.endpoint import EndpointConfig
from callserver.sip.parser import ParseLimits
from callserver.sip.timers import SipTimers
from callserver.sip.validate import UasPolicy
from callserver.transport.settings import DnsSettings

__all__ = [
    "AdminSettings",
    "CallsSettings",
    "CdrSettings",
    "ClusterSettings",
    "DnsSettings",
    "MediaSettings",
    "RecordingSettings",
    "Settings",
    "SipSettings",
    "check_host",
    "endpoint_config",
    "keep_startup_values",
    "load_settings",
    "parse_listen",
    "read_yaml",
]

DEFAULT_CONFIG = Path("config/callserver.yaml")
ENV_PREFIX = "CALLSERVER_"


_MOVED_TO_DEFAULT_PLAN = {
    "answer_after": "an answer step's ring (answer: with ring: 5s)",
    "answer_hangup_after": "a hangup step's after (hangup: with after: 30s)",
    "answer_prompt": "a play step (play: greeting, barge_in: true)",
    "answer_prompt_loop": "a play step's loop (loop: true)",
}


class CallsSettings(BaseModel):
    """Call handling: forwarding, the limit of calls at once and the shutdown drain.

    What a number without a dialplan of its own does is ``dialplans/default.yaml``; the
    ``answer_*`` keys that once said it are refused with where each one went.
    """

    model_config = ConfigDict(extra="forbid")
    forward_response_timeout: float = Field(
        4.0, gt=0, le=64, description="forwarded INVITE: no response at all: try the next target"
    )
    ring_timeout: float = Field(
        30.0, gt=0, le=600, description="a call to a Centrex phone: unanswered this long: 480"
    )
    outbound_ring_timeout: float = Field(
        120.0, gt=0, le=600, description="a call out through a route: unanswered this long: 480"
    )
    drain_timeout: float = Field(10.0, ge=0)
    max_calls: int = Field(10000, ge=1)
    answer_after: None = Field(None, exclude=True, repr=False, description="removed")
    answer_hangup_after: None = Field(None, exclude=True, repr=False, description="removed")
    answer_prompt: None = Field(None, exclude=True, repr=False, description="removed")
    answer_prompt_loop: None = Field(None, exclude=True, repr=False, description="removed")

    @field_validator(*_MOVED_TO_DEFAULT_PLAN, mode="before")
    @classmethod
    def _moved(cls, value: object, info: ValidationInfo) -> None:
        assert info.field_name is not None
        raise ValueError(
            "no longer a setting: a number without a dialplan of its own runs "
            f"dialplans/default.yaml; write {_MOVED_TO_DEFAULT_PLAN[info.field_name]} there"
        )


class CdrSettings(BaseModel):
    """CDRs: how often the running server feeds the spool into ``<data_dir>/cdr.sqlite``."""

    model_config = ConfigDict(extra="forbid")
    ingest_interval: float = Field(10.0, ge=0, description="seconds between ingests; 0: never")


class Settings(BaseSettings):
    """All server settings (the schema of config/callserver.yaml)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid"
    )
    sip: SipSettings = Field(default_factory=SipSettings)
    media: MediaSettings = Field(default_factory=MediaSettings)
    calls: CallsSettings = Field(default_factory=CallsSettings)
    cdr: CdrSettings = Field(default_factory=CdrSettings)
    dns: DnsSettings = Field(default_factory=DnsSettings)
    overload: OverloadSettings = Field(default_factory=OverloadSettings)
    registrar: RegistrarSettings = Field(default_factory=RegistrarSettings)
    voicemail: VoicemailSettings = Field(default_factory=VoicemailSettings)
    stats: StatsSettings = Field(default_factory=StatsSettings)
    admin: AdminSettings = Field(default_factory=AdminSettings)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    data_dir: Path = Path("var")
    dialplans: Path = Path("dialplans")
    trunks: Path = Path("config/trunks.yaml")
    tariffs: Path = Path("config/tariffs.yaml")
    centrex: Path = Path("config/centrex.yaml")
    blacklist: Path = Path("config/blacklist.txt")
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


def endpoint_config(settings: Settings, host: str, port: int) -> EndpointConfig:
    """Build the endpoint's config from settings and the address we are reached at."""
    sip = settings.sip
    return EndpointConfig(
        host=host,
        port=port,
        user_agent=sip.user_agent,
        timers=SipTimers(t1=sip.t1, t2=sip.t2, t4=sip.t4),
        limits=ParseLimits(
            max_message_bytes=sip.max_message_bytes,
            max_headers=sip.max_headers,
            max_header_line=sip.max_header_line,
        ),
        session_expires=sip.session_expires,
        min_se=sip.min_se,
        policy=UasPolicy(
            allowed_methods=UasPolicy().allowed_methods | {"REGISTER", "SUBSCRIBE"},
            supported_extensions=UasPolicy().supported_extensions | {"path", "replaces"},
        ),
    )


class _FileSource(PydanticBaseSettingsSource):
    """The YAML file's values, below the environment in precedence."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return (_file_values.get() or {}).get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_file_values.get() or {})


def load_settings(path: Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Load settings from ``path`` (default config/callserver.yaml), env and ``overrides``.

    Raises:
        OperatorFileError: the file is unreadable or a value is invalid; every error is listed, each
            naming where its value came from: ``file:line``, the environment variable, or the
            command line.
    """
    file_values: dict[str, Any] = {}
    lines: dict[tuple[str | int, ...], int] = {}
    source = path if path is not None else DEFAULT_CONFIG
    if path is not None or source.exists():
        file_values, lines = read_yaml(source)
    token = _file_values.set(file_values)
    try:
        return Settings(**(overrides or {}))
    except SettingsError as exc:
        raise OperatorFileError(
            [f"environment: {exc}: {exc.__cause__ or 'invalid value'}"]
        ) from exc
    except ValidationError as exc:
        origin = _origin(overrides or {}, EnvSettingsSource(Settings)())
        raise OperatorFileError(describe_errors(str(source), exc, lines, origin)) from exc
    finally:
        _file_values.reset(token)


def _origin(overrides: dict[str, Any], env: dict[str, Any]) -> Origin:
    """Name the source of a value set by a flag or a variable; None means the file."""

    def origin(loc: tuple[str | int, ...]) -> str | None:
        if _depth_of_leaf(overrides, loc):
            return "command line"
        depth = _depth_of_leaf(env, loc)
        if depth:
            return "environment " + ENV_PREFIX + "__".join(str(p) for p in loc[:depth]).upper()
        return None

    return origin


def _depth_of_leaf(values: Any, loc: tuple[str | int, ...]) -> int:
    """How many keys of ``loc`` lead to a non-mapping value in ``values`` (0: none does)."""
    for depth, part in enumerate(loc):
        if not isinstance(values, dict):
            return depth
        if part not in values:
            return 0
        values = values[part]
    return 0 if isinstance(values, dict) else len(loc)


def read_yaml(
    source: Path, holds: str = "a mapping of settings"
) -> tuple[dict[str, Any], dict[tuple[str | int, ...], int]]:
    """An operator file's mapping and the line of each key path (``positions``).

    ``holds`` names what the file must be in the error for a file that is not a mapping;
    an empty file is an empty mapping.

    Raises:
        OperatorFileError: the file is unreadable, not UTF-8, not YAML or not a mapping.
    """
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise OperatorFileError([f"{source}: cannot read: {exc.strerror}"]) from exc
    except UnicodeDecodeError as exc:
        raise OperatorFileError([f"{source}: not UTF-8 text: {exc.reason}"]) from exc
    try:
        data, lines = load_yaml_with_lines(text)
    except yaml.YAMLError as exc:
        raise OperatorFileError([_yaml_error(source, exc)]) from exc
    if data is None:
        return {}, lines
    if not isinstance(data, dict):
        raise OperatorFileError([f"{source}:1: the file must hold {holds}"])
    return data, lines


def _yaml_error(source: Path, exc: yaml.YAMLError) -> str:
    """One line: ``file:line: not valid YAML: problem (context at line N)``."""
    mark = getattr(exc, "problem_mark", None)
    where = f":{mark.line + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    context_mark = getattr(exc, "context_mark", None)
    if context and context_mark is not None:
        problem += f" ({context} at line {context_mark.line + 1})"
    return f"{source}{where}: not valid YAML: {problem}"


# Settings read only at start-up (sockets, transaction timers, the RTP port pool, logging, the
# CDR ingest interval, the node's place in a cluster): SIGHUP keeps their running values and
# logs that a restart is needed.
_STARTUP_ONLY = {
    "sip": (
        "listen",
        "advertised_address",
        "t1",
        "t2",
        "t4",
        "tcp_idle_timeout",
        "tcp_max_connections",
    ),
    "media": ("rtp_port_min", "rtp_port_max", "ptime", "symmetric_rtp", "reorder_packets"),
    "cdr": ("ingest_interval",),
    "admin": ("listen", "enabled"),
    "cluster": ("node", "redis", "postgres", "lease", "edge"),
}
_STARTUP_ONLY_TOP = ("log_level", "log_format")


def keep_startup_values(running: Settings, loaded: Settings) -> tuple[Settings, list[str]]:
    """``loaded`` with the start-up-only settings as ``running`` has them, and which differed."""
    changed: list[str] = []
    update: dict[str, Any] = {}
    for section, names in _STARTUP_ONLY.items():
        old, new = getattr(running, section), getattr(loaded, section)
        keep = {name: getattr(old, name) for name in names}
        changed += [f"{section}.{name}" for name in names if getattr(new, name) != keep[name]]
        update[section] = new.model_copy(update=keep)
    for name in _STARTUP_ONLY_TOP:
        if getattr(loaded, name) != getattr(running, name):
            changed.append(name)
        update[name] = getattr(running, name)
    return loaded.model_copy(update=update), changed
