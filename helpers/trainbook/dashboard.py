"""Figures: training curves, the 4-panel drift dashboard, the drift explorer, search and model checks.

    fig = plot_training(result); fig.savefig(run_dir / "training_curves.png")
    plot_drift_dashboard(report).savefig(run_dir / "drift_dashboard.png"); drift_explorer(report)
    plot_model_checks(tb.check_model(model, spec)).savefig(run_dir / "model_check.png")

matplotlib is imported inside each function; the plot_* functions show and save nothing (the
caller does), drift_explorer displays its widget or figure in the notebook.
"""

from __future__ import annotations

import os


def _figure(n_axes: int, width: float = 12.0, height: float = 3.4):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plots need matplotlib: pip install matplotlib") from None
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots(1, n_axes)


def plot_training(result) -> "Figure":  # noqa: F821
    """Loss, validation metric, learning rate / grad norm, and throughput.

    Per optimizer step when the run's metrics.jsonl is there (validation points at each epoch's
    last step), per epoch otherwise. Loss and validation metric start at 0 (accuracy spans 0-1),
    with a marker per validation point; x ticks are whole numbers.

    Args:
        result: a TrainResult (or anything with a `history` list of per-epoch dicts and,
            optionally, a `run_dir`).
    Returns:
        a matplotlib Figure with 4 panels (5 axes: the grad norm has its own y axis).
    """
    from .tracking import read_metrics

    history = result.history
    run_dir = getattr(result, "run_dir", None)
    metrics_file = os.path.join(run_dir, "metrics.jsonl") if run_dir else ""
    steps = [r for r in read_metrics(run_dir) if "train/loss" in r] if metrics_file and os.path.exists(metrics_file) else []
    x_of = (lambda h: h["step"]) if steps else (lambda h: h["epoch"])  # noqa: E731
    xlabel = "optimizer step" if steps else "epoch"
    fig, (ax_loss, ax_metric, ax_lr, ax_speed) = _figure(4)
    if steps:
        ax_loss.plot([r["step"] for r in steps], [r["train/loss"] for r in steps], lw=1, label="train (per step)")
    else:
        ax_loss.plot([h["epoch"] for h in history], [h["train_loss"] for h in history], marker="o", label="train")
    pts = [(x_of(h), h["val_loss"]) for h in history if "val_loss" in h]
    if pts:
        ax_loss.plot(*zip(*pts), marker="o", label="val")
    ax_loss.set(title="loss", xlabel=xlabel)
    ax_loss.set_ylim(0, None)   # from zero: a flat loss is not drawn as a cliff
    ax_loss.legend()
    metric = next((k for k in ("val_accuracy", "val_bits_per_byte", "val_perplexity") if any(k in h for h in history)), None)
    if metric:
        points = [(x_of(h), h[metric]) for h in history if metric in h]
        ax_metric.plot(*zip(*points), marker="o", color="tab:green")
        # a fixed range: two points of an auto-scaled axis make any wiggle look like a trend
        ax_metric.set_ylim(0, 1.02 if metric == "val_accuracy" else max(v for _, v in points) * 1.15)
    ax_metric.set(title=metric or "no validation metric", xlabel=xlabel)
    if steps:
        xs, lrs, norms = [r["step"] for r in steps], [r["train/lr"] for r in steps], [r["train/grad_norm"] for r in steps]
    else:
        xs, lrs, norms = [h["epoch"] for h in history], [h["lr"] for h in history], [h["grad_norm"] for h in history]
    ax_lr.plot(xs, lrs, color="tab:purple", label="learning rate")
    ax_lr.set(title="learning rate / grad norm", xlabel=xlabel)
    ax_lr.set_ylabel("learning rate", color="tab:purple")
    ax_norm = ax_lr.twinx()
    ax_norm.plot(xs, norms, color="tab:orange", lw=1, alpha=0.8, label="grad norm (pre-clip)")
    ax_norm.set_ylabel("grad norm (pre-clip)", color="tab:orange")
    key = "tokens_per_s" if history and "tokens_per_s" in history[0] else "samples_per_s"
    ax_speed.bar([h["epoch"] for h in history], [h[key] for h in history], color="tab:gray")
    ax_speed.set(title=key.replace("_per_s", "/s") + " per epoch", xlabel="epoch")
    for ax in (ax_loss, ax_metric, ax_lr, ax_speed):
        _integer_ticks(ax)
    return fig


def _integer_ticks(ax):
    """Whole numbers on the x axis (epochs, steps, trials), never 0.5 epochs."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


# --- drift ---

_STATUS_COLORS = {"ok": "tab:green", "warn": "tab:orange", "drift": "tab:red"}
_STATUS_RANK = {"ok": 0, "warn": 1, "drift": 2}


def _severity(row: dict) -> tuple:
    return _STATUS_RANK[row["status"]], row["score"] / row["threshold"]


def _plot_distribution(ax, dist: dict, **legend):
    if dist["kind"] == "numeric":
        ax.stairs(dist["reference"], dist["edges"], fill=True, alpha=0.35, color="tab:blue", label="reference")
        ax.stairs(dist["current"], dist["edges"], color="tab:red", linewidth=1.5, label="current")
    else:
        x = range(len(dist["categories"]))
        ax.bar([i - 0.2 for i in x], dist["reference"], width=0.4, color="tab:blue", alpha=0.6, label="reference")
        ax.bar([i + 0.2 for i in x], dist["current"], width=0.4, color="tab:red", alpha=0.8, label="current")
        labels = [_short(c) for c in dist["categories"]]
        turn = {"rotation": 40, "ha": "right", "rotation_mode": "anchor"} if max(map(len, labels), default=0) > 3 else {}
        ax.set_xticks(list(x), labels, fontsize=8, **turn)
    ax.set_ylabel("% of samples")
    ax.legend(fontsize=8, **legend)


def _short(name, width: int = 18) -> str:
    name = str(name)
    return name if len(name) <= width else name[: width - 3] + "..."


def _plot_scores(ax, rows: list[dict], alpha: float, cap: float = 5.0):
    """Bars of score / drift threshold, each labelled with its statistic and p-value; a bar past the
    dashed line that is not significant says so. The axis ends just past the largest bar (or the line)."""
    rows = sorted(rows, key=_severity)
    ratios = [r["score"] / r["threshold"] for r in rows]
    right = 1.9 * min(cap, max(ratios + [1.0]))    # bars fill the first half; the labels the rest
    y = range(len(rows))
    ax.barh(list(y), [min(v, cap) for v in ratios], color=[_STATUS_COLORS[r["status"]] for r in rows])
    for i, (r, v) in enumerate(zip(rows, ratios)):
        note = " - not significant" if v >= 1 and r["p_value"] >= alpha else ""
        p = f"p={r['p_value']:.2g}" if r["p_value"] >= 1e-15 else "p<1e-15"
        ax.text(min(v, cap) + right * 0.01, i, f"{r['statistic']} {r['score']:.3g}, {p}{note}",
                va="center", fontsize=8)
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1)
    ax.set_yticks(list(y), [r["feature"] + (" (model)" if r.get("group") == "model" else "") for r in rows], fontsize=8)
    ax.set_xlim(0, right)
    ax.set_xlabel(f"score / drift threshold (dashed line: drift when p < {alpha:g})")


def _plot_over_time(ax, series: dict):
    x = list(range(1, len(series["current"]) + 1))
    if series["band"] is not None:
        lo, hi = series["band"]
        ax.axhspan(lo, hi, color="tab:blue", alpha=0.15, label="reference band (mean +- 3 std)")
        outside = [(i, v) for i, v in zip(x, series["current"]) if not lo <= v <= hi]
        if outside:
            ax.scatter(*zip(*outside), color="tab:red", zorder=3, label="outside the band")
    ax.plot(x, series["current"], marker="o", color="black", label="current chunks")
    ax.set_xlabel(f"chunk of current data (~{series['chunk_size']} samples each)")
    ax.set_ylabel("JS distance to the reference")
    ax.legend(fontsize=8)


def plot_drift_dashboard(report) -> "Figure":  # noqa: F821
    """The four drift panels: distribution, scores, over time, predictions/labels with the verdict.

    1. reference vs current histogram (shared bins, percent) of the most drifted numeric feature;
    2. every feature's score divided by its drift threshold, coloured ok/warn/drift;
    3. the JS distance of each chunk of current data for the most drifted feature, with the band
       from reference chunks; 4. predicted classes (or labels, or confidence) reference vs current,
       with the verdict ("3 of 7 features drifted: dataset drift").

    Args:
        report: a DriftReport (tb.compare_profiles / drift.compare_arrays).
    Returns:
        a matplotlib Figure with exactly 4 titled axes; nothing is shown or saved.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plots need matplotlib: pip install matplotlib") from None
    fig = Figure(figsize=(12, 8), layout="constrained")
    (ax_dist, ax_scores), (ax_time, ax_pred) = fig.subplots(2, 2)
    rows = sorted(report.rows, key=_severity, reverse=True)
    top = next((r for r in rows if r["kind"] == "numeric"), rows[0])
    _plot_distribution(ax_dist, report.distributions[top["feature"]])
    ax_dist.set_title(f"distribution: {top['feature']} ({top['statistic']} {top['score']:.3g}, {top['status']})")
    _plot_scores(ax_scores, report.rows, report.thresholds["p_value"])
    ax_scores.set_title("drift score per feature")
    _plot_over_time(ax_time, report.over_time[rows[0]["feature"]])
    ax_time.set_title(f"over time: {rows[0]['feature']}")
    names = [r["feature"] for r in report.rows]
    shown = next((n for n in ("predicted", "labels", "confidence") if n in names), None)
    title = f"predictions / labels: {shown}"
    if shown is None:  # no model and no labels: the most drifted categorical (else another) feature
        others = [r for r in rows if r is not top] or rows
        shown = next((r for r in others if r["kind"] == "categorical"), others[0])["feature"]
        title = f"no predictions / labels profiled; {shown}"
    # the verdict sits in the top band of the panel, the legend under it on the right, the bars below both
    _plot_distribution(ax_pred, report.distributions[shown], loc="upper right", bbox_to_anchor=(1.0, 0.85))
    data_top = ax_pred.get_ylim()[1]
    ax_pred.set_yticks([v for v in ax_pred.get_yticks() if 0 <= v <= data_top])   # no "150 %" tick in the band
    ax_pred.set_ylim(0, data_top * 1.75)
    ax_pred.set_title(title)
    color = "tab:red" if report.dataset_drift else "tab:green"
    ax_pred.text(0.02, 0.97, report.verdict(), transform=ax_pred.transAxes, va="top", fontsize=10, color=color,
                 bbox={"facecolor": "white", "edgecolor": color, "alpha": 0.9}, wrap=True)
    fig.suptitle(f"drift: {report.n_current} current vs {report.n_reference} reference examples")
    return fig


def _feature_figure(report, feature: str) -> "Figure":  # noqa: F821
    from matplotlib.figure import Figure

    row = report.row(feature)
    fig = Figure(figsize=(8, 3.6), layout="constrained")
    ax = fig.subplots()
    _plot_distribution(ax, report.distributions[feature])
    raw = row.get(row["statistic"], row["score"])
    ax.set_title(f"{feature}: {row['statistic']} {raw:.3g}, {row['score']:.3g} beyond noise (drift at "
                 f"{row['threshold']:g}), {row['test']} p={row['p_value']:.3g}, {row['status']}")
    return fig


def _png(fig):
    import io

    from IPython.display import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return Image(data=buf.getvalue())


def _live_frontend() -> bool:
    """A notebook someone is looking at: Colab, or a Jupyter kernel not started by papermill/nbval/nbconvert."""
    from .env import in_colab, in_notebook

    if not in_notebook():
        return False
    if in_colab():
        return True
    try:
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as fh:
            parent = fh.read().decode(errors="replace")
    except OSError:  # no /proc (macOS, Windows): assume a live frontend; widgets still work headless
        return True
    return not any(runner in parent for runner in ("papermill", "nbval", "pytest", "nbconvert", "nbclient"))


def drift_explorer(report, interactive: bool | None = None):
    """Explore a DriftReport feature by feature.

    In a live notebook (Jupyter, Colab) a dropdown lists the features, most drifted first, and
    redraws the chosen one's reference-vs-current distribution. Headless (papermill, nbval, a
    script) there is no dropdown to use: it prints a one-line note and shows nothing (the
    dashboard, tb.plot_drift_dashboard, already shows every feature).

    Args:
        report: a DriftReport.
        interactive: True forces the dropdown, False the headless note; None decides from
            where it runs (see _live_frontend).
    Returns:
        the ipywidgets VBox (dropdown), or None (headless).
    Raises:
        ImportError: the dropdown was asked for and ipywidgets is not installed.
    """
    if not (_live_frontend() if interactive is None else interactive):
        worst = max(report.rows, key=_severity)["feature"] if report.rows else "none"
        print(f"drift explorer: no live notebook here, so no dropdown ({len(report.rows)} features; most drifted: "
              f"{worst}; the dashboard above shows them all)")
        return None
    try:
        import ipywidgets as widgets
    except ImportError:
        raise ImportError("drift_explorer's dropdown needs ipywidgets: pip install ipywidgets") from None
    from IPython.display import clear_output, display

    names = [r["feature"] for r in sorted(report.rows, key=_severity, reverse=True)]
    dropdown = widgets.Dropdown(options=names, value=names[0], description="feature")
    out = widgets.Output()

    def draw(change=None):
        with out:
            clear_output(wait=True)
            display(_png(_feature_figure(report, dropdown.value)))
    dropdown.observe(draw, names="value")
    draw()
    box = widgets.VBox([dropdown, out])
    display(box)
    return box


def plot_search(result) -> "Figure":  # noqa: F821
    """The metric per trial with the best so far, and the metric against each searched parameter.

    Trials sit on whole-number ticks; a log-uniform parameter gets a log axis spanning its searched
    range (from `result.space`), a list of numbers ticks at those numbers.

    Args:
        result: a SearchResult.
    Returns:
        a matplotlib Figure with 1 + (number of searched parameters) axes.
    Raises:
        ImportError: matplotlib is not installed.
    """
    from .search.results import direction
    from .search.space import is_number

    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plot_search needs matplotlib: pip install matplotlib") from None
    names = list(result.trials[0].params) if result.trials else []
    fig = Figure(figsize=(4.0 * (1 + len(names)), 3.4), layout="constrained")
    axes = fig.subplots(1, 1 + len(names), squeeze=False)[0]
    colors = {"finished": "tab:blue", "pruned": "tab:orange", "failed": "tab:red"}
    scored = sorted((t for t in result.trials if t.metric is not None), key=lambda t: t.index)
    for status, color in colors.items():
        pts = [(t.index, t.metric) for t in scored if t.status == status]
        if pts:
            axes[0].scatter(*zip(*pts), color=color, label=status)
    best, line = None, []
    for t in (t for t in scored if t.status == "finished"):
        best = t.metric if best is None else min(best, t.metric, key=lambda v: direction(result.mode) * v)
        line.append((t.index, best))
    if line:
        axes[0].step(*zip(*line), where="post", color="gray", label="best so far")
    axes[0].set(title=f"{result.metric} per trial", xlabel="trial", ylabel=result.metric)
    _integer_ticks(axes[0])
    if line or scored:
        axes[0].legend(fontsize="small")
    for ax, name in zip(axes[1:], names):
        values = [t.params[name] for t in scored]
        numeric = all(is_number(v) for v in values)
        labels = sorted({str(v) for v in values})
        ax.scatter(values if numeric else [labels.index(str(v)) for v in values], [t.metric for t in scored],
                   c=[colors[t.status] for t in scored])
        dist = getattr(result, "space", {}).get(name)
        if isinstance(dist, dict) and "loguniform" in dist:   # the searched range, on the axis it was drawn on
            ax.set_xscale("log")
            low, high = dist["loguniform"]
            ax.set_xlim(low / 1.25, high * 1.25)
        elif numeric and values and min(values) > 0 and max(values) >= 20 * min(values):
            ax.set_xscale("log")
        elif isinstance(dist, dict) and "intuniform" in dist:
            _integer_ticks(ax)
        elif isinstance(dist, list) and numeric:   # a list of numbers: ticks at the searched values
            ax.set_xticks(sorted(set(dist)))
        if not numeric:
            ax.set_xticks(range(len(labels)), labels)
        ax.set(title=f"{result.metric} vs {name}", xlabel=name)
    return fig


def plot_model_checks(report) -> "Figure":  # noqa: F821
    """The model check figure (trainbook.checks.figure): gradient norm per layer, the LR range
    curve, and training-step time and peak memory vs batch size; the same as `report.figure()`.

    Args:
        report: a ModelReport (tb.check_model).
    Returns:
        a matplotlib Figure with 3 panels; nothing is shown or saved.
    Raises:
        ImportError: matplotlib is not installed.
    """
    from .checks.figure import plot_model_report

    return plot_model_report(report)
