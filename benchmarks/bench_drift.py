"""Drift: speed and verdicts on 1,000,000 x 8 features next to KS / Evidently / NannyML, and calibration.

    python benchmarks/bench_drift.py [--rounds 7] [--rows 1000000] [--seeds 20] [--skip-calibration]

(a) speed: `drift.compare_arrays(ref, cur)` (profile both + compare) with ref and cur each
    rows x 8 float64 columns, against scipy `ks_2samp` over the same 8 columns, and
    `compare_profiles` of the two stored profiles alone; rounds interleaved; median and min-max
    seconds, and rows/s (ref + cur rows per second).
(b) side by side on the same data: columns 0-3 iid N(0, 1); 4-5 N(0.5, 1.2) (mean +0.5 sd,
    sd x 1.2); 6-7 N(1, 1.5). Per column: trainbook's status; scipy KS (drift: p < 0.05);
    Evidently's default data-drift preset as documented (reference > 1000 rows and > 5 distinct
    values: Wasserstein distance / max(std(reference), 0.001) >= 0.1; dataset drift when >= 50%
    of the columns drift); NannyML's default univariate calculator as documented (Jensen-Shannon
    distance, base 2, over the reference's Doane histogram bins plus the mass outside them, in
    each of 10 equal chunks of the current data; alert when > 0.1; a column drifts when a chunk
    alerts; NannyML gives no dataset verdict, so half the columns is used, as for Evidently).
    The rules are implemented here with numpy/scipy (evidently/nannyml are not installed).
(c) calibration over `--seeds` seeds, built-in data, limit 1000, per task:
    iid: a random 4:1 split of one training set (two iid samples), profiled with a seeded,
    untrained tiny model so that `predicted` is tested too; expected: no feature "drift", no
    "warn" from the token features (tokens, predicted);
    shifts: training set vs `current` with each built-in shift at its default strength,
    expected: dataset drift; baseline: training set vs the default `current` (shift none; lm
    and text-cls: other files than training).
    Counts are seeds: false drift (a data feature "drift"), false warn (a data feature "warn"),
    token warn (tokens or predicted not "ok"), dataset drift.
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
TOKEN_FEATURES = ("tokens", "predicted")


def columns(rows: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    ref = rng.normal(size=(rows, 8))
    cur = np.concatenate([rng.normal(size=(rows, 4)), rng.normal(0.5, 1.2, size=(rows, 2)),
                          rng.normal(1.0, 1.5, size=(rows, 2))], axis=1)
    return ref, cur


def speed(ref, cur, rounds: int) -> dict:
    from scipy.stats import ks_2samp

    ours, theirs, stored = [], [], []
    drift.compare_arrays(ref[:1000], cur[:1000])  # warm up imports
    profiles = drift.profile_arrays(ref), drift.profile_arrays(cur)
    for _ in range(rounds):
        t = time.perf_counter()
        drift.compare_arrays(ref, cur)
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        for j in range(ref.shape[1]):
            ks_2samp(ref[:, j], cur[:, j])
        theirs.append(time.perf_counter() - t)
        t = time.perf_counter()
        drift.compare_profiles(*profiles)
        stored.append(time.perf_counter() - t)
    return {"rows": len(ref), "rounds": rounds, "compare_arrays_s": _stats(ours),
            "scipy_ks_2samp_8_columns_s": _stats(theirs), "compare_stored_profiles_s": _stats(stored),
            "rows_per_s": 2 * len(ref) / statistics.median(ours),
            "speedup_vs_scipy_ks": statistics.median(theirs) / statistics.median(ours)}


def _stats(xs: list[float]) -> dict:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}


def evidently_rule(ref: np.ndarray, cur: np.ndarray) -> tuple[float, bool]:
    """Evidently's default for a numeric column (documented): KS p < 0.05 up to 1000 reference rows,
    else normed Wasserstein >= 0.1 (columns with <= 5 distinct values use other tests; not here)."""
    from scipy.stats import ks_2samp, wasserstein_distance

    if len(ref) <= 1000:
        p = float(ks_2samp(ref, cur).pvalue)
        return p, p < 0.05
    w = float(wasserstein_distance(ref, cur) / max(np.std(ref), 0.001))
    return w, w >= 0.1


def nannyml_rule(ref: np.ndarray, cur: np.ndarray, chunks: int = 10) -> tuple[float, bool]:
    """NannyML's default for a continuous column (documented): JS distance (base 2) per chunk over the
    reference's Doane bins, the current mass outside them as one more bin; alert when > 0.1."""
    from scipy.spatial.distance import jensenshannon

    edges = np.histogram_bin_edges(ref, bins="doane")
    ref_p = np.histogram(ref, bins=edges)[0] / len(ref)
    worst = 0.0
    for part in np.array_split(cur, chunks):
        cur_p = np.histogram(part, bins=edges)[0] / len(part)
        outside = 1.0 - cur_p.sum()
        a, b = (np.append(ref_p, 0.0), np.append(cur_p, outside)) if outside > 0 else (ref_p, cur_p)
        worst = max(worst, float(jensenshannon(a, b, base=2)))
    return worst, worst > 0.1


def side_by_side(ref, cur) -> dict:
    from scipy.stats import ks_2samp

    report = drift.compare_arrays(ref, cur)
    out = {"columns": [], "trainbook_dataset_drift": report.dataset_drift}
    for j, row in enumerate(report.rows):
        ks = ks_2samp(ref[:, j], cur[:, j])
        ev, ev_drift = evidently_rule(ref[:, j], cur[:, j])
        nm, nm_drift = nannyml_rule(ref[:, j], cur[:, j])
        out["columns"].append({"column": j, "trainbook": row["status"], "statistic": row["statistic"],
                               "score": row["score"], "psi": row["psi"], "wasserstein": row["wasserstein"],
                               "ks_p": float(ks.pvalue), "ks_drift": bool(ks.pvalue < 0.05),
                               "evidently_w": ev, "evidently_drift": bool(ev_drift),
                               "nannyml_max_js": nm, "nannyml_drift": bool(nm_drift)})
    for tool in ("ks", "evidently", "nannyml"):
        n = sum(c[f"{tool}_drift"] for c in out["columns"])
        out[f"{tool}_dataset_drift"] = n / len(out["columns"]) >= 0.5
    return out


def _iid_split(examples, seed: int):
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    cut = len(order) * 4 // 5
    return [examples[i] for i in order[:cut]], [examples[i] for i in order[cut:]]


def _tally(report) -> dict:
    data = [r for r in report.rows if r["group"] == "data"]
    return {"runs": 1, "false_drift": any(r["status"] == "drift" for r in data),
            "false_warn": any(r["status"] == "warn" for r in data),
            "token_warn": any(r["status"] != "ok" for r in report.rows if r["feature"] in TOKEN_FEATURES),
            "dataset_drift": report.dataset_drift}


def calibration(seeds: int, tasks=tuple(LIMITS)) -> dict:
    """{"lm/iid": {"runs", "false_drift", "false_warn", "token_warn", "dataset_drift"} (seed counts), ...}."""
    import trainbook as tb

    out = {}
    for task in tasks:
        for seed in range(seeds):
            data = tb.load_task_data(task, seed=seed, limit=LIMITS[task])
            model = tb.build_model(data.spec, "tiny", seed=seed)
            ref = drift.profile_dataset(data.train, data.spec)
            cases = {"iid": [drift.profile_dataset(part, data.spec, model=model)
                             for part in _iid_split(data.train, seed)],
                     "baseline": [ref, drift.profile_dataset(data.current, data.spec)]}
            for shift in SHIFTS[task]:
                shifted = tb.load_task_data(task, seed=seed, limit=LIMITS[task], shift=shift)
                cases[shift] = [ref, drift.profile_dataset(shifted.current, data.spec)]
            for case, (a, b) in cases.items():
                tally = out.setdefault(f"{task}/{case}", {})
                for k, v in _tally(drift.compare_profiles(a, b)).items():
                    tally[k] = tally.get(k, 0) + int(v)
    return out


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark (argv: command-line flags; None = defaults), print tables, return the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--skip-calibration", action="store_true")
    args = parser.parse_args(argv or [])
    ref, cur = columns(args.rows)
    results = {"speed": speed(ref, cur, args.rounds), "side_by_side": side_by_side(ref, cur)}
    s = results["speed"]
    print(f"drift: profile + compare, {args.rows:,} rows x 8 features (ref and cur), {args.rounds} rounds")
    for name, key in (("compare_arrays", "compare_arrays_s"), ("scipy ks_2samp x8", "scipy_ks_2samp_8_columns_s"),
                      ("stored profiles", "compare_stored_profiles_s")):
        m = s[key]
        print(f"  {name:<18} {m['median']:.3f} s  (min {m['min']:.3f}, max {m['max']:.3f})")
    print(f"  rows/s {s['rows_per_s']:,.0f} | scipy/ours {s['speedup_vs_scipy_ks']:.1f}x")
    sbs = results["side_by_side"]
    print(f"side by side, {args.rows:,} rows: cols 0-3 iid, 4-5 mean +0.5 sd & sd x1.2, 6-7 mean +1 sd & sd x1.5")
    print("  col trainbook (statistic score)     PSI     W/sd | KS p      | Evidently W | NannyML max JS")
    for c in sbs["columns"]:
        print(f"  {c['column']:>3} {c['trainbook']:<5} ({c['statistic']:<11} {c['score']:6.3f}) {c['psi']:7.4f} "
              f"{c['wasserstein']:7.4f} | {c['ks_p']:.2e} {'D' if c['ks_drift'] else '-'} | "
              f"{c['evidently_w']:.4f} {'D' if c['evidently_drift'] else '-'}    | "
              f"{c['nannyml_max_js']:.4f} {'D' if c['nannyml_drift'] else '-'}")
    count = lambda key: sum(c[key] for c in sbs["columns"])  # noqa: E731
    n_tb = sum(c["trainbook"] == "drift" for c in sbs["columns"])
    print(f"  columns drifted: trainbook {n_tb}, KS {count('ks_drift')}, Evidently {count('evidently_drift')}, "
          f"NannyML {count('nannyml_drift')} | dataset drift: trainbook {sbs['trainbook_dataset_drift']}, "
          f"KS {sbs['ks_dataset_drift']}, Evidently {sbs['evidently_dataset_drift']}, "
          f"NannyML {sbs['nannyml_dataset_drift']}")
    if not args.skip_calibration:
        results["calibration"] = calibration(args.seeds)
        print(f"calibration over {args.seeds} seeds (seeds with: a data feature 'drift' | a data feature 'warn' | "
              "tokens/predicted not 'ok' | dataset drift):")
        for case, c in results["calibration"].items():
            expect = {"iid": "expect no drift, tokens ok",
                      "baseline": "train vs current, no shift"}.get(case.split("/")[1], "expect dataset drift")
            print(f"  {case:<21} feature drift {c['false_drift']:>2} | feature warn {c['false_warn']:>2} | token not ok "
                  f"{c['token_warn']:>2} | dataset drift {c['dataset_drift']:>2}/{c['runs']}  ({expect})")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
