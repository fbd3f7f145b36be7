"""The error every model source raises when it cannot give a model: it names the source and the fix.

    raise ModelSourceError("gist:abc123: not found (HTTP 404). HINT: check the id")
"""


class ModelSourceError(ValueError):
    """A model source (file, folder, URL, Gist, hf:) cannot be loaded; the message says why and how to fix it."""
