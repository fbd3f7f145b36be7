"""Small helpers for notebook cells: record values for tests, show tables.

    tb.record(run_dir, final_val_loss=0.93)   # merged into <run_dir>/record.json
"""

from __future__ import annotations

import json
import math
import sys
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


def format_table(rows: list[dict], columns: list[str] | None = None, floatfmt: str = ".4g",
                 left: tuple = ()) -> str:
    """A plain-text table of dicts (one line per row).

    Args:
        rows: one dict per row. columns: which keys, in order (default: the first row's).
        floatfmt: format of float cells. left: columns aligned left (the others align right).
    """
    if not rows:
        return "(no rows)"
    columns = columns or list(rows[0])
    cell = lambda v: format(v, floatfmt) if isinstance(v, float) else str(v)  # noqa: E731
    body = [[cell(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(b[i]) for b in body)) for i, c in enumerate(columns)]
    align = [str.ljust if c in left else str.rjust for c in columns]
    line = lambda vals: "  ".join(a(v, w) for a, v, w in zip(align, vals, widths)).rstrip()  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths]), *map(line, body)])


def show_table(rows: list[dict], columns: list[str] | None = None) -> str:
    text = format_table(rows, columns)
    print(text)
    return text


# --- search progress ---

class SearchProgress:
    """A progress bar over the trials (tqdm.auto: a widget in notebooks; off with progress_bar=False)
    and one plain line per trial as it ends; the caller shows the results table once at the end."""

    def __init__(self, result, total: int, progress_bar: bool = True):
        from tqdm.auto import tqdm

        done = sum(t.status in ("finished", "pruned", "failed") for t in result.trials)
        self.total = total
        self.bar = tqdm(total=total, initial=min(done, total), desc="search trials", unit="trial", leave=False,
                        disable=not progress_bar, dynamic_ncols=True)

    def update(self, result, ended=None):
        if ended is None:
            return
        value = "-" if ended.metric is None else f"{ended.metric:.4f}"
        self.bar.write(f"trial {ended.index + 1}/{self.total} | {ended.status} | {result.metric} {value} | "
                       f"best_epoch {ended.best_epoch} | epochs {ended.epochs} | {ended.wall_time_s or 0:.1f}s | "
                       f"{_fmt(ended.params)}" + (f" | {ended.error}" if ended.error else ""), file=sys.stdout)
        self.bar.update(1)

    def close(self, result):
        self.bar.close()
        b = result.best
        print(f"search: best trial {b.index} | {result.metric} {b.metric:.4f} | {_fmt(b.params)}" if b
              else "search: no trial finished")


def _fmt(params: dict) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
