"""Colab's output helpers, simulated: calls are recorded, nothing else happens.

    output.enable_custom_widget_manager()
"""

from . import _record


def enable_custom_widget_manager() -> None:
    """Record the call (Colab switches its frontend to third-party ipywidgets here)."""
    _record("output.enable_custom_widget_manager")


def disable_custom_widget_manager() -> None:
    """Record the call."""
    _record("output.disable_custom_widget_manager")
