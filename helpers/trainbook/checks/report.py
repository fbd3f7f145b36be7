"""The model check's records: a CheckResult per check, and the ModelReport that holds them.

    report = tb.check_model(model, spec); print(report); report.failed; report.to_dict()
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from ..notebook import format_table

VERDICTS = ("pass", "warn", "fail", "skip")


@dataclasses.dataclass
class CheckResult:
    name: str                 # shapes | causal_mask | initial_loss | ...
    verdict: str              # pass | warn | fail | skip
    numbers: dict             # what was measured, shown in the table
    hint: str                 # one line: what the verdict means and what to fix
    details: dict = dataclasses.field(default_factory=dict)   # series for the figure
    seconds: float = 0.0      # wall time of the check

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(map(repr, VERDICTS))}; got {self.verdict!r}")

    def numbers_text(self) -> str:
        """`key=value` pairs, floats with 4 significant digits."""
        return " ".join(f"{k}={_fmt(v)}" for k, v in self.numbers.items())

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "numbers": dict(self.numbers), "hint": self.hint,
                "details": dict(self.details), "seconds": round(self.seconds, 3)}


def _finite(v):
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    return v


def _fmt(v) -> str:
    if isinstance(v, float):
        return format(v, ".4g") if math.isfinite(v) else str(v)
    if isinstance(v, (list, tuple)):
        return ",".join(_fmt(x) for x in v)
    return str(v)


class ModelReport:
    """Every check's verdict, numbers and hint, as one table, a dict and a figure.

    Attributes:
        results: the CheckResults in the order they ran.
        level: "quick" or "full". device: where the checks ran, in words.
    """

    def __init__(self, results: list[CheckResult], level: str, device: str, model_name: str = "model",
                 parameters: int = 0):
        self.results, self.level, self.device = list(results), level, device
        self.model_name, self.parameters = model_name, parameters

    def __getitem__(self, name: str) -> CheckResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(f"no check named {name!r}; ran {', '.join(r.name for r in self.results)}")

    def __contains__(self, name: str) -> bool:
        return any(r.name == name for r in self.results)

    @property
    def verdicts(self) -> dict:
        """{check name: verdict}, what the notebook records."""
        return {r.name: r.verdict for r in self.results}

    @property
    def failed(self) -> list[str]:
        """Names of the checks that failed (empty when none did)."""
        return [r.name for r in self.results if r.verdict == "fail"]

    @property
    def warned(self) -> list[str]:
        return [r.name for r in self.results if r.verdict == "warn"]

    @property
    def overall(self) -> str:
        """"fail" when any check failed, else "warn" when any warned, else "pass"."""
        return "fail" if self.failed else "warn" if self.warned else "pass"

    @property
    def suggested_lr(self) -> float | None:
        """The learning rate the lr_range check suggests (None when it did not run or found none)."""
        if "lr_range" not in self:
            return None
        return self["lr_range"].numbers.get("suggested_lr")

    def verdict_line(self) -> str:
        counts = {v: sum(r.verdict == v for r in self.results) for v in VERDICTS}
        line = f"overall: {self.overall} ({', '.join(f'{n} {v}' for v, n in counts.items() if n)})"
        if self.failed:
            line += f"; failed: {', '.join(self.failed)}"
        if self.warned:
            line += f"; warnings: {', '.join(self.warned)}"
        return line

    def table(self) -> str:
        rows = [{"check": r.name, "verdict": r.verdict, "numbers": r.numbers_text(), "hint": r.hint}
                for r in self.results]
        return format_table(rows, ["check", "verdict", "numbers", "hint"], left=("check", "numbers", "hint"))

    def __str__(self) -> str:
        head = (f"model check ({self.level}) of {self.model_name}: {self.parameters:,} parameters on "
                f"{self.device}")
        return "\n".join([head, self.table(), self.verdict_line()])

    def __repr__(self) -> str:
        return f"<ModelReport {self.level} {self.overall}: {self.verdicts}>"

    def to_dict(self) -> dict:
        """JSON-ready: level, device, model, parameters, overall, suggested_lr and every check."""
        return {"level": self.level, "device": self.device, "model": self.model_name,
                "parameters": self.parameters, "overall": self.overall, "suggested_lr": self.suggested_lr,
                "checks": {r.name: r.to_dict() for r in self.results}}

    def save(self, path) -> Path:
        """Write `to_dict()` as JSON (non-finite floats as strings, so the file stays valid JSON).

        Returns:
            the path written.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_finite(self.to_dict()), indent=2, default=str) + "\n")
        return path

    def figure(self) -> "Figure":  # noqa: F821
        """Gradient norm per layer, the LR range curve, memory and step time vs batch size.

        Returns:
            a matplotlib Figure with 3 panels (see trainbook.checks.figure); nothing is shown or saved.
        Raises:
            ImportError: matplotlib is not installed.
        """
        from .figure import plot_model_report

        return plot_model_report(self)
