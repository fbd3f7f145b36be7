"""Drift: dataset profiles, statistics over arrays, and the drift report with its verdict.

    report = compare_profiles(profile_dataset(data.train, spec), profile_dataset(data.current, spec))
    psi(ref, cur); js_distance(p, q); ks_test(a, b); wasserstein(a, b); compare_arrays(ref_2d, cur_2d)
    block_chi2_test(ref_chunk_counts, cur_chunk_counts)   # token counts: blocks of samples are the units
"""

from .report import (DEFAULT_THRESHOLDS, DriftReport, compare_arrays, compare_profiles, profile_arrays,
                     profile_dataset)
from .stats import block_chi2_test, chi2_test, js_distance, ks_test, psi, wasserstein

__all__ = ["DEFAULT_THRESHOLDS", "DriftReport", "block_chi2_test", "chi2_test", "compare_arrays", "compare_profiles",
           "js_distance", "ks_test", "profile_arrays", "profile_dataset", "psi", "wasserstein"]
