"""The validation pass: every problem with a run's settings and this machine, before any work.

    cfg = validate_run(preset="quick", task="lm", dataset="notes.txt", epochs=3)   # or validate_run(cfg, task=...)

One pass over the TrainingConfig fields, the run keys (task, dataset, data_limit, model_size,
max_seq_len, model_file, the notebook's search and drift settings) and the environment (devices,
precision, folders and free space, data files, W&B, the checkpoint to resume) collects every
problem and raises one ConfigError, one line per problem with a HINT. The notebook's config cell
calls validate_run on the form's values; `python -m trainbook train` calls run_problems on the
config file plus --set values. Both run before any data or model is loaded.

Adding a check (for a new field or run key): a function decorated with @check in checks.py. It
receives a Run (facts.py) and yields problem lines; Run's readers (text, integer, flag, path)
return None for a value that is missing or of the wrong type, which the type rules report on
their own. A notebook-only key also gets a type rule in FORM_RULES (validate.py).
"""

from .checks import CHECKS, MIN_FREE_BYTES, check
from .facts import Machine, Run
from .validate import FORM_RULES, run_problems, validate_run

__all__ = ["CHECKS", "FORM_RULES", "MIN_FREE_BYTES", "Machine", "Run", "check", "run_problems", "validate_run"]
