"""Figures: training curves (and, with the drift module, the drift dashboard).

    fig = plot_training(result); fig.savefig(run_dir / "training_curves.png")

matplotlib is imported inside each function; nothing is shown or saved as a side effect.
"""

from __future__ import annotations


def _figure(n_axes: int, width: float = 12.0, height: float = 3.4):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plots need matplotlib: pip install matplotlib") from None
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots(1, n_axes)


def plot_training(result) -> "Figure":  # noqa: F821
    """Loss, validation metric, learning rate / grad norm, and throughput per epoch.

    Args:
        result: a TrainResult (or anything with a `history` list of per-epoch dicts).
    Returns:
        a matplotlib Figure with 4 axes.
    """
    history = result.history
    fig, (ax_loss, ax_metric, ax_lr, ax_speed) = _figure(4)
    epochs = [h["epoch"] for h in history]
    ax_loss.plot(epochs, [h["train_loss"] for h in history], marker="o", label="train")
    if any("val_loss" in h for h in history):
        pts = [(h["epoch"], h["val_loss"]) for h in history if "val_loss" in h]
        ax_loss.plot(*zip(*pts), marker="o", label="val")
    ax_loss.set(title="loss", xlabel="epoch")
    ax_loss.legend()
    metric = next((k for k in ("val_accuracy", "val_bits_per_byte", "val_perplexity") if any(k in h for h in history)), None)
    if metric:
        pts = [(h["epoch"], h[metric]) for h in history if metric in h]
        ax_metric.plot(*zip(*pts), marker="o", color="tab:green")
    ax_metric.set(title=metric or "no validation metric", xlabel="epoch")
    ax_lr.plot(epochs, [h["lr"] for h in history], marker="o", color="tab:purple", label="lr (end of epoch)")
    ax_lr.set(title="learning rate / grad norm", xlabel="epoch")
    ax_norm = ax_lr.twinx()
    ax_norm.plot(epochs, [h["grad_norm"] for h in history], marker="s", color="tab:orange", label="grad norm")
    key = "tokens_per_s" if history and "tokens_per_s" in history[0] else "samples_per_s"
    ax_speed.bar(epochs, [h[key] for h in history], color="tab:gray")
    ax_speed.set(title=key.replace("_per_s", "/s"), xlabel="epoch")
    return fig
