"""Export bundles: round trip, tamper detection, inference.py, the Trainer hook, drift check."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import trainbook as tb
from trainbook.export import predict, read_examples, write_samples
from trainbook.export import BundleError

TASKS = ("lm", "text-cls", "vision-cls")
BUNDLE_FILES = {"model.safetensors", "model_config.json", "training_config.json", "task_spec.json",
                "reference_profile.json", "metadata.json", "inference.py"}


@pytest.fixture(scope="module")
def task_data():
    return {task: tb.load_task_data(task, limit=24) for task in TASKS}


def _batch(data, n=5):
    return tb.collator_for(data.spec)([data.val[i] for i in range(min(n, len(data.val)))])


def _logits(model, batch, spec):
    from trainbook.models import make_forward

    with torch.no_grad():
        return make_forward(model.eval(), spec)(batch)


def _export(model, spec, out, **kwargs):
    return tb.export_bundle(model, tb.TrainingConfig(wandb_mode="disabled"), spec, out, **kwargs)


# --- module-level models (importable, so they take the "import" path) ---

class ScaledLinear(torch.nn.Module):
    """Its output depends on a plain attribute that is not saved: reload parity must fail."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(64, 10)
        self.scale = 1.0

    def forward(self, pixel_values):
        return self.linear(pixel_values.flatten(1)) * self.scale


class NeedsArgs(torch.nn.Module):
    def __init__(self, width):
        super().__init__()
        self.linear = torch.nn.Linear(64, width)

    def forward(self, pixel_values):
        return self.linear(pixel_values.flatten(1))


class DataDependent(torch.nn.Module):
    """Branches on a tensor value, which torch.export cannot trace."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(64, 10)

    def forward(self, pixel_values):
        out = self.linear(pixel_values.flatten(1))
        return out if bool(out.sum() > 0) else -out


# --- round trip ---

@pytest.mark.parametrize("task", TASKS)
def test_round_trip_gives_equal_outputs_for_every_builtin_task(task, task_data, tmp_path):
    data = task_data[task]
    model = tb.build_model(data.spec, "tiny", seed=3)
    path = _export(model, data.spec, tmp_path / "bundle", metrics={"val_loss": 1.5},
                   example_batch=[data.val[i] for i in range(4)])
    reloaded, meta = tb.load_bundle(path)

    assert {f.name for f in path.iterdir()} == BUNDLE_FILES
    batch = _batch(data)  # other examples than the export-time parity batch
    diff = (_logits(model, batch, data.spec) - _logits(reloaded, batch, data.spec)).abs().max().item()
    assert diff <= 1e-6
    assert meta["parity"]["passed"] and meta["parity"]["max_abs_diff"] <= 1e-6
    assert meta["parity"]["batch_shape"][0] == 4
    original, restored = model.state_dict(), reloaded.state_dict()
    assert original.keys() == restored.keys()
    assert all(torch.equal(original[k], restored[k]) for k in original)
    assert not reloaded.training
    assert meta["task_spec"] == data.spec
    assert meta["metrics"] == {"val_loss": 1.5}
    assert meta["versions"]["torch"] == torch.__version__
    assert meta["model"]["source"] == "builtin"
    assert json.loads((path / "model_config.json").read_text())["model_config"] == model.config.to_dict()
    assert set(meta["files"]) == BUNDLE_FILES - {"metadata.json"}


def test_gpt_tied_weights_are_stored_once_and_tied_again_on_load(task_data, tmp_path):
    spec = task_data["lm"].spec
    path = _export(tb.build_model(spec, "tiny"), spec, tmp_path / "bundle")
    stored = load_file(str(path / "model.safetensors"))
    reloaded, meta = tb.load_bundle(path)

    assert "head.weight" not in stored and "transformer.tok.weight" in stored
    assert meta["model"]["tied_weights"] == {"head.weight": "transformer.tok.weight"}
    assert reloaded.head.weight is reloaded.transformer.tok.weight


def test_training_config_and_task_spec_round_trip_exactly(task_data, tmp_path):
    spec = task_data["text-cls"].spec
    cfg = tb.TrainingConfig(epochs=7, learning_rate=1e-3, wandb_mode="offline", export_formats=["safetensors"])
    path = tb.export_bundle(tb.build_model(spec, "tiny"), cfg, spec, tmp_path / "bundle")
    _, meta = tb.load_bundle(path)

    assert meta["training_config"] == cfg
    assert tb.TaskSpec.from_dict(json.loads((path / "task_spec.json").read_text())) == spec


def test_reference_profile_is_stored_and_returned(task_data, tmp_path):
    spec = task_data["vision-cls"].spec
    profile = {"features": {"brightness": {"mean": 0.31, "quantiles": [0.1, 0.5, 0.9]}}, "n": 24}
    path = _export(tb.build_model(spec, "tiny"), spec, tmp_path / "bundle", reference_profile=profile)

    assert json.loads((path / "reference_profile.json").read_text()) == profile
    assert tb.load_bundle(path)[1]["reference_profile"] == profile


def test_load_bundle_keeps_the_callers_random_state(task_data, tmp_path):
    spec = task_data["vision-cls"].spec
    path = _export(tb.build_model(spec, "tiny"), spec, tmp_path / "bundle")
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    tb.load_bundle(path)
    assert torch.equal(torch.rand(3), expected)


# --- integrity ---

def test_load_bundle_refuses_a_flipped_byte_in_the_weights(task_data, tmp_path):
    spec = task_data["vision-cls"].spec
    path = _export(tb.build_model(spec, "tiny"), spec, tmp_path / "bundle")
    weights = path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))

    with pytest.raises(BundleError, match=r"model\.safetensors: sha256 mismatch"):
        tb.load_bundle(path)


def test_load_bundle_refuses_a_truncated_or_missing_file(task_data, tmp_path):
    spec = task_data["vision-cls"].spec
    path = _export(tb.build_model(spec, "tiny"), spec, tmp_path / "bundle")
    spec_file = path / "task_spec.json"
    spec_file.write_bytes(spec_file.read_bytes()[:20])
    with pytest.raises(BundleError, match=r"task_spec\.json: sha256 mismatch"):
        tb.load_bundle(path)

    (path / "inference.py").unlink()
    with pytest.raises(BundleError, match=r"inference\.py: missing"):
        tb.load_bundle(path)


def test_load_bundle_refuses_a_folder_that_is_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match=r"metadata\.json: missing"):
        tb.load_bundle(tmp_path)
    (tmp_path / "metadata.json").write_text('{"format": "trainbook-bu')
    with pytest.raises(BundleError, match=r"metadata\.json: not valid JSON"):
        tb.load_bundle(tmp_path)


def test_export_refuses_to_replace_a_folder_that_is_not_a_bundle(task_data, tmp_path):
    spec = task_data["vision-cls"].spec
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(BundleError, match="is not a trainbook bundle"):
        _export(tb.build_model(spec, "tiny"), spec, tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_export_again_replaces_the_previous_bundle(task_data, tmp_path):
    spec = task_data["vision-cls"].spec
    _export(tb.build_model(spec, "tiny", seed=1), spec, tmp_path / "bundle")
    second = tb.build_model(spec, "tiny", seed=2)
    path = _export(second, spec, tmp_path / "bundle")
    reloaded, _ = tb.load_bundle(path)
    assert torch.equal(reloaded.head[1].weight, second.head[1].weight)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_a_bundle_in_the_run_folder_is_copied_to_persist_dir_and_loads_from_there(task_data, tmp_path):
    spec = task_data["vision-cls"].spec
    cfg = tb.TrainingConfig(output_dir=str(tmp_path / "runs"), persist_dir=str(tmp_path / "drive"), wandb_mode="disabled")
    model = tb.build_model(spec, "tiny", seed=3)
    path = tb.export_bundle(model, cfg, spec, cfg.run_dir / "bundle")
    persisted = tmp_path / "drive" / "run" / "bundle"
    assert sorted(p.name for p in persisted.iterdir()) == sorted(p.name for p in path.iterdir())
    reloaded, meta = tb.load_bundle(persisted)   # every sha256 checked
    assert torch.equal(reloaded.head[1].weight, model.head[1].weight) and meta["parity"]["passed"]
    tb.export_bundle(model, cfg, spec, tmp_path / "elsewhere")   # outside the run folder: not copied
    assert sorted(p.name for p in (tmp_path / "drive" / "run").iterdir()) == ["bundle"]


# --- other models ---

def test_user_model_file_is_copied_into_the_bundle_with_its_arguments(task_data, tmp_path):
    spec = task_data["vision-cls"].spec
    source = tmp_path / "my_model.py"
    source.write_text(textwrap.dedent("""
        import torch

        class Tiny(torch.nn.Module):
            def __init__(self, hidden=4, classes=10):
                super().__init__()
                self.body = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, hidden),
                                                torch.nn.ReLU(), torch.nn.Linear(hidden, classes))

            def forward(self, pixel_values):
                return self.body(pixel_values)
        """))
    model = tb.load_model_file(source, hidden=12)
    path = _export(model, spec, tmp_path / "bundle")
    source.unlink()  # the bundle must not need the original file
    reloaded, meta = tb.load_bundle(path, trust_remote_code=True)

    batch = _batch(task_data["vision-cls"])
    assert torch.equal(_logits(model, batch, spec), _logits(reloaded, batch, spec))
    assert meta["model_config"]["source"] == "file"
    assert meta["model_config"]["kwargs"] == {"hidden": 12}
    assert "model_code/my_model.py" in meta["files"]
    assert not list(path.rglob("__pycache__"))


def test_a_class_only_this_session_can_import_is_exported_as_code(task_data, tmp_path):
    spec = task_data["vision-cls"].spec
    model = DataDependent()  # this test module: importable here (pytest put tests/ on sys.path), not in a fresh process
    path = _export(model, spec, tmp_path / "bundle")
    with pytest.raises(tb.BundleError, match=r"defined by code inside the bundle \(model_code/test_export\.py\)"):
        tb.load_bundle(path)   # the bundle's code runs only when trusted
    reloaded, meta = tb.load_bundle(path, trust_remote_code=True)
    assert type(reloaded).__name__ == "DataDependent" and type(reloaded) is not DataDependent
    assert meta["model_config"]["source"] == "file" and meta["model_config"]["file"] == "model_code/test_export.py"
    batch = _batch(task_data["vision-cls"])
    assert torch.equal(_logits(model, batch, spec), _logits(reloaded, batch, spec))


def test_export_refuses_a_class_defined_inside_a_function(task_data, tmp_path):
    class Local(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(64, 10)

        def forward(self, pixel_values):
            return self.linear(pixel_values.flatten(1))

    with pytest.raises(BundleError, match=r"could not import it again. HINT: .*tb.load_model\(path, class_name"):
        _export(Local(), task_data["vision-cls"].spec, tmp_path / "bundle")
    assert list(tmp_path.iterdir()) == []


def test_export_refuses_a_class_whose_arguments_it_cannot_find(task_data, tmp_path):
    with pytest.raises(BundleError, match=r"NeedsArgs: its constructor needs 'width', and the model has no attribute "
                                          r"of that name.*HINT: build it with tb.load_model\(path, class_name='NeedsArgs', "
                                          r"width=\.\.\.\)"):
        _export(NeedsArgs(10), task_data["vision-cls"].spec, tmp_path / "bundle")
    assert list(tmp_path.iterdir()) == []


def test_parity_failure_is_an_error_and_the_bundle_refuses_to_load(task_data, tmp_path):
    model = ScaledLinear()
    model.scale = 3.0  # not part of the state dict, so the reloaded model differs
    with pytest.raises(BundleError, match="outputs differ from the model's"):
        _export(model, task_data["vision-cls"].spec, tmp_path / "bundle")
    meta = json.loads((tmp_path / "bundle" / "metadata.json").read_text())
    assert meta["parity"]["passed"] is False and meta["parity"]["max_abs_diff"] > 1e-5
    with pytest.raises(BundleError, match="failed its parity check"):
        tb.load_bundle(tmp_path / "bundle")


def test_metrics_must_be_json_serialisable(task_data, tmp_path):
    spec = task_data["vision-cls"].spec
    with pytest.raises(TypeError, match="metrics must be JSON-serialisable; found a object"):
        _export(tb.build_model(spec, "tiny"), spec, tmp_path / "bundle", metrics={"x": object()})


# --- torch.export ---

def test_torch_export_program_is_written_hashed_and_runs_other_shapes(task_data, tmp_path):
    data = task_data["text-cls"]
    model = tb.build_model(data.spec, "tiny")
    path = _export(model, data.spec, tmp_path / "bundle", formats=("safetensors", "torch_export"))
    _, meta = tb.load_bundle(path)

    assert meta["torch_export"]["status"] == "ok" and meta["torch_export"]["max_abs_diff"] <= 1e-6
    assert "model.pt2" in meta["files"]
    program = torch.export.load(str(path / "model.pt2"))
    batch = _batch(data, n=3)  # batch 3 x 128 tokens; the export used 2 x 16
    with torch.no_grad():
        out = program.module()(batch["input_ids"], batch["attention_mask"])
    assert (out - _logits(model, batch, data.spec)).abs().max().item() <= 1e-5


def test_torch_export_failure_is_recorded_and_warned_not_raised(task_data, tmp_path):
    spec = task_data["vision-cls"].spec
    with pytest.warns(RuntimeWarning, match="torch.export failed"):
        path = _export(DataDependent(), spec, tmp_path / "bundle", formats=("safetensors", "torch_export"))
    _, meta = tb.load_bundle(path, trust_remote_code=True)
    assert meta["torch_export"]["status"] == "failed" and meta["torch_export"]["error"]
    assert not (path / "model.pt2").exists()


# --- inference.py ---

@pytest.mark.parametrize("task", TASKS)
def test_inference_script_prints_the_models_predictions_in_a_fresh_process(task, task_data, tmp_path):
    data = task_data[task]
    model = tb.build_model(data.spec, "tiny", seed=5)
    path = _export(model, data.spec, tmp_path / "bundle")
    samples = write_samples(data.val, data.spec, tmp_path / ("samples.txt" if task != "vision-cls" else "images"), n=3)

    run = subprocess.run([sys.executable, str(path / "inference.py"), str(samples), "--max-new-bytes", "8"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    assert lines == predict(model.eval(), data.spec, samples, max_new_bytes=8)
    assert len(lines) == 3
    if data.spec.kind == "classification":
        assert all(line.split("\t")[1] in data.spec.class_names for line in lines)
    else:
        assert all("\t-> " in line for line in lines)


def test_inference_script_names_a_missing_input(task_data, tmp_path):
    spec = task_data["text-cls"].spec
    path = _export(tb.build_model(spec, "tiny"), spec, tmp_path / "bundle")
    run = subprocess.run([sys.executable, str(path / "inference.py"), str(tmp_path / "nope.txt")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert "nope.txt does not exist" in run.stderr and "Traceback" not in run.stderr

    (path / "model_config.json").write_text("{}")
    samples = write_samples(task_data["text-cls"].val, spec, tmp_path / "samples.txt", n=1)
    run = subprocess.run([sys.executable, str(path / "inference.py"), str(samples)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert "model_config.json: sha256 mismatch" in run.stderr and "Traceback" not in run.stderr


def test_read_examples_cuts_an_lm_text_file_into_max_seq_len_windows(tmp_path):
    text = tmp_path / "prod.txt"
    text.write_bytes(b"x" * 300)
    windows = read_examples(text, tb.TaskSpec.preset("lm"))
    assert [len(w["input_ids"]) for w in windows] == [128, 128, 44]
    assert all("labels" not in w for w in windows)


def test_next_token_at_temperature_zero_is_the_argmax_and_top_k_draws_only_the_k_likeliest():
    from trainbook.export.inference import next_token

    logits = torch.tensor([0.5, 3.0, 2.9, -1.0, 2.8, 0.0])
    assert next_token(logits, temperature=0, top_k=0) == 1 and next_token(logits, temperature=0, top_k=3) == 1
    generator = torch.Generator().manual_seed(0)
    drawn = {next_token(logits, temperature=1.0, top_k=2, generator=generator) for _ in range(300)}
    assert drawn == {1, 2}
    drawn = {next_token(logits, temperature=5.0, top_k=0, generator=generator) for _ in range(300)}
    assert drawn == set(range(6))   # no top-k, a hot temperature: every id shows up
    with pytest.raises(ValueError, match="temperature and top_k must be >= 0"):
        next_token(logits, temperature=-1.0)


def test_lm_sampling_is_reproducible_per_seed_and_greedy_at_temperature_zero(task_data):
    from trainbook.export.inference import continue_bytes
    from trainbook.models import make_forward

    spec = task_data["lm"].spec
    model = tb.build_model(spec, "tiny", seed=3).eval()
    prompt = b"def main():\n    "
    first, again = (continue_bytes(model, spec, prompt, 24, "cpu", temperature=1.0, top_k=40, seed=7) for _ in range(2))
    other = continue_bytes(model, spec, prompt, 24, "cpu", temperature=1.0, top_k=40, seed=8)
    assert first == again and first != other and len(first) == 24

    ids, greedy = list(prompt), []
    with torch.no_grad():
        for _ in range(24):
            logits = make_forward(model, spec)({"input_ids": torch.tensor([ids]), "attention_mask": torch.ones(1, len(ids))})
            greedy.append(int(logits[0, -1].argmax()))
            ids.append(greedy[-1])
    assert continue_bytes(model, spec, prompt, 24, "cpu", temperature=0, seed=1) == bytes(greedy)
    assert continue_bytes(model, spec, prompt, 24, "cpu", temperature=0, seed=2) == bytes(greedy)


def test_inference_script_takes_temperature_top_k_and_seed(task_data, tmp_path):
    data = task_data["lm"]
    model = tb.build_model(data.spec, "tiny", seed=5)
    path = _export(model, data.spec, tmp_path / "bundle")
    samples = write_samples(data.val, data.spec, tmp_path / "samples.txt", n=2)
    outputs = {}
    for flags in (("--temperature", "0"), ("--temperature", "1.5", "--top-k", "5", "--seed", "4")):
        run = subprocess.run([sys.executable, str(path / "inference.py"), str(samples), "--max-new-bytes", "10", *flags],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        outputs[flags] = run.stdout.strip().splitlines()
    greedy, sampled = outputs.values()
    assert greedy == predict(model.eval(), data.spec, samples, max_new_bytes=10, temperature=0)
    assert sampled == predict(model.eval(), data.spec, samples, max_new_bytes=10, temperature=1.5, top_k=5, seed=4)
    assert greedy != sampled
    run = subprocess.run([sys.executable, str(path / "inference.py"), str(samples), "--top-k", "-1"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "--temperature and --top-k must be >= 0" in run.stderr


# --- the Trainer hook ---

def test_trainer_export_writes_the_best_checkpoints_weights(task_data, tmp_path):
    data = task_data["vision-cls"]
    cfg = tb.TrainingConfig(epochs=3, batch_size=8, learning_rate=3e-3, output_dir=str(tmp_path), run_name="r",
                            wandb_mode="disabled", progress_bar=False, export_bundle=True,
                            early_stopping_mode="max")  # "best" = highest val_loss: the first epoch
    result = tb.Trainer(tb.build_model(data.spec, "tiny"), training_config=cfg,
                        task_spec=data.spec).train(data.train, data.val)

    assert result.bundle_path == str(tmp_path / "r" / "bundle")
    assert result.best_epoch == 1 and len(result.history) == 3
    stored = load_file(str(Path(result.bundle_path) / "model.safetensors"))
    best = torch.load(result.best_checkpoint, weights_only=True)["model"]
    last = torch.load(result.last_checkpoint, weights_only=True)["model"]
    assert stored.keys() == best.keys()
    assert all(torch.equal(stored[k], best[k]) for k in best)
    assert not all(torch.equal(stored[k], last[k]) for k in last)
    meta = json.loads((Path(result.bundle_path) / "metadata.json").read_text())
    assert meta["metrics"]["best_epoch"] == 1
    assert meta["metrics"]["best_metric"] == pytest.approx(result.history[0]["val_loss"])
    assert meta["parity"]["passed"]


# --- drift ---

def test_check_drift_explains_a_bundle_without_reference_profile(task_data, tmp_path):
    spec = task_data["vision-cls"].spec
    path = _export(tb.build_model(spec, "tiny"), spec, tmp_path / "bundle")
    with pytest.raises(BundleError, match="reference_profile.json is empty.*profile_dataset"):
        tb.check_drift(path, task_data["vision-cls"].current)


@pytest.mark.skipif(importlib.util.find_spec("trainbook.drift") is None,
                    reason="trainbook.drift (profile_dataset/compare_profiles) is not written yet")
def test_check_drift_compares_new_data_with_the_bundles_reference(tmp_path):
    data = tb.load_task_data("vision-cls", limit=120, shift="brightness:0.5")
    model = tb.build_model(data.spec, "tiny")
    ref = tb.profile_dataset(data.train, data.spec, model=model)
    path = _export(model, data.spec, tmp_path / "bundle", reference_profile=ref)

    same = tb.check_drift(path, data.val)
    shifted = tb.check_drift(path, data.current)
    assert isinstance(shifted, tb.DriftReport)
    assert shifted.dataset_drift and shifted.share_drifted > same.share_drifted
    assert shifted.row("brightness")["drifted"] and not same.row("brightness")["drifted"]

    # unlabelled image files: no labels, no loss, so those features are skipped with a warning naming them
    images = write_samples(data.current, data.spec, tmp_path / "production", n=len(data.current))
    with pytest.warns(UserWarning, match="not compared: confidence, labels, loss, predicted"):
        from_files = tb.check_drift(path, images)
    assert from_files.n_current == len(data.current) and from_files.row("brightness")["drifted"]


# --- tokenizers travel with the bundle ---

@pytest.fixture
def string_label_data(tmp_path_factory, monkeypatch):
    """text-cls from a save_to_disk folder with string labels, tokenized by a bpe trained on it."""
    import datasets

    root = tmp_path_factory.mktemp("hfdata")
    monkeypatch.setenv("TRAINBOOK_CACHE_DIR", str(root / "cache"))
    texts = [f"review {i}: {'great fun, loved it' if i % 2 else 'dull and slow, awful'}" for i in range(120)]
    labels = ["positive" if i % 2 else "negative" for i in range(120)]
    datasets.Dataset.from_dict({"text": texts, "label": labels}).save_to_disk(str(root / "ds"))
    return tb.load_task_data("text-cls", source=f"hf:{root / 'ds'}", tokenizer="bpe:300")


def test_bundle_carries_its_tokenizer_and_inference_prints_class_names(string_label_data, tmp_path):
    data = string_label_data
    model = tb.build_model(data.spec, "tiny", seed=1)
    path = _export(model, data.spec, tmp_path / "bundle")
    assert "tokenizer.json" in json.loads((path / "metadata.json").read_text())["files"]
    _, meta = tb.load_bundle(path)
    assert meta["tokenizer"].sha == data.spec.tokenizer_sha and meta["task_spec"].class_names == ("negative", "positive")

    samples = tmp_path / "reviews.txt"
    samples.write_text("review 7: great fun, loved it\nreview 8: dull and slow, awful\n")
    env = {**os.environ, "TRAINBOOK_CACHE_DIR": str(tmp_path / "empty-cache")}  # only the bundle has the tokenizer
    run = subprocess.run([sys.executable, str(path / "inference.py"), str(samples)], capture_output=True, text=True,
                         timeout=120, env=env)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    assert lines == predict(model.eval(), data.spec, samples)
    assert [line.split("\t")[1] in ("negative", "positive") for line in lines] == [True, True]
    ids = [data.tokenizer.encode(t) for t in samples.read_text().splitlines()]
    from trainbook.export.inference import classify

    expected = classify(model, data.spec, [torch.from_numpy(i) for i in ids], "cpu")
    assert [line.split("\t")[1] for line in lines] == [data.spec.class_names[c] for c, _ in expected]


def test_lm_bundle_with_bpe_continues_prompts_in_text(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINBOOK_CACHE_DIR", str(tmp_path / "cache"))
    data = tb.load_task_data("lm", limit=24, tokenizer="bpe:400")
    model = tb.build_model(data.spec, "tiny", seed=2)
    path = _export(model, data.spec, tmp_path / "bundle")
    samples = write_samples(data.val, data.spec, tmp_path / "prompts.txt", n=2)
    assert samples.read_text().strip() and "\ufffd" not in samples.read_text()[:40]  # decoded by the tokenizer
    env = {**os.environ, "TRAINBOOK_CACHE_DIR": str(tmp_path / "empty-cache")}
    run = subprocess.run([sys.executable, str(path / "inference.py"), str(samples), "--max-new-bytes", "12"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    assert lines == predict(model.eval(), data.spec, samples, max_new_bytes=12) and len(lines) == 2
    assert all(len(eval(line.split("\t-> ")[1]).encode()) >= 12 for line in lines)  # noqa: S307 (a repr of a str)


def test_a_changed_tokenizer_file_is_refused(string_label_data, tmp_path):
    path = _export(tb.build_model(string_label_data.spec, "tiny"), string_label_data.spec, tmp_path / "bundle")
    (path / "tokenizer.json").write_text((path / "tokenizer.json").read_text().replace('"bpe', '"bpe ', 1) + " ")
    with pytest.raises(BundleError, match=r"tokenizer\.json: sha256 mismatch"):
        tb.load_bundle(path)


def test_export_needs_the_specs_tokenizer(string_label_data, tmp_path):
    from trainbook.data import DataError

    spec = string_label_data.spec.replace(tokenizer_sha="f" * 64)
    with pytest.raises(DataError, match="is not loaded and not in"):
        _export(tb.build_model(spec, "tiny"), spec, tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()
