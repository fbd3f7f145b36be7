"""Small helpers for notebook cells: record values for tests, show tables.

    tb.record(run_dir, final_val_loss=0.93)   # merged into <run_dir>/record.json
"""

from __future__ import annotations

import json
import math
from pathlib import Path


def record(run_dir, **values) -> dict:
    """Merge named values into `<run_dir>/record.json` (what notebook tests assert on).

    Non-finite floats are stored as strings ("nan", "inf") so the file stays valid JSON.
    """
    path = Path(run_dir) / "record.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(path.read_text()) if path.exists() else {}
    for k, v in values.items():
        data[k] = str(v) if isinstance(v, float) and not math.isfinite(v) else v
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    return data


def format_table(rows: list[dict], columns: list[str] | None = None, floatfmt: str = ".4g") -> str:
    """A plain-text table of dicts (one line per row)."""
    if not rows:
        return "(no rows)"
    columns = columns or list(rows[0])
    cell = lambda v: format(v, floatfmt) if isinstance(v, float) else str(v)  # noqa: E731
    body = [[cell(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(b[i]) for b in body)) for i, c in enumerate(columns)]
    line = lambda vals: "  ".join(v.rjust(w) for v, w in zip(vals, widths))  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths]), *map(line, body)])


def show_table(rows: list[dict], columns: list[str] | None = None) -> str:
    text = format_table(rows, columns)
    print(text)
    return text
