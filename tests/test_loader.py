import os
import random
import sys
import types

import numpy as np
import pytest
import torch

import trainbook as tb
from trainbook.data import DataError, ExampleDataset
from trainbook.engine import loader
from trainbook.engine.loader import BatchFeed, accumulation_windows, batch_seed

VISION = tb.TaskSpec.preset("vision-cls")
CPU = torch.device("cpu")


class PidLog(torch.utils.data.Dataset):
    """Digits-sized images; every __getitem__ appends os.getpid() to a log file."""

    def __init__(self, n, log):
        self.n, self.log = n, str(log)

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        with open(self.log, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        return {"pixel_values": torch.full((1, 8, 8), i / self.n), "labels": i % 10}


class Augmented(torch.utils.data.Dataset):
    """Each item mixes draws from the torch, numpy and python RNGs (like an augmentation pipeline)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        noise = torch.rand(1, 8, 8) + float(np.random.rand()) + random.random()
        return {"pixel_values": noise + i, "labels": i % 10}


def feed_batches(dataset, batches, epoch=0, num_workers=0, seed=0):
    feed = BatchFeed(dataset, tb.collator_for(VISION), seed=seed, num_workers=num_workers, device=CPU)
    try:
        return [b["pixel_values"] for b in feed.epoch(batches, epoch)]
    finally:
        feed.close()


def pids(log):
    return [int(line) for line in log.read_text().split()]


# --- worker processes ---

@pytest.mark.parametrize("num_workers", [0, 2])
def test_worker_processes_fetch_the_data_when_asked_and_never_otherwise(num_workers, tmp_path):
    log = tmp_path / "pids.txt"
    cfg = tb.TrainingConfig(output_dir=str(tmp_path), epochs=2, batch_size=8, wandb_mode="disabled",
                            progress_bar=False, resume="never", num_workers=num_workers)
    model = tb.build_model(VISION, "tiny")
    tb.Trainer(model, training_config=cfg, task_spec=VISION).train(PidLog(32, log), PidLog(16, log))
    fetched = pids(log)
    assert len(fetched) == 2 * 32 + 2 * 16  # every sample once per epoch, validation after each epoch
    if num_workers == 0:
        assert set(fetched) == {os.getpid()}
    else:
        assert len(set(fetched)) == 4 and os.getpid() not in fetched  # 2 train + 2 validation workers


def test_worker_processes_are_stopped_when_training_ends(tmp_path):
    log = tmp_path / "pids.txt"
    cfg = tb.TrainingConfig(output_dir=str(tmp_path), epochs=1, batch_size=8, wandb_mode="disabled",
                            progress_bar=False, resume="never", num_workers=2)
    tb.Trainer(tb.build_model(VISION, "tiny"), training_config=cfg, task_spec=VISION).train(PidLog(32, log))
    for pid in set(pids(log)):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_an_error_inside_a_worker_reaches_the_caller_with_its_message(tmp_path):
    class Broken(PidLog):
        def __getitem__(self, i):
            if i == 5:
                raise ValueError("sample 5 is corrupt")
            return super().__getitem__(i)

    cfg = tb.TrainingConfig(output_dir=str(tmp_path), epochs=1, batch_size=8, wandb_mode="disabled",
                            progress_bar=False, resume="never", num_workers=2)
    with pytest.raises(ValueError, match="sample 5 is corrupt"):
        tb.Trainer(tb.build_model(VISION, "tiny"), training_config=cfg, task_spec=VISION).train(
            Broken(32, tmp_path / "pids.txt"))


def test_evaluate_alone_fetches_in_workers_too(tmp_path):
    log = tmp_path / "pids.txt"
    cfg = tb.TrainingConfig(output_dir=str(tmp_path), batch_size=8, num_workers=2)
    metrics = tb.Trainer(tb.build_model(VISION, "tiny"), training_config=cfg, task_spec=VISION).evaluate(PidLog(20, log))
    assert 0.0 <= metrics["val_accuracy"] <= 1.0 and metrics["val_loss"] > 0
    assert len(pids(log)) == 20 and os.getpid() not in pids(log)


# --- results do not depend on num_workers ---

def test_augmented_batches_are_the_same_with_and_without_workers():
    batches = [[5, 1, 7], [0, 3, 9], [2, 8, 4], [6]]
    without = feed_batches(Augmented(10), batches, epoch=3)
    with_workers = feed_batches(Augmented(10), batches, epoch=3, num_workers=2)
    assert len(without) == len(with_workers) == 4
    for a, b in zip(without, with_workers):
        assert torch.equal(a, b)


def test_fetching_in_the_main_process_leaves_its_rng_streams_as_they_were():
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    feed_batches(Augmented(10), [[0, 1], [2, 3]])
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1]) and got[2] == expected[2]


def test_a_resumed_epoch_gets_the_same_batches_as_the_rest_of_a_full_epoch():
    batches = [[4, 2], [9, 0], [1, 7], [3, 8]]
    full = feed_batches(Augmented(10), batches, epoch=1)
    tail = feed_batches(Augmented(10), batches[2:], epoch=1, num_workers=1)
    assert all(torch.equal(a, b) for a, b in zip(full[2:], tail))


def test_augmentations_change_with_the_epoch_and_the_seed():
    one = feed_batches(Augmented(10), [[0, 1]], epoch=0)[0]
    assert not torch.equal(one, feed_batches(Augmented(10), [[0, 1]], epoch=1)[0])
    assert not torch.equal(one, feed_batches(Augmented(10), [[0, 1]], epoch=0, seed=1)[0])
    assert len({batch_seed(0, e, i) for e in range(-1, 20) for i in range(500)}) == 21 * 500


def test_fixed_item_datasets_are_fetched_without_seeding(monkeypatch):
    def no_seeding(*args, **kwargs):
        raise AssertionError("a list of fixed examples needs no RNG seeding")

    monkeypatch.setattr(loader, "_seeded_rngs", no_seeding)
    examples = [{"pixel_values": torch.full((1, 2, 2), float(i)), "labels": i} for i in range(6)]
    for data in (examples, ExampleDataset(examples)):
        got = feed_batches(data, [[3, 1], [5]])
        collate = tb.collator_for(VISION)
        assert torch.equal(got[0], collate([examples[3], examples[1]])["pixel_values"])
        assert torch.equal(got[1], collate([examples[5]])["pixel_values"])


def test_accumulation_windows_group_micro_batches_in_order():
    assert accumulation_windows(list(range(10)), 3, 2) == [[[0, 1, 2], [3, 4, 5]], [[6, 7, 8], [9]]]


# --- start method, pickling, pinned memory ---

class ModuleLevel(torch.utils.data.Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, i):
        return {"pixel_values": torch.full((1, 2, 2), float(i)) + torch.rand(()), "labels": i}


def test_fork_starts_workers_on_linux():
    if not sys.platform.startswith("linux"):
        pytest.skip("fork is the start method on Linux only")
    assert loader.start_method() == "fork"


def test_spawn_pickles_a_module_level_dataset_and_gives_the_same_batches(monkeypatch):
    forked = feed_batches(ModuleLevel(), [[0, 1], [2, 3, 4], [5]], num_workers=1)
    monkeypatch.setattr(loader, "start_method", lambda: "spawn")
    spawned = feed_batches(ModuleLevel(), [[0, 1], [2, 3, 4], [5]], num_workers=1)
    assert all(torch.equal(a, b) for a, b in zip(forked, spawned)) and len(spawned) == 3


def test_spawn_with_an_unpicklable_dataset_is_an_error_naming_it(monkeypatch, tmp_path):
    class LocalData(PidLog):
        pass

    monkeypatch.setattr(loader, "start_method", lambda: "spawn")
    cfg = tb.TrainingConfig(output_dir=str(tmp_path), wandb_mode="disabled", progress_bar=False, num_workers=2)
    with pytest.raises(DataError, match=r"(?s)train_data \(LocalData\) cannot be sent to worker processes: "
                                        r"num_workers=2 starts them with 'spawn'.*pickling it failed.*"
                                        r"HINT: define the dataset class at the top level of a \.py file"):
        tb.Trainer(tb.build_model(VISION, "tiny"), training_config=cfg, task_spec=VISION).train(
            LocalData(8, tmp_path / "pids.txt"))
    assert list(tmp_path.iterdir()) == []  # refused before any work


def test_spawn_with_a_notebook_defined_dataset_is_an_error_naming_the_cell(monkeypatch):
    notebook_main = types.ModuleType("__main__")  # a kernel's __main__ has no __file__
    cell_class = type("CellData", (ModuleLevel,), {"__module__": "__main__"})
    monkeypatch.setitem(sys.modules, "__main__", notebook_main)
    monkeypatch.setattr(loader, "start_method", lambda: "spawn")
    with pytest.raises(DataError, match=r"val_data \(CellData\).*class CellData is defined in a notebook cell"):
        BatchFeed(cell_class(), tb.collator_for(VISION), seed=0, num_workers=1, device=CPU, name="val_data")


def test_batches_are_pinned_for_cuda_only():
    collate = tb.collator_for(VISION)
    assert BatchFeed([], collate, seed=0, num_workers=0, device=torch.device("cuda", 0)).pin_memory is True
    assert BatchFeed([], collate, seed=0, num_workers=0, device=CPU).pin_memory is False
