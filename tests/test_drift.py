"""Drift statistics against scipy and independent implementations, profiles, reports, calibration.

The full 20-seed calibration runs in benchmarks/bench_drift.py; test_calibration_* use 3 seeds.
"""

import json
import math
import random

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

import trainbook as tb
from trainbook import drift
from trainbook.drift import stats as drift_stats
from trainbook.drift.stats import Sketch, sketch_ks, sketch_psi


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
    fast = Sketch.from_dict(drift_stats.numeric_summary(x)["sketch"])   # > 65,536 values: float32 offsets
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
    assert row["score"] == pytest.approx(drift.psi(a[:, 1], b[:, 1]), abs=1e-12)
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
    a, b = rng.normal(size=(2000, 1)), rng.normal(0.3, 1.0, size=(2000, 1))
    assert drift.compare_arrays(a, b).rows[0]["status"] == "ok"          # PSI ~0.09 < 0.1
    strict = drift.compare_arrays(a, b, thresholds={"psi_warn": 0.02, "psi_drift": 0.05})
    assert strict.rows[0]["status"] == "drift" and strict.dataset_drift
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


# --- calibration (3 seeds; 20 in benchmarks/bench_drift.py) ---

SHIFTS = {"lm": ["noise", "truncate", "packages"], "text-cls": ["noise", "truncate", "packages"],
          "vision-cls": ["brightness", "noise", "rotation"]}


@pytest.mark.parametrize("task", list(SHIFTS))
def test_calibration_iid_halves_are_not_drift_and_every_shift_is(task):
    for seed in range(3):
        data = tb.load_task_data(task, seed=seed, limit=400)
        order = list(range(len(data.train)))
        random.Random(seed).shuffle(order)
        halves = [data.train[i] for i in order[:300]], [data.train[i] for i in order[300:]]
        iid = drift.compare_profiles(*(drift.profile_dataset(h, data.spec) for h in halves))
        assert not iid.dataset_drift, (task, seed, str(iid))
        ref = drift.profile_dataset(data.train, data.spec)
        for shift in SHIFTS[task]:
            current = tb.load_task_data(task, seed=seed, limit=400, shift=shift).current
            report = drift.compare_profiles(ref, drift.profile_dataset(current, data.spec))
            assert report.dataset_drift, (task, shift, seed, str(report))


def test_profiles_work_with_a_subword_vocabulary(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINBOOK_CACHE_DIR", str(tmp_path / "cache"))
    data = tb.load_task_data("lm", limit=60, tokenizer="bpe:700", shift="noise:0.5")
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
    assert report.row("tokens")["drifted"]  # half the tokens replaced by random ones
    json.dumps(ref)
