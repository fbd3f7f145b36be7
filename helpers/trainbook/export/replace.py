"""Replacing a bundle folder so that a loadable bundle exists at every moment.

    staging = staging_dir(out_dir)      # write the new bundle here, check it, then:
    publish(staging, out_dir)           # old aside, new in, old deleted
    recover(out_dir)                    # after a crash: finish or undo a replace that stopped half-way

A kill between any two renames leaves either the old bundle in place, or the complete new one in
the staging folder with the old one set aside; `recover` (run by export_bundle and load_bundle
before they touch a bundle) moves the right one into place and deletes what is left over, with
one line each. FAULT_HOOK lets tests stop the process before each step.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .errors import BundleError
from .files import verified_metadata

STEPS = ("aside", "in", "drop", "done")  # the steps of publish; FAULT_HOOK(step) runs before each
FAULT_HOOK = None


def staging_dir(out_dir: Path) -> Path:
    """Where a new bundle is written before it replaces out_dir (a hidden sibling)."""
    return out_dir.with_name(f".{out_dir.name}.tmp")


def aside_dir(out_dir: Path) -> Path:
    """Where the previous bundle waits while the new one is renamed into place."""
    return out_dir.with_name(f".{out_dir.name}.old")


def publish(staging: Path, out_dir: Path):
    """Put the complete bundle in `staging` at out_dir: rename the old aside, the new in, delete the old."""
    old = aside_dir(out_dir)
    if old.exists():
        shutil.rmtree(old)
    _fault("aside")
    if out_dir.exists():
        out_dir.rename(old)
    _fault("in")
    staging.rename(out_dir)
    _fault("drop")
    shutil.rmtree(old, ignore_errors=True)
    _fault("done")


def recover(out_dir: Path) -> None:
    """Finish or undo a replace that a crash interrupted, and delete leftovers, saying what was done.

    With no bundle at out_dir, a complete staged bundle (all checksums good, parity recorded) is
    moved in; otherwise the set-aside previous bundle is moved back. Then leftover staging and
    set-aside folders are deleted.
    """
    staging, old = staging_dir(out_dir), aside_dir(out_dir)
    if not out_dir.exists():
        if _complete(staging):
            staging.rename(out_dir)
            print(f"bundle: {out_dir} was being replaced when the process stopped; moved the new bundle "
                  f"from {staging.name} into place")
        elif old.is_dir():
            old.rename(out_dir)
            print(f"bundle: {out_dir} was being replaced when the process stopped; restored the previous "
                  f"bundle from {old.name}")
    for leftover, what in ((staging, "an unfinished new bundle"), (old, "the replaced previous bundle")):
        if leftover.exists():
            shutil.rmtree(leftover)
            print(f"bundle: removed {leftover} ({what} left by an interrupted export)")


def _complete(staging: Path) -> bool:
    if not staging.is_dir():
        return False
    try:
        return verified_metadata(staging).get("parity") is not None  # parity is written last
    except BundleError:
        return False


def _fault(step: str):
    if FAULT_HOOK is not None:
        FAULT_HOOK(step)
