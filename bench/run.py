"""Run every benchmark in bench/ with one command and print the ratios measured in this run.

    .venv/bin/python bench/run.py [NAME ...] [--json OUT]

Each ``bench/bench_*.py`` module defines ``run() -> list[dict]``; every dict is one measured
figure with keys ``name``, ``value``, ``unit`` ("x" for a ratio to the bare-library baseline
measured in the same run, else e.g. "ms/file"), ``goal`` (the upper bound we aim for) and
optionally ``detail``. Ratios, not seconds, are the targets: these machines are noisy.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Run only when named: ``bench/run.py memory`` (peak RSS per image byte for open, simulate,
# plan-path and 100 critical structures, see bench/bench_memory.py).
ON_REQUEST = ("memory",)


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="run only bench_NAME.py modules")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE.parent))
    paths = sorted(HERE.glob("bench_*.py"))
    if args.names:
        paths = [p for p in paths if p.stem.removeprefix("bench_") in args.names]
    else:  # the memory budgets take many minutes on a generated 512x512x800 CT: by name only
        paths = [p for p in paths if p.stem.removeprefix("bench_") not in ON_REQUEST]
    results = []
    failed = 0
    for path in paths:
        t0 = time.perf_counter()
        print(f"== {path.stem}", flush=True)
        for row in _load(path).run():
            ok = row.get("goal") is None or row["value"] <= row["goal"]
            failed += not ok
            row["meets_goal"] = ok
            results.append({"bench": path.stem, **row})
            goal = "" if row.get("goal") is None else f"  (goal <= {row['goal']:g}{row['unit']})"
            mark = "info" if row.get("goal") is None else ("ok  " if ok else "MISS")
            print(f"  {mark} {row['name']}: {row['value']:.3g}{row['unit']}{goal}"
                  f"  {row.get('detail', '')}", flush=True)
        print(f"   ({time.perf_counter() - t0:.1f} s)", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print(f"{len(results) - failed} figures meet their goal, {failed} miss")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
