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
    """In a notebook: one HTML results table updated in place. Headless: one plain line per trial."""

    def __init__(self, result, total: int):
        from .env import in_notebook

        self.total, self.handle = total, None
        if in_notebook():
            from IPython.display import HTML, display

            self.html = HTML
            self.handle = display(HTML(_html_table(result)), display_id=True)

    def update(self, result, ended=None):
        if self.handle is not None:
            self.handle.update(self.html(_html_table(result)))
        elif ended is not None:
            value = "-" if ended.metric is None else f"{ended.metric:.4f}"
            print(f"trial {ended.index + 1}/{self.total} | {ended.status} | {result.metric} {value} | "
                  f"best_epoch {ended.best_epoch} | epochs {ended.epochs} | {ended.wall_time_s or 0:.1f}s | "
                  f"{_fmt(ended.params)}" + (f" | {ended.error}" if ended.error else ""))

    def close(self, result):
        b = result.best
        print(f"search: best trial {b.index} | {result.metric} {b.metric:.4f} | {_fmt(b.params)}" if b
              else "search: no trial finished")


def _fmt(params: dict) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def _html_table(result) -> str:
    import html

    rows = result.table()
    cell = lambda v: "" if v is None else html.escape(f"{v:.4g}" if isinstance(v, float) else str(v))  # noqa: E731
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0]) if rows else ""
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r.values()) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
