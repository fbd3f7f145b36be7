"""Training curves, the 4-panel drift dashboard and the drift explorer (headless and with widgets)."""

import types

import numpy as np
import pytest
import torch

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
    top = max((r for r in vision_report.rows if r["kind"] == "numeric"), key=lambda r: r["score"] / r["threshold"])
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


def test_drift_explorer_headless_prints_one_line_and_shows_no_figure(array_report, capsys):
    assert not dashboard._live_frontend()   # pytest is not a notebook
    assert tb.drift_explorer(array_report) is None
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("drift explorer: no live notebook") and "most drifted: feature_2" in lines[0]


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


# --- figure details: axes that fit the numbers, p-values, nothing hidden or cut off

def drawn(fig):
    """Lay the figure out as savefig does; returns the renderer that measures its texts."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def test_score_axis_ends_just_past_the_largest_score_or_the_drift_line(lm_report, vision_report):
    quiet = drift.compare_arrays(np.random.default_rng(1).normal(size=(400, 2)),
                                 np.random.default_rng(2).normal(size=(300, 2)))
    assert max(r["score"] / r["threshold"] for r in quiet.rows) < 1
    assert tb.plot_drift_dashboard(quiet).axes[1].get_xlim() == pytest.approx((0, 1.9))   # not 0-6.5
    ratios = [r["score"] / r["threshold"] for r in vision_report.rows]
    assert tb.plot_drift_dashboard(vision_report).axes[1].get_xlim()[1] == pytest.approx(1.9 * min(5, max(ratios)))


def test_every_score_bar_shows_its_p_value_and_why_a_long_bar_is_not_drift():
    rng = np.random.default_rng(3)
    report = drift.compare_arrays(rng.normal(size=(300, 2)), rng.normal(size=(300, 2)) + [0, 0.6],
                                  thresholds={"p_value": 1e-12})   # a large change that is not significant enough
    row = report.row("feature_1")
    assert row["score"] > row["threshold"] and 1e-12 <= row["p_value"] < 0.05 and row["status"] == "ok"
    labels = texts(tb.plot_drift_dashboard(report).axes[1])
    assert len(labels) == 2 and all(", p=" in t or ", p<" in t for t in labels)
    assert [t for t in labels if "not significant" in t] == [f"wasserstein {row['score']:.3g}, p={row['p_value']:.2g}"
                                                             " - not significant"]


def test_categories_empty_in_both_samples_are_not_plotted(lm_report):
    data = tb.load_task_data("lm", seed=0, limit=10)
    few = [{"input_ids": torch.tensor(list(b"abab ab"))}] * 4
    report = drift.compare_profiles(drift.profile_dataset(few, data.spec), drift.profile_dataset(few[:2], data.spec))
    assert report.distributions["tokens"]["categories"] == ["a", "b", "space"]
    fig = dashboard._feature_figure(report, "tokens")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["a", "b", "space"]


def test_verdict_box_and_legend_do_not_overlap(vision_report, lm_report):
    for report in (vision_report, lm_report):
        fig = tb.plot_drift_dashboard(report)
        renderer = drawn(fig)
        ax = fig.axes[3]
        verdict = next(t for t in ax.texts if t.get_text() == report.verdict())
        box, legend = verdict.get_bbox_patch().get_window_extent(renderer), ax.get_legend().get_window_extent(renderer)
        assert not box.overlaps(legend)
        assert ax.get_window_extent(renderer).contains(box.x1 - 1, box.y1 - 1)   # inside its panel
        assert max(ax.get_yticks()) <= max(p.get_height() for p in ax.patches) * 1.3   # no ticks in the band


def test_class_names_are_written_in_full_and_inside_the_figure():
    data = tb.load_task_data("text-cls", seed=0, limit=120)
    report = drift.compare_profiles(*(drift.profile_dataset(d, data.spec) for d in (data.train, data.current)))
    fig = tb.plot_drift_dashboard(report)
    renderer = drawn(fig)
    labels = fig.axes[3].get_xticklabels()
    assert sorted(t.get_text() for t in labels) == sorted(data.spec.class_names)   # 'multiprocessing', not 'multipro'
    frame = fig.bbox
    for t in labels:
        extent = t.get_window_extent(renderer)
        assert extent.x0 >= frame.x0 and extent.y0 >= frame.y0 and extent.x1 <= frame.x1


def test_validation_panel_has_markers_and_a_fixed_range_with_two_points():
    history = [{"epoch": e, "train_loss": 1.79, "val_loss": 1.7918, "val_accuracy": 0.1667 + e / 1000, "lr": 1e-3,
                "grad_norm": 1.0, "samples_per_s": 100.0} for e in (1, 2)]
    fig = tb.plot_training(types.SimpleNamespace(history=history))
    ax = fig.axes[1]
    assert ax.get_ylim() == pytest.approx((0, 1.02)) and ax.get_lines()[0].get_marker() == "o"
    assert fig.axes[0].get_ylim()[0] == 0        # the loss from zero too: a flat loss stays flat
    assert [t for t in ax.get_xticks() if 1 <= t <= 2] == [1, 2]   # whole epochs
    lm_history = [{**h, "val_bits_per_byte": 3.2 - h["epoch"] / 100} for h in history]
    for h in lm_history:
        del h["val_accuracy"]
    lm_ax = tb.plot_training(types.SimpleNamespace(history=lm_history)).axes[1]
    assert lm_ax.get_title() == "val_bits_per_byte" and lm_ax.get_ylim() == pytest.approx((0, 3.19 * 1.15))


def test_search_plot_puts_a_log_uniform_parameter_on_its_log_range_and_trials_on_whole_numbers():
    from trainbook.search.results import SearchResult, Trial

    trials = [Trial(i, {"learning_rate": lr, "batch_size": bs}, i, "finished", metric=m)
              for i, (lr, bs, m) in enumerate([(3e-4, 16, 0.9), (6e-4, 32, 0.7), (1.1e-3, 16, 0.6), (4e-4, 32, 0.8)])]
    space = {"learning_rate": {"loguniform": [1e-4, 1e-2]}, "batch_size": [16, 32]}
    fig = tb.plot_search(SearchResult(trials, trials[2], "val_loss", "min", "s", space=space))
    drawn(fig)
    trial_ax, lr_ax, bs_ax = fig.axes
    assert lr_ax.get_xscale() == "log" and lr_ax.get_xlim() == pytest.approx((1e-4 / 1.25, 1e-2 * 1.25))
    assert all(float(t).is_integer() for t in trial_ax.get_xticks())
    assert [t.get_text() for t in bs_ax.get_xticklabels()] == ["16", "32"]
