"""trainbook: the helper package behind the training notebook.

    import trainbook as tb
    result = tb.Trainer(model, training_config=cfg, task_spec=spec).train(data.train, data.val)

Names are re-exported lazily so `import trainbook` stays fast; heavy optional dependencies
(wandb, matplotlib, optuna, scipy, sklearn) are imported by the functions that need them.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "ConfigError": "config", "TrainingConfig": "config", "TrainingConfigBuilder": "builder",
    "validate_run": "validation",
    "TaskSpec": "tasks", "task_defaults": "tasks",
    "TextCollator": "tasks", "VisionDataCollator": "tasks", "collator_for": "tasks",
    "TaskData": "data", "DataError": "data", "load_task_data": "data",
    "ModelConfig": "models", "build_model": "models", "load_model_file": "models", "count_parameters": "models",
    "load_model": "models", "ModelSourceError": "models",
    "Trainer": "engine", "TrainResult": "engine", "NonFiniteLossError": "engine", "choose_run_folder": "engine",
    "load_weights": "engine",
    "PersistError": "persist",
    "MetricsTracker": "tracking", "read_metrics": "tracking",
    "environment": "env", "verify_installation": "env", "in_colab": "env", "in_notebook": "env",
    "plot_training": "dashboard", "record": "notebook", "show_table": "notebook",
    "baseline": "baselines", "profile_dataset": "drift", "compare_profiles": "drift", "DriftReport": "drift",
    "plot_drift_dashboard": "dashboard", "drift_explorer": "dashboard",
    "run_search": "search", "SearchResult": "search", "plot_search": "dashboard",
    "loguniform": "search", "uniform": "search", "choice": "search", "intuniform": "search",
    "export_bundle": "export", "load_bundle": "export", "check_drift": "export", "BundleError": "export",
    "check_model": "checks", "ModelReport": "checks", "plot_model_checks": "dashboard",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'trainbook' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
