"""A 200 MB text corpus through load_task_data: time, peak RSS, and the second run's cache hit.

    python benchmarks/bench_data.py [--mb 200] [--tokenizers byte bpe:2000]

The corpus (generated here, seeded: lines of words drawn from a Zipf-like vocabulary) is loaded
with load_task_data("lm", source=<corpus>, tokenizer=...) twice, each time in a fresh process
with the same cache folder: the first run reads, splits, trains the tokenizer (bpe) and writes the
token cache; the second finds it (info["cache"] == "hit"). Each process reports its wall time and
peak RSS (ru_maxrss), with the RSS after `import trainbook, torch` as the baseline, and then reads
every validation window once (memory-mapped) to show that reading stays within that memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_corpus(path: Path, megabytes: float, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    letters = np.array(list("etaoinshrdlucmfwypvbgkqjxz"))
    vocab = ["".join(rng.choice(letters, size=rng.integers(2, 9))) for _ in range(20000)]
    weights = 1.0 / np.arange(1, len(vocab) + 1)
    weights /= weights.sum()
    target, written = int(megabytes * 1e6), 0
    with open(path, "w", encoding="utf-8") as out:
        while written < target:
            words = rng.choice(len(vocab), size=200_000, p=weights)
            lengths = rng.integers(6, 18, size=len(words) // 6)
            text, start = [], 0
            for n in lengths:
                text.append(" ".join(vocab[i] for i in words[start:start + n]).capitalize() + ".\n")
                start += n
            chunk = "".join(text)
            out.write(chunk)
            written += len(chunk)
    return path


def child(corpus: str, cache: str, tokenizer: str) -> dict:
    import torch  # noqa: F401  (part of the baseline, as in any training process)

    import trainbook as tb

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    data = tb.load_task_data("lm", source=corpus, tokenizer=tokenizer, cache_dir=cache)
    seconds = time.perf_counter() - t0
    load_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t1 = time.perf_counter()
    tokens = sum(len(data.val[i]["input_ids"]) for i in range(len(data.val)))
    return {"seconds": seconds, "peak_rss_mb": load_rss, "baseline_rss_mb": baseline, "cache": data.info["cache"],
            "train_windows": len(data.train), "val_tokens": tokens, "read_val_s": time.perf_counter() - t1,
            "read_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=200.0)
    parser.add_argument("--tokenizers", nargs="+", default=["byte", "bpe:2000"])
    parser.add_argument("--child", nargs=3, metavar=("CORPUS", "CACHE", "TOKENIZER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child)))
        return {}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        corpus = write_corpus(Path(tmp) / "corpus.txt", args.mb)
        size = corpus.stat().st_size / 1e6
        print(f"corpus: {size:.0f} MB of generated text (written in {time.perf_counter() - t0:.0f} s)")
        print(f"{'tokenizer':<10} {'run':<7} {'time s':>8} {'peak RSS MB':>12} {'(import baseline)':>18} "
              f"{'cache':>6} {'train windows':>14} {'read val: s, peak MB':>22}")
        for tokenizer in args.tokenizers:
            cache = Path(tmp) / f"cache-{tokenizer.replace(':', '-')}"
            for run in ("first", "second"):
                proc = subprocess.run([sys.executable, __file__, "--child", str(corpus), str(cache), tokenizer],
                                      capture_output=True, text=True)
                if proc.returncode != 0:
                    raise SystemExit(proc.stderr[-3000:])
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                results[(tokenizer, run)] = r
                print(f"{tokenizer:<10} {run:<7} {r['seconds']:>8.1f} {r['peak_rss_mb']:>12.0f} "
                      f"{r['baseline_rss_mb']:>18.0f} {r['cache']:>6} {r['train_windows']:>14,} "
                      f"{r['read_val_s']:>12.1f} {r['read_peak_rss_mb']:>9.0f}", flush=True)
    return results


if __name__ == "__main__":
    main()
