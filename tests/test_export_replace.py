"""Replacing a bundle (trainbook.export.replace): a loadable bundle exists at every moment.

A worker exports bundle A, then bundle B over it, and is SIGKILLed before each step of the
replace (FAULT_HOOK); the bundle folder must then load as A or B, and leftovers are cleaned.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import trainbook as tb
from trainbook.export import BundleError
from trainbook.export.replace import STEPS, aside_dir, recover, staging_dir

WORKER = Path(__file__).parent / "workers" / "bundle_replace_worker.py"
SPEC = tb.TaskSpec.preset("vision-cls")


def weights(seed):
    return tb.build_model(SPEC, "tiny", seed=seed).state_dict()


def same_weights(model, seed) -> bool:
    expected = weights(seed)
    return all(torch.equal(v, expected[k]) for k, v in model.state_dict().items())


def export(seed, out):
    return tb.export_bundle(tb.build_model(SPEC, "tiny", seed=seed), tb.TrainingConfig(wandb_mode="disabled"), SPEC, out)


# which bundle is in place once a kill before `step` has been recovered
EXPECTED = {"aside": 1, "in": 2, "drop": 2, "done": 2}


@pytest.mark.parametrize("step", STEPS)
def test_a_kill_before_any_step_of_the_replace_leaves_a_loadable_bundle(step, tmp_path, capsys):
    out = tmp_path / "bundle"
    proc = subprocess.run([sys.executable, str(WORKER), str(out), step], capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr  # killed by SIGKILL at the hook, not finished
    on_disk = sorted(p.name for p in tmp_path.iterdir())
    assert on_disk and set(on_disk) <= {"bundle", ".bundle.tmp", ".bundle.old"}

    model, meta = tb.load_bundle(out)  # recovers first when the kill fell between the renames
    assert same_weights(model, EXPECTED[step])
    assert meta["parity"]["passed"]
    if step == "in":  # the old bundle was set aside and the new one not yet renamed in
        assert on_disk == [".bundle.old", ".bundle.tmp"]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]
        assert "moved the new bundle from .bundle.tmp into place" in capsys.readouterr().out

    again = export(3, out)  # the next export cleans what is left over and replaces the bundle
    assert same_weights(tb.load_bundle(again)[0], 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]
    if step in ("aside", "drop"):  # a complete new bundle, or the replaced old one, was left beside it
        assert "left by an interrupted export" in capsys.readouterr().out


def test_recover_restores_the_set_aside_bundle_when_the_new_one_is_incomplete(tmp_path, capsys):
    out = export(1, tmp_path / "bundle")
    out.rename(aside_dir(out))
    staging = staging_dir(out)
    staging.mkdir()
    (staging / "model.safetensors").write_bytes(b"half written")
    recover(out)
    assert same_weights(tb.load_bundle(out)[0], 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]
    assert "restored the previous bundle from .bundle.old" in capsys.readouterr().out


def test_an_unfinished_first_export_is_removed_and_nothing_pretends_to_be_a_bundle(tmp_path, capsys):
    out = tmp_path / "bundle"
    staging = staging_dir(out)
    staging.mkdir()
    (staging / "metadata.json").write_text("{")
    with pytest.raises(BundleError, match="not a bundle folder"):
        tb.load_bundle(out)
    assert list(tmp_path.iterdir()) == []
    assert "an unfinished new bundle" in capsys.readouterr().out


def test_export_keeps_the_previous_bundle_when_the_new_one_fails(tmp_path):
    out = export(1, tmp_path / "bundle")

    class NotExportable(torch.nn.Module):  # defined in a function: a bundle could not import it again
        def forward(self, pixel_values):
            return pixel_values

    with pytest.raises(BundleError, match="could not import it again"):
        tb.export_bundle(NotExportable(), tb.TrainingConfig(wandb_mode="disabled"), SPEC, out)
    assert same_weights(tb.load_bundle(out)[0], 1)
    shutil.rmtree(out)
