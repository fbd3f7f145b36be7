"""Bundles of the models users bring (nanoGPT, transformers, Transformer-Builder folders, multi-file
code): trained, exported, and loaded by a fresh Python process whose working directory is elsewhere."""

import dataclasses
import json
import math
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import trainbook as tb
from trainbook.export import BundleError, predict, write_samples
from trainbook.export.model_args import decode_args, encode_args
from trainbook.models import make_forward

NANOGPT = Path(__file__).parent / "fixtures" / "nanogpt"
NANO_CONFIG = dict(block_size=128, vocab_size=256, n_layer=2, n_head=2, n_embd=64, dropout=0.0, bias=False)
FRESH = """
import sys, torch, trainbook as tb
from safetensors.torch import load_file, save_file
from trainbook.models import make_forward
model, meta = tb.load_bundle(sys.argv[1], trust_remote_code=True)  # the bundle of our own model code
with torch.no_grad():
    logits = make_forward(model, meta["task_spec"])(load_file(sys.argv[2]))
save_file({"logits": logits.float().contiguous()}, sys.argv[3])
print("loaded", type(model).__name__, meta["model_config"]["source"])
"""


def fresh_parity(model, bundle, spec, examples, tmp_path) -> float:
    """Max |logits| difference between the in-memory model and the bundle loaded by a fresh process elsewhere."""
    batch = {k: v for k, v in tb.collator_for(spec)(examples).items() if k != spec.label_key}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    save_file({k: v.contiguous() for k, v in batch.items()}, str(elsewhere / "batch.safetensors"))
    run = subprocess.run([sys.executable, "-c", FRESH, str(bundle), "batch.safetensors", "out.safetensors"],
                         cwd=elsewhere, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    with torch.no_grad():
        expected = make_forward(model.eval(), spec)(batch).float()
    return float((load_file(str(elsewhere / "out.safetensors"))["logits"] - expected).abs().max())


def run_inference(bundle, model, spec, data, tmp_path):
    """inference.py in a fresh process, cwd elsewhere: its prediction lines equal predict() in this process."""
    samples = write_samples(data.val, spec, tmp_path / "samples.txt", n=3)
    run = subprocess.run([sys.executable, str(bundle / "inference.py"), str(samples), "--max-new-bytes", "4"],
                         cwd=tmp_path / "elsewhere", capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    lines = [line for line in run.stdout.splitlines() if line.startswith("line ")]  # nanoGPT prints its size
    assert lines == predict(model.eval(), spec, samples, max_new_bytes=4) and len(lines) == 3


def train(model, data, tmp_path, **kw):
    cfg = tb.TrainingConfig(**{**dict(output_dir=str(tmp_path / "runs"), epochs=1, batch_size=16, learning_rate=3e-3,
                                      wandb_mode="disabled", progress_bar=False, resume="never", seed=0), **kw})
    trainer = tb.Trainer(model, training_config=cfg, task_spec=data.spec)
    return trainer, trainer.train(data.train, data.val)


# --- the acceptance cases (a minute or more each on 2 CPU cores: make test-slow) ---

@pytest.mark.slow
def test_nanogpt_trains_an_epoch_exports_and_predicts_in_a_fresh_process(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(NANOGPT))  # the nanoGPT way: `from model import GPT, GPTConfig`
    monkeypatch.delitem(sys.modules, "model", raising=False)
    from model import GPT, GPTConfig

    torch.manual_seed(0)
    model = GPT(GPTConfig(**NANO_CONFIG))
    data = tb.load_task_data("lm", limit=800)
    steps = math.ceil(len(data.train) / 16)
    trainer, result = train(model, data, tmp_path, save_every_n_steps=steps // 4, keep_last=8)
    quarter = GPT(GPTConfig(**NANO_CONFIG))
    ckpt = Path(result.run_dir) / "checkpoints" / f"step-{steps // 4:08d}.pt"
    quarter.load_state_dict(torch.load(ckpt, weights_only=True)["model"])
    quarter_loss, final_loss = trainer.evaluate(data.val, model=quarter)["val_loss"], result.history[-1]["val_loss"]
    print(f"\nnanoGPT: {steps} steps, val_loss {quarter_loss:.4f} after step {steps // 4} -> {final_loss:.4f} after 1 epoch")
    assert final_loss < quarter_loss < math.log(256)

    bundle = tb.export_bundle(model, trainer.cfg, data.spec, tmp_path / "bundle")
    config = json.loads((bundle / "model_config.json").read_text())
    assert config["source"] == "file" and config["class_name"] == "GPT" and config["copied"] == ["model.py"]
    assert config["kwargs"]["config"]["fields"] == NANO_CONFIG
    monkeypatch.delitem(sys.modules, "model")
    diff = fresh_parity(model, bundle, data.spec, [data.val[i] for i in range(6)], tmp_path)
    print(f"nanoGPT fresh-process parity: max abs diff {diff:.2e}")
    assert diff <= 1e-5
    run_inference(bundle, model, data.spec, data, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("task", ["lm", "text-cls"])
def test_transformers_models_train_export_and_load_in_a_fresh_process(task, tmp_path):
    transformers = pytest.importorskip("transformers")
    data = tb.load_task_data(task, limit=96)
    torch.manual_seed(0)
    if task == "lm":
        model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
            n_layer=2, n_embd=64, n_head=2, vocab_size=256, n_positions=128, bos_token_id=0, eos_token_id=0))
    else:
        model = transformers.BertForSequenceClassification(transformers.BertConfig(
            vocab_size=256, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            max_position_embeddings=128, num_labels=6))
    trainer, result = train(model, data, tmp_path, epochs=2)
    assert result.history[-1]["val_loss"] < result.history[0]["val_loss"]
    bundle = tb.export_bundle(model, trainer.cfg, data.spec, tmp_path / "bundle")
    config = json.loads((bundle / "model_config.json").read_text())
    assert config["source"] == "transformers" and config["class_name"] == type(model).__name__
    assert config["auto_class"] == ("AutoModelForCausalLM" if task == "lm" else "AutoModelForSequenceClassification")
    assert json.loads((bundle / "config.json").read_text())["model_type"] == model.config.model_type
    assert not list(bundle.glob("*.bin")) and not list(bundle.glob("*.pkl"))  # safetensors only, no pickle
    diff = fresh_parity(model, bundle, data.spec, [data.val[i] for i in range(6)], tmp_path)
    print(f"\n{type(model).__name__}: val_loss {result.history[0]['val_loss']:.4f} -> "
          f"{result.history[-1]['val_loss']:.4f}, fresh-process parity {diff:.2e}")
    assert diff <= 1e-5
    run_inference(bundle, model, data.spec, data, tmp_path)


MULTI_FILE_MODEL = """
import json
from pathlib import Path

import torch.nn as nn

from layers import Mixer
from blocks.head import Head

SETTINGS = json.loads((Path(__file__).parent / "config.json").read_text())


class Composed(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(256, SETTINGS["width"])
        self.mixer = Mixer(SETTINGS["width"])
        self.head = Head(SETTINGS["width"])

    def forward(self, input_ids):
        return self.head(self.mixer(self.embed(input_ids)))
"""


def multi_file_folder(root):
    """A Transformer-Builder-style folder whose model.py imports a sibling module and package and reads config.json."""
    (root / "blocks").mkdir(parents=True)
    (root / "model.py").write_text(MULTI_FILE_MODEL)
    (root / "layers.py").write_text("import torch.nn as nn\n\nclass Mixer(nn.Sequential):\n    def __init__(self, w):\n"
                                    "        super().__init__(nn.Linear(w, w), nn.GELU())\n")
    (root / "blocks" / "__init__.py").write_text("")
    (root / "blocks" / "head.py").write_text("import torch.nn as nn\n\nclass Head(nn.Linear):\n    def __init__(self, w):\n"
                                             "        super().__init__(w, 256)\n")
    (root / "config.json").write_text(json.dumps({"model_name": "Composed", "width": 24}))
    (root / "notes.txt").write_text("not copied")
    return root


def test_a_multi_file_folder_exports_its_code_and_loads_with_the_original_gone(tmp_path):
    folder = multi_file_folder(tmp_path / "user" / "export")
    model = tb.load_model(folder)
    spec = tb.TaskSpec.preset("lm")
    data = tb.load_task_data("lm", limit=16)
    bundle = tb.export_bundle(model, tb.TrainingConfig(wandb_mode="disabled"), spec, tmp_path / "bundle")
    config = json.loads((bundle / "model_config.json").read_text())
    assert config["copied"] == ["blocks/__init__.py", "blocks/head.py", "config.json", "layers.py", "model.py"]
    assert config["origin"] == {"kind": "folder", "source": str(folder)}
    meta = json.loads((bundle / "metadata.json").read_text())
    assert {"model_code/model.py", "model_code/layers.py", "model_code/blocks/head.py", "model_code/config.json"} <= set(meta["files"])
    for f in sorted(folder.rglob("*"), reverse=True):  # the bundle must not need the user's folder
        f.rmdir() if f.is_dir() else f.unlink()
    assert fresh_parity(model, bundle, spec, [data.val[i] for i in range(4)], tmp_path) <= 1e-5
    run_inference(bundle, model, spec, data, tmp_path)


def test_a_changed_model_code_file_is_refused_on_load(tmp_path):
    model = tb.load_model(multi_file_folder(tmp_path / "export"))
    bundle = tb.export_bundle(model, tb.TrainingConfig(wandb_mode="disabled"), tb.TaskSpec.preset("lm"), tmp_path / "b")
    with open(bundle / "model_code" / "layers.py", "a") as fh:
        fh.write("# edited\n")
    with pytest.raises(BundleError, match=r"model_code/layers.py: sha256 mismatch"):
        tb.load_bundle(bundle)


# --- what export refuses, by name ---

def test_export_refuses_a_module_found_only_through_the_working_directory(tmp_path, monkeypatch):
    folder = multi_file_folder(tmp_path / "export")
    (folder / "model.py").write_text(MULTI_FILE_MODEL.replace("from layers import Mixer", "from cwd_layers import Mixer"))
    (tmp_path / "cwd_layers.py").write_text((folder / "layers.py").read_text())
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # a notebook's working directory is on sys.path
    model = tb.load_model(folder)
    with pytest.raises(BundleError, match=r"cannot export Composed: model.py imports cwd_layers \(imported by model.py "
                                          r"line 7\), which is neither in its folder .*export nor installed.*HINT: move "
                                          r"that module next to model.py"):
        tb.export_bundle(model, tb.TrainingConfig(wandb_mode="disabled"), tb.TaskSpec.preset("lm"), tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists() and not (tmp_path / ".bundle.tmp").exists()


def test_export_refuses_when_the_model_file_is_gone(tmp_path):
    folder = multi_file_folder(tmp_path / "export")
    model = tb.load_model(folder)
    (folder / "model.py").unlink()
    with pytest.raises(BundleError, match=r"cannot export Composed: its source file .*model.py no longer exists"):
        tb.export_bundle(model, tb.TrainingConfig(wandb_mode="disabled"), tb.TaskSpec.preset("lm"), tmp_path / "bundle")


def test_export_names_a_constructor_argument_it_cannot_store(tmp_path):
    (tmp_path / "model.py").write_text("import torch.nn as nn\nclass Net(nn.Module):\n    def __init__(self, layer):\n"
                                       "        super().__init__()\n        self.layer = layer\n"
                                       "    def forward(self, input_ids):\n        return self.layer(input_ids)\n")
    model = tb.load_model(tmp_path / "model.py", layer=torch.nn.Embedding(256, 256))
    with pytest.raises(BundleError, match=r"cannot store Net's argument 'layer': a Embedding is not a number, string, "
                                          r"list, dict, dataclass or config object"):
        tb.export_bundle(model, tb.TrainingConfig(wandb_mode="disabled"), tb.TaskSpec.preset("lm"), tmp_path / "bundle")


def test_an_installed_class_is_exported_by_import_with_arguments_read_from_its_attributes(tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "tbpkg").mkdir(parents=True)
    (site / "tbpkg" / "__init__.py").write_text(textwrap.dedent("""
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self, width, scale=(1.0, 2.0)):
                super().__init__()
                self.width, self.scale = width, scale
                self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, width), nn.ReLU(), nn.Linear(width, 10))

            def forward(self, pixel_values):
                return self.body(pixel_values) * self.scale[1]
        """))
    monkeypatch.setenv("PYTHONPATH", str(site))  # installed: a fresh process finds it
    monkeypatch.syspath_prepend(str(site))
    import tbpkg

    spec = tb.TaskSpec.preset("vision-cls")
    model = tbpkg.Net(12, scale=(1.0, 3.0))
    reloaded, meta = tb.load_bundle(tb.export_bundle(model, tb.TrainingConfig(wandb_mode="disabled"), spec, tmp_path / "b"))
    assert meta["model_config"] == {"source": "import", "module": "tbpkg", "qualname": "Net",
                                    "kwargs": {"width": 12, "scale": {"__tuple__": [1.0, 3.0]}}}
    assert type(reloaded) is tbpkg.Net and reloaded.scale == (1.0, 3.0)


def test_dataclass_namespace_dtype_and_config_arguments_round_trip():
    transformers = pytest.importorskip("transformers")

    @dataclasses.dataclass
    class Settings:
        width: int = 4
        sizes: tuple = (1, 2)

    namespace = types.SimpleNamespace(Settings=Settings)
    args = {"settings": Settings(8, (3, 4)), "ns": types.SimpleNamespace(a=1, b=[2, 3]), "dtype": torch.bfloat16,
            "hf": transformers.GPT2Config(n_layer=1, n_embd=8, n_head=2), "plain": {"k": [1, "x", None]}}
    stored = json.loads(json.dumps(encode_args(args, "Net")))  # JSON all the way
    back = decode_args(stored, namespace=namespace)
    assert back["settings"] == Settings(8, (3, 4)) and back["ns"] == args["ns"] and back["dtype"] is torch.bfloat16
    assert back["hf"].to_dict() == args["hf"].to_dict() and back["plain"] == args["plain"]
    with pytest.raises(BundleError, match=r"arguments need class .*Settings \(from test_model_io\), which neither "
                                          r"the bundle's model code defines nor an installed module provides"):
        decode_args(stored, namespace=None)


def test_export_refuses_a_transformers_class_no_auto_class_builds(tmp_path):
    transformers = pytest.importorskip("transformers")

    class Custom(transformers.GPT2LMHeadModel):
        pass

    model = Custom(transformers.GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=256, n_positions=128))
    with pytest.raises(BundleError, match=r"cannot export .*Custom: no transformers Auto class builds it from its config"):
        tb.export_bundle(model, tb.TrainingConfig(wandb_mode="disabled"), tb.TaskSpec.preset("lm"), tmp_path / "bundle")


def test_export_refuses_a_package_class_a_fresh_process_cannot_import(tmp_path, monkeypatch):
    (tmp_path / "localpkg").mkdir()
    (tmp_path / "localpkg" / "__init__.py").write_text("")
    (tmp_path / "localpkg" / "nets.py").write_text("import torch.nn as nn\n\nclass Net(nn.Linear):\n"
                                                   "    def __init__(self):\n        super().__init__(64, 10)\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # found through this session's sys.path only
    from localpkg.nets import Net

    with pytest.raises(BundleError, match=r"cannot export Net: its module localpkg.nets cannot be imported by a fresh "
                                          r"Python process.*HINT: install its package"):
        tb.export_bundle(Net(), tb.TrainingConfig(wandb_mode="disabled"), tb.TaskSpec.preset("vision-cls"), tmp_path / "b")


def test_arguments_that_cannot_be_json_or_are_damaged_are_named():
    class Odd:
        def to_dict(self):
            return {"tags": {1, 2}}

        @classmethod
        def from_dict(cls, d):
            return cls()

    with pytest.raises(BundleError, match=r"cannot store Net's argument 'odd': its to_dict\(\) is not JSON"):
        encode_args({"odd": Odd()}, "Net")
    with pytest.raises(BundleError, match=r"unknown stored argument \['__pickle__'\]; the bundle is damaged"):
        decode_args({"x": {"__pickle__": "gASV"}})
