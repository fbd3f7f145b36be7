"""Colab secrets (the key panel), simulated by environment variables.

    COLAB_STUB_SECRET_WANDB_API_KEY=... -> userdata.get("WANDB_API_KEY") returns that value

Set COLAB_STUB_NO_ACCESS=1 to simulate a notebook that was not granted access to its secrets.
"""

import os

from . import _record

SECRET_ENV_PREFIX = "COLAB_STUB_SECRET_"


class SecretNotFoundError(Exception):
    """No secret of that name exists (Colab raises this from userdata.get)."""

    def __init__(self, key: str):
        super().__init__(f"Secret {key} does not exist.")


class NotebookAccessError(Exception):
    """The notebook was not granted access to the secret."""

    def __init__(self, key: str):
        super().__init__(f"Notebook does not have access to secret {key}")


def get(key: str) -> str:
    """The value of the Colab secret `key`.

    Args:
        key: the secret's name, e.g. "WANDB_API_KEY".

    Returns:
        The value of the environment variable COLAB_STUB_SECRET_<key>.

    Raises:
        NotebookAccessError: COLAB_STUB_NO_ACCESS is set.
        SecretNotFoundError: COLAB_STUB_SECRET_<key> is not set.
    """
    _record("userdata.get", key)
    if os.environ.get("COLAB_STUB_NO_ACCESS"):
        raise NotebookAccessError(key)
    value = os.environ.get(SECRET_ENV_PREFIX + key)
    if value is None:
        raise SecretNotFoundError(key)
    return value
