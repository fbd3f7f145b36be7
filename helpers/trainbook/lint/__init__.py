"""The notebook doctor: legacy API strings, the notebook contract, and the notebook against its helper package.

    python -m trainbook.lint notebooks/        # exit 0 clean, 1 findings, 2 unreadable input or bad settings
"""

from .cli import collect_files, lint_file, main
from .findings import CODES, Finding, LintConfigError, LintInputError, cell_source, read_notebook
from .package import PackageModel
from .patterns import PRAGMA, load_patterns
from .settings import Settings, load_settings

__all__ = ["CODES", "Finding", "LintConfigError", "LintInputError", "PRAGMA", "PackageModel", "Settings", "cell_source",
           "collect_files", "lint_file", "load_patterns", "load_settings", "main", "read_notebook"]
