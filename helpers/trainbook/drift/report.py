"""Dataset profiles, drift reports and the drift verdict.

    ref = profile_dataset(data.train, spec, model=model)
    report = compare_profiles(ref, profile_dataset(data.current, spec, model=model))

Profiles are JSON dicts (an export bundle stores one as reference_profile.json); comparing two
profiles needs no raw data. Features: text -> length, unknown_rate (bytes outside printable
ASCII), lines, token_entropy (bits per sequence), tokens (frequencies); vision -> brightness,
contrast, sharpness (mean |neighbour difference|), channel_<c>_mean when there are several
channels; classification -> labels; with a model -> confidence (max softmax), loss and
predicted (class, or next token for lm). What is stored per feature: see trainbook.drift.sketch.

A feature drifts when its change is significant AND large beyond sampling noise:
- numeric (one value per example): KS p < 0.05 and (PSI' >= 0.25 or W' >= 0.1); warn at PSI'
  0.1 or W' 0.05. W' is the normalised Wasserstein distance (Evidently's statistic for more than
  1000 rows, same 0.1) minus twice its expected value between two samples of these sizes from
  the reference distribution (stats.wasserstein_noise): 0.004 std on 1,000,000 rows, where W' is
  Evidently's W; 0.2 std on 800 vs 200 rows, where W' stays 0 without drift. PSI' is PSI minus
  twice its no-drift expectation (B - 1)(1/n + 1/m): 0.11 on 800 vs 200 rows, ~0 on a million.
- categorical: p < 0.05 and JS' >= 0.1 (warn 0.05), JS' = sqrt(JS^2 - noise^2), noise twice the
  JS distance expected without drift (JS^2 ~ E[Q] / (8 ln 2)). The test and the noise take
  samples, not tokens, as the independent units: labels and predicted classes (one count per
  example) use Pearson's chi-square (a permutation p-value when an expected count is below 5);
  token counts (many per example: tokens, lm's predicted next tokens) use stats.block_chi2_test
  over the profile's 40 in-order chunks of examples (Rao-Scott), so the tokens of one window,
  and neighbouring windows of one file, count once and two halves of one dataset get a uniform
  p-value instead of p = 0. Categories that one profile pooled into "other" (vocabularies over
  1024 tokens) are pooled on both sides.
The row's statistic is whichever (psi or wasserstein; js) is largest against its drift threshold.
The dataset drifts when >= 50% of the data features drift, or when the label distribution drifts
(a prior shift). Model outputs (confidence, loss, predicted) are reported and plotted but not
counted: a model fits its training set, so its outputs there differ from any held-out data even
without drift, and the verdict stays the same with or without a model. Override any of these with
`thresholds={...}` (keys of DEFAULT_THRESHOLDS). Over time: the JS distance
(numeric features binned at the reference deciles) of each of ~10 consecutive chunks of current
data to the whole reference, with a band (mean +- 3 std) from reference chunks of about the same
size; JS stays bounded on small chunks where PSI's 1e-4 floor explodes.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np

from .features import model_features, text_features, token_names, vision_features
from .sketch import TOP_K, Sketch, categorical_summary, chunk_ids, counts_by_chunk, numeric_summary
from .stats import (bin_shares, block_chi2_test, chi2_test, js_distance, permutation_chi2_test, psi_edges,
                    psi_noise_level, share_variance, sketch_ks, sketch_psi, sketch_wasserstein, wasserstein_noise)

DEFAULT_THRESHOLDS = {"psi_warn": 0.1, "psi_drift": 0.25, "wasserstein_warn": 0.05, "wasserstein_drift": 0.1,
                      "js_warn": 0.05, "js_drift": 0.1, "p_value": 0.05, "drift_share": 0.5, "psi_bins": 10}
NOISE_MARGIN = 2.0   # W' and JS' remove this many times the no-drift expectation of W and JS
PROFILE_FORMAT, PROFILE_VERSION = "trainbook.drift.profile", 1
N_GROUPS = 10   # chunks of current data in the over-time panel
MODEL_FEATURES = ("confidence", "loss", "predicted")


# --- profiles ---

def profile_dataset(data, spec, model=None, sample_size: int | None = None) -> dict:
    """Summarise a dataset (and a model's predictions on it) as a JSON-serialisable profile.

    Args:
        data: a dataset or list of example dicts (`data.train`, `data.current`).
        spec: the TaskSpec (or its dict) the examples follow.
        model: optional; adds confidence, loss and predicted-class features.
        sample_size: profile at most this many examples, evenly spaced (order kept).
    Returns:
        a dict: format, version, task, modality, kind, n_examples, model (class name or None),
        model_features, features {name: summary}.
    Raises:
        ValueError: empty data, a TaskData instead of a split, or a non-finite feature value.
    """
    from ..tasks import TaskSpec

    spec = TaskSpec.from_dict(spec) if isinstance(spec, dict) else spec
    if hasattr(data, "train") and hasattr(data, "current"):
        raise ValueError("profile_dataset got a TaskData; pass one split, e.g. data.train or data.current")
    n = len(data)
    if n == 0:
        raise ValueError("profile_dataset got an empty dataset; nothing to profile")
    if sample_size is not None and sample_size < n:
        if sample_size < 1:
            raise ValueError(f"sample_size must be >= 1 or None; got {sample_size}")
        examples = [data[int(i)] for i in np.linspace(0, n - 1, sample_size).round()]
    else:
        examples = [data[i] for i in range(n)]
    chunk_of = chunk_ids(len(examples))
    numeric, categorical = (text_features(examples, spec, chunk_of) if spec.modality == "text"
                            else vision_features(examples, spec))
    names = list(spec.class_names) or [str(i) for i in range(spec.num_classes)]
    if spec.kind == "classification" and spec.label_key in examples[0]:
        categorical["labels"] = (counts_by_chunk(chunk_of, [int(e[spec.label_key]) for e in examples],
                                                  spec.num_classes), names)
    if model is not None:
        model_cols, predicted, k = model_features(model, examples, spec)
        numeric |= model_cols
        categorical["predicted"] = (counts_by_chunk(chunk_of, predicted, k),
                                    names if spec.kind == "classification" else token_names(k, spec))
    sizes = np.bincount(chunk_of)
    features = {}
    for name, values in numeric.items():
        try:
            features[name] = numeric_summary(values)
        except ValueError as err:
            raise ValueError(f"feature {name!r}: {err}. HINT: check the data (and the model's outputs) "
                             "for NaN/inf.") from None
    features |= {name: categorical_summary(c, cats, sizes) for name, (c, cats) in categorical.items()}
    features = dict(sorted(features.items(), key=lambda item: (model is not None and item[0] in MODEL_FEATURES)))
    return {"format": PROFILE_FORMAT, "version": PROFILE_VERSION, "task": spec.name, "modality": spec.modality,
            "kind": spec.kind, "n_examples": len(examples), "model": None if model is None else type(model).__name__,
            "model_features": [] if model is None else list(MODEL_FEATURES), "features": features}


# --- comparing ---

@dataclasses.dataclass
class DriftReport:
    """Current data compared with a reference, feature by feature.

    rows: per feature: feature, group (data|model), kind, statistic (psi|wasserstein|js), score,
        threshold (drift), warn_threshold, test (ks|chi2|chi2_permutation|rao_scott), p_value, status
        (ok|warn|drift), drifted, n_reference, n_current; numeric rows add psi, ks (D),
        wasserstein (/ reference std) and wasserstein_noise (subtracted to give the score when
        the statistic is wasserstein); categorical rows add js (raw) and js_noise.
    share_drifted: drifted data features / data features (model outputs are not counted).
    over_time: {feature: {statistic: "js", current: [score per chunk], reference: [...],
        band: [lo, hi] or None, chunk_size, reference_chunk_size}}.
    distributions: {feature: shares in percent, reference vs current, for plots}.
    """

    rows: list
    share_drifted: float
    dataset_drift: bool
    thresholds: dict
    over_time: dict
    distributions: dict
    n_reference: int
    n_current: int
    skipped: list = dataclasses.field(default_factory=list)

    @property
    def n_drifted(self) -> int:
        return sum(r["drifted"] for r in self.rows if r["group"] == "data")

    def verdict(self) -> str:
        """'3 of 7 features drifted: dataset drift' (plus the model outputs when profiled)."""
        data, model = ([r for r in self.rows if r["group"] == g] for g in ("data", "model"))
        extra = f" (model outputs: {sum(r['drifted'] for r in model)} of {len(model)})" if model else ""
        label_shift = any(r["feature"] == "labels" and r["drifted"] for r in data)
        reason = " (label shift)" if label_shift and self.share_drifted < self.thresholds["drift_share"] else ""
        return (f"{self.n_drifted} of {len(data)} features drifted{extra}: "
                + (f"dataset drift{reason}" if self.dataset_drift else "no dataset drift"))

    def row(self, feature: str) -> dict:
        for r in self.rows:
            if r["feature"] == feature:
                return r
        raise KeyError(f"no feature {feature!r} in this report; features: {[r['feature'] for r in self.rows]}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self) | {"n_drifted": self.n_drifted, "verdict": self.verdict()}

    def __str__(self) -> str:
        from ..notebook import format_table

        columns = ["feature", "group", "statistic", "value", "score", "threshold", "test", "p_value", "status"]
        rows = [r | {"value": r.get(r["statistic"], r["score"])} for r in self.rows]   # value: before the noise
        return format_table(rows, columns) + "\n" + self.verdict()


def compare_profiles(ref: dict, cur: dict, thresholds: dict | None = None) -> DriftReport:
    """Compare a current profile with a reference profile (both from profile_dataset, or loaded JSON).

    Args:
        ref, cur: profiles. thresholds: overrides for DEFAULT_THRESHOLDS.
    Returns:
        DriftReport over the features both profiles have.
    Raises:
        ValueError: not a profile, profiles of different modalities, no common feature, or a bad threshold.
    """
    t = _thresholds(thresholds)
    for p, label in ((ref, "ref"), (cur, "cur")):
        if not isinstance(p, dict) or p.get("format") != PROFILE_FORMAT:
            raise ValueError(f"{label} is not a drift profile. HINT: make one with tb.profile_dataset(data, spec)")
        if p.get("version", 0) > PROFILE_VERSION:
            raise ValueError(f"{label} has profile version {p['version']}; this trainbook reads <= {PROFILE_VERSION}. "
                             "HINT: upgrade trainbook")
    if ref["modality"] != cur["modality"]:
        raise ValueError(f"cannot compare a {ref['modality']} profile with a {cur['modality']} profile")
    names = [f for f in ref["features"] if f in cur["features"]]
    skipped = sorted(set(ref["features"]) ^ set(cur["features"]))
    if not names:
        raise ValueError("the profiles have no feature in common")
    if skipped:
        warnings.warn(f"features in only one profile are not compared: {', '.join(skipped)}. HINT: profile both "
                      "datasets the same way (with the same model, or both without).", stacklevel=2)
    rows, over_time, dists = [], {}, {}
    for name in names:
        r, c = ref["features"][name], cur["features"][name]
        compare = _compare_numeric if r["kind"] == "numeric" else _compare_categorical
        row, dists[name], over_time[name] = compare(r, c, t)
        rows.append({"feature": name, "group": "model" if name in ref.get("model_features", ()) else "data", **row})
    counted = [r for r in rows if r["group"] == "data"] or rows
    share = sum(r["drifted"] for r in counted) / len(counted)
    prior_shift = any(r["feature"] == "labels" and r["drifted"] for r in rows)
    return DriftReport(rows, share, bool(share >= t["drift_share"] or prior_shift), t, over_time, dists,
                       int(ref["n_examples"]), int(cur["n_examples"]), skipped)


def profile_arrays(x, feature_names=None, label: str = "x") -> dict:
    """Profile a feature matrix (rows = samples, in order) like profile_dataset profiles a dataset.

    Args:
        x: an array of shape (n, d) (1-D means one feature). feature_names: d names (default
            feature_0, ...). label: how errors name the matrix.
    Returns:
        a JSON-serialisable profile with one numeric feature per column.
    Raises:
        ValueError: an empty matrix, wrong names, or a non-finite value (naming the column).
    """
    x = np.asarray(x, dtype=float)
    x = x.reshape(-1, 1) if x.ndim == 1 else x
    if x.ndim != 2 or 0 in x.shape:
        raise ValueError(f"{label} must be a non-empty (rows, features) array; got shape {x.shape}")
    d = x.shape[1]
    names = [f"feature_{i}" for i in range(d)] if feature_names is None else [str(n) for n in feature_names]
    if len(names) != d or len(set(names)) != d:
        raise ValueError(f"feature_names must be {d} distinct names; got {feature_names!r}")
    features = {}
    for j, name in enumerate(names):
        try:
            features[name] = numeric_summary(x[:, j])
        except ValueError as err:
            raise ValueError(f"{label} column {j} ({name!r}): {err}. HINT: drop or impute NaN/inf first.") from None
    return {"format": PROFILE_FORMAT, "version": PROFILE_VERSION, "task": "arrays", "modality": "arrays",
            "kind": "features", "n_examples": len(x), "model": None, "model_features": [], "features": features}


def compare_arrays(ref_2d, cur_2d, feature_names=None, thresholds: dict | None = None) -> DriftReport:
    """Profile two feature matrices (rows = samples, in order) and compare them column by column.

    Args:
        ref_2d, cur_2d: arrays of shape (n, d) and (m, d) (1-D means one feature).
        feature_names: d names (default feature_0, ...). thresholds: overrides for DEFAULT_THRESHOLDS.
    Returns:
        DriftReport with one numeric row per column.
    Raises:
        ValueError: different column counts, wrong names, an empty matrix or a non-finite value.
    """
    shapes = [np.shape(ref_2d), np.shape(cur_2d)]
    if len({s[1] if len(s) == 2 else 1 for s in shapes}) != 1:
        raise ValueError(f"compare_arrays needs two arrays with the same number of columns; got shapes {shapes}")
    return compare_profiles(profile_arrays(ref_2d, feature_names, "ref_2d"),
                            profile_arrays(cur_2d, feature_names, "cur_2d"), thresholds)


def _thresholds(overrides: dict | None) -> dict:
    t = dict(DEFAULT_THRESHOLDS)
    unknown = sorted(set(overrides or {}) - set(t))
    if unknown:
        raise ValueError(f"unknown threshold(s) {', '.join(unknown)}; allowed: {', '.join(t)}")
    t.update(overrides or {})
    bad = [f"{k}={v!r}" for k, v in t.items() if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0]
    if t["p_value"] >= 1 or t["drift_share"] > 1 or int(t["psi_bins"]) != t["psi_bins"] or t["psi_bins"] < 2:
        bad.append("p_value < 1, drift_share <= 1 and an integer psi_bins >= 2 are required")
    if bad:
        raise ValueError(f"invalid drift thresholds (each must be a number > 0): {'; '.join(bad)}")
    return t


def _status(p: float, alpha: float, effects) -> str:
    """effects: (score, warn threshold, drift threshold) per statistic; significant and large = drift."""
    if p >= alpha:
        return "ok"
    if any(score >= drift for score, _, drift in effects):
        return "drift"
    return "warn" if any(score >= warn for score, warn, _ in effects) else "ok"


def _compare_numeric(r: dict, c: dict, t: dict):
    ref, cur, bins = Sketch.from_dict(r["sketch"]), Sketch.from_dict(c["sketch"]), int(t["psi_bins"])
    psi = sketch_psi(ref, cur.cdf, bins)
    d, p = sketch_ks(ref, cur)
    scale = r["std"] or 1.0
    w = sketch_wasserstein(ref, cur) / scale
    noise = NOISE_MARGIN * wasserstein_noise(ref, r["n"], c["n"]) / scale
    psi_noise = NOISE_MARGIN * psi_noise_level(ref, r["n"], c["n"], bins)
    effects = {"psi": (max(0.0, psi - psi_noise), t["psi_warn"], t["psi_drift"]),
               "wasserstein": (max(0.0, w - noise), t["wasserstein_warn"], t["wasserstein_drift"])}
    statistic = max(effects, key=lambda k: effects[k][0] / effects[k][2])
    score, warn, drift = effects[statistic]
    status = _status(p, t["p_value"], effects.values())
    row = {"kind": "numeric", "statistic": statistic, "score": score, "threshold": drift, "warn_threshold": warn,
           "test": "ks", "p_value": p, "status": status, "drifted": status == "drift", "psi": psi,
           "psi_noise": psi_noise, "ks": d, "wasserstein": w, "wasserstein_noise": noise,
           "n_reference": r["n"], "n_current": c["n"]}
    lo, hi = min(r["min"], c["min"]), max(r["max"], c["max"])
    edges = np.linspace(lo, hi, 31) if hi > lo else np.array([lo - 0.5, lo + 0.5])
    shares = lambda s: (np.diff(np.concatenate([[0.0], s.cdf(edges[1:-1]), [1.0]])) * 100).tolist()  # noqa: E731
    dist = {"kind": "numeric", "edges": edges.tolist(), "reference": shares(ref), "current": shares(cur)}
    edges = psi_edges(ref, bins)
    binned = lambda f: ([k["n"] * bin_shares(Sketch.from_dict(k).cdf, edges) for k in f["chunks"]],  # noqa: E731
                        [k["n"] for k in f["chunks"]])
    return row, dist, _over_time(bin_shares(ref.cdf, edges), *binned(r), *binned(c))


def aligned_chunks(r: dict, c: dict):
    """Both profiles' chunk counts over common columns. A category counts on its own only when both
    profiles know its count (listed, or absent from a complete list); the rest pools into 'other'."""
    pooled = [f.get("pooled_other", len(f["categories"]) == TOP_K + 1 and f["categories"][-1] == "other")
              for f in (r, c)]
    listed = [f["categories"][:-1] if p else f["categories"] for f, p in zip((r, c), pooled)]
    known = [set(names) for names in listed]
    cats = [k for k in dict.fromkeys(listed[0] + listed[1])
            if all(k in kn or not p for kn, p in zip(known, pooled))]
    if any(pooled):
        cats.append("other")
    index = {k: i for i, k in enumerate(cats)}
    out = []
    for f, p in zip((r, c), pooled):
        chunks = np.asarray(f["chunks"], dtype=float).reshape(len(f["chunks"]), -1)
        cols = np.array([index.get(k, len(cats) - 1) for k in f["categories"]], dtype=np.int64)
        if p:
            cols[-1] = len(cats) - 1
        aligned = np.zeros((len(chunks), len(cats)))
        np.add.at(aligned, (np.arange(len(chunks))[:, None], cols[None, :]), chunks)
        out.append(aligned)
    return cats, out[0], out[1]


def _compare_categorical(r: dict, c: dict, t: dict):
    cats, r_chunks, c_chunks = aligned_chunks(r, c)
    rc, cc = r_chunks.sum(0), c_chunks.sum(0)
    if rc.sum() == 0 or cc.sum() == 0:   # e.g. only empty texts: nothing to compare
        js, p, expected, test = 0.0, 1.0, 0.0, "chi2"
    elif rc.sum() == r["n"] and cc.sum() == c["n"]:   # one count per example: independent samples
        small = (np.outer([rc.sum(), cc.sum()], (rc + cc) / (rc.sum() + cc.sum())) < 5).any()
        js, test = js_distance(rc, cc), "chi2_permutation" if small else "chi2"
        _, p = permutation_chi2_test(rc, cc) if small else chi2_test(rc, cc)
        expected = (np.count_nonzero(rc + cc) - 1) * (1 / rc.sum() + 1 / cc.sum())
    else:   # many counts per example: blocks of examples are the units
        js, (_, p, _), test = js_distance(rc, cc), block_chi2_test(r_chunks, c_chunks), "rao_scott"
        (rs, rv), (cs, cv) = share_variance(r_chunks), share_variance(c_chunks)
        half, seen = (rs + cs) / 2, (rs + cs) > 0
        expected = float(np.sum((rv + cv)[seen] / half[seen]))   # E[sum((p - q)^2 / m)], JS's own weights
    noise = NOISE_MARGIN * math.sqrt(expected / (8 * math.log(2)))   # JS^2 ~ sum((p - q)^2 / m) / (8 ln 2) bits
    score = math.sqrt(max(0.0, js * js - noise * noise))
    status = _status(p, t["p_value"], [(score, t["js_warn"], t["js_drift"])])
    row = {"kind": "categorical", "statistic": "js", "score": score, "threshold": t["js_drift"],
           "warn_threshold": t["js_warn"], "test": test, "p_value": p, "status": status, "drifted": status == "drift",
           "js": js, "js_noise": noise, "n_reference": r["n"], "n_current": c["n"]}
    rp, cp = (v / max(v.sum(), 1) * 100 for v in (rc, cc))
    seen = np.flatnonzero(np.maximum(rp, cp) > 0)    # empty categories are not plotted
    top = seen[np.argsort(-np.maximum(rp, cp)[seen], kind="stable")[:12]]
    dist = {"kind": "categorical", "categories": [cats[i] for i in top], "reference": rp[top].tolist(),
            "current": cp[top].tolist()}
    return row, dist, _over_time(rc, list(r_chunks), r["chunk_sizes"], list(c_chunks), c["chunk_sizes"])


def _over_time(ref_total, ref_chunks, ref_sizes, cur_chunks, cur_sizes) -> dict:
    """JS distance to the whole reference of ~10 consecutive groups of current chunks, and of reference
    groups of about the same size (chunks are count vectors over categories or reference-decile bins)."""
    score = lambda group: js_distance(ref_total, sum(group)) if sum(group).sum() > 0 else 0.0  # noqa: E731
    k = math.ceil(len(cur_chunks) / N_GROUPS)
    cur_groups = [cur_chunks[i:i + k] for i in range(0, len(cur_chunks), k)]
    size = sum(cur_sizes) / len(cur_groups)
    g = max(1, round(size / (sum(ref_sizes) / len(ref_chunks))))
    ref_scores = [score(ref_chunks[i:i + g]) for i in range(0, len(ref_chunks) - g + 1, g)]
    band = None
    if len(ref_scores) >= 2:
        mean, std = float(np.mean(ref_scores)), float(np.std(ref_scores))
        band = [max(0.0, mean - 3 * std), mean + 3 * std]
    return {"statistic": "js", "current": [score(grp) for grp in cur_groups], "reference": ref_scores, "band": band,
            "chunk_size": round(size), "reference_chunk_size": round(g * sum(ref_sizes) / len(ref_chunks))}
