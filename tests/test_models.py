import dataclasses
import json
import math
import shutil
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

import trainbook as tb
from trainbook.models import SIZES, ModelSourceError, count_parameters, make_forward


@pytest.mark.parametrize("task", ["lm", "text-cls", "vision-cls"])
def test_builtin_models_return_logits_of_the_right_shape(task):
    spec = tb.TaskSpec.preset(task)
    model = tb.build_model(spec, "tiny")
    batch = tb.collator_for(spec)(list(tb.load_task_data(task, limit=8).train)[:4])
    logits = model(batch[spec.input_key], batch.get("attention_mask"))
    expected_last = spec.vocab_size if task == "lm" else spec.num_classes
    assert logits.shape[0] == 4 and logits.shape[-1] == expected_last


def test_gpt_ties_weights_and_sizes_grow():
    spec = tb.TaskSpec.preset("lm")
    counts = {size: count_parameters(tb.build_model(spec, size)) for size in SIZES}
    assert counts["tiny"] < counts["small"] < counts["base"]
    assert counts["base"] >= 10_000_000
    gpt = tb.build_model(spec, "tiny")
    assert gpt.head.weight is gpt.transformer.tok.weight


def test_gpt_is_causal():
    model = tb.build_model(tb.TaskSpec.preset("lm"), "tiny").eval()
    x = torch.randint(0, 256, (1, 16))
    y = x.clone()
    y[0, 10:] = (y[0, 10:] + 1) % 256
    assert torch.allclose(model(x)[0, :10], model(y)[0, :10], atol=1e-6)
    assert not torch.allclose(model(x)[0, 10:], model(y)[0, 10:])


def test_text_classifier_ignores_padding():
    model = tb.build_model(tb.TaskSpec.preset("text-cls"), "tiny").eval()
    x = torch.randint(1, 256, (1, 10))
    padded = torch.cat([x, torch.zeros(1, 5, dtype=torch.long)], dim=1)
    mask = torch.cat([torch.ones(1, 10), torch.zeros(1, 5)], dim=1).long()
    assert torch.allclose(model(x), model(padded, mask), atol=1e-5)
    noisy = torch.cat([x, torch.randint(1, 256, (1, 5))], dim=1)  # whatever ids sit under the mask
    assert torch.allclose(model(x), model(noisy, mask), atol=1e-5)
    assert not torch.allclose(model(x), model(noisy), atol=1e-3)   # unmasked, the same ids count


def test_text_classifier_starts_at_uniform_loss_and_handles_an_empty_example():
    spec = tb.TaskSpec.preset("text-cls")
    model = tb.build_model(spec, "tiny").eval()
    batch = tb.collator_for(spec)(list(tb.load_task_data("text-cls", limit=64).train)[:32])
    loss = torch.nn.functional.cross_entropy(model(batch["input_ids"], batch["attention_mask"]), batch["labels"])
    assert abs(loss.item() / math.log(spec.num_classes) - 1) < 0.05
    ids = torch.randint(1, 256, (2, 8))
    mask = torch.tensor([[1] * 8, [0] * 8])
    logits = model(ids, mask)
    assert torch.isfinite(logits).all() and torch.equal(logits[1], model.head.bias.detach())


def test_unknown_size_is_rejected():
    with pytest.raises(ValueError, match="size must be one of 'tiny', 'small', 'base'; got 'huge'"):
        tb.build_model(tb.TaskSpec.preset("lm"), "huge")


# --- user model files ---

def test_load_model_file_picks_the_only_module(tmp_path):
    f = tmp_path / "model.py"
    f.write_text(textwrap.dedent("""
        import torch.nn as nn
        class Net(nn.Module):
            def __init__(self, width=4):
                super().__init__()
                self.lin = nn.Linear(width, 2)
            def forward(self, x):
                return self.lin(x)
    """))
    model = tb.load_model_file(f, width=3)
    assert model.lin.in_features == 3


def test_load_model_file_ambiguous_and_missing(tmp_path):
    f = tmp_path / "two.py"
    f.write_text("import torch.nn as nn\nclass A(nn.Module): pass\nclass B(nn.Module): pass\n")
    with pytest.raises(ValueError, match=r"2 nn.Module classes \['A', 'B'\]; pass class_name="):
        tb.load_model_file(f)
    assert type(tb.load_model_file(f, class_name="B")).__name__ == "B"
    with pytest.raises(ValueError, match="no nn.Module class 'C'"):
        tb.load_model_file(f, class_name="C")
    with pytest.raises(FileNotFoundError, match="model file does not exist"):
        tb.load_model_file(tmp_path / "absent.py")


def test_load_model_file_reports_import_errors(tmp_path):
    f = tmp_path / "broken.py"
    f.write_text("import not_a_module_here\n")
    with pytest.raises(ImportError, match=r"broken\.py: failed to import: ModuleNotFoundError"):
        tb.load_model_file(f)


# --- the Trainer accepts other model shapes ---

class LectureStyle(nn.Module):
    """forward(idx, targets=None) as in "Let's build GPT": flattened logits and a default-ignore_index loss with targets."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(256, 32)
        self.head = nn.Linear(32, 256)

    def forward(self, idx, targets=None):
        logits = self.head(self.emb(idx))
        if targets is None:
            return logits, None
        b, t, c = logits.shape
        logits = logits.view(b * t, c)
        return logits, nn.functional.cross_entropy(logits, targets.view(b * t))


class ObjectOutput(nn.Module):
    """forward(input_ids, attention_mask=None) -> object with .logits, as in transformers."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(256, 32)
        self.head = nn.Linear(32, 256)

    def forward(self, input_ids, attention_mask=None):
        return SimpleNamespace(logits=self.head(self.emb(input_ids)))


class DictOutput(ObjectOutput):
    def forward(self, input_ids, attention_mask=None):
        return {"logits": self.head(self.emb(input_ids)), "hidden": None}


class LossFirst(ObjectOutput):
    """Returns (loss, logits) with loss None without labels, like transformers' return_dict=False."""

    def forward(self, input_ids, labels=None):
        return None, self.head(self.emb(input_ids))


def _train(model, tmp_path, epochs=2, learning_rate=1e-2):
    data = tb.load_task_data("lm", limit=96)
    cfg = tb.TrainingConfig(output_dir=str(tmp_path), epochs=epochs, batch_size=16, learning_rate=learning_rate,
                            wandb_mode="disabled", progress_bar=False, resume="never")
    return tb.Trainer(model, training_config=cfg, task_spec=data.spec).train(data.train, data.val)


@pytest.mark.parametrize("model_cls", [LectureStyle, ObjectOutput, DictOutput, LossFirst])
def test_trainer_accepts_user_model_shapes(model_cls, tmp_path):
    torch.manual_seed(0)
    result = _train(model_cls(), tmp_path)
    losses = [h["val_loss"] for h in result.history]
    assert losses[-1] < losses[0] < math.log(256) + 0.5


def test_trainer_accepts_hf_gpt2_built_locally(tmp_path):
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=2, vocab_size=256, n_positions=128,
                                     bos_token_id=0, eos_token_id=0)
    torch.manual_seed(0)
    result = _train(transformers.GPT2LMHeadModel(config), tmp_path, epochs=3, learning_rate=2e-3)
    losses = [h["val_loss"] for h in result.history]
    assert losses[-1] < losses[0] < math.log(256)


# --- the adapter: targets, outputs and shapes ---

NANOGPT = Path(__file__).parent / "fixtures" / "nanogpt"
NANO_CONFIG = dict(block_size=128, vocab_size=256, n_layer=2, n_head=2, n_embd=64, dropout=0.0, bias=False)
LM = tb.TaskSpec.preset("lm")


def nanogpt_module():
    """The nanoGPT-contract model.py imported as a user would, `from model import GPT, GPTConfig`."""
    return tb.models.loading.import_model_file(NANOGPT / "model.py")


def padded_lm_batch():
    return tb.collator_for(LM)([{"input_ids": torch.arange(1, 17)}, {"input_ids": torch.arange(5, 12)}])


def test_nanogpt_gets_shifted_targets_and_returns_every_position_on_a_padded_batch():
    nano = nanogpt_module()
    model = nano.GPT(nano.GPTConfig(**NANO_CONFIG)).eval()
    batch = padded_lm_batch()
    seen = {}
    model.register_forward_hook(lambda m, args, kwargs, out: seen.update(kwargs), with_kwargs=True)
    logits = make_forward(model, LM)(batch)
    assert logits.shape == (2, 16, 256)
    targets = seen["targets"]
    assert torch.equal(targets[0, :15], batch["input_ids"][0, 1:]) and targets[0, 15] == 0
    assert torch.equal(targets[1, :6], batch["input_ids"][1, 1:7]) and (targets[1, 6:] == 0).all()
    with torch.no_grad():  # the logits are nanoGPT's full-sequence logits, unchanged
        assert torch.equal(logits, model(batch["input_ids"], targets=targets)[0])


def test_targets_are_derived_from_input_ids_when_the_batch_has_no_labels():
    nano = nanogpt_module()
    model = nano.GPT(nano.GPTConfig(**NANO_CONFIG)).eval()
    batch = {k: v for k, v in padded_lm_batch().items() if k != "labels"}
    assert make_forward(model, LM)(batch).shape == (2, 16, 256)


def test_labels_are_passed_unshifted_to_a_model_that_names_labels():
    seen = {}
    model = LossFirst()
    model.register_forward_hook(lambda m, args, kwargs, out: seen.update(kwargs), with_kwargs=True)
    batch = padded_lm_batch()
    make_forward(model, LM)(batch)
    assert torch.equal(seen["labels"], batch["labels"]) and (seen["labels"][1, 7:] == -100).all()


class Returns(nn.Module):
    """forward(input_ids) returns whatever `make` builds from the batch size and length."""

    def __init__(self, make):
        super().__init__()
        self.make = make
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, input_ids):
        b, t = input_ids.shape
        return self.make(b, t)


@pytest.mark.parametrize("make,message", [
    (lambda b, t: torch.zeros(b, 1, 256), r"nanoGPT's convention.*last position only.*add a `targets=None` argument"),
    (lambda b, t: torch.zeros(b, t - 1, 256), r"shift inside the model.*return logits for all positions"),
    (lambda b, t: torch.zeros(b, 256), r"\(batch, seq_len, vocab_size\) = \(2, 16, 256\)"),
    (lambda b, t: torch.zeros(b, t, 100), r"100 logits per position; the task has vocab_size 256"),
    (lambda b, t: (None, torch.zeros(b, t, 7)), r"tuple of \(None, Tensor\[2, 16, 7\]\); none is a logits tensor whose "
                                                r"last dimension is the task's vocab_size \(256\)"),
    (lambda b, t: {"hidden": torch.zeros(b, t, 256)}, r"dict without a 'logits' tensor \(keys: \['hidden'\]\)"),
    (lambda b, t: "text", r"returned str; expected logits"),
])
def test_wrong_outputs_are_explained(make, message):
    with pytest.raises((TypeError, ValueError), match=message):
        make_forward(Returns(make), LM)(padded_lm_batch())


def test_a_model_that_ignores_its_targets_argument_is_told_so():
    class StillLast(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(256, 8)

        def forward(self, idx, targets=None):
            return self.emb(idx)[:, -1:, :].repeat(1, 1, 32), None

    with pytest.raises(ValueError, match="trainbook passed `targets` and it still returned one position"):
        make_forward(StillLast(), LM)(padded_lm_batch())


def test_flattened_logits_are_viewed_back_per_position():
    logits = make_forward(LectureStyle(), LM)(padded_lm_batch())
    assert logits.shape == (2, 16, 256)


def test_classification_with_per_token_logits_is_told_to_pool():
    spec = tb.TaskSpec.preset("text-cls")
    with pytest.raises(ValueError, match="one row per token: pool them"):
        make_forward(Returns(lambda b, t: torch.zeros(b, t, 6)), spec)(padded_lm_batch())


# --- load_model: files and folders ---

TB_MODEL = """
import torch
import torch.nn as nn


class Helper(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(16, 16)

    def forward(self, x):
        return torch.relu(self.proj(x))


class MyTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(256, 16)
        self.helper = Helper()
        self.head = nn.Linear(16, 256)

    def forward(self, input_ids):
        return self.head(self.helper(self.embed(input_ids)))


class Unused(nn.Module):
    pass
"""


def transformer_builder_folder(root):
    """A Transformer-Builder-style export: model.py with a parameterless class, config.json naming it."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "model.py").write_text(TB_MODEL)
    (root / "config.json").write_text(json.dumps({"model_name": "MyTransformer", "d_model": 16, "vocab_size": 256}))
    return root


def test_a_transformer_builder_folder_loads_the_class_its_config_names(tmp_path, capsys):
    model = tb.load_model(transformer_builder_folder(tmp_path / "export"))
    assert type(model).__name__ == "MyTransformer" and model.embed.num_embeddings == 256
    assert model.trainbook_source["kind"] == "folder" and model.trainbook_source["kwargs"] == {}
    assert capsys.readouterr().out == ""  # a parameterless constructor gets nothing; nothing to report


def test_a_nanogpt_folder_builds_its_config_dataclass_from_config_json(tmp_path):
    folder = tmp_path / "nanogpt"
    shutil.copytree(NANOGPT, folder)
    (folder / "config.json").write_text(json.dumps(NANO_CONFIG))
    model = tb.load_model(folder)
    assert type(model).__name__ == "GPT"  # the only model class no other class uses
    assert dataclasses.asdict(model.config) == NANO_CONFIG
    assert model.lm_head.weight is model.transformer.wte.weight


def test_config_keys_the_constructor_accepts_are_passed_and_others_named(tmp_path, capsys):
    (tmp_path / "model.py").write_text("import torch.nn as nn\nclass Net(nn.Module):\n    def __init__(self, width=4):\n"
                                       "        super().__init__()\n        self.lin = nn.Linear(width, 2)\n")
    (tmp_path / "config.json").write_text(json.dumps({"width": 3, "color": "red"}))
    assert tb.load_model(tmp_path).lin.in_features == 3
    assert "config.json: keys not used by Net(): color" in capsys.readouterr().out
    assert tb.load_model(tmp_path, width=5).lin.in_features == 5  # explicit arguments win


def test_sibling_modules_come_from_the_models_own_folder(tmp_path, monkeypatch):
    for name, width in (("a", 3), ("b", 5)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "layers.py").write_text(f"WIDTH = {width}\n")
        (tmp_path / name / "model.py").write_text("import torch.nn as nn\nfrom layers import WIDTH\n"
                                                  "class Net(nn.Module):\n    def __init__(self):\n"
                                                  "        super().__init__()\n        self.lin = nn.Linear(WIDTH, 2)\n")
    elsewhere = types.ModuleType("layers")
    monkeypatch.setitem(sys.modules, "layers", elsewhere)  # an unrelated `layers` already imported
    assert tb.load_model(tmp_path / "a").lin.in_features == 3
    assert tb.load_model(tmp_path / "b").lin.in_features == 5
    assert sys.modules["layers"] is elsewhere and str(tmp_path / "a") not in sys.path


def test_bad_folders_and_files_are_explained(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("")
    with pytest.raises(ModelSourceError, match=r"empty: no model.py in this folder \(found: notes.txt\)"):
        tb.load_model(tmp_path / "empty")
    folder = transformer_builder_folder(tmp_path / "named")
    (folder / "config.json").write_text(json.dumps({"model_name": "Missing"}))
    with pytest.raises(ModelSourceError, match=r"no nn.Module class 'Missing' \(named by .*config.json\); found "
                                               r"\['Helper', 'MyTransformer', 'Unused'\]"):
        tb.load_model(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ModelSourceError, match="config.json: not valid JSON"):
        tb.load_model(folder)
    (folder / "config.json").write_text("[1, 2]")
    with pytest.raises(ModelSourceError, match="must hold a JSON object of constructor arguments; got list"):
        tb.load_model(folder)
    with pytest.raises(ModelSourceError, match=r"config.json: not a Python file. HINT: pass its folder: "
                                               r"tb.load_model\('.*named'\)"):
        tb.load_model(folder / "config.json")
    with pytest.raises(FileNotFoundError, match=r"no such model file or folder. HINT: a model source is a .py file"):
        tb.load_model(tmp_path / "absent")
    with pytest.raises(ModelSourceError, match=r"class_name='GPT' does not apply to hf: sources"):
        tb.load_model("hf:gpt2", class_name="GPT")


def test_missing_constructor_arguments_and_failing_constructors_are_explained(tmp_path):
    folder = tmp_path / "nanogpt"
    shutil.copytree(NANOGPT, folder)
    with pytest.raises(ModelSourceError, match=r"GPT\(\) needs config, and config.json does not provide it. HINT: "
                                               r"add 'config' to .*config.json, or pass config=\.\.\. to load_model"):
        tb.load_model(folder)
    with pytest.raises(ModelSourceError, match=r"model.py: GPT\(\) needs config. HINT: pass config=\.\.\."):
        tb.load_model(folder / "model.py")
    (folder / "config.json").write_text(json.dumps({**NANO_CONFIG, "n_head": 3}))
    with pytest.raises(ModelSourceError, match=r"GPT\(config=\.\.\.\) failed: AssertionError"):
        tb.load_model(folder)


def test_a_syntax_error_and_an_unknown_file_kind_are_named(tmp_path):
    (tmp_path / "model.py").write_text("import torch.nn as nn\nclass Net(nn.Module:\n    pass\n")
    with pytest.raises(ImportError, match=r"model.py: failed to import: SyntaxError: .*model.py: line 2"):
        tb.load_model(tmp_path)
    (tmp_path / "weights.pt").write_bytes(b"")
    with pytest.raises(ModelSourceError, match=r"weights.pt: not a Python file. HINT: a model source is a .py file, "
                                               r"a folder with model.py"):
        tb.load_model(tmp_path / "weights.pt")


def test_load_model_file_on_a_json_file_says_what_to_pass(tmp_path):
    folder = transformer_builder_folder(tmp_path / "export")
    with pytest.raises(ModelSourceError, match=r"config.json: not a .py file"):
        tb.load_model_file(folder / "config.json")


# --- hf: transformers models for the task, from local folders ---

@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    root = tmp_path_factory.mktemp("hf")
    torch.manual_seed(0)
    transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=300,
                                                         n_positions=128)).save_pretrained(root / "gpt2")
    transformers.GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=256, n_positions=64).save_pretrained(root / "short")
    transformers.BertForSequenceClassification(transformers.BertConfig(
        vocab_size=256, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=128, num_labels=2)).save_pretrained(root / "bert")
    return root


def test_hf_folder_loads_through_the_tasks_auto_class_with_the_tasks_vocabulary(saved_models, capsys):
    model = tb.load_model(f"hf:{saved_models / 'gpt2'}", task_spec=LM)
    assert type(model).__name__ == "GPT2LMHeadModel" and model.config.vocab_size == 256
    assert "vocab_size 300 -> 256 to match the task" in capsys.readouterr().out
    assert model.trainbook_source["auto_class"] == "AutoModelForCausalLM"
    assert make_forward(model.eval(), LM)(padded_lm_batch()).shape == (2, 16, 256)


def test_hf_classifier_gets_the_tasks_labels(saved_models, capsys):
    spec = tb.TaskSpec.preset("text-cls")
    model = tb.load_model(f"hf:{saved_models / 'bert'}", task_spec=spec)
    assert type(model).__name__ == "BertForSequenceClassification" and model.config.num_labels == 6
    assert model.config.id2label[1] == "email" and "num_labels 2 -> 6" in capsys.readouterr().out


def test_hf_folder_with_only_a_config_is_built_fresh(saved_models, capsys):
    model = tb.load_model(f"hf:{saved_models / 'short'}", task_spec=LM.replace(max_seq_len=64))
    assert model.config.n_positions == 64 and "built from its config.json with fresh weights" in capsys.readouterr().out


def test_hf_errors_name_what_cannot_match(saved_models, tmp_path):
    with pytest.raises(ModelSourceError, match=r"at most 64 positions; the task's max_seq_len is 128. HINT: use "
                                               r"max_seq_len <= 64"):
        tb.load_model(f"hf:{saved_models / 'short'}", task_spec=LM)
    with pytest.raises(ModelSourceError, match=r"needs the task to choose the transformers Auto class"):
        tb.load_model(f"hf:{saved_models / 'gpt2'}")
    with pytest.raises(ModelSourceError, match=r"no AutoModelForImageClassification for a 'gpt2' model"):
        tb.load_model(f"hf:{saved_models / 'gpt2'}", task_spec=tb.TaskSpec.preset("vision-cls"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelSourceError, match=r"has no config.json. HINT: write the folder with model.save_pretrained"):
        tb.load_model(f"hf:{tmp_path / 'empty'}", task_spec=LM)
    (tmp_path / "empty" / "config.json").write_text("{broken")
    with pytest.raises(ModelSourceError, match=r"cannot read its config: .*HINT: check the name"):
        tb.load_model(f"hf:{tmp_path / 'empty'}", task_spec=LM)


def test_hf_image_models_must_take_the_tasks_image_size(tmp_path):
    transformers = pytest.importorskip("transformers")
    transformers.ViTConfig(image_size=16, patch_size=4, num_channels=1, hidden_size=16, num_hidden_layers=1,
                           num_attention_heads=2, intermediate_size=32).save_pretrained(tmp_path / "vit")
    with pytest.raises(ModelSourceError, match=r"takes image_size=16; the task's images have 8. HINT: choose a model "
                                               r"for 8x8 images with 1 channel"):
        tb.load_model(f"hf:{tmp_path / 'vit'}", task_spec=tb.TaskSpec.preset("vision-cls"))


# --- nanoGPT under kill -9 ---

def _nanogpt_worker(out, *args):
    worker = Path(__file__).parent / "workers" / "nanogpt_worker.py"
    return subprocess.run([sys.executable, str(worker), str(out), *args], capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_nanogpt_killed_mid_epoch_resumes_to_the_uninterrupted_weights(tmp_path):
    reference = _nanogpt_worker(tmp_path / "reference")
    assert reference.returncode == 0, reference.stderr
    killed = _nanogpt_worker(tmp_path / "run", "--kill-train-fetch", "43")  # inside step 6 of 16
    assert killed.returncode == -9, killed.stderr
    assert not (tmp_path / "run" / "final.pt").exists()
    resumed = _nanogpt_worker(tmp_path / "run")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed at step 5" in resumed.stdout
    expected = torch.load(tmp_path / "reference" / "final.pt", weights_only=True)
    final = torch.load(tmp_path / "run" / "final.pt", weights_only=True)
    assert expected["state_dict"].keys() == final["state_dict"].keys()
    for name, value in expected["state_dict"].items():
        assert torch.equal(value, final["state_dict"][name]), name
    assert [h["val_loss"] for h in final["history"]] == [h["val_loss"] for h in expected["history"]]
