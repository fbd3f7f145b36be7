"""Search spaces: distributions for random search, validation, and the deterministic trial plan.

    space = check_space({"learning_rate": loguniform(1e-4, 1e-2)}, "random"); plan = make_plan(space, "random", 8, 0)
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import random

from ..config import FIELD_NAMES, ConfigError, suggest

# set by the search for every trial, so they cannot be searched over
MANAGED_FIELDS = ("run_name", "output_dir", "checkpoint_dir", "resume", "persist_dir", "on_config_change",
                  "early_stopping_metric", "early_stopping_mode", "config_version")


@dataclasses.dataclass(frozen=True)
class Distribution:
    kind: str   # loguniform | uniform | intuniform | choice
    args: tuple

    def sample(self, rng: random.Random):
        if self.kind == "loguniform":
            return math.exp(rng.uniform(math.log(self.args[0]), math.log(self.args[1])))
        if self.kind == "uniform":
            return rng.uniform(*self.args)
        return rng.randint(*self.args) if self.kind == "intuniform" else rng.choice(self.args)

    def __repr__(self):
        return f"choice({list(self.args)!r})" if self.kind == "choice" else f"{self.kind}{self.args!r}"


def is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _distribution(kind: str, args: tuple, ok: bool, rule: str) -> Distribution:
    if not ok:
        raise ValueError(f"{kind} needs {rule}; got {', '.join(map(repr, args))}")
    return Distribution(kind, args)


def loguniform(low: float, high: float) -> Distribution:
    """Log-uniform floats in [low, high] (learning rates). Raises ValueError unless 0 < low < high."""
    return _distribution("loguniform", (low, high), is_number(low) and is_number(high) and 0 < low < high, "0 < low < high")


def uniform(low: float, high: float) -> Distribution:
    """Uniform floats in [low, high]. Raises ValueError unless low < high."""
    return _distribution("uniform", (low, high), is_number(low) and is_number(high) and low < high, "low < high")


def intuniform(low: int, high: int) -> Distribution:
    """Uniform integers in [low, high], both included. Raises ValueError unless integers low <= high."""
    ints = all(isinstance(x, int) and not isinstance(x, bool) for x in (low, high))
    return _distribution("intuniform", (low, high), ints and low <= high, "integers low <= high")


def choice(options) -> Distribution:
    """One of `options` (numbers, strings, booleans), equally likely. Raises ValueError when empty."""
    ok = isinstance(options, (list, tuple)) and len(options) > 0
    return _distribution("choice", tuple(options) if ok else (options,), ok, "a non-empty list of values")


def check_space(space, method: str) -> dict:
    """Validate a search space; returns field -> tuple of values or Distribution.

    Raises:
        ConfigError: every unknown or managed field and every empty or unsupported value, at once.
    """
    if not isinstance(space, dict) or not space:
        raise ConfigError([f"space must be a non-empty dict of field -> values; got {space!r}"])
    problems, out = [], {}
    for name, values in space.items():
        where = f"space field {name!r}"
        if name not in FIELD_NAMES:
            problems.append(f"{where} is not a TrainingConfig field{suggest(name, FIELD_NAMES)}")
        elif name in MANAGED_FIELDS:
            problems.append(f"{where} is set by the search for every trial and cannot be searched")
        elif isinstance(values, Distribution):
            if method == "grid" and values.kind != "choice":
                problems.append(f"{where}: method='grid' needs a list of values; got {values!r} "
                                "(HINT: use method='random', or list the values)")
            out[name] = values.args if method == "grid" else values
        elif isinstance(values, (list, tuple)) and values:
            bad = [v for v in values if not (v is None or isinstance(v, (str, bool)) or is_number(v))]
            if bad:
                problems.append(f"{where}: values must be numbers, strings or booleans; got {bad!r}")
            out[name] = tuple(values)
        else:
            problems.append(f"{where} must be a non-empty list of values or a distribution "
                            f"(loguniform, uniform, intuniform, choice); got {values!r}")
    if problems:
        raise ConfigError(problems)
    return out


def make_plan(space: dict, method: str, n_trials: int | None, seed: int) -> list[dict]:
    """The deterministic trial parameters: the grid (or a seeded subset of it) or seeded draws."""
    rng = random.Random(seed)
    if method == "random":
        return [{k: v.sample(rng) if isinstance(v, Distribution) else rng.choice(v) for k, v in space.items()}
                for _ in range(n_trials)]
    grid = [dict(zip(space, combo)) for combo in itertools.product(*space.values())]
    if n_trials is not None and n_trials < len(grid):  # a seeded order, so a larger n_trials extends the plan
        order = list(range(len(grid)))
        rng.shuffle(order)
        return [grid[i] for i in order[:n_trials]]
    if n_trials is not None and n_trials > len(grid):
        print(f"search: n_trials={n_trials} but the grid has {len(grid)} points; running {len(grid)}")
    return grid
