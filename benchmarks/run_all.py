"""make bench: every benchmark, one after the other, each printing its own table.

    python benchmarks/run_all.py [overhead drift search throughput]
"""

import importlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

BENCHES = ["overhead", "drift", "search", "throughput"]


def main(names=None):
    for name in names or BENCHES:
        print(f"== bench_{name} ==")
        t0 = time.perf_counter()
        importlib.import_module(f"bench_{name}").main()
        print(f"   ({time.perf_counter() - t0:.0f} s)\n")


if __name__ == "__main__":
    main(sys.argv[1:])
