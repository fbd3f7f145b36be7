import pytest
import torch

from trainbook.tasks import IGNORE_INDEX, TASK_NAMES, TaskSpec, TextCollator, VisionDataCollator, collator_for


@pytest.mark.parametrize("name", TASK_NAMES)
def test_preset_round_trips_through_dict(name):
    spec = TaskSpec.preset(name)
    assert TaskSpec.from_dict(spec.to_dict()) == spec


def test_unknown_preset_and_bad_fields_are_rejected():
    with pytest.raises(ValueError, match="task must be one of 'lm', 'text-cls', 'vision-cls'; got 'seg'"):
        TaskSpec.preset("seg")
    with pytest.raises(ValueError, match="classification needs num_classes >= 2; got 1"):
        TaskSpec.preset("text-cls").replace(num_classes=1)
    with pytest.raises(ValueError, match="unknown TaskSpec field"):
        TaskSpec.from_dict({**TaskSpec.preset("lm").to_dict(), "colour": 1})


def test_collator_is_selected_by_modality():
    assert isinstance(collator_for(TaskSpec.preset("lm")), TextCollator)
    assert isinstance(collator_for(TaskSpec.preset("text-cls")), TextCollator)
    assert isinstance(collator_for(TaskSpec.preset("vision-cls")), VisionDataCollator)


def test_text_collator_pads_masks_and_uses_ignore_index_for_lm():
    batch = collator_for(TaskSpec.preset("lm"))([{"input_ids": torch.tensor([5, 6, 7])}, {"input_ids": torch.tensor([9])}])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [9, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[5, 6, 7], [9, IGNORE_INDEX, IGNORE_INDEX]]


def test_text_collator_classification_labels_are_long():
    batch = collator_for(TaskSpec.preset("text-cls"))([{"input_ids": torch.tensor([1, 2]), "labels": 3}])
    assert batch["labels"].dtype == torch.long and batch["labels"].tolist() == [3]


def test_vision_collator_normalises_exactly_once():
    spec = TaskSpec.preset("vision-cls")
    x = torch.full((1, 8, 8), 0.5)
    batch = collator_for(spec)([{"pixel_values": x, "labels": 2}])
    expected = (0.5 - spec.mean[0]) / spec.std[0]
    assert torch.allclose(batch["pixel_values"], torch.full((1, 1, 8, 8), expected))
    assert torch.equal(x, torch.full((1, 8, 8), 0.5))  # input untouched
    assert batch["labels"].dtype == torch.long


# --- per-task training defaults (the notebook's "auto") ---

def test_task_defaults_fill_every_auto_setting_from_the_task():
    from trainbook.tasks import AUTO, TASK_DEFAULTS, task_defaults

    for task in TASK_NAMES:
        assert task_defaults(task, **AUTO) == TASK_DEFAULTS[task]
        assert task_defaults(task) == TASK_DEFAULTS[task]
    assert task_defaults("text-cls")["lr_schedule"] == TASK_DEFAULTS["text-cls"]["lr_schedule"]


def test_task_defaults_keep_every_value_that_is_not_auto():
    from trainbook.tasks import TASK_DEFAULTS, task_defaults

    given = dict(model_size="small", data_limit=0, epochs=7, batch_size=4, learning_rate=1e-4)
    assert task_defaults("lm", **given) == {**given, "lr_schedule": TASK_DEFAULTS["lm"]["lr_schedule"]}
    mixed = task_defaults("vision-cls", model_size="auto", data_limit=50, epochs=0, batch_size=0, learning_rate=0.0)
    assert mixed["data_limit"] == 50 and mixed["model_size"] == TASK_DEFAULTS["vision-cls"]["model_size"]
    assert mixed["epochs"] == TASK_DEFAULTS["vision-cls"]["epochs"]
    assert task_defaults("lm", epochs=False)["epochs"] is False  # not "auto": the validation pass reports it


def test_task_defaults_pass_the_validation_pass_and_name_unknown_settings(tmp_path):
    import trainbook as tb
    from trainbook.tasks import task_defaults

    for task in TASK_NAMES:
        cfg = tb.validate_run(preset="quick", task=task, output_dir=str(tmp_path), wandb_mode="disabled",
                              **task_defaults(task, model_size="auto", epochs=0, learning_rate=0))
        assert cfg.epochs == task_defaults(task)["epochs"] and cfg.lr_schedule == task_defaults(task)["lr_schedule"]
    with pytest.raises(TypeError, match="unexpected setting.*'epoch'.*settings: model_size"):
        task_defaults("lm", epoch=3)
