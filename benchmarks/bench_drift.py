"""Drift: speed of profile + compare on 1,000,000 x 8 features, and the calibration of the verdict.

    python benchmarks/bench_drift.py [--rounds 7] [--rows 1000000] [--seeds 20] [--skip-calibration]

(a) speed: `drift.compare_arrays(ref, cur)` (profile both + compare) with ref and cur each
    rows x 8 float64 columns (4 iid, 2 shifted a little, 2 a lot), against scipy `ks_2samp` over
    the same 8 columns, and `compare_profiles` of the two stored profiles alone; rounds
    interleaved; median and min-max seconds, and rows/s (ref + cur rows per second).
(b) calibration over `--seeds` seeds, built-in data, limit 1000, no model (model outputs do not
    count in the verdict, so it is the same with one):
    iid: a random 4:1 split of one training set (two iid samples): verdict "no drift" expected;
    shifts: training set vs `current` with each built-in shift at its default strength:
    verdict "drift" expected; baseline: training set vs the default `current` (shift none).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time

import numpy as np

from trainbook import drift

LIMITS = {"lm": 1000, "text-cls": 1000, "vision-cls": 1000}
SHIFTS = {"lm": ["noise", "truncate", "packages"], "text-cls": ["noise", "truncate", "packages"],
          "vision-cls": ["brightness", "noise", "rotation"]}


def speed(rows: int, rounds: int, seed: int = 0) -> dict:
    from scipy.stats import ks_2samp

    rng = np.random.default_rng(seed)
    ref = rng.normal(size=(rows, 8))
    cur = np.concatenate([rng.normal(size=(rows, 4)), rng.normal(0.5, 1.2, size=(rows, 2)),
                          rng.normal(1.0, 1.5, size=(rows, 2))], axis=1)
    ours, theirs, stored = [], [], []
    drift.compare_arrays(ref[:1000], cur[:1000])  # warm up imports
    profiles = drift.profile_arrays(ref), drift.profile_arrays(cur)
    for _ in range(rounds):
        t = time.perf_counter()
        report = drift.compare_arrays(ref, cur)
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        for j in range(8):
            ks_2samp(ref[:, j], cur[:, j])
        theirs.append(time.perf_counter() - t)
        t = time.perf_counter()
        drift.compare_profiles(*profiles)
        stored.append(time.perf_counter() - t)
    status = {s: sum(r["status"] == s for r in report.rows) for s in ("ok", "warn", "drift")}
    return {"rows": rows, "rounds": rounds, "compare_arrays_s": _stats(ours),
            "scipy_ks_2samp_8_columns_s": _stats(theirs), "compare_stored_profiles_s": _stats(stored),
            "rows_per_s": 2 * rows / statistics.median(ours), "status": status,
            "speedup_vs_scipy_ks": statistics.median(theirs) / statistics.median(ours)}


def _stats(xs: list[float]) -> dict:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}


def _iid_split(examples, seed: int):
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    cut = len(order) * 4 // 5
    return [examples[i] for i in order[:cut]], [examples[i] for i in order[cut:]]


def calibration(seeds: int, tasks=tuple(LIMITS)) -> dict:
    """Verdict counts per case: {"lm/iid": (drift, runs), "lm/noise": ..., "lm/baseline": ...}."""
    import trainbook as tb

    out = {}
    for task in tasks:
        for seed in range(seeds):
            data = tb.load_task_data(task, seed=seed, limit=LIMITS[task])
            ref = drift.profile_dataset(data.train, data.spec)
            cases = {"iid": [drift.profile_dataset(part, data.spec) for part in _iid_split(data.train, seed)],
                     "baseline": [ref, drift.profile_dataset(data.current, data.spec)]}
            for shift in SHIFTS[task]:
                shifted = tb.load_task_data(task, seed=seed, limit=LIMITS[task], shift=shift)
                cases[shift] = [ref, drift.profile_dataset(shifted.current, data.spec)]
            for case, (a, b) in cases.items():
                hits, runs = out.get(f"{task}/{case}", (0, 0))
                out[f"{task}/{case}"] = (hits + drift.compare_profiles(a, b).dataset_drift, runs + 1)
    return out


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark (argv: command-line flags; None = defaults), print a table, return the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--skip-calibration", action="store_true")
    args = parser.parse_args(argv or [])
    results = {"speed": speed(args.rows, args.rounds)}
    s = results["speed"]
    print(f"drift: profile + compare, {args.rows:,} rows x 8 features (ref and cur), {args.rounds} rounds")
    for name, key in (("compare_arrays", "compare_arrays_s"), ("scipy ks_2samp x8", "scipy_ks_2samp_8_columns_s"),
                      ("stored profiles", "compare_stored_profiles_s")):
        m = s[key]
        print(f"  {name:<18} {m['median']:.3f} s  (min {m['min']:.3f}, max {m['max']:.3f})")
    print(f"  rows/s {s['rows_per_s']:,.0f} | scipy/ours {s['speedup_vs_scipy_ks']:.1f}x | statuses {s['status']}")
    if not args.skip_calibration:
        results["calibration"] = calibration(args.seeds)
        print(f"calibration over {args.seeds} seeds (dataset verdict 'drift' / runs; no model):")
        for case, (hits, runs) in results["calibration"].items():
            expect = {"iid": "expect no drift", "baseline": "train vs current, no shift"}.get(case.split("/")[1],
                                                                                           "expect drift")
            print(f"  {case:<22} {hits:>2}/{runs}  ({expect})")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
