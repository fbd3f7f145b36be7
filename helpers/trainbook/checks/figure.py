"""The model check figure: gradient norm per layer, the LR range curve, memory and step time vs batch size.

    fig = plot_model_report(report); fig.savefig(run_dir / "model_check.png")

matplotlib is imported inside the function; nothing is shown or saved here.
"""

from __future__ import annotations

_COLORS = {"pass": "tab:green", "warn": "tab:orange", "fail": "tab:red", "skip": "tab:gray"}


def _note(ax, text: str):
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", wrap=True, fontsize=9, color="tab:gray")
    ax.set_xticks([])
    ax.set_yticks([])


def _gradients(ax, report):
    from matplotlib.ticker import NullFormatter

    if "gradient_flow" not in report or not report["gradient_flow"].details.get("layers"):
        _note(ax, "gradient_flow did not run")
        ax.set_title("gradient norm per layer")
        return
    r = report["gradient_flow"]
    layers, norms = r.details["layers"], r.details["norms"]
    flagged = set(r.details.get("missing", []) + r.details.get("non_finite", []) + r.details.get("zero", []))
    bad = {name.rpartition(".")[0] or name for name in flagged}
    y = list(range(len(layers)))[::-1]  # input at the top, output at the bottom
    floor = min([v for v in norms if v > 0], default=1.0) / 10
    ax.barh(y, [max(v, floor) for v in norms], color=["tab:red" if n in bad else "tab:blue" for n in layers])
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())  # a narrow log range would label every minor tick
    ax.set_yticks(y, [n[-28:] for n in layers], fontsize=7)
    ax.set_xlabel("gradient L2 norm (red: missing / zero / non-finite)")
    ax.set_title(f"gradient norm per layer: {r.verdict}", color=_COLORS[r.verdict])


def _lr_range(ax, report):
    r = report["lr_range"] if "lr_range" in report else None
    if r is None or not r.details.get("lrs"):
        _note(ax, "LR range test: run level='full'" if r is None or r.verdict == "skip" else r.hint)
        ax.set_title("LR range test")
        return
    ax.plot(r.details["lrs"], r.details["losses"], color="tab:gray", lw=0.8, alpha=0.6, label="loss per step")
    ax.plot(r.details["lrs"][: len(r.details["smoothed"])], r.details["smoothed"], color="tab:blue", label="smoothed")
    lr = r.details.get("suggested_lr")
    if lr:
        ax.axvline(lr, color="tab:green", ls="--", label=f"suggested {lr:.2g}")
    ax.set_xscale("log")
    finite = [v for v in r.details["smoothed"] if v == v and abs(v) != float("inf")]
    if finite:
        ax.set_ylim(min(finite) * 0.9, max(finite[0] * 1.5, min(finite) * 1.2))
    ax.set(xlabel="learning rate", ylabel="training loss")
    ax.legend(fontsize=8)
    ax.set_title(f"LR range test: {r.verdict}", color=_COLORS[r.verdict])


def _memory_speed(ax, report):
    r = report["memory_and_speed"] if "memory_and_speed" in report else None
    if r is None or not r.details.get("batch"):
        _note(ax, "memory_and_speed did not run" if r is None else r.hint)
        ax.set_title("memory and step time vs batch size")
        return
    sizes = r.details["batch"]
    ax.plot(sizes, [1000 * s for s in r.details["step_s"]], marker="o", color="tab:purple")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.set_xlabel("batch size")
    ax.set_ylabel("training step (fwd + bwd), ms", color="tab:purple")
    twin = ax.twinx()
    twin.plot(sizes, r.details["activation_mb"], marker="s", color="tab:orange")
    twin.set_ylabel("activation memory, MB", color="tab:orange")
    ax.set_title(f"memory and speed on {r.numbers.get('device', '?')}", fontsize=10)


def plot_model_report(report) -> "Figure":  # noqa: F821
    """Three panels: gradient norm per layer (log scale, input at the top; red bars are layers
    with a missing, zero or non-finite gradient), the LR range test (loss vs learning rate, the
    suggestion dashed; full level), and training-step time and activation memory vs batch size.

    Args:
        report: a ModelReport.
    Returns:
        a matplotlib Figure with 3 panels (4 axes: memory has its own y axis), titled with the verdict.
    Raises:
        ImportError: matplotlib is not installed.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("the model check figure needs matplotlib: pip install matplotlib") from None
    fig = Figure(figsize=(14, 4.2), layout="constrained")
    ax_grad, ax_lr, ax_mem = fig.subplots(1, 3)
    _gradients(ax_grad, report)
    _lr_range(ax_lr, report)
    _memory_speed(ax_mem, report)
    fig.suptitle(f"model check ({report.level}) of {report.model_name}: {report.verdict_line()}",
                 color=_COLORS.get(report.overall, "black"), fontsize=11)
    return fig
