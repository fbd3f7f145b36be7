"""The model check notebook's wall time, headless, kernel start included (target: level quick,
tiny lm model, <= 30 s), and where the time goes.

    python benchmarks/bench_model_check.py [--rounds 3] [--full-rounds 1]

Each round runs `papermill notebooks/model_check.ipynb` in a fresh process, the way
`make model-check` does, at level quick (the default parameters) and then at level full;
medians with min-max over the rounds. The seconds of each check come from the report the
notebook saves (model_check.json), medians over the rounds. The CPU load average is printed
with the result: on a shared machine the numbers are only as quiet as the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_QUICK_S = 30.0


def run_once(out: Path, level: str, name: str) -> tuple[float, dict]:
    cmd = [sys.executable, "-m", "papermill", str(ROOT / "notebooks" / "model_check.ipynb"), str(out / f"{name}.ipynb"),
           "-p", "level", level, "-p", "run_name", name, "-p", "output_dir", str(out), "--cwd", str(ROOT),
           "--no-progress-bar"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    report = json.loads((out / name / "model_check.json").read_text())
    return wall, {k: v["seconds"] for k, v in report["checks"].items()} | {"device": report["device"]}


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} s ({min(values):.1f}-{max(values):.1f})"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="quick-level runs (default 3)")
    parser.add_argument("--full-rounds", type=int, default=1, help="full-level runs (default 1)")
    args = parser.parse_args(argv)
    walls, checks = {"quick": [], "full": []}, {"quick": [], "full": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(max(args.rounds, args.full_rounds)):
            for level, rounds in (("quick", args.rounds), ("full", args.full_rounds)):
                if i < rounds:
                    wall, seconds = run_once(Path(tmp), level, f"{level}-{i}")
                    walls[level].append(wall)
                    checks[level].append(seconds)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; device {checks['quick'][0]['device']}")
    for level in ("quick", "full"):
        if not walls[level]:
            continue
        target = f" (target <= {TARGET_QUICK_S:g} s)" if level == "quick" else ""
        print(f"model_check.ipynb, tiny lm, level {level}: {summary(walls[level])} over {len(walls[level])} "
              f"run(s){target}")
        names = [k for k in checks[level][0] if k != "device"]
        print("   " + ", ".join(f"{n} {statistics.median(c[n] for c in checks[level]):.2f}" for n in names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
