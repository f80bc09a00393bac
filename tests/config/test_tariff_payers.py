"""config/tariffs.yaml: callers' networks, split tariffs, forwarding surcharges, warnings."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from callserver.cdr.rating import Increment, Payer
from callserver.config.tariffs import load_tariffs
from tests.config.test_tariffs import MINIMAL, errors_of, write

# -- callers' networks, split tariffs, forwarding surcharges ------------------------------------

SPLIT = """\
caller_networks:
  home: ["033"]
  mobile: ["061"]
forwarding_surcharges:
  abroad: abroad_extra
tariffs:
  fixed: {per_minute: 0.044}
  split:
    caller: {per_minute: 0.042}
    called: {per_minute: 0.020, increment: 60/60}
  abroad_extra: {per_minute: 0.3}
classes:
  access:
    kind: unique_access
    tariff: fixed
    tariff_from: {home: split}
    patterns: ["081"]
  geo:
    kind: geographic
    tariff: fixed
    zone: home
    patterns: ["03"]
  foreign:
    kind: international
    tariff: fixed
    zone: abroad
    patterns: ["+"]
"""


def test_a_split_tariff_and_the_callers_network(tmp_path: Path) -> None:
    """A tariff with caller and called shares applies to callers of the network it is named for."""
    tariffs = load_tariffs(write(tmp_path, SPLIT))
    split = tariffs.tariffs["split"]
    assert [(s.payer, s.price, s.increment) for s in split.shares] == [
        (Payer.CALLER, Decimal("0.042"), Increment(1, 1)),
        (Payer.CALLED, Decimal("0.020"), Increment(60, 60)),
    ]
    access = tariffs.classify("081 123")
    assert [r.tariff for r in tariffs.charges(access, 30, caller="033 123 456")] == ["split"] * 2
    assert [(r.payer, r.cost) for r in tariffs.charges(access, 30, caller="033 123 456")] == [
        (Payer.CALLER, Decimal("0.0210")),
        (Payer.CALLED, Decimal("0.0200")),  # a started minute at 60/60
    ]
    assert [r.tariff for r in tariffs.charges(access, 30, caller="061 123 456")] == ["fixed"]
    assert tariffs.surcharges == {"abroad": "abroad_extra"}


SPLIT_CASES = [
    (
        "    tariff_from: {home: split}\n",
        "    tariff_from: {work: split}\n",
        ":16: classes.access.tariff_from.work: unknown caller network; "
        "caller_networks: home, mobile",
    ),
    (
        "    tariff_from: {home: split}\n",
        "    tariff_from: {home: splt}\n",
        ":16: classes.access.tariff_from.home: unknown tariff 'splt'",
    ),
    (
        '  home: ["033"]\n',
        '  home: ["03a"]\n',
        ":2: caller_networks.home.0: pattern '03a': use digits",
    ),
    (
        '  mobile: ["061"]\n',
        '  mobile: ["0 33"]\n',
        ":3: caller_networks.mobile.0: pattern '0 33' is the same as '033' "
        "(at caller_networks.home.0)",
    ),
    ('  mobile: ["061"]\n', "  mobile: [61]\n", ":3: caller_networks.mobile: pattern 61 is not"),
    (
        "  abroad: abroad_extra\n",
        "  abraod: abroad_extra\n",
        ":5: forwarding_surcharges.abraod: no class has zone 'abraod'; zones: abroad, home",
    ),
    (
        "  abroad: abroad_extra\n",
        "  abroad: extra\n",
        ":5: forwarding_surcharges.abroad: unknown tariff 'extra'",
    ),
    (
        "    caller: {per_minute: 0.042}\n",
        "    per_minute: 0.05\n    caller: {per_minute: 0.042}\n",
        ":8: tariffs.split: give exactly one of per_minute, per_call, free: true, or the shares",
    ),
    (
        "    caller: {per_minute: 0.042}\n",
        "    caller: {per_minute: 0.042, per_call: 1}\n",
        ":9: tariffs.split.caller: give exactly one of per_minute or per_call",
    ),
    (
        "    caller: {per_minute: 0.042}\n",
        "    caller: {per_minute: 0.042}\n    payer: called\n",
        ":8: tariffs.split: payer is only for free tariffs",
    ),
    (
        "    caller: {per_minute: 0.042}\n",
        "    callee: {per_minute: 0.042}\n",
        ":9: tariffs.split.callee: unknown key",
    ),
]


@pytest.mark.parametrize(("old", "new", "error"), SPLIT_CASES)
def test_network_split_and_surcharge_errors_name_file_line_and_field(
    tmp_path: Path, old: str, new: str, error: str
) -> None:
    """Each invalid network, split tariff or surcharge is reported as file:line: field: message."""
    assert old in SPLIT
    path = write(tmp_path, SPLIT.replace(old, new, 1))
    errors = errors_of(path)
    assert any(line.startswith(f"{path}{error}") for line in errors), errors


@pytest.mark.parametrize(
    ("patterns", "cap", "own", "dialplan", "expected"),
    [
        ('["03"]', None, None, None, None),  # only the default cap: nobody is warned
        ('["03"]', None, None, 600.0, 30.0),  # a dialplan's cap: the global warning
        ('["03"]', 600, None, None, 30.0),  # a class cap: the global warning
        ('["03"]', 600, 5, None, 5.0),  # the class's own warning wins
        ('["03"]', 600, 5, 60.0, 5.0),
    ],
)
def test_warn_before_is_the_classes_else_the_global_one_for_a_capped_call(
    tmp_path: Path,
    patterns: str,
    cap: int | None,
    own: int | None,
    dialplan: float | None,
    expected: float | None,
) -> None:
    """The class's warn_before wins; else cap_warning when the call has a cap of its own."""
    extra = (f"    max_duration: {cap}\n" if cap else "") + (
        f"    warn_before: {own}\n" if own else ""
    )
    text = "cap_warning: 30\n" + MINIMAL.replace(
        '    patterns: ["03"]\n', f"    patterns: {patterns}\n{extra}"
    )
    tariffs = load_tariffs(write(tmp_path, text))
    geo = tariffs.classify("033 123 456")
    assert tariffs.warn_before(geo, dialplan) == expected
    assert tariffs.warn_before(None, dialplan) == (30.0 if dialplan else None)
    timer = tariffs.credit_timer(geo, 1000.0, dialplan)
    assert timer.warn_before == expected
    assert timer.deadline == 1000.0 + min(x for x in (cap, dialplan, 14400) if x)


def test_a_dialplan_cap_longer_than_the_class_allows_is_ignored_by_the_timer(
    tmp_path: Path,
) -> None:
    """The running server keeps the class's cap when a plan asks for more (check refuses it)."""
    tariffs = load_tariffs(write(tmp_path, MINIMAL))
    premium = tariffs.classify("092 291 123")
    assert tariffs.credit_timer(premium, 0.0, 900.0).cap == 180
    assert tariffs.credit_timer(None, 0.0, 900.0).cap == 900
    assert tariffs.credit_timer(None, 0.0, None).cap == 14400
