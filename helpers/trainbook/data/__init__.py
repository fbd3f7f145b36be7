"""Data: built-in offline datasets, the user's files and Hugging Face datasets, tokenizers, shifted "current" splits.

    data = load_task_data("lm", source="builtin", seed=0, tokenizer="bpe:2000"); data.train, data.spec, data.tokenizer
"""

from .loading import class_balance, load_task_data
from .shifts import SHIFT_DEFAULTS, apply_shift, parse_shift
from .tokenizers import Tokenizer, parse_tokenizer, save_tokenizer, tokenizer_for
from .types import DataError, ExampleDataset, ReadOptions, TaskData
from .windows import byte_windows, token_windows

__all__ = ["DataError", "ExampleDataset", "ReadOptions", "SHIFT_DEFAULTS", "TaskData", "Tokenizer", "apply_shift",
           "byte_windows", "class_balance", "load_task_data", "parse_shift", "parse_tokenizer", "save_tokenizer",
           "token_windows", "tokenizer_for"]
