"""Training curves, the 4-panel drift dashboard and the drift explorer (headless and with widgets)."""

import types

import numpy as np
import pytest

import trainbook as tb
from trainbook import dashboard, drift


@pytest.fixture(scope="module")
def vision_report():
    data = tb.load_task_data("vision-cls", seed=0, limit=300, shift="rotation")
    model = tb.build_model(data.spec, "tiny", seed=0)
    ref, cur = (drift.profile_dataset(d, data.spec, model=model) for d in (data.train, data.current))
    return drift.compare_profiles(ref, cur)


@pytest.fixture(scope="module")
def lm_report():
    data = tb.load_task_data("lm", seed=0, limit=120, shift="truncate")
    return drift.compare_profiles(*(drift.profile_dataset(d, data.spec) for d in (data.train, data.current)))


@pytest.fixture(scope="module")
def array_report():
    rng = np.random.default_rng(0)
    return drift.compare_arrays(rng.normal(size=(800, 3)), rng.normal(size=(300, 3)) + [0, 0, 2])


def texts(ax):
    return [t.get_text() for t in ax.texts]


@pytest.mark.parametrize("name", ["vision_report", "lm_report", "array_report"])
def test_drift_dashboard_has_exactly_four_titled_axes(name, request):
    report = request.getfixturevalue(name)
    fig = tb.plot_drift_dashboard(report)
    assert len(fig.axes) == 4
    titles = [ax.get_title() for ax in fig.axes]
    assert all(titles), titles
    assert titles[0].startswith("distribution: ") and titles[1] == "drift score per feature"
    assert titles[2].startswith("over time: ")
    assert report.verdict() in texts(fig.axes[3])


def test_drift_dashboard_panels_show_the_most_drifted_feature_and_predictions(vision_report):
    fig = tb.plot_drift_dashboard(vision_report)
    top = max((r for r in vision_report.rows if r["kind"] == "numeric"), key=lambda r: r["score"])
    assert fig.axes[0].get_title().startswith(f"distribution: {top['feature']} ")
    assert fig.axes[3].get_title() == "predictions / labels: predicted"
    assert len(fig.axes[1].patches) == len(vision_report.rows)      # one bar per feature


def test_drift_dashboard_without_model_or_labels_says_so(lm_report):
    fig = tb.plot_drift_dashboard(lm_report)
    assert fig.axes[3].get_title().startswith("no predictions / labels profiled; ")
    assert "features drifted: dataset drift" in texts(fig.axes[3])[0]


def test_drift_dashboard_saves_a_png(array_report, tmp_path):
    path = tmp_path / "drift_dashboard.png"
    tb.plot_drift_dashboard(array_report).savefig(path, dpi=60)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_drift_explorer_headless_returns_the_static_dashboard(array_report):
    assert not dashboard._live_frontend()   # pytest is not a notebook
    fig = tb.drift_explorer(array_report)
    assert len(fig.axes) == 4


def test_drift_explorer_interactive_redraws_the_chosen_feature(array_report, monkeypatch):
    drawn = []
    real = dashboard._feature_figure
    monkeypatch.setattr(dashboard, "_feature_figure", lambda report, name: drawn.append(name) or real(report, name))
    box = tb.drift_explorer(array_report, interactive=True)
    dropdown, output = box.children
    assert dropdown.options[0] == "feature_2" and set(dropdown.options) == {"feature_0", "feature_1", "feature_2"}
    dropdown.value = "feature_1"
    assert drawn == ["feature_2", "feature_1"]


def test_plot_training_still_has_four_panels():
    history = [{"epoch": e, "train_loss": 2.0 / e, "val_loss": 2.1 / e, "val_accuracy": 0.5 + e / 10, "lr": 1e-3,
                "grad_norm": 1.0, "samples_per_s": 100.0} for e in (1, 2, 3)]
    fig = tb.plot_training(types.SimpleNamespace(history=history))
    assert [ax.get_title() for ax in fig.axes][:2] == ["loss", "val_accuracy"]
    assert len(fig.axes) == 5   # 4 panels + the grad-norm twin axis
    assert fig.axes[0].get_xlabel() == "epoch"


def test_plot_training_uses_per_step_rows_when_the_run_logged_them(tmp_path):
    data = tb.load_task_data("vision-cls", limit=64)
    cfg = tb.TrainingConfig(output_dir=str(tmp_path), epochs=2, batch_size=8, wandb_mode="disabled",
                            progress_bar=False, resume="never")
    result = tb.Trainer(tb.build_model(data.spec, "tiny"), training_config=cfg, task_spec=data.spec).train(data.train, data.val)
    fig = tb.plot_training(result)
    loss_line = fig.axes[0].get_lines()[0]
    assert fig.axes[0].get_xlabel() == "optimizer step"
    assert list(loss_line.get_xdata()) == list(range(1, 17))


def test_drift_dashboard_handles_tiny_data_without_a_reference_band():
    report = drift.compare_arrays(np.arange(3.0), np.arange(100.0))
    assert report.over_time["feature_0"]["band"] is None
    assert len(tb.plot_drift_dashboard(report).axes) == 4
