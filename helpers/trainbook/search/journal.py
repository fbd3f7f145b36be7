"""The search journal: search.jsonl, one JSON row per trial state change, and search_spec.json beside it.

    journal = Journal(search_dir / JOURNAL_NAME); journal.start(ctx, trials); journal.append(journal_row(ctx, t))

Rows are appended and fsynced; a torn last line (killed mid-write) is dropped on read. `start`
refuses a journal written by a different search (naming what changed) or one whose plan this
call's plan does not extend, appends the missing `planned` rows and loads each trial's last state.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from ..persist import copy_file

if TYPE_CHECKING:
    from .results import Trial

JOURNAL_NAME, SPEC_NAME = "search.jsonl", "search_spec.json"
ENDED = ("finished", "failed", "pruned")


def spec_changes(old: dict, new: dict) -> str:
    """What differs between two search specs, for the 'different search' error."""
    changed = [f"{k}: {old.get(k)!r} -> {new[k]!r}" for k in new if k != "base_config" and old.get(k) != new[k]]
    base_old = old.get("base_config", {})
    changed += [f"base_config.{k}: {base_old.get(k)!r} -> {v!r}" for k, v in new["base_config"].items()
                if base_old.get(k) != v]
    return "; ".join(changed) or "unknown (no search_spec.json)"


def journal_row(ctx: dict, t: Trial) -> dict:
    """The journal row of a trial's current state."""
    row = {"trial": t.index, "status": t.status, "params": t.params, "seed": t.seed, "search_id": ctx["search_id"]}
    if t.status in ENDED:
        row.update(metric=t.metric, best_epoch=t.best_epoch, epochs=t.epochs, wall_time_s=t.wall_time_s,
                   curve=t.curve, error=t.error)
    return row


class Journal:
    """search.jsonl: append-only JSON lines, fsynced; a torn last line (killed mid-write) is dropped.

    With `mirror` (the search's folder in persist_dir) the journal and search_spec.json are copied
    there after every change, and `start` takes them back when the mirror knows more trials' states
    than the local journal (a fresh runtime with an empty local disk).
    """

    def __init__(self, path: Path, mirror: Path | None = None):
        self.path = Path(path)
        self.mirror = Path(mirror) if mirror is not None else None

    def read(self) -> list[dict]:
        text = self.path.read_text() if self.path.exists() else ""
        lines = text.split("\n")
        if lines[-1]:
            warnings.warn(f"{self.path}: dropped a partial last line left by an interrupted write", RuntimeWarning)
            self.path.write_text("".join(line + "\n" for line in lines[:-1]))
        rows = []
        for n, line in enumerate(lines[:-1], 1):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{self.path} line {n} is not valid JSON ({e}). HINT: fix or delete that "
                                 "line, or delete the search dir to start over") from None
        return rows

    def append(self, *rows: dict):
        with open(self.path, "a") as fh:
            fh.write("".join(json.dumps(r) + "\n" for r in rows))
            fh.flush()
            os.fsync(fh.fileno())
        self._copy_to_mirror()

    def _copy_to_mirror(self):
        if self.mirror is not None:
            for name in (JOURNAL_NAME, SPEC_NAME):
                if (self.path.parent / name).is_file():
                    copy_file(self.path.parent / name, self.mirror / name)

    def _take_from_mirror(self):
        theirs = self.mirror / JOURNAL_NAME if self.mirror is not None else None
        if theirs is None or not theirs.is_file():
            return
        ours = self.path.read_bytes().count(b"\n") if self.path.is_file() else 0
        if theirs.read_bytes().count(b"\n") > ours:
            for name in (JOURNAL_NAME, SPEC_NAME):
                if (self.mirror / name).is_file():
                    copy_file(self.mirror / name, self.path.parent / name)

    def start(self, ctx: dict, trials: list):
        """Refuse a journal of another search, append missing plan rows, load each trial's last state."""
        self._take_from_mirror()
        rows, spec_path = self.read(), self.path.parent / SPEC_NAME
        if any(r.get("search_id") != ctx["search_id"] for r in rows):
            old = json.loads(spec_path.read_text()) if spec_path.exists() else {}
            raise ValueError(f"{self.path.parent} holds a different search ({spec_changes(old, ctx['spec'])}). "
                             "HINT: pass another search_dir, or delete this one to start over")
        if not rows:
            spec_path.with_suffix(".tmp").write_text(json.dumps(ctx["spec"], indent=2, sort_keys=True) + "\n")
            os.replace(spec_path.with_suffix(".tmp"), spec_path)
            self._copy_to_mirror()
        planned = {r["trial"]: r["params"] for r in rows if r["status"] == "planned"}
        if any(i >= len(trials) or trials[i].params != params for i, params in planned.items()):
            raise ValueError(f"{self.path.parent} holds a plan of {len(planned)} trials that this call's plan of "
                             f"{len(trials)} does not extend (n_trials can grow, not shrink). HINT: pass "
                             f"n_trials >= {len(planned)}, another search_dir, or delete this one to start over")
        if len(planned) < len(trials):
            self.append(*[journal_row(ctx, t) for t in trials if t.index not in planned])
        for r in rows:
            t = trials[r["trial"]]
            t.status = r["status"]
            for key in ("metric", "best_epoch", "epochs", "wall_time_s", "curve", "error"):
                setattr(t, key, r.get(key, getattr(t, key)))
