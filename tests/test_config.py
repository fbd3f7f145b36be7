import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainbook.builder import PRESET_NAMES, TrainingConfigBuilder
from trainbook.config import CONFIG_VERSION, FIELD_NAMES, ConfigError, TrainingConfig, migrate

# one invalid value per field: every field must reject it with a message naming the field
INVALID = {
    "run_name": "a/b", "output_dir": "", "seed": -1, "deterministic": "yes", "epochs": 0, "max_steps": -5,
    "batch_size": 0, "learning_rate": 0.0, "weight_decay": -0.1, "optimizer": "adam", "lr_schedule": "cosin",
    "warmup_ratio": 1.0, "warmup_steps": -1, "min_lr_ratio": 1.5, "max_grad_norm": -1.0,
    "gradient_accumulation_steps": 0, "precision": "fp8", "compile": 1, "device": "gpu", "num_workers": -1,
    "eval_every_n_epochs": 0, "early_stopping_patience": -1, "early_stopping_metric": "",
    "early_stopping_mode": "up", "early_stopping_min_delta": -0.5, "checkpoint_dir": 3,
    "save_every_n_epochs": -1, "save_every_n_steps": 1.5, "keep_last": 0, "resume": "",
    "wandb_mode": "on", "wandb_project": "", "wandb_entity": None, "log_every_n_steps": 0,
    "progress_bar": "no", "export_bundle": None, "export_formats": ("onnx",), "strategy": "fsdp",
    "persist_dir": 3, "on_config_change": "ask", "config_version": 99,
}


def test_every_field_has_an_invalid_value_case():
    assert set(INVALID) == set(FIELD_NAMES)


@pytest.mark.parametrize("field", FIELD_NAMES)
def test_invalid_value_raises_config_error_naming_the_field(field):
    with pytest.raises(ConfigError, match=rf"\b{field}\b") as info:
        TrainingConfig(**{field: INVALID[field]})
    assert isinstance(info.value, ValueError)
    assert repr(INVALID[field]) in str(info.value) or field == "config_version"


def test_all_problems_are_reported_at_once():
    with pytest.raises(ConfigError) as info:
        TrainingConfig(learning_rate=-1, batch_size=0, lr_schedule="cosin")
    problems = info.value.problems
    assert len(problems) == 3
    assert "lr_schedule must be one of 'cosine', 'linear', 'constant'; got 'cosin' (did you mean 'cosine'?)" in problems
    assert any(p.startswith("learning_rate must be a number in (0.0, 10.0]; got -1") for p in problems)


def test_warmup_ratio_and_steps_cannot_both_be_set():
    with pytest.raises(ConfigError, match="warmup_ratio and warmup_steps cannot both be set"):
        TrainingConfig(warmup_ratio=0.1, warmup_steps=10)


def test_fp16_on_cpu_device_is_rejected():
    with pytest.raises(ConfigError, match="precision 'fp16' needs a CUDA device"):
        TrainingConfig(precision="fp16", device="cpu")


def test_predecessor_call_works_as_written(tmp_path):
    cfg = TrainingConfig(epochs=10, learning_rate=5e-5, batch_size=4, wandb_project="my-project",
                         checkpoint_dir="checkpoints", save_every_n_epochs=1)
    assert (cfg.epochs, cfg.learning_rate, cfg.batch_size) == (10, 5e-5, 4)
    assert str(cfg.resolved_checkpoint_dir) == "checkpoints"
    assert str(TrainingConfig(run_name="r", output_dir="out").resolved_checkpoint_dir) == "out/r/checkpoints"


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainingConfig().epochs = 4


def test_from_dict_rejects_unknown_key_with_suggestion():
    with pytest.raises(ConfigError, match=r"unknown field 'learning_rat' \(did you mean 'learning_rate'\?\)"):
        TrainingConfig.from_dict({"learning_rat": 0.1})


def test_from_dict_rejects_wrong_type():
    with pytest.raises(ConfigError, match=r"batch_size must be an integer >= 1; got '32'"):
        TrainingConfig.from_dict({"batch_size": "32"})


def test_from_dict_accepts_json_int_for_float_and_list_for_tuple():
    cfg = TrainingConfig.from_dict({"learning_rate": 1, "export_formats": ["safetensors", "torch_export"]})
    assert cfg.learning_rate == 1.0 and isinstance(cfg.learning_rate, float)
    assert cfg.export_formats == ("safetensors", "torch_export")


def test_version_1_config_is_migrated():
    old = {"config_version": 1, "lr": 0.01, "grad_clip": 0.5, "use_wandb": False, "fp16": False, "epochs": 2}
    cfg = TrainingConfig.from_dict(old)
    assert (cfg.learning_rate, cfg.max_grad_norm, cfg.wandb_mode, cfg.precision) == (0.01, 0.5, "disabled", "auto")
    assert cfg.config_version == CONFIG_VERSION
    assert migrate({"config_version": 1, "use_wandb": True})["wandb_mode"] == "auto"


def test_unknown_future_version_is_an_error():
    with pytest.raises(ConfigError, match="config_version must be 2"):
        TrainingConfig.from_dict({"config_version": 7})


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_preset_builds_and_round_trips_through_json(name, tmp_path):
    cfg = TrainingConfigBuilder.preset(name).build()
    assert isinstance(cfg, TrainingConfig)
    assert TrainingConfig.load(cfg.save(tmp_path / f"{name}.json")) == cfg
    assert TrainingConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_presets_differ_in_the_documented_way():
    quick, gpu, full = (TrainingConfigBuilder.preset(n).build() for n in ("quick", "colab-gpu", "full"))
    assert quick.epochs == 1 and full.epochs == 20 and full.early_stopping_patience == 3
    assert gpu.export_bundle and gpu.batch_size == 64


def test_num_workers_is_auto_by_default_and_takes_integers():
    assert TrainingConfig().num_workers == "auto"
    assert TrainingConfigBuilder.preset("colab-gpu").build().num_workers == "auto"
    assert TrainingConfig(num_workers=2).num_workers == 2
    assert TrainingConfig.from_dict({"num_workers": "auto"}).num_workers == "auto"
    for bad in ("4", "Auto", 2.0, True, 65):
        with pytest.raises(ConfigError, match=rf"num_workers must be 'auto' or an integer in \[0, 64\]; got {bad!r}"):
            TrainingConfig(num_workers=bad)


def test_unknown_preset_is_rejected():
    with pytest.raises(ConfigError, match="preset must be one of 'quick', 'colab-gpu', 'full'; got 'fast'"):
        TrainingConfigBuilder.preset("fast")


def test_builder_line_from_the_issue_works_exactly():
    base = TrainingConfig(epochs=2)
    lr, bs, wd, wr = 1e-4, 16, 0.05, 0.2
    cfg = TrainingConfigBuilder.from_config(base).with_training(
        learning_rate=lr, batch_size=bs, weight_decay=wd, warmup_ratio=wr).build()
    assert base.diff(cfg) == {"learning_rate": (3e-4, lr), "batch_size": (32, bs), "weight_decay": (0.01, wd),
                              "warmup_ratio": (0.0, wr)}


def test_builder_rejects_unknown_keyword_naming_it():
    with pytest.raises(TypeError, match=r"with_training\(\) got an unexpected keyword argument 'precision'; "
                                        r"it belongs to with_precision\(\)"):
        TrainingConfigBuilder().with_training(precision="bf16")
    with pytest.raises(TypeError, match="'lerning_rate' .*did you mean 'learning_rate'"):
        TrainingConfigBuilder().with_training(lerning_rate=1.0)


def test_builder_groups_set_their_fields():
    cfg = (TrainingConfigBuilder().with_run(run_name="x").with_optimizer(optimizer="sgd", lr_schedule="linear")
           .with_precision(precision="bf16", compile=True).with_checkpointing(keep_last=5, resume="never")
           .with_tracking(wandb_mode="disabled").with_export(export_bundle=True).with_distributed(strategy="ddp")
           .build())
    assert (cfg.run_name, cfg.optimizer, cfg.lr_schedule, cfg.precision, cfg.compile) == ("x", "sgd", "linear", "bf16", True)
    assert (cfg.keep_last, cfg.resume, cfg.wandb_mode, cfg.export_bundle, cfg.strategy) == (5, "never", "disabled", True, "ddp")


def test_run_folder_fields_are_set_by_with_run_and_with_checkpointing():
    a = TrainingConfigBuilder().with_run(persist_dir="/drive/tb", on_config_change="new_run").build()
    b = TrainingConfigBuilder().with_checkpointing(persist_dir="/drive/tb", on_config_change="new_run").build()
    assert a == b and (a.persist_dir, a.on_config_change) == ("/drive/tb", "new_run")
    assert TrainingConfig().on_config_change == "refuse" and TrainingConfig().persist_dir == ""


def test_persist_dir_must_keep_its_copy_apart_from_the_run_folder():
    for persist_dir, output_dir in (("runs", "runs"), ("runs/run/copy", "runs"), ("/d", "/d/run/runs")):
        with pytest.raises(ConfigError, match=rf"persist_dir must keep its copy .*got persist_dir={persist_dir!r}"):
            TrainingConfig(persist_dir=persist_dir, output_dir=output_dir)
    assert TrainingConfig(persist_dir="runs/drive", output_dir="runs").persist_dir == "runs/drive"  # a sibling


def test_new_run_needs_checkpoints_inside_the_run_folder_and_a_single_process():
    with pytest.raises(ConfigError) as info:
        TrainingConfig(on_config_change="new_run", checkpoint_dir="ckpts", strategy="ddp")
    assert info.value.problems == [
        "on_config_change='new_run' needs checkpoint_dir='' (each run folder keeps its own checkpoints); "
        "got checkpoint_dir='ckpts'",
        "on_config_change='new_run' cannot be used with strategy='ddp' (every rank must train in the same "
        "folder); use 'refuse' and pick run_name yourself"]


def test_builder_validates_on_every_step():
    with pytest.raises(ConfigError, match="batch_size"):
        TrainingConfigBuilder().with_training(batch_size=-3)


def test_diff_and_summary():
    a, b = TrainingConfig(), TrainingConfig(epochs=7)
    assert a.diff(b) == {"epochs": (3, 7)}
    assert "epochs" in a.summary() and a.summary().count("\n") == len(FIELD_NAMES) - 1


def test_summary_against_a_preset_lists_the_run_and_only_the_changed_fields():
    preset = TrainingConfigBuilder.preset("quick").build()
    cfg = TrainingConfig.from_dict({**preset.to_dict(), "run_name": "mine", "output_dir": "out", "epochs": 4,
                                    "lr_schedule": "constant"})
    lines = cfg.summary(against=preset).splitlines()
    assert [line.split()[0] for line in lines] == ["run_name", "run", "epochs", "lr_schedule"]
    assert lines[0].split() == ["run_name", "mine"] and lines[1].endswith(str(Path("out") / "mine"))
    assert lines[2].split() == ["epochs", "4", "(preset:", "1)"]
    assert preset.summary(against=preset).count("\n") == 1   # nothing changed: the run name and folder only


def test_load_reports_missing_and_malformed_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        TrainingConfig.load(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="bad.json is not valid JSON"):
        TrainingConfig.load(bad)


# --- property-based: any junk value for any field raises ConfigError naming that field, nothing else ---

junk = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
                 st.text(max_size=12), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                 st.tuples(st.text(max_size=5)))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(FIELD_NAMES), value=junk)
def test_random_values_raise_only_config_error_naming_the_field(field, value):
    try:
        cfg = TrainingConfig(**{field: value})
    except ConfigError as e:
        assert field in str(e) or "warmup" in str(e) or "fp16" in str(e)
        return
    # accepted: then it must be a valid, round-trippable config
    assert TrainingConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


@settings(max_examples=200, deadline=None)
@given(d=st.dictionaries(st.sampled_from(FIELD_NAMES + ("bogus", "lr")), junk, max_size=5))
def test_from_dict_with_random_dicts_raises_only_config_error(d):
    try:
        cfg = TrainingConfig.from_dict(d)
    except ConfigError as e:
        assert e.problems and all(isinstance(p, str) for p in e.problems)
        return
    assert TrainingConfig.from_dict(cfg.to_dict()) == cfg
