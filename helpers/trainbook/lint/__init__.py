"""The notebook doctor: legacy API strings and the notebook contract.

    python -m trainbook.lint notebooks/        # exit 0 clean, 1 findings, 2 unreadable input
"""

from .cli import collect_files, lint_file, main
from .findings import Finding, LintConfigError, LintInputError, cell_source, read_notebook
from .patterns import PRAGMA, load_patterns

__all__ = ["Finding", "LintConfigError", "LintInputError", "PRAGMA", "cell_source", "collect_files", "lint_file",
           "load_patterns", "main", "read_notebook"]
