"""The edge's Kamailio files from a node list: ``callserver edge-config NODES.yaml``.

The node list (deploy/kamailio/nodes.yaml is the example the shipped deploy/kamailio files
are written from)::

    listen: 172.28.0.10:5060        # the edge's address and port (UDP and TCP)
    advertise: 203.0.113.10:5060    # optional: the address callers reach, when another
    dispatcher_list: /etc/kamailio/dispatcher.list   # where kamailio.cfg finds the list
    nodes:                          # each node's name and SIP address (its sip.listen)
      node-a: 172.28.0.11:5060
      node-b: 172.28.0.12:5060
    probe_interval: 1               # s between OPTIONS probes of each node
    probe_threshold: 1              # probes unanswered before a node is inactive
    reply_timeout: 1.5              # s a node has to answer a request (any reply)
    pike_requests: 200              # requests from one source address in 2 s before a flood

:func:`render` returns the two files' text (``kamailio.cfg``, ``dispatcher.list``);
:func:`load_node_list` reads a node list, its errors as ``file:line: field: message``. Each
node's ``cluster.edge.addresses`` must name the edge's address (``listen``'s IP; with the
port when the edge shares its IP with callers, as on one test machine).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from callserver.cluster.kamailio_cfg import KAMAILIO_CFG
from callserver.config.cluster import EdgeSettings
from callserver.config.errors import OperatorFileError
from callserver.config.positions import describe_errors, load_yaml_with_lines

__all__ = ["EdgeFiles", "NodeList", "load_node_list", "render", "write_files"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class _Cfg(Template):
    delimiter = "%%"


class NodeList(BaseModel):
    """The edge's address, its nodes and its timings; see the module docstring."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    listen: str
    advertise: str | None = None
    dispatcher_list: str = "/etc/kamailio/dispatcher.list"
    nodes: dict[str, str] = Field(min_length=1)
    probe_interval: int = Field(1, ge=1, le=60)
    probe_threshold: int = Field(1, ge=1, le=10)
    reply_timeout: float = Field(1.5, ge=0.2, le=30)
    pike_requests: int = Field(200, ge=2, le=100000)
    children: int = Field(4, ge=1, le=64)
    source_header: str = EdgeSettings().source_header

    @field_validator("listen", "advertise")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None:
            host_port(value)
        return value

    @field_validator("nodes")
    @classmethod
    def _nodes(cls, value: dict[str, str]) -> dict[str, str]:
        for name, address in value.items():
            if not _NAME.fullmatch(name):
                raise ValueError(f"{name!r}: a node name is letters, digits, '_', '.', '-'")
            host_port(address)
        return value


def host_port(address: str) -> tuple[str, int]:
    """``(ip, port)`` of ``IP:PORT`` (``[IPv6]:PORT``); ValueError saying what is expected."""
    host, sep, port = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError
        return str(ipaddress.ip_address(host)), int(port)
    except ValueError:
        raise ValueError(
            f"{address!r} is not IP:PORT (192.0.2.10:5060, [2001:db8::1]:5060)"
        ) from None


def _sip_hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True, slots=True)
class EdgeFiles:
    """The text of the edge's two files."""

    kamailio_cfg: str
    dispatcher_list: str


def render(nodes: NodeList, source: str = "NODES.yaml") -> EdgeFiles:
    """kamailio.cfg and dispatcher.list for ``nodes``; ``source`` is the node list's name
    the files say they were written from."""
    host, port = host_port(nodes.listen)
    listen = [f"listen={proto}:{_sip_hostport(host, port)}" for proto in ("udp", "tcp")]
    if nodes.advertise is not None:
        public = _sip_hostport(*host_port(nodes.advertise))
        listen = [f"{line} advertise {public}" for line in listen]
    cfg = _Cfg(KAMAILIO_CFG).substitute(
        SOURCE=source,
        CHILDREN=nodes.children,
        LISTEN="\n".join(listen),
        REPLY_TIMEOUT=round(nodes.reply_timeout * 1000),
        PIKE_REQUESTS=nodes.pike_requests,
        DISPATCHER_LIST=nodes.dispatcher_list,
        PING_HOST=_sip_hostport(host, port),
        PROBE_INTERVAL=nodes.probe_interval,
        PROBE_THRESHOLD=nodes.probe_threshold,
        SOURCE_HEADER=nodes.source_header,
    )
    return EdgeFiles(kamailio_cfg=cfg, dispatcher_list=dispatcher_list(nodes, source))


def dispatcher_list(nodes: NodeList, source: str = "NODES.yaml") -> str:
    """Set 1: every node, by its SIP address (UDP), named by its ``duid``."""
    lines = [
        f"# The nodes behind the edge: written by `callserver edge-config {source}`.",
        "# setid destination flags priority attributes",
    ]
    for name, address in nodes.nodes.items():
        lines.append(f"1 sip:{_sip_hostport(*host_port(address))} 0 0 duid={name}")
    return "\n".join(lines) + "\n"


def load_node_list(path: Path) -> NodeList:
    """The node list in ``path``.

    Raises:
        OperatorFileError: unreadable, not YAML, or with invalid values (``file:line:``).
    """
    try:
        data, lines = load_yaml_with_lines(path.read_text())
    except OSError as exc:
        raise OperatorFileError([f"{path}: cannot read: {exc.strerror}"]) from None
    except yaml.YAMLError as exc:
        raise OperatorFileError([f"{path}: not valid YAML: {exc}"]) from None
    try:
        return NodeList.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise OperatorFileError(describe_errors(str(path), exc, lines)) from None


def write_files(nodes: NodeList, directory: Path, source: str = "NODES.yaml") -> list[Path]:
    """Write kamailio.cfg and dispatcher.list into ``directory``; the paths written."""
    files = render(nodes, source)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (
        ("kamailio.cfg", files.kamailio_cfg),
        ("dispatcher.list", files.dispatcher_list),
    ):
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written
