"""Untrusted bundles (trainbook.export.trust, files, model_io): loading runs no bundle code unless
trusted, refuses unlisted files, and names the file behind every format error.

The attacker's moves are the realistic ones: edit a file and rewrite metadata.json's sha256 to
match, add a file, or swap the weights for a pickle.
"""

import json
import pickle
import subprocess
import sys
import textwrap

import pytest
import torch

import trainbook as tb
from trainbook.export import BundleError
from trainbook.export.files import sha256

SPEC = tb.TaskSpec.preset("vision-cls")
MODEL_FILE = textwrap.dedent("""
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self, hidden=4):
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, hidden), torch.nn.Linear(hidden, 10))

        def forward(self, pixel_values):
            return self.body(pixel_values)
    """)


def export(model, out):
    return tb.export_bundle(model, tb.TrainingConfig(wandb_mode="disabled"), SPEC, out)


def rewrite_checksums(bundle):
    """What an attacker does after editing a file: make metadata.json agree with it."""
    meta = json.loads((bundle / "metadata.json").read_text())
    meta["files"] = {name: sha256(bundle / name) for name in meta["files"]}
    (bundle / "metadata.json").write_text(json.dumps(meta))


@pytest.fixture
def code_bundle(tmp_path):
    source = tmp_path / "my_model.py"
    source.write_text(MODEL_FILE)
    return export(tb.load_model_file(source, hidden=6), tmp_path / "bundle")


def test_a_bundle_with_tampered_code_and_rewritten_checksums_is_refused_without_trust(code_bundle, tmp_path):
    marker = tmp_path / "code-ran"
    code = code_bundle / json.loads((code_bundle / "model_config.json").read_text())["file"]
    assert code == code_bundle / "model_code" / "my_model.py"
    code.write_text(f"open({str(marker)!r}, 'w').write('pwned')\n" + code.read_text())
    rewrite_checksums(code_bundle)

    with pytest.raises(BundleError, match=r"model is defined by code inside the bundle \(model_code/my_model\.py\).*"
                                          r"trust_remote_code=True"):
        tb.load_bundle(code_bundle)
    assert not marker.exists()  # refused before anything was imported

    model, _ = tb.load_bundle(code_bundle, trust_remote_code=True)  # the opt-in really runs the code
    assert marker.read_text() == "pwned" and type(model).__name__ == "Tiny"


def test_a_builtin_bundle_loads_without_trust_and_runs_no_bundle_file(tmp_path):
    path = export(tb.build_model(SPEC, "tiny", seed=4), tmp_path / "bundle")
    model, meta = tb.load_bundle(path)
    assert meta["model_config"]["source"] == "builtin" and not (path / "model_code.py").exists()
    assert not model.training


def test_an_importable_class_needs_its_module_imported_or_trust(tmp_path, monkeypatch):
    marker = tmp_path / "imported"
    (tmp_path / "planted_module.py").write_text(
        f"open({str(marker)!r}, 'w').write('x')\nimport torch\n\n\nclass Net(torch.nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.linear = torch.nn.Linear(64, 10)\n\n"
        "    def forward(self, pixel_values):\n        return self.linear(pixel_values.flatten(1))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import planted_module

    path = export(tb.build_model(SPEC, "tiny"), tmp_path / "bundle")
    # an import record (what an installed package's class exports as), naming the planted module
    (path / "model_config.json").write_text(json.dumps({"source": "import", "module": "planted_module",
                                                        "qualname": "Net", "kwargs": {}}))
    tb.export.model_io.save_weights(planted_module.Net(), path / "model.safetensors")
    rewrite_checksums(path)
    marker.unlink()
    monkeypatch.delitem(sys.modules, "planted_module")
    with pytest.raises(BundleError, match=r"module 'planted_module', which is not imported.*import planted_module"):
        tb.load_bundle(path)
    assert not marker.exists()
    assert type(tb.load_bundle(path, trust_remote_code=True)[0]).__name__ == "Net" and marker.exists()


def test_an_import_record_naming_something_that_is_not_a_module_class_is_refused(tmp_path):
    path = export(tb.build_model(SPEC, "tiny"), tmp_path / "bundle")
    (path / "model_config.json").write_text(json.dumps({"source": "import", "module": "os", "qualname": "system"}))
    rewrite_checksums(path)
    with pytest.raises(BundleError, match=r"os\.system is not an nn\.Module class; refusing to call it"):
        tb.load_bundle(path, trust_remote_code=True)


def test_unlisted_files_are_an_error_naming_them_or_a_warning_when_not_strict(tmp_path):
    path = export(tb.build_model(SPEC, "tiny", seed=2), tmp_path / "bundle")
    (path / "__pycache__").mkdir()
    (path / "__pycache__" / "model_code.cpython-311.pyc").write_bytes(b"\x00" * 16)
    (path / "notes.txt").write_text("hello")
    with pytest.raises(BundleError, match=r"does not list: __pycache__/model_code\.cpython-311\.pyc, notes\.txt"):
        tb.load_bundle(path)
    with pytest.warns(RuntimeWarning, match=r"does not list: __pycache__/model_code\.cpython-311\.pyc, notes\.txt"):
        model, _ = tb.load_bundle(path, strict=False)
    assert not model.training


def test_a_pickle_in_place_of_the_weights_is_a_bundle_error_naming_the_file(tmp_path):
    path = export(tb.build_model(SPEC, "tiny"), tmp_path / "bundle")
    weights = path / "model.safetensors"
    weights.write_bytes(pickle.dumps({"head.1.weight": torch.zeros(10, 4)}))
    rewrite_checksums(path)
    with pytest.raises(BundleError, match=r"model\.safetensors: not a readable safetensors weights file "
                                          r"\(SafetensorError: .*\)\. HINT: re-export") as error:
        tb.load_bundle(path)
    assert str(weights) in str(error.value)


@pytest.mark.parametrize("name,content,message", [
    ("task_spec.json", {"name": "x", "modality": "smell", "kind": "lm"}, r"task_spec\.json: not a valid record"),
    ("training_config.json", {"epochs": -1}, r"training_config\.json: not a valid record \(ConfigError"),
    ("model_config.json", {"source": "builtin"}, r"model_config\.json: not a valid built-in model config \(KeyError"),
    ("model_config.json", [1, 2], r"model_config\.json: must hold a JSON object"),
])
def test_every_malformed_record_names_its_file(name, content, message, tmp_path):
    path = export(tb.build_model(SPEC, "tiny"), tmp_path / "bundle")
    (path / name).write_text(json.dumps(content))
    rewrite_checksums(path)
    with pytest.raises(BundleError, match=message):
        tb.load_bundle(path)


def test_a_config_asking_for_far_more_parameters_than_the_weights_hold_is_refused(tmp_path):
    path = export(tb.build_model(SPEC, "tiny"), tmp_path / "bundle")
    config = json.loads((path / "model_config.json").read_text())
    config["model_config"]["width"] = 10**7  # ~10^14 numbers on the meta device; would exhaust memory
    (path / "model_config.json").write_text(json.dumps(config))
    rewrite_checksums(path)
    with pytest.raises(BundleError, match=r"model_config\.json: describes a model of [\d,]+ numbers but "
                                          r"model\.safetensors holds [\d,]+; refusing to build it"):
        tb.load_bundle(path)


def test_inference_py_runs_the_bundles_code_because_running_it_is_trusting_it(code_bundle, tmp_path):
    samples = tb.load_task_data("vision-cls", limit=8)
    from trainbook.export import write_samples

    images = write_samples(samples.val, SPEC, tmp_path / "images", n=2)
    run = subprocess.run([sys.executable, str(code_bundle / "inference.py"), str(images)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert len(run.stdout.strip().splitlines()) == 2
