"""Data: built-in offline datasets, the user's files and shifted "current" splits.

    data = load_task_data("lm", source="builtin", seed=0); data.train, data.val, data.current, data.spec
"""

from .loading import class_balance, load_task_data
from .shifts import SHIFT_DEFAULTS, apply_shift, parse_shift
from .types import DataError, ExampleDataset, TaskData
from .windows import byte_windows

__all__ = ["DataError", "ExampleDataset", "SHIFT_DEFAULTS", "TaskData", "apply_shift", "byte_windows",
           "class_balance", "load_task_data", "parse_shift"]
