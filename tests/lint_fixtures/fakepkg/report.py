"""Plots of a finished run."""

from .training import TrainResult


def plot_curves(result: TrainResult, *, title: str = "", **style):
    """style: any matplotlib line keyword (color=..., linewidth=...)."""
    return [title, style, result.history]
