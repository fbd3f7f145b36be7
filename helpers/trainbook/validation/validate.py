"""The validation pass's entry points: validate_run (the notebook, the Python API) and run_problems (the CLI).

    cfg = validate_run(preset="quick", task="lm", dataset="notes.txt", epochs=3)   # or validate_run(cfg, task=...)
"""

from __future__ import annotations

from typing import Callable

from ..config import FIELD_NAMES, ConfigError, TrainingConfig, suggest
from .checks import CHECKS
from .facts import Machine, Run


def run_problems(values: dict, machine: Machine | None = None) -> list[str]:
    """Every problem the checks find in `values` (TrainingConfig fields and run keys), in check order.

    Values of the wrong type are skipped here; the TrainingConfig and run-key type rules report them.
    """
    run = Run(values, machine or Machine.detect())
    return [line for each in CHECKS for line in each(run)]


def validate_run(config: TrainingConfig | None = None, /, *, preset: str | None = None,
                 machine: Machine | None = None, **values) -> TrainingConfig:
    """Check a whole run at once: config fields, run keys and this machine; returns the TrainingConfig.

    Args:
        config: a TrainingConfig to start from; or preset: a TrainingConfigBuilder preset name.
        machine: the machine facts to check against (default: this machine).
        **values: TrainingConfig fields (override config/preset) and run keys (FORM_RULES).
    Returns:
        The TrainingConfig built from config/preset and the field values.
    Raises:
        ConfigError: every problem, one line each (field or key, the problem, a HINT).
    """
    from ..builder import TrainingConfigBuilder

    problems, base = [], {}
    if config is not None:
        base = config.to_dict()
    elif preset is not None:
        try:
            base = TrainingConfigBuilder.preset(preset).build().to_dict()
        except ConfigError as e:
            problems += e.problems
    known = (*FIELD_NAMES, *FORM_RULES)
    problems += [f"unknown key {k!r}{suggest(k, known)}" for k in values if k not in known]
    problems += [p for k, rule in FORM_RULES.items() if k in values and (p := rule(k, values[k]))]
    cfg = None
    try:
        cfg = TrainingConfig.from_dict({**base, **{k: v for k, v in values.items() if k in FIELD_NAMES}})
    except ConfigError as e:
        problems += e.problems
    problems += run_problems({**base, **values}, machine)
    if problems:
        raise ConfigError(problems, title=f"invalid run settings ({len(problems)} problem{'s' * (len(problems) > 1)})")
    return cfg


# --- type rules of the notebook's run keys ---

def _choice(*options) -> Callable:
    def rule(key, value):
        if value not in options:
            return f"{key} must be one of {', '.join(map(repr, options))}; got {value!r}{suggest(str(value), options)}"
    return rule


def _integer(lo: int, meaning: str = "") -> Callable:
    def rule(key, value):
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= lo):
            return f"{key} must be an integer >= {lo}{meaning}; got {value!r}"
    return rule


def _boolean(key, value):
    if not isinstance(value, bool):
        return f"{key} must be True or False; got {value!r}"


def _string(key, value):
    if not isinstance(value, str) or not value.strip():
        return f"{key} must be a non-empty string; got {value!r}"


def _text(key, value):  # empty allowed: "auto" or "none"
    if not isinstance(value, str):
        return f"{key} must be a string (empty for automatic); got {value!r}"


def _tokenizer(key, value):
    from ..data import DataError, parse_tokenizer

    try:
        parse_tokenizer(value)
    except DataError as e:
        return f"{e}. HINT: tokenizer='byte' works for any text"


FORM_RULES: dict[str, Callable] = {
    "task": _choice("lm", "text-cls", "vision-cls"),
    "dataset": _string,
    "data_limit": _integer(0, " (0 = all)"),
    "model_size": _choice("tiny", "small", "base"),
    "tokenizer": _tokenizer,
    "text_column": _text,
    "label_column": _text,
    "model_source": _string,
    "model_class": _text,
    "drift_shift": _string,
    "run_hp_search": _boolean,
    "search_method": _choice("grid", "random"),
    "n_trials": _integer(0),
    "export_model": _boolean,
}
