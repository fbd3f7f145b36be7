"""Hyperparameter search: sequential grid/random trials with a resumable journal, or a shared Optuna study.

    result = run_search(cfg, {"learning_rate": [1e-3, 3e-3]}, model_factory, data.train, data.val, spec)
"""

from .results import SearchResult, Trial, best_trial
from .runner import run_search
from .space import MANAGED_FIELDS, Distribution, check_space, choice, intuniform, loguniform, make_plan, uniform

__all__ = ["MANAGED_FIELDS", "Distribution", "SearchResult", "Trial", "best_trial", "check_space", "choice",
           "intuniform", "loguniform", "make_plan", "run_search", "uniform"]
