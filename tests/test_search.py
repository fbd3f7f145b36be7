import io
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn as nn

import trainbook as tb
from trainbook.dashboard import plot_search
from trainbook.notebook import SearchProgress
from trainbook import search
from trainbook.search import journal as search_journal
from trainbook.search import (SearchResult, Trial, choice, intuniform, loguniform, make_plan, run_search,
                              uniform)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models train fastest on one thread; the machine's cores are shared with other tests."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data():
    return tb.load_task_data("vision-cls", limit=96)


def base_config(tmp_path, **overrides):
    return tb.TrainingConfig(**{"epochs": 2, "batch_size": 32, "output_dir": str(tmp_path), "run_name": "r",
                                "wandb_mode": "disabled", **overrides})


class Factory:
    """model_factory that counts its calls; `bad` call numbers get a model whose loss is NaN."""

    def __init__(self, spec, bad=()):
        self.spec, self.bad, self.calls = spec, set(bad), 0

    def __call__(self):
        self.calls += 1
        model = tb.build_model(self.spec, "tiny")
        return NaNModel(model) if self.calls in self.bad else model


class NaNModel(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x, attention_mask=None):
        return self.inner(x) * float("nan")


def journal(search_dir):
    return [json.loads(line) for line in (search_dir / "search.jsonl").read_text().splitlines()]


# ---------------------------------------------------------------- space and plan

def test_distributions_validate_their_bounds():
    with pytest.raises(ValueError, match=r"loguniform needs 0 < low < high; got 0, 1"):
        loguniform(0, 1)
    with pytest.raises(ValueError, match="uniform needs low < high; got 2, 1"):
        uniform(2, 1)
    with pytest.raises(ValueError, match="intuniform needs integers low <= high"):
        intuniform(1.5, 3)
    with pytest.raises(ValueError, match="choice needs a non-empty list"):
        choice([])


def test_random_plan_is_seeded_and_inside_the_bounds():
    space = search.check_space({"learning_rate": loguniform(1e-4, 1e-2), "batch_size": intuniform(8, 16),
                                "weight_decay": uniform(0.0, 0.1), "optimizer": choice(["adamw", "sgd"])}, "random")
    plan = make_plan(space, "random", 20, seed=3)
    assert plan == make_plan(space, "random", 20, seed=3)
    assert plan != make_plan(space, "random", 20, seed=4)
    assert all(1e-4 <= p["learning_rate"] <= 1e-2 and 8 <= p["batch_size"] <= 16 and 0 <= p["weight_decay"] <= 0.1
               for p in plan)
    assert {p["optimizer"] for p in plan} == {"adamw", "sgd"} and all(type(p["batch_size"]) is int for p in plan)


def test_grid_plan_is_the_product_in_order_or_a_seeded_subset():
    space = search.check_space({"learning_rate": [1e-3, 1e-2], "batch_size": [8, 16, 32]}, "grid")
    plan = make_plan(space, "grid", None, seed=0)
    assert plan[:2] == [{"learning_rate": 1e-3, "batch_size": 8}, {"learning_rate": 1e-3, "batch_size": 16}]
    assert len(plan) == 6
    subset = make_plan(space, "grid", 4, seed=0)
    assert len(subset) == 4 and all(p in plan for p in subset) and subset == make_plan(space, "grid", 4, seed=0)
    assert make_plan(space, "grid", 5, seed=0)[:4] == subset  # more trials extend the plan


def test_space_problems_are_all_reported_before_any_training(tmp_path, data):
    factory = Factory(data.spec)
    with pytest.raises(tb.ConfigError) as err:
        run_search(base_config(tmp_path), {"learnig_rate": [1e-3], "run_name": ["a"], "epochs": []}, factory,
                   data.train, data.val, data.spec)
    msg = str(err.value)
    assert "'learnig_rate' is not a TrainingConfig field (did you mean 'learning_rate'?)" in msg
    assert "'run_name' is set by the search" in msg and "'epochs' must be a non-empty list" in msg
    with pytest.raises(tb.ConfigError, match="method='grid' needs a list of values; got loguniform"):
        run_search(base_config(tmp_path), {"learning_rate": loguniform(1e-4, 1e-2)}, factory, data.train, data.val,
                   data.spec)
    with pytest.raises(tb.ConfigError, match=r"trial 1 with \{'learning_rate': -1.0\}(.|\n)*learning_rate must be"):
        run_search(base_config(tmp_path), {"learning_rate": [1e-3, -1.0]}, factory, data.train, data.val, data.spec)
    assert factory.calls == 0 and not (tmp_path / "r" / "search").exists()


@pytest.mark.parametrize("kwargs, message", [
    (dict(method="bayes"), "method must be one of 'grid', 'random'; got 'bayes'"),
    (dict(method="random"), "method='random' needs n_trials"),
    (dict(metric="val_f1"), r"metric must be one of \['train_loss', 'val_accuracy', 'val_loss'\]"),
    (dict(prune="hyperband"), "prune must be one of 'none', 'median'"),
])
def test_bad_arguments_are_rejected_with_the_allowed_values(tmp_path, data, kwargs, message):
    with pytest.raises(ValueError, match=message):
        run_search(base_config(tmp_path), {"learning_rate": [1e-3]}, Factory(data.spec), data.train, data.val,
                   data.spec, **kwargs)


# ---------------------------------------------------------------- the sequential search

def test_grid_search_journals_every_trial_and_keeps_only_the_best_checkpoint(tmp_path, data, capsys):
    factory = Factory(data.spec, bad={2})
    space = {"learning_rate": [3e-2, 1e-2, 3e-3]}
    result = run_search(base_config(tmp_path), space, factory, data.train, data.val, data.spec,
                        search_dir=tmp_path / "s")
    rows = journal(tmp_path / "s")
    assert [r["status"] for r in rows[:3]] == ["planned"] * 3
    assert [(r["trial"], r["status"]) for r in rows[3:]] == [
        (0, "running"), (0, "finished"), (1, "running"), (1, "failed"), (2, "running"), (2, "finished")]
    assert [r["seed"] for r in rows[:3]] == [0, 1, 2] and rows[3]["params"] == {"learning_rate": 3e-2}
    assert "non-finite loss" in rows[6]["error"] and rows[6]["metric"] is None
    finished = [r for r in rows if r["status"] == "finished"]
    assert all(r["epochs"] == 2 and r["best_epoch"] in (1, 2) and r["wall_time_s"] > 0 for r in finished)
    best = min(finished, key=lambda r: r["metric"])
    assert result.best.index == best["trial"] and result.best.metric == best["metric"]
    assert result.best.config.learning_rate == result.best.params["learning_rate"]
    assert result.best.config.run_dir == tmp_path / "s" / f"trial-{best['trial']:03d}"
    kept = sorted(p.relative_to(tmp_path / "s").as_posix() for p in (tmp_path / "s").glob("trial-*/checkpoints/*"))
    assert kept == [f"trial-{best['trial']:03d}/checkpoints/best.pt"]
    assert result.best.checkpoint == str(tmp_path / "s" / kept[0])
    table = result.table()
    assert [row["status"] for row in table] == ["finished", "finished", "failed"] and table[0]["trial"] == best["trial"]
    assert table[0]["val_loss"] <= table[1]["val_loss"]
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("trial ")]
    assert len(lines) == 3 and lines[1].startswith("trial 2/3 | failed | val_loss - |")

    again = Factory(data.spec)
    rerun = run_search(base_config(tmp_path), space, again, data.train, data.val, data.spec, search_dir=tmp_path / "s")
    assert again.calls == 0 and len(journal(tmp_path / "s")) == len(rows)
    assert rerun.table() == table and rerun.best.checkpoint == result.best.checkpoint

    with pytest.raises(ValueError, match=r"holds a different search \(space: .*HINT: pass another search_dir"):
        run_search(base_config(tmp_path), {"learning_rate": [1e-3]}, again, data.train, data.val, data.spec,
                   search_dir=tmp_path / "s")
    with pytest.raises(ValueError, match=r"base_config.epochs: 2 -> 3"):
        run_search(base_config(tmp_path, epochs=3), space, again, data.train, data.val, data.spec,
                   search_dir=tmp_path / "s")


def test_a_random_search_grows_with_n_trials_but_does_not_shrink(tmp_path, data):
    space, cfg, factory = {"learning_rate": loguniform(1e-3, 1e-2)}, base_config(tmp_path, epochs=1), Factory(data.spec)
    first = run_search(cfg, space, factory, data.train, data.val, data.spec, method="random", n_trials=1)
    grown = run_search(cfg, space, factory, data.train, data.val, data.spec, method="random", n_trials=2)
    assert factory.calls == 2 and grown.trials[0].metric == first.trials[0].metric and len(grown.trials) == 2
    assert grown.space == {"learning_rate": {"loguniform": [1e-3, 1e-2]}}   # what plot_search draws on a log axis
    assert [r["trial"] for r in journal(tmp_path / "r" / "search") if r["status"] == "planned"] == [0, 1]
    with pytest.raises(ValueError, match=r"holds a plan of 2 trials .*\(n_trials can grow, not shrink\)"):
        run_search(cfg, space, factory, data.train, data.val, data.spec, method="random", n_trials=1)


def test_a_search_resumes_from_its_journal_in_persist_dir_on_an_empty_local_disk(tmp_path, data):
    space, factory = {"learning_rate": loguniform(1e-3, 1e-2)}, Factory(data.spec)
    cfg = base_config(tmp_path, epochs=1, persist_dir=str(tmp_path / "drive"))
    first = run_search(cfg, space, factory, data.train, data.val, data.spec, method="random", n_trials=2)
    persisted = tmp_path / "drive" / "r" / "search"
    assert (persisted / "search.jsonl").read_text() == (tmp_path / "r" / "search" / "search.jsonl").read_text()
    best_trial = Path(first.best.run_dir).name
    assert sorted(p.relative_to(persisted).as_posix() for p in persisted.rglob("*.pt")) == \
        [f"{best_trial}/checkpoints/best.pt"]
    shutil.rmtree(tmp_path / "r")   # a runtime reset: the local disk is empty

    grown = run_search(cfg, space, factory, data.train, data.val, data.spec, method="random", n_trials=3)
    assert factory.calls == 3   # only the new trial trained; the two ended trials came back from the journal
    assert [t.metric for t in grown.trials[:2]] == [t.metric for t in first.trials]
    best = grown.best
    assert best.checkpoint and Path(best.checkpoint).is_file()
    assert sorted(p.relative_to(persisted).as_posix() for p in persisted.rglob("*.pt")) == \
        [f"{Path(best.run_dir).name}/checkpoints/best.pt"]
    assert len(journal(persisted)) == len(journal(tmp_path / "r" / "search"))


def test_journal_drops_a_torn_last_line(tmp_path):
    path = tmp_path / "search.jsonl"
    path.write_text('{"trial": 0, "status": "planned"}\n{"trial": 0, "sta')
    with pytest.warns(RuntimeWarning, match="dropped a partial last line"):
        rows = search_journal.Journal(path).read()
    assert rows == [{"trial": 0, "status": "planned"}] and path.read_text() == '{"trial": 0, "status": "planned"}\n'


def test_median_pruning_saves_epochs_and_finds_the_same_best_trial(tmp_path, data):
    # two useful learning rates first, then one that stalls and one that diverges
    space = {"learning_rate": [3e-2, 1e-2, 1e-5, 3.0]}
    cfg = base_config(tmp_path, epochs=6, batch_size=16, save_every_n_epochs=0)
    full = run_search(cfg, space, Factory(data.spec), data.train, data.val, data.spec, search_dir=tmp_path / "full")
    pruned = run_search(cfg, space, Factory(data.spec), data.train, data.val, data.spec, prune="median",
                        search_dir=tmp_path / "pruned")
    saving = 1 - pruned.epochs_trained / full.epochs_trained
    print(f"median pruning: {pruned.epochs_trained} of {full.epochs_trained} epochs, saving {saving:.0%}")
    assert full.epochs_trained == 24 and saving >= 0.30
    assert [t.status for t in pruned.trials] == ["finished", "finished", "pruned", "pruned"]
    assert (pruned.best.index, pruned.best.metric) == (full.best.index, full.best.metric)
    assert [r["epochs"] for r in journal(tmp_path / "pruned") if r["status"] == "pruned"] == [
        t.epochs for t in pruned.trials[2:]]


KILL_SCRIPT = textwrap.dedent("""
    import json, os, signal, sys
    import torch
    import trainbook as tb

    torch.set_num_threads(1)
    data = tb.load_task_data("vision-cls", limit=96)
    calls = {"n": 0}

    class KillAtForward(torch.nn.Module):  # SIGKILLs this process in the middle of a trial
        def __init__(self, inner, at):
            super().__init__()
            self.inner, self.at, self.seen = inner, at, 0

        def forward(self, x, attention_mask=None):
            self.seen += 1
            if self.seen == self.at:
                os.kill(os.getpid(), signal.SIGKILL)
            return self.inner(x)

    def factory():
        calls["n"] += 1
        model = tb.build_model(data.spec, "tiny")
        return KillAtForward(model, 5) if calls["n"] == int(os.environ.get("KILL_AT_CALL", 0)) else model

    cfg = tb.TrainingConfig(epochs=3, batch_size=32, output_dir=sys.argv[1], run_name="r")
    result = tb.run_search(cfg, {"learning_rate": [3e-2, 1e-2], "weight_decay": [0.0, 0.1]}, factory,
                           data.train, data.val, data.spec, method="grid", seed=7,
                           search_dir=sys.argv[1])
    print(json.dumps({"calls": calls["n"], "best": [result.best.index, result.best.params, result.best.metric],
                      "metrics": [t.metric for t in result.trials]}))
""")


def run_child(script, out_dir, **env):
    proc = subprocess.run([sys.executable, str(script), str(out_dir)], capture_output=True, text=True, timeout=240,
                          env={**os.environ, **env})
    return proc, (json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else None)


def test_search_killed_mid_trial_resumes_without_rerunning_finished_trials(tmp_path, data):
    script = tmp_path / "child.py"
    script.write_text(KILL_SCRIPT)
    killed, _ = run_child(script, tmp_path / "a", KILL_AT_CALL="3")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    before = journal(tmp_path / "a")
    assert [(r["trial"], r["status"]) for r in before[4:]] == [
        (0, "running"), (0, "finished"), (1, "running"), (1, "finished"), (2, "running")]
    assert (tmp_path / "a" / "trial-002" / "checkpoints").is_dir()  # the interrupted trial left a checkpoint

    resumed, out = run_child(script, tmp_path / "a")
    assert resumed.returncode == 0, resumed.stderr
    assert out["calls"] == 2  # only trials 2 and 3 were trained again
    rows = journal(tmp_path / "a")
    assert rows[:len(before)] == before  # append-only
    finished = [r["trial"] for r in rows if r["status"] == "finished"]
    assert sorted(finished) == [0, 1, 2, 3]  # 4 finished rows, none re-run
    assert [r["trial"] for r in rows if r["status"] == "running"] == [0, 1, 2, 2, 3]
    assert [r["params"] for r in rows if r["trial"] == 2] == [rows[2]["params"]] * 4  # same params, same seed
    assert {r["seed"] for r in rows if r["trial"] == 2} == {7 + 2}

    # the same search, uninterrupted, in this process (one thread, like the child)
    cfg = tb.TrainingConfig(epochs=3, batch_size=32, output_dir=str(tmp_path / "b"), run_name="r")
    reference = run_search(cfg, {"learning_rate": [3e-2, 1e-2], "weight_decay": [0.0, 0.1]}, Factory(data.spec),
                           data.train, data.val, data.spec, seed=7, search_dir=tmp_path / "b")
    assert out["best"] == [reference.best.index, reference.best.params, reference.best.metric]
    assert out["metrics"] == [t.metric for t in reference.trials]


# ---------------------------------------------------------------- the Optuna backend

OPTUNA_WORKER = textwrap.dedent("""
    import sys
    import torch
    import trainbook as tb

    torch.set_num_threads(1)
    data = tb.load_task_data("vision-cls", limit=96)
    cfg = tb.TrainingConfig(epochs=2, batch_size=32, output_dir=sys.argv[1], run_name="r")
    tb.run_search(cfg, {"learning_rate": [3e-2, 1e-2, 3e-3, 1e-3]}, lambda: tb.build_model(data.spec, "tiny"),
                  data.train, data.val, data.spec, backend="optuna", storage=sys.argv[2], study_name="shared",
                  search_dir=sys.argv[1])
""")


def test_two_optuna_workers_share_one_sqlite_study(tmp_path, data):
    optuna = pytest.importorskip("optuna")
    script, storage = tmp_path / "worker.py", f"sqlite:///{tmp_path / 'study.db'}"
    script.write_text(OPTUNA_WORKER)
    workers = [subprocess.Popen([sys.executable, str(script), str(tmp_path / "s"), storage], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [w.communicate(timeout=240) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs

    trials = [t for t in optuna.load_study(study_name="shared", storage=storage).get_trials()
              if not t.user_attrs.get("surplus")]
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert sorted(t.params["learning_rate"] for t in trials) == [1e-3, 3e-3, 1e-2, 3e-2]  # none duplicated

    factory = Factory(data.spec)
    result = run_search(base_config(tmp_path), {"learning_rate": [3e-2, 1e-2, 3e-3, 1e-3]}, factory, data.train,
                        data.val, data.spec, backend="optuna", storage=storage, study_name="shared",
                        search_dir=tmp_path / "s")
    assert factory.calls == 0 and result.backend == "optuna"
    assert sorted(t.index for t in result.trials) == [0, 1, 2, 3] and {t.status for t in result.trials} == {"finished"}
    assert result.best.metric == min(t.value for t in trials)
    assert sorted(p.parent.parent.name for p in (tmp_path / "s").glob("trial-*/checkpoints/*")) == [
        f"trial-{result.best.index:03d}"]
    with pytest.raises(ValueError, match=r"belongs to a different search \(base_config.epochs: 2 -> 3\)"):
        run_search(base_config(tmp_path, epochs=3), {"learning_rate": [3e-2, 1e-2, 3e-3, 1e-3]}, factory,
                   data.train, data.val, data.spec, backend="optuna", storage=storage, study_name="shared",
                   search_dir=tmp_path / "s")


def test_optuna_random_search_is_reproducible_and_prunes(tmp_path, data):
    pytest.importorskip("optuna")
    space = {"learning_rate": loguniform(1e-5, 3e-2)}
    results = [run_search(base_config(tmp_path, epochs=3), space, Factory(data.spec), data.train, data.val, data.spec,
                          method="random", n_trials=3, seed=5, prune="median", backend="optuna",
                          search_dir=tmp_path / name) for name in ("a", "b")]
    params = [[t.params["learning_rate"] for t in r.trials] for r in results]
    assert params[0] == params[1] and len(set(params[0])) == 3 and all(1e-5 <= v <= 3e-2 for v in params[0])
    assert results[0].space == {"learning_rate": {"loguniform": [1e-5, 3e-2]}}
    assert [t.status for t in results[0].trials] == [t.status for t in results[1].trials]
    assert all(t.epochs == 3 if t.status == "finished" else t.epochs < 3 for t in results[0].trials)


# ---------------------------------------------------------------- output

def synthetic_result():
    trials = [Trial(0, {"learning_rate": 1e-3, "optimizer": "adamw"}, 0, "finished", metric=0.9, epochs=3),
              Trial(1, {"learning_rate": 1e-2, "optimizer": "sgd"}, 1, "finished", metric=0.5, epochs=3),
              Trial(2, {"learning_rate": 1.0, "optimizer": "sgd"}, 2, "failed", error="boom"),
              Trial(3, {"learning_rate": 1e-5, "optimizer": "adamw"}, 3, "pruned", metric=2.0, epochs=1)]
    return SearchResult(trials, trials[1], "val_loss", "min", "s")


def test_table_lists_best_first_then_pruned_then_failed():
    table = synthetic_result().table()
    assert [(r["trial"], r["status"]) for r in table] == [(1, "finished"), (0, "finished"), (3, "pruned"), (2, "failed")]
    assert table[0] == {"trial": 1, "status": "finished", "learning_rate": 1e-2, "optimizer": "sgd", "val_loss": 0.5,
                        "best_epoch": None, "epochs": 3, "wall_time_s": None}


def test_plot_search_draws_the_metric_per_trial_and_one_panel_per_parameter():
    from matplotlib.figure import Figure

    fig = plot_search(synthetic_result())
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert fig.axes[1].get_xscale() == "log" and [t.get_text() for t in fig.axes[2].get_xticklabels()] == ["adamw", "sgd"]
    best_line = fig.axes[0].lines[0].get_ydata()
    assert list(best_line) == [0.9, 0.5]
    fig.savefig(io.BytesIO(), format="png")


def test_search_progress_prints_one_line_per_ended_trial_and_advances_a_bar_over_trials(monkeypatch, capsys):
    import tqdm.auto

    bars = []

    class Bar:
        def __init__(self, **kwargs):
            self.kwargs, self.n, self.closed = kwargs, kwargs["initial"], False
            bars.append(self)

        def update(self, n):
            self.n += n

        def write(self, line, file=None):
            print(line, file=file)

        def close(self):
            self.closed = True

    monkeypatch.setattr(tqdm.auto, "tqdm", Bar)
    result = synthetic_result()
    for t in result.trials:
        t.status = "planned"
    progress = SearchProgress(result, 4, progress_bar=False)
    assert bars[0].kwargs["total"] == 4 and bars[0].kwargs["disable"] is True and bars[0].n == 0
    for t, status in zip(result.trials, ["finished", "finished", "failed", "pruned"]):
        progress.update(result)       # a trial starts: nothing printed
        t.status = status
        progress.update(result, t)    # it ended: one line
    progress.close(result)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" | ")[:2] for line in lines[:4]] == [["trial 1/4", "finished"], ["trial 2/4", "finished"],
                                                             ["trial 3/4", "failed"], ["trial 4/4", "pruned"]]
    assert lines[2].endswith("| boom") and lines[4].startswith("search: best trial 1 | val_loss 0.5000")
    assert len(lines) == 5 and bars[0].n == 4 and bars[0].closed
    assert not any("<table" in line for line in lines)


def test_trainer_on_epoch_end_can_stop_a_run(tmp_path, data):
    rows = []
    cfg = base_config(tmp_path, epochs=4, progress_bar=False)
    result = tb.Trainer(tb.build_model(data.spec, "tiny"), training_config=cfg, task_spec=data.spec).train(
        data.train, data.val, on_epoch_end=lambda row: rows.append(row) or row["epoch"] == 2)
    assert [r["epoch"] for r in rows] == [1, 2] and len(result.history) == 2 and result.stopped_early
    assert torch.load(result.last_checkpoint, weights_only=True)["state"]["finished"]
