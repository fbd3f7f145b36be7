import math
import textwrap
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

import trainbook as tb
from trainbook.models import SIZES, count_parameters


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

class NanoStyle(nn.Module):
    """forward(idx, targets=None) -> (logits, loss), as in nanoGPT."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(256, 32)
        self.head = nn.Linear(32, 256)

    def forward(self, idx, targets=None):
        logits = self.head(self.emb(idx))
        loss = None if targets is None else nn.functional.cross_entropy(logits.view(-1, 256), targets.view(-1))
        return logits, loss


class ObjectOutput(nn.Module):
    """forward(input_ids, attention_mask=None) -> object with .logits, as in transformers."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(256, 32)
        self.head = nn.Linear(32, 256)

    def forward(self, input_ids, attention_mask=None):
        return SimpleNamespace(logits=self.head(self.emb(input_ids)))


def _train(model, tmp_path, epochs=2, learning_rate=1e-2):
    data = tb.load_task_data("lm", limit=96)
    cfg = tb.TrainingConfig(output_dir=str(tmp_path), epochs=epochs, batch_size=16, learning_rate=learning_rate,
                            wandb_mode="disabled", progress_bar=False, resume="never")
    return tb.Trainer(model, training_config=cfg, task_spec=data.spec).train(data.train, data.val)


@pytest.mark.parametrize("model_cls", [NanoStyle, ObjectOutput])
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
