"""Colab's kernel-to-frontend requests, simulated: no frontend answers.

    _message.blocking_request("get_ipynb", timeout_sec=5)   # -> None

wandb calls blocking_request("get_ipynb") inside Colab to read the notebook; the real call returns
the notebook from the browser, here it returns None (as when the frontend does not answer).
"""

from . import _record


def blocking_request(request_type: str, request="", timeout_sec: float = 5, parent=None):
    """Record the request and return None (no frontend).

    Args:
        request_type: e.g. "get_ipynb".
        request: the request payload (not recorded).
        timeout_sec: accepted for signature compatibility.
        parent: accepted for signature compatibility.

    Returns:
        None.
    """
    _record("_message.blocking_request", request_type)
    return None
