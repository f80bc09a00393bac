"""Dialplan set (re)load: milliseconds a file, with PyYAML's C parser and its Python one.

A running server compiles the whole dialplans directory on every change (in a worker
thread); this measures what that costs per file for N copies of the shipped company plan,
with the libyaml parser the server uses and, in the same run, with PyYAML's pure-Python
parser for the ratio. Prints one line per parser and the ratio.

    .venv/bin/python bench/dialplan_load.py [--files 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import yaml

from callserver.config import positions
from callserver.config.settings import load_settings
from callserver.config.tariffs import load_tariffs
from callserver.dialplan.loader import load_plans
from callserver.dialplan.reload import plan_context
from callserver.media.prompts import PromptStore

ROOT = Path(__file__).resolve().parents[1]
PLAN = ROOT / "dialplans" / "38733100200.yaml"


def _best(directory: Path, rounds: int) -> float:
    settings = load_settings(ROOT / "config" / "callserver.yaml")
    prompts = PromptStore(ROOT / "prompts", settings.media.language_chain)
    context = plan_context(prompts, load_tariffs(ROOT / "config" / "tariffs.yaml"), "en")
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        result = load_plans(directory, context)
        best = min(best, time.perf_counter() - started)
        assert not result.errors, result.errors[:3]
    return best


def write_plans(directory: Path, files: int) -> None:
    """``files`` copies of the shipped company plan in ``directory``, one number each."""
    for index in range(files):
        shutil.copy(PLAN, directory / f"3873310{index:04d}.yaml")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        write_plans(directory, args.files)
        figures = {}
        for name, loader in (("libyaml", yaml.CSafeLoader), ("python", yaml.SafeLoader)):
            positions._LOADER = loader  # the benchmark compares the two parsers
            seconds = _best(directory, args.rounds)
            figures[name] = seconds
            per_file = 1000 * seconds / args.files
            print(f"{name:8s} {args.files} files {seconds:6.2f} s  {per_file:5.1f} ms/file")
        print(f"ratio python/libyaml {figures['python'] / figures['libyaml']:.1f}")


if __name__ == "__main__":
    main()
