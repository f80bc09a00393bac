"""Reading back and checking the CDRs of the end-to-end tests: a stopped server's records as
`callserver cdr export` writes them, and their amounts recomputed apart from callserver's own
rating.

The amounts come from the record's billsec and the tariff's price, increment and VAT rate as
config/tariffs.yaml writes them: the file is read with every float kept as the decimal it
spells, so no amount ever passes through a binary float. The calls come in on trunk ``test``
of customer ``acme`` (``acme_trunks``), to the operator's own numbers.
"""

from __future__ import annotations

import time
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import Any

import yaml

from tests.e2e.conftest import HOST, TARIFFS, ServerProcess, exported_cdrs

OWN_NUMBERS = ("38733100200", "38790291100", "38781920123")  # the CDR tests' called numbers
QUANTUM = Decimal("0.0001")  # KM: callserver stores amounts to this
HOLD_MS = 2000  # how long an answered caller stays on the line before its BYE
Record = dict[str, object]


class _DecimalLoader(yaml.SafeLoader):
    """YAML with every float read as the Decimal its text spells (0.044 stays 0.044)."""


def _decimal(loader: yaml.SafeLoader, node: yaml.Node) -> Decimal:
    assert isinstance(node, yaml.ScalarNode)
    return Decimal(loader.construct_scalar(node))


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", _decimal)


@cache
def _price_list() -> dict[str, Any]:
    """config/tariffs.yaml, the shipped price lists, with Decimal prices."""
    data = yaml.load(TARIFFS.read_text(), Loader=_DecimalLoader)  # a SafeLoader: no objects
    assert isinstance(data, dict)
    return data


def expected_amounts(tariff: str, billsec: int) -> tuple[int, int, Decimal, Decimal]:
    """Billed units and seconds, net cost and VAT of ``billsec`` s under ``tariff`` (the file)."""
    data = _price_list()
    entry = data["tariffs"][tariff]
    vat_rate = Decimal(str(data["vat_rate"]))
    if "per_call" in entry:
        units, cost = (1, Decimal(entry["per_call"])) if billsec > 0 else (0, Decimal(0))
        seconds = billsec if units else 0
    else:
        first, _, following = str(entry.get("increment", data["default_increment"])).partition("/")
        step = int(following or first)
        units = 0 if billsec <= 0 else 1 + -(-max(0, billsec - int(first)) // step)
        seconds = 0 if units == 0 else int(first) + (units - 1) * step
        cost = Decimal(entry["per_minute"]) * seconds / 60
    cost = cost.quantize(QUANTUM, rounding=ROUND_HALF_UP)
    return units, seconds, cost, (cost * vat_rate).quantize(QUANTUM, rounding=ROUND_HALF_UP)


def acme_trunks(channels: int | None = None, route_port: int | None = None) -> dict[str, object]:
    """The local trunk, owned by customer ``acme``, with a channel limit and a route to SIPp.

    The numbers these tests call are the operator's own (``numbers``): a call from a
    customer's trunk to any other number would go out through the route.
    """
    trunk: dict[str, object] = {"match": [HOST], "customer": "acme"}
    if channels is not None:
        trunk["channels"] = channels
    trunks: dict[str, object] = {
        "customers": {"acme": {}},
        "trunks": {"test": trunk},
        "numbers": {number: {} for number in OWN_NUMBERS},
    }
    if route_port is not None:
        trunks.update(routes={"pbx": {"host": HOST, "port": route_port}}, default_route="pbx")
    return trunks


def wait_stopped(server: ServerProcess) -> dict[str, object]:
    """The stopped server's last log line, once its reader has got that far."""
    deadline = time.monotonic() + 10  # the process has exited; its output may still be queued
    while not server.events("server.stopped") and time.monotonic() < deadline:
        time.sleep(0.02)
    return server.wait_for("server.stopped")


def stopped_cdrs(server: ServerProcess, count: int) -> list[Record]:
    """The stopped server's ``count`` CDRs; a failure names the records it could not write."""
    wait_stopped(server)
    records = exported_cdrs(server.data_dir)
    lost = [line.get("error") for line in server.events("cdr.record_invalid")]
    assert len(records) == count, f"{len(records)} of {count} CDRs, not written: {lost}"
    return records


def log_tail(server: ServerProcess) -> str:
    """The server's last 40 log lines, for a failed assertion's message."""
    return "\n".join(server.raw[-40:])
