"""make bench: every benchmark in its own fresh interpreter, one after the other.

    python benchmarks/run_all.py [overhead drift search throughput lint tokenizers data persist model_check loading]

Each runs in a subprocess so one benchmark's settings (thread counts, imports, caches) cannot
change the next one's numbers.
"""

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = ["overhead", "drift", "search", "throughput", "lint", "tokenizers", "data", "persist", "model_check", "loading"]


def main(names=None) -> int:
    failed = []
    for name in names or BENCHES:
        print(f"== bench_{name} ==", flush=True)
        t0 = time.perf_counter()
        if subprocess.run([sys.executable, str(HERE / f"bench_{name}.py")]).returncode != 0:
            failed.append(name)
        print(f"   ({time.perf_counter() - t0:.0f} s)\n", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
