"""Drift statistics against scipy and independent implementations, tests for dependent samples, profiles,
reports, calibration.

The full 20-seed calibration runs in benchmarks/bench_drift.py; test_calibration_* use 3 seeds.
"""

import csv
import json
import math
import random

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.spatial.distance import jensenshannon

import trainbook as tb
from trainbook import drift
from trainbook.drift import stats as drift_stats
from trainbook.drift.sketch import Sketch, chunk_ids, numeric_summary
from trainbook.drift.stats import sketch_ks, sketch_psi


def random_pairs(seed=0, trials=40):
    """Pairs of samples: different sizes (n == m included), shifts, and tied (rounded) values."""
    rng = np.random.default_rng(seed)
    for i in range(trials):
        n = int(rng.integers(1, 1500))
        m = n if i % 5 == 0 else int(rng.integers(1, 1500))
        a = rng.normal(size=n)
        b = rng.normal(rng.uniform(0, 0.4), rng.uniform(0.7, 1.3), size=m)
        if i % 3 == 0:
            a, b = np.round(a, 1), np.round(b, 1)
        yield a, b


def psi_by_hand(ref, cur, bins=10):
    """The documented PSI, written independently: explicit bin membership tests in a loop."""
    edges = sorted(set(np.quantile(ref, [i / bins for i in range(1, bins)]).tolist()))
    tests = [lambda x: x < edges[0], lambda x: x == edges[0]]
    tests += [lambda x, lo=lo, hi=hi: (x > lo) & (x <= hi) for lo, hi in zip(edges, edges[1:])]
    tests.append(lambda x: x > edges[-1])
    total = 0.0
    for test in tests:
        r = max(np.count_nonzero(test(ref)) / len(ref), 1e-4)
        c = max(np.count_nonzero(test(cur)) / len(cur), 1e-4)
        total += (c - r) * math.log(c / r)
    return total


# --- statistics ---

def test_ks_test_matches_scipy_ks_2samp_statistic_and_exact_pvalue():
    for a, b in random_pairs():
        statistic, pvalue = drift.ks_test(a, b)
        expected = stats.ks_2samp(a, b)
        assert statistic == pytest.approx(expected.statistic, abs=1e-12)
        assert pvalue == pytest.approx(expected.pvalue, abs=1e-9)


def test_ks_test_large_samples_use_an_asymptotic_pvalue_close_to_scipy():
    rng = np.random.default_rng(1)
    for n, m, shift in [(12_000, 15_000, 0.0), (20_000, 30_000, 0.03), (40_000, 11_000, 0.05)]:
        a, b = rng.normal(size=n), rng.normal(shift, 1.0, size=m)
        statistic, pvalue = drift.ks_test(a, b)
        expected = stats.ks_2samp(a, b)
        assert statistic == pytest.approx(expected.statistic, abs=1e-12)
        assert pvalue == pytest.approx(expected.pvalue, abs=1e-7)


def test_wasserstein_is_scipy_distance_divided_by_reference_std():
    for a, b in random_pairs(seed=2):
        if a.std() == 0:
            continue
        assert drift.wasserstein(a, b) == pytest.approx(stats.wasserstein_distance(a, b) / a.std(), abs=1e-9)


def test_wasserstein_against_a_constant_reference_is_not_normalised():
    assert drift.wasserstein([3.0, 3.0], [5.0, 5.0]) == pytest.approx(2.0)


def test_js_distance_matches_scipy_jensenshannon_base_2():
    rng = np.random.default_rng(3)
    for k in (2, 5, 40, 256):
        p, q = rng.integers(0, 30, k), rng.integers(0, 30, k)
        p[0] += 1
        q[-1] += 1
        assert drift.js_distance(p, q) == pytest.approx(jensenshannon(p, q, base=2), abs=1e-9)
    assert drift.js_distance([1, 0], [0, 1]) == pytest.approx(1.0)
    assert drift.js_distance([2, 3], [4, 6]) == pytest.approx(0.0, abs=1e-12)


def test_js_distance_rejects_vectors_of_different_length():
    with pytest.raises(ValueError, match="equal length"):
        drift.js_distance([1, 2], [1, 2, 3])


def test_psi_matches_a_straightforward_implementation():
    for a, b in random_pairs(seed=4):
        assert drift.psi(a, b) == pytest.approx(psi_by_hand(a, b), abs=1e-9)
    rng = np.random.default_rng(5)
    zeros = np.where(rng.random(500) < 0.7, 0.0, rng.random(500))   # point mass at the bottom
    cur = rng.random(300)
    assert drift.psi(zeros, cur) == pytest.approx(psi_by_hand(zeros, cur), abs=1e-9)
    assert drift.psi(zeros, cur, bins=4) == pytest.approx(psi_by_hand(zeros, cur, bins=4), abs=1e-9)


def test_psi_sees_values_below_and_above_a_constant_reference():
    assert drift.psi(np.full(200, 128.0), np.full(50, 38.0)) > 5
    assert drift.psi(np.zeros(200), np.full(50, 0.2)) > 5
    assert drift.psi(np.zeros(200), np.zeros(50)) == pytest.approx(0.0)


def test_chi2_test_matches_scipy_without_yates_correction():
    rng = np.random.default_rng(6)
    for k in (2, 3, 10, 300):
        p, q = rng.integers(1, 60, k), rng.integers(1, 60, k)
        expected = stats.chi2_contingency(np.stack([p, q]), correction=False)
        statistic, pvalue = drift.chi2_test(p, q)
        assert statistic == pytest.approx(expected.statistic, rel=1e-12)
        assert pvalue == pytest.approx(expected.pvalue, abs=1e-9)


def test_statistics_reject_non_finite_values_and_empty_arrays():
    with pytest.raises(ValueError, match="non-finite"):
        drift.ks_test([1.0, float("nan")], [1.0])
    with pytest.raises(ValueError, match="empty"):
        drift.psi([], [1.0])


def test_large_sketch_statistics_stay_close_to_exact_ones():
    rng = np.random.default_rng(7)
    a, b = rng.standard_t(5, size=300_000), rng.standard_t(5, size=200_000) + 0.01
    sa, sb = Sketch.of(a), Sketch.of(b)   # 1024 knots, CDF linear in between
    assert not sa.exact
    d, p = sketch_ks(sa, sb)
    assert d == pytest.approx(stats.ks_2samp(a, b).statistic, abs=2e-4)
    assert sketch_psi(sa, sb.cdf, 10) == pytest.approx(drift.psi(a, b), abs=1e-4)


def test_large_columns_sorted_as_float32_offsets_match_float64_to_1e6_std():
    x = np.random.default_rng(12).normal(1000.0, 2.0, size=100_000)
    fast = Sketch.from_dict(numeric_summary(x)["sketch"])   # > 65,536 values: float32 offsets
    exact = Sketch.of(x, 1024)
    assert np.abs(fast.knots - exact.knots).max() <= 1e-6 * 2.0
    y = x[:50_000] + 0.05
    assert sketch_psi(fast, Sketch.of(y, None).cdf, 10) == pytest.approx(sketch_psi(exact, Sketch.of(y, None).cdf, 10),
                                                                          abs=1e-6)


# --- profiles and reports ---

@pytest.fixture(scope="module")
def vision():
    return tb.load_task_data("vision-cls", seed=0, limit=300)


@pytest.fixture(scope="module")
def lm():
    return tb.load_task_data("lm", seed=0, limit=120)


def test_profile_round_trips_through_json_and_compares_without_raw_data(vision):
    ref, cur = (drift.profile_dataset(d, vision.spec) for d in (vision.train, vision.current))
    stored = json.loads(json.dumps({"ref": ref, "cur": cur}))
    assert drift.compare_profiles(stored["ref"], stored["cur"]).to_dict() == drift.compare_profiles(ref, cur).to_dict()
    assert set(ref["features"]) == {"brightness", "contrast", "sharpness", "labels"}
    labels = [e["labels"] for e in vision.train]
    assert ref["features"]["labels"]["counts"] == np.bincount(labels, minlength=10).tolist()


def test_profile_statistics_are_exact_for_small_data():
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=(700, 2)), rng.normal(0.2, 1.0, size=(300, 2))
    report = drift.compare_arrays(a, b, feature_names=["x", "y"])
    row = report.row("y")
    assert row["psi"] == pytest.approx(drift.psi(a[:, 1], b[:, 1]), abs=1e-12)
    assert (row["ks"], row["p_value"]) == pytest.approx(drift.ks_test(a[:, 1], b[:, 1]), abs=1e-12)
    assert row["wasserstein"] == pytest.approx(drift.wasserstein(a[:, 1], b[:, 1]), abs=1e-12)


def test_text_profile_features_describe_the_bytes(lm):
    examples = [{"input_ids": __import__("torch").tensor(list(b"ab\ncd\n\xe2\x82"))}]
    features = drift.profile_dataset(examples, lm.spec)["features"]
    sketch = lambda name: Sketch.from_dict(features[name]["sketch"])  # noqa: E731
    assert sketch("length").knots.tolist() == [8.0]
    assert sketch("lines").knots.tolist() == [2.0]
    assert sketch("unknown_rate").knots.tolist() == [pytest.approx(2 / 8)]
    counts = dict(zip(features["tokens"]["categories"], features["tokens"]["counts"]))
    assert counts["\\n"] == 2 and counts["a"] == 1 and counts["0xe2"] == 1


def test_model_features_are_reported_but_not_counted_in_the_verdict(lm):
    model = tb.build_model(lm.spec, "tiny", seed=0)
    model.train()
    ref, cur = (drift.profile_dataset(d, lm.spec, model=model) for d in (lm.train, lm.current))
    assert model.training  # mode restored
    report = drift.compare_profiles(ref, cur)
    groups = {r["feature"]: r["group"] for r in report.rows}
    assert {k for k, g in groups.items() if g == "model"} == {"confidence", "loss", "predicted"}
    data_rows = [r for r in report.rows if r["group"] == "data"]
    assert report.share_drifted == pytest.approx(sum(r["drifted"] for r in data_rows) / len(data_rows))
    assert f"of {len(data_rows)} features drifted (model outputs:" in report.verdict()
    without = drift.compare_profiles(*(drift.profile_dataset(d, lm.spec) for d in (lm.train, lm.current)))
    assert (without.share_drifted, without.dataset_drift) == (report.share_drifted, report.dataset_drift)


def test_unlabelled_data_is_profiled_without_labels_and_loss(vision):
    model = tb.build_model(vision.spec, "tiny", seed=0)
    unlabelled = [{"pixel_values": e["pixel_values"]} for e in vision.current]
    features = drift.profile_dataset(unlabelled, vision.spec, model=model)["features"]
    assert set(features) == {"brightness", "contrast", "sharpness", "confidence", "predicted"}


def test_profile_sample_size_keeps_evenly_spaced_examples(vision):
    profile = drift.profile_dataset(vision.train, vision.spec, sample_size=50)
    assert profile["n_examples"] == 50 and profile["features"]["brightness"]["n"] == 50


def test_profile_dataset_rejects_task_data_and_empty_data(vision):
    with pytest.raises(ValueError, match="pass one split"):
        drift.profile_dataset(vision, vision.spec)
    with pytest.raises(ValueError, match="empty dataset"):
        drift.profile_dataset([], vision.spec)


def test_compare_profiles_rejects_non_profiles_and_other_modalities(vision, lm):
    ref = drift.profile_dataset(vision.train, vision.spec)
    with pytest.raises(ValueError, match="cur is not a drift profile"):
        drift.compare_profiles(ref, {"features": {}})
    with pytest.raises(ValueError, match="cannot compare a vision profile with a text profile"):
        drift.compare_profiles(ref, drift.profile_dataset(lm.current, lm.spec))


def test_compare_profiles_warns_about_features_in_one_profile_only(vision):
    model = tb.build_model(vision.spec, "tiny", seed=0)
    ref = drift.profile_dataset(vision.train, vision.spec, model=model)
    with pytest.warns(UserWarning, match="confidence, labels|confidence, loss, predicted"):
        report = drift.compare_profiles(ref, drift.profile_dataset(vision.current, vision.spec))
    assert report.skipped == ["confidence", "loss", "predicted"]


def test_thresholds_are_configurable_and_validated():
    rng = np.random.default_rng(9)
    a, b = rng.normal(size=(2000, 1)), rng.normal(0.15, 1.0, size=(2000, 1))
    row = drift.compare_arrays(a, b).rows[0]    # W 0.123 - noise 0.081 = 0.043 < 0.05, KS p = 0.0015
    assert (row["status"], row["statistic"]) == ("ok", "wasserstein") and row["score"] == pytest.approx(0.0426, abs=1e-3)
    strict = drift.compare_arrays(a, b, thresholds={"wasserstein_warn": 0.02, "wasserstein_drift": 0.04})
    assert strict.rows[0]["status"] == "drift" and strict.dataset_drift
    warn = drift.compare_arrays(a, b, thresholds={"wasserstein_warn": 0.02, "wasserstein_drift": 0.05})
    assert warn.rows[0]["status"] == "warn" and not warn.dataset_drift
    assert drift.compare_arrays(a, b, thresholds={"wasserstein_warn": 0.02, "p_value": 1e-3}).rows[0]["status"] == "ok"
    with pytest.raises(ValueError, match="unknown threshold.*psi_drfit"):
        drift.compare_arrays(a, b, thresholds={"psi_drfit": 0.3})
    with pytest.raises(ValueError, match="p_value=-1"):
        drift.compare_arrays(a, b, thresholds={"p_value": -1})


def test_compare_arrays_checks_shapes_names_and_values():
    with pytest.raises(ValueError, match="same number of columns"):
        drift.compare_arrays(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="2 distinct names"):
        drift.compare_arrays(np.zeros((5, 2)), np.zeros((5, 2)), feature_names=["a", "a"])
    bad = np.ones((5, 2))
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="cur_2d column 1 \\('b'\\): 1 non-finite"):
        drift.compare_arrays(np.ones((5, 2)), bad, feature_names=["a", "b"])


def test_drift_over_time_shows_when_current_data_starts_to_drift():
    rng = np.random.default_rng(10)
    ref = rng.normal(size=4000)
    cur = np.concatenate([rng.normal(size=2000), rng.normal(1.5, 1.0, size=2000)])
    over = drift.compare_arrays(ref, cur).over_time["feature_0"]
    lo, hi = over["band"]
    assert len(over["current"]) == 10 and over["chunk_size"] == 400 and over["reference_chunk_size"] == 400
    assert sum(s > hi for s in over["current"][:5]) <= 1          # iid chunks: (almost) all in the band
    assert all(s > 2 * hi for s in over["current"][5:])            # shifted chunks: far above it


def test_report_is_json_serialisable_with_a_verdict_line():
    rng = np.random.default_rng(11)
    report = drift.compare_arrays(rng.normal(size=(500, 3)), rng.normal(size=(400, 3)) + [0, 0, 3])
    data = json.loads(json.dumps(report.to_dict()))
    assert data["verdict"] == "1 of 3 features drifted: no dataset drift"
    assert data["share_drifted"] == pytest.approx(1 / 3) and data["dataset_drift"] is False
    assert "feature_2" in str(report) and report.row("feature_2")["status"] == "drift"


# --- drift statistics for dependent samples and the noise-corrected effect sizes ---

def clustered_counts(rng, n, shares, concentration=20.0, length=(16, 128)):
    """Samples of token counts whose tokens are not independent: each sample draws its own token
    distribution around `shares` (Dirichlet), then its tokens from it."""
    out = np.zeros((n, len(shares)), np.int64)
    for i in range(n):
        out[i] = rng.multinomial(rng.integers(*length), rng.dirichlet(concentration * shares))
    return out


def in_chunks(counts):
    ids = chunk_ids(len(counts))
    return np.stack([counts[ids == c].sum(0) for c in range(ids.max() + 1)])


def test_block_chi2_test_gives_uniform_p_values_where_pooled_chi2_gives_zero():
    rng = np.random.default_rng(13)
    shares = 1 / np.arange(1, 201) ** 1.1
    shares /= shares.sum()
    block, pooled = [], []
    for _ in range(120):
        a, b = clustered_counts(rng, 400, shares), clustered_counts(rng, 100, shares)
        block.append(drift.block_chi2_test(in_chunks(a), in_chunks(b))[1])
        pooled.append(drift.chi2_test(a.sum(0), b.sum(0))[1])
    block = np.array(block)
    assert 0.01 <= np.mean(block < 0.05) <= 0.12 and 0.08 <= np.mean(block < 0.2) <= 0.32
    assert np.mean(np.array(pooled) < 0.05) > 0.95       # pooled tokens: "drift" nearly every time
    assert stats.kstest(block, "uniform").pvalue > 0.001


def test_block_chi2_test_detects_a_shift_of_the_token_distribution():
    rng = np.random.default_rng(14)
    shares = 1 / np.arange(1, 201) ** 1.1
    shares /= shares.sum()
    moved = shares.copy()
    moved[[0, 5]] = moved[[5, 0]]                         # two tokens trade places
    f, p, expected = drift.block_chi2_test(in_chunks(clustered_counts(rng, 400, shares)),
                                           in_chunks(clustered_counts(rng, 100, moved)))
    assert p < 1e-6 and f > 3 and expected > 0


def test_permutation_chi2_test_matches_the_exact_hypergeometric_p_value():
    ref, cur = [9, 1], [0, 3]            # expected counts below 5: the chi-square curve is off
    observed, p = drift_stats.permutation_chi2_test(ref, cur)
    totals, n_cur = np.array([9, 4]), 3  # P(X2 >= observed) over the ways 3 samples fall into the classes
    exact = sum(math.comb(9, k) * math.comb(4, n_cur - k) / math.comb(13, n_cur) for k in range(n_cur + 1)
                if drift.chi2_test(totals - [k, n_cur - k], [k, n_cur - k])[0] >= observed - 1e-9)
    assert p == pytest.approx(exact, abs=0.03) and drift.chi2_test(ref, cur)[1] < exact / 3


def test_wasserstein_noise_is_the_mean_distance_between_two_iid_samples():
    rng = np.random.default_rng(15)
    ref = Sketch.of(rng.normal(size=200_000))
    expected = drift_stats.wasserstein_noise(ref, 400, 100)
    assert expected == pytest.approx(1.2884 * math.sqrt(1 / 400 + 1 / 100), rel=0.02)   # normal: sqrt(2/pi) * 1.6147
    draws = [stats.wasserstein_distance(rng.normal(size=400), rng.normal(size=100)) for _ in range(300)]
    assert np.mean(draws) == pytest.approx(expected, rel=0.08)
    values = np.repeat([0.0, 1.0], [700, 300])          # exact (two-point) sketch: E|B(0.7)| * 1 * sqrt(...)
    assert drift_stats.wasserstein_noise(Sketch.of(values, None), 50, 50) == pytest.approx(
        math.sqrt(2 / math.pi) * math.sqrt(0.21) * math.sqrt(2 / 50), rel=1e-9)


def test_psi_noise_level_is_the_mean_psi_between_two_iid_samples():
    rng = np.random.default_rng(16)
    ref = rng.normal(size=800)
    level = drift_stats.psi_noise_level(Sketch.of(ref, None), 800, 200, 10)
    assert level == pytest.approx(9 * (1 / 800 + 1 / 200))
    draws = [drift.psi(rng.normal(size=800), rng.normal(size=200)) for _ in range(200)]
    assert np.mean(draws) == pytest.approx(level, rel=0.15)


def test_moderate_shift_on_large_columns_drifts_like_ks_evidently_and_nannyml_say():
    rng = np.random.default_rng(17)
    n = 200_000
    ref = rng.normal(size=(n, 8))
    cur = np.concatenate([rng.normal(size=(n, 4)), rng.normal(0.5, 1.2, size=(n, 2)), rng.normal(1.0, 1.5, size=(n, 2))],
                         axis=1)
    report = drift.compare_arrays(ref, cur)
    assert [r["status"] for r in report.rows] == ["ok"] * 4 + ["drift"] * 4 and report.dataset_drift
    for r in report.rows[4:6]:       # PSI alone would say "warn"; the normalised Wasserstein distance says drift
        assert 0.2 < r["psi"] < 0.25 and r["statistic"] == "wasserstein" and r["score"] == pytest.approx(0.5, abs=0.03)
        assert r["wasserstein_noise"] < 0.01 and r["score"] == pytest.approx(r["wasserstein"] - r["wasserstein_noise"])
    assert all(r["score"] == 0 and r["wasserstein"] < 0.01 for r in report.rows[:4])


def test_iid_lm_halves_test_tokens_per_sample_block_not_per_token():
    data = tb.load_task_data("lm", seed=0, limit=1000)
    model = tb.build_model(data.spec, "tiny", seed=0)
    order = list(range(len(data.train)))
    random.Random(0).shuffle(order)
    halves = [data.train[i] for i in order[:800]], [data.train[i] for i in order[800:]]
    report = drift.compare_profiles(*(drift.profile_dataset(h, data.spec, model=model) for h in halves))
    for name in ("tokens", "predicted"):
        row = report.row(name)
        assert row["test"] == "rao_scott" and row["p_value"] > 1e-3 and row["status"] == "ok", row
        assert row["js"] < 1.5 * row["js_noise"] and row["score"] == 0.0
    pooled = drift.chi2_test(*(drift.profile_dataset(h, data.spec)["features"]["tokens"]["counts"] for h in halves))
    assert pooled[1] < 1e-6                                # what the pooled test said about the same halves


def write_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def test_a_thirty_row_csv_split_never_calls_tokens_drift(tmp_path):
    words = "the model learns slowly but the data drifts quickly while every epoch ends with a checkpoint".split()
    verdicts = []
    for seed in range(12):
        rng = random.Random(seed)
        rows = [(" ".join(rng.choice(words) for _ in range(rng.randint(3, 15))), rng.choice(["pos", "neg"]))
                for _ in range(30)]
        data = tb.load_task_data("text-cls", source=str(write_csv(tmp_path / f"{seed}.csv", rows)), seed=seed)
        report = drift.compare_profiles(*(drift.profile_dataset(d, data.spec) for d in (data.train, data.current)))
        assert (len(data.train), len(data.current)) == (24, 3)
        assert report.row("tokens")["status"] == "ok" and report.row("labels")["test"] == "chi2_permutation"
        verdicts.append(report.dataset_drift)
    assert not any(verdicts)


def test_profiles_work_with_a_fifty_thousand_token_vocabulary():
    spec = tb.TaskSpec.preset("lm").replace(vocab_size=50257)
    rng = np.random.default_rng(18)
    ranks = 1 / np.arange(1, 5001) ** 1.1                   # Zipf over 5000 of the 50257 ids, as text is
    ids_of_rank = rng.permutation(50257)[:5000]

    def texts(n, order=ids_of_rank):
        return [{"input_ids": torch.tensor(order[rng.choice(5000, 64, p=ranks / ranks.sum())])} for _ in range(n)]
    ref = drift.profile_dataset(texts(300), spec)
    tokens = ref["features"]["tokens"]
    assert len(tokens["categories"]) == 1025 and tokens["categories"][-1] == "other" and tokens["pooled_other"]
    assert sum(tokens["counts"]) == 300 * 64 and len(json.dumps(ref)) < 1_000_000
    swapped = ids_of_rank.copy()
    swapped[[0, 3, 1, 7]] = swapped[[3, 0, 7, 1]]           # four frequent tokens trade frequencies
    same = drift.compare_profiles(ref, drift.profile_dataset(texts(100), spec))
    moved = drift.compare_profiles(ref, drift.profile_dataset(texts(100, swapped), spec))
    assert same.row("tokens")["status"] == "ok" and moved.row("tokens")["status"] == "drift"
    stored = json.loads(json.dumps(ref))
    del stored["features"]["tokens"]["pooled_other"]          # a profile written before the flag existed
    assert drift.compare_profiles(stored, drift.profile_dataset(texts(100, swapped), spec)).row("tokens")["status"] == "drift"


def test_categories_one_profile_does_not_list_are_pooled_on_both_sides():
    from trainbook.drift.report import aligned_chunks

    ref = {"categories": ["a", "b", "other"], "chunks": [[5, 3, 2], [4, 4, 2]], "pooled_other": True}
    cur = {"categories": ["a", "c", "b"], "chunks": [[1, 2, 3]], "pooled_other": False}
    cats, r, c = aligned_chunks(ref, cur)
    # 'c' may hide in ref's 'other': pooled; 'a' and 'b' are known on both sides
    assert cats == ["a", "b", "other"]
    assert r.tolist() == [[5, 3, 2], [4, 4, 2]] and c.tolist() == [[1, 3, 2]]


# --- calibration (3 seeds; 20 in benchmarks/bench_drift.py) ---

SHIFTS = {"lm": ["noise", "truncate", "packages"], "text-cls": ["noise", "truncate", "packages"],
          "vision-cls": ["brightness", "noise", "rotation"]}


@pytest.mark.parametrize("task", list(SHIFTS))
def test_calibration_iid_halves_are_quiet_and_every_shift_is_drift(task):
    for seed in range(3):
        data = tb.load_task_data(task, seed=seed, limit=400)
        order = list(range(len(data.train)))
        random.Random(seed).shuffle(order)
        halves = [data.train[i] for i in order[:300]], [data.train[i] for i in order[300:]]
        iid = drift.compare_profiles(*(drift.profile_dataset(h, data.spec) for h in halves))
        assert not iid.dataset_drift and not any(r["status"] == "drift" for r in iid.rows), (task, seed, str(iid))
        assert all(r["status"] == "ok" for r in iid.rows if r["feature"] == "tokens"), (task, seed, str(iid))
        ref = drift.profile_dataset(data.train, data.spec)
        for shift in SHIFTS[task]:
            current = tb.load_task_data(task, seed=seed, limit=400, shift=shift).current
            report = drift.compare_profiles(ref, drift.profile_dataset(current, data.spec))
            assert report.dataset_drift, (task, shift, seed, str(report))


def test_profiles_work_with_a_subword_vocabulary(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINBOOK_CACHE_DIR", str(tmp_path / "cache"))
    data = tb.load_task_data("lm", limit=200, tokenizer="bpe:700", shift="noise:1.0")
    model = tb.build_model(data.spec, size="tiny")
    ref = tb.profile_dataset(data.train, data.spec, model=model)
    cur = tb.profile_dataset(data.current, data.spec, model=model)
    tokens = ref["features"]["tokens"]
    assert sum(tokens["counts"]) == sum(len(e["input_ids"]) for e in data.train)
    names = [c for c in tokens["categories"] if c != "other"]
    assert all(c.split(" ", 1)[1] == repr(data.tokenizer.decode([int(c.split(" ", 1)[0])])) for c in names)
    predicted = ref["features"]["predicted"]
    assert sum(predicted["counts"]) == sum(len(e["input_ids"]) - 1 for e in data.train)
    assert "lines" not in ref["features"]  # a byte-level feature
    report = tb.compare_profiles(ref, cur)
    row = report.row("tokens")  # every token replaced by a random one; 50 windows of a 700-token vocabulary
    assert row["drifted"] and row["p_value"] < 1e-100 and row["js"] > row["js_noise"], row
    json.dumps(ref)
