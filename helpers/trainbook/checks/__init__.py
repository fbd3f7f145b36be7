"""The model testing lab: check a model before training it (pass / warn / fail per check).

    report = check_model(model, spec, data=data, level="quick"); print(report); report.figure()
"""

from .report import VERDICTS, CheckResult, ModelReport
from .runner import CHECKS, LEVELS, check_model

__all__ = ["CHECKS", "LEVELS", "VERDICTS", "CheckResult", "ModelReport", "check_model"]
