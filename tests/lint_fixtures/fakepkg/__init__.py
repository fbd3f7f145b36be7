"""fakepkg: a small helper package for tests/test_lint_api.py, read from source by the lint, never imported.

Shaped like the helper packages notebooks drift away from: a lazy __init__ with a name table, a
frozen config dataclass, a fluent builder whose with_* methods return Self, the class name or
type(self)(...), a task spec, a trainer with instance attributes, classes whose attributes the
lint cannot know (a base from another library, a __getattr__), and names that live in another
module than the one a notebook might import them from.
"""

import importlib

__version__ = "0.3.0"

_EXPORTS = {
    "TrainingConfig": "config", "TrainingConfigBuilder": "builder", "TaskSpec": "tasks",
    "Trainer": "training", "TrainResult": "training", "plot_curves": "report",
    "ghost_metric": "report",  # reserved: report.py does not define it yet
    "fancy_plot": "plots",  # reserved: plots.py does not exist yet
}


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'fakepkg' has no attribute {name!r}")
